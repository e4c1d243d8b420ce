"""The execution input of the training state machine: its schema and a pure-Python validator.

Every key is optional; whatever is absent comes from the stack configuration:

    {
      "trigger": "schedule" | "operator",         # who started it (tags, notifications)
      "hyperparameters": {"epochs": "5", ...},    # strings; merged key by key over the defaults
      "instance_type": "ml.p4d.24xlarge",         # an ml.* SageMaker training instance type
      "instance_count": 2,                        # integer, 1..MAX_INSTANCE_COUNT
      "spot": true,                               # managed spot training
      "train_s3_uri": "s3://bucket/prefix/"       # `train` channel; default: data bucket train/
    }

Unknown keys are rejected. The state machine applies the same rules with Choice states before it
creates any training job (see infra/workflow_definition.py); this module is the operator CLI's
way to reject a bad input before it calls StartExecution, with the same one-line messages. It
must not import aws_cdk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from core.instance_types import SMDDP_INSTANCE_TYPES
from core.schema.limits import (
    DEFAULT_INSTANCE_TYPE,
    MAX_HYPERPARAMETER_LEN,
    MAX_HYPERPARAMETERS,
    MAX_INSTANCE_COUNT,
    MAX_USER_HYPERPARAMETERS,
    RESERVED_HYPERPARAMETER_PREFIX,
)
from training import contract

#: Who started a run: the retraining schedule, `trainops start`, a notebook (trainops.sdk), or
#: new data in the bucket (a `new-data` run is skipped while another run is in progress).
TRIGGERS = ("schedule", "operator", "sdk", "new-data")
NEW_DATA_TRIGGER = "new-data"
DEFAULT_TRIGGER = "operator"
#: The execution input of every scheduled run (the workflow merges it over its defaults).
SCHEDULED_INPUT: dict[str, str] = {"trigger": "schedule"}
INPUT_KEYS = (
    "hyperparameters",
    "instance_count",
    "instance_type",
    "spot",
    "train_s3_uri",
    "trigger",
)
#: JSON Schema of the input (documentation and editor support; the validator below is normative).
EXECUTION_INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Training state machine execution input",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "trigger": {"enum": list(TRIGGERS), "default": DEFAULT_TRIGGER},
        "hyperparameters": {
            "type": "object",
            "maxProperties": MAX_USER_HYPERPARAMETERS,
            "propertyNames": {
                "minLength": 1,
                "maxLength": MAX_HYPERPARAMETER_LEN,
                "not": {"pattern": f"^{RESERVED_HYPERPARAMETER_PREFIX}"},
            },
            "additionalProperties": {"type": "string", "maxLength": MAX_HYPERPARAMETER_LEN},
        },
        "instance_type": {"type": "string", "pattern": r"^ml\..*\..*"},
        "instance_count": {"type": "integer", "minimum": 1, "maximum": MAX_INSTANCE_COUNT},
        "spot": {"type": "boolean"},
        "train_s3_uri": {"type": "string", "pattern": r"^s3://[^/]+/.*"},
    },
}


#: The rules, worded once: the state machine's Fail states use these as their Cause, and the
#: Python validator adds `, got <value>` (the state machine cannot quote arbitrary values).
MSG_NOT_OBJECT = "execution input must be a JSON object"
MSG_UNKNOWN_KEY = f"execution input has an unknown key; allowed: {', '.join(INPUT_KEYS)}"
MSG_TRIGGER = f"trigger must be one of {', '.join(repr(t) for t in TRIGGERS)}"
MSG_HYPERPARAMETERS = "hyperparameters must be an object of string values"
MSG_HYPERPARAMETER_VALUE = (
    "hyperparameters values must be strings (SageMaker passes hyperparameters as strings)"
)
MSG_TOO_MANY_HYPERPARAMETERS = (
    f"hyperparameters: at most {MAX_USER_HYPERPARAMETERS} keys including the defaults "
    f"(SageMaker takes {MAX_HYPERPARAMETERS}, the workflow sets the rest)"
)
MSG_INSTANCE_TYPE = (
    f"instance_type must be a SageMaker instance type like {DEFAULT_INSTANCE_TYPE!r}"
)
MSG_INSTANCE_COUNT = f"instance_count must be an integer from 1 to {MAX_INSTANCE_COUNT}"
MSG_SPOT = "spot must be true or false"
MSG_TRAIN_S3_URI = (
    "train_s3_uri must be an s3:// URI with a bucket and a key prefix (s3://bucket/prefix/)"
)
MSG_SMDDP_INSTANCE_TYPE = (
    f"instance_type cannot run the smddp backend; use one of {', '.join(SMDDP_INSTANCE_TYPES)}"
)


class ExecutionInputError(ValueError):
    """A bad execution input; the message is one line naming the key, the value and the rule."""


def _json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _fail(message: str, value: Any) -> ExecutionInputError:
    return ExecutionInputError(f"{message}, got {_json(value)}")


def _check_hyperparameters(
    hps: Any, defaults: Mapping[str, str], strict_choices: bool
) -> dict[str, str]:
    if not isinstance(hps, Mapping):
        raise ExecutionInputError(f"{MSG_HYPERPARAMETERS}, got {_type_name(hps)}")
    for key, value in hps.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_HYPERPARAMETER_LEN:
            raise ExecutionInputError(
                f"hyperparameters key {_json(key)} must be 1-{MAX_HYPERPARAMETER_LEN} characters"
            )
        if key.startswith(RESERVED_HYPERPARAMETER_PREFIX):
            raise ExecutionInputError(
                f"hyperparameters key {_json(key)} is reserved: keys starting with "
                f"{_json(RESERVED_HYPERPARAMETER_PREFIX)} are set by the workflow"
            )
        if not isinstance(value, str):
            raise ExecutionInputError(
                f"{MSG_HYPERPARAMETER_VALUE}, got {_json(key)}: {_json(value)}"
            )
        if len(value) > MAX_HYPERPARAMETER_LEN:
            raise ExecutionInputError(
                f"hyperparameters[{_json(key)}] is {len(value)} characters, "
                f"at most {MAX_HYPERPARAMETER_LEN} allowed"
            )
        known = contract.HYPERPARAMETERS.get(key)
        if strict_choices and known is not None and known.choices and value not in known.choices:
            allowed = ", ".join(_json(choice) for choice in known.choices)
            raise ExecutionInputError(
                f"hyperparameters[{_json(key)}] must be one of {allowed}, got {_json(value)}"
            )
    total = len(set(hps) | set(defaults))
    if total > MAX_USER_HYPERPARAMETERS:
        raise ExecutionInputError(f"{MSG_TOO_MANY_HYPERPARAMETERS}, got {total}")
    return dict(hps)


def is_instance_type(value: Any) -> bool:
    """`ml.<family>.<size>`: the state machine's StringMatches 'ml.*.*', in Python."""
    return isinstance(value, str) and value.startswith("ml.") and "." in value[3:]


def is_s3_prefix_uri(value: Any) -> bool:
    """`s3://bucket/...`: the state machine's StringMatches 's3://*/*' and not 's3:///*'."""
    if not isinstance(value, str) or not value.startswith("s3://"):
        return False
    bucket, sep, _ = value[len("s3://") :].partition("/")
    return bool(bucket) and bool(sep)


def validate_execution_input(
    data: Any,
    *,
    defaults: Mapping[str, str] | None = None,
    backend: str | None = None,
    default_instance_type: str | None = None,
    strict_choices: bool = True,
) -> dict[str, Any]:
    """Check an execution input and return a plain-dict copy; raise ExecutionInputError.

    `defaults` (the configured hyperparameters) counts toward the hyperparameter limit;
    `backend` and `default_instance_type` enable the SMDDP instance-type rule;
    `strict_choices` also checks the contract's enumerated hyperparameter values (the state
    machine checks types only, so this is stricter than the state machine).
    """
    if not isinstance(data, Mapping):
        raise ExecutionInputError(f"{MSG_NOT_OBJECT}, got {_type_name(data)}")
    unknown = sorted(str(key) for key in data if key not in INPUT_KEYS)
    if unknown:
        raise ExecutionInputError(f"{MSG_UNKNOWN_KEY}, got {_json(unknown[0])}")
    out: dict[str, Any] = {}
    if "trigger" in data:
        if not isinstance(data["trigger"], str) or data["trigger"] not in TRIGGERS:
            raise _fail(MSG_TRIGGER, data["trigger"])
        out["trigger"] = data["trigger"]
    if "hyperparameters" in data:
        out["hyperparameters"] = _check_hyperparameters(
            data["hyperparameters"], defaults or {}, strict_choices
        )
    if "instance_type" in data:
        if not is_instance_type(data["instance_type"]):
            raise _fail(MSG_INSTANCE_TYPE, data["instance_type"])
        out["instance_type"] = data["instance_type"]
    if "instance_count" in data:
        count = data["instance_count"]
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 1 <= count <= MAX_INSTANCE_COUNT
        ):
            raise _fail(MSG_INSTANCE_COUNT, count)
        out["instance_count"] = count
    if "spot" in data:
        if not isinstance(data["spot"], bool):
            raise _fail(MSG_SPOT, data["spot"])
        out["spot"] = data["spot"]
    if "train_s3_uri" in data:
        if not is_s3_prefix_uri(data["train_s3_uri"]):
            raise _fail(MSG_TRAIN_S3_URI, data["train_s3_uri"])
        out["train_s3_uri"] = data["train_s3_uri"]
    if backend == "smddp":
        instance_type = out.get("instance_type", default_instance_type)
        if instance_type is not None and instance_type not in SMDDP_INSTANCE_TYPES:
            raise _fail(MSG_SMDDP_INSTANCE_TYPE, instance_type)
    return out
