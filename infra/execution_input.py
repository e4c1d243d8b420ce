"""The execution input of the training state machine: its schema and a pure-Python validator.

Every key is optional; whatever is absent comes from the stack configuration:

    {
      "trigger": "schedule" | "operator",         # who started it (tags, notifications)
      "hyperparameters": {"epochs": "5", ...},    # strings; merged key by key over the defaults
      "instance_type": "ml.p4d.24xlarge",         # an ml.* SageMaker training instance type
      "instance_count": 2,                        # integer, 1..MAX_INSTANCE_COUNT
      "spot": true,                               # managed spot training
      "train_s3_uri": "s3://bucket/prefix/"       # the `train` channel (default: data bucket train/)
    }

Unknown keys are rejected. The state machine applies the same rules with Choice states before it
creates any training job (see infra/workflow_definition.py); this module is the operator CLI's
way to reject a bad input before it calls StartExecution, with the same one-line messages. It
must not import aws_cdk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training import contract

TRIGGERS = ("schedule", "operator")
DEFAULT_TRIGGER = "operator"
INPUT_KEYS = ("hyperparameters", "instance_count", "instance_type", "spot", "train_s3_uri", "trigger")
#: A guard against typos (20 for 2): raise it deliberately if a bigger cluster is wanted.
MAX_INSTANCE_COUNT = 64
#: SageMaker's limits: 100 hyperparameters, 256 characters per key and per value.
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_LENGTH = 256
#: Keys the workflow sets itself (script mode); a user value would be overwritten.
RESERVED_HYPERPARAMETER_PREFIX = "sagemaker_"
FRAMEWORK_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_instance_type",
    *sorted(contract.LAUNCHER_FLAGS.values()),
)
#: User + default hyperparameters may use what the framework keys leave of SageMaker's 100.
MAX_USER_HYPERPARAMETERS = MAX_HYPERPARAMETERS - 7  # 6 script-mode keys + 1 launcher flag
#: SMDDP runs only on these (FIELD_NOTES: p4d, p4de, p3dn; not p5).
SMDDP_INSTANCE_TYPES = ("ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p3dn.24xlarge")

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
                "maxLength": MAX_HYPERPARAMETER_LENGTH,
                "not": {"pattern": f"^{RESERVED_HYPERPARAMETER_PREFIX}"},
            },
            "additionalProperties": {"type": "string", "maxLength": MAX_HYPERPARAMETER_LENGTH},
        },
        "instance_type": {"type": "string", "pattern": r"^ml\..+"},
        "instance_count": {"type": "integer", "minimum": 1, "maximum": MAX_INSTANCE_COUNT},
        "spot": {"type": "boolean"},
        "train_s3_uri": {"type": "string", "pattern": r"^s3://[^/]+/.*"},
    },
}


class ExecutionInputError(ValueError):
    """A bad execution input; the message is one line naming the key, the value and the rule."""


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


def _check_hyperparameters(
    hps: Any, defaults: Mapping[str, str], strict_choices: bool
) -> dict[str, str]:
    if not isinstance(hps, Mapping):
        raise ExecutionInputError(
            f"hyperparameters must be an object of string values, got {_type_name(hps)}"
        )
    for key, value in hps.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_HYPERPARAMETER_LENGTH:
            raise ExecutionInputError(
                f"hyperparameters key {key!r} must be 1-{MAX_HYPERPARAMETER_LENGTH} characters"
            )
        if key.startswith(RESERVED_HYPERPARAMETER_PREFIX):
            raise ExecutionInputError(
                f"hyperparameters key {key!r} is reserved: keys starting with "
                f"{RESERVED_HYPERPARAMETER_PREFIX!r} are set by the workflow"
            )
        if not isinstance(value, str):
            raise ExecutionInputError(
                f"hyperparameters[{key!r}] must be a string (SageMaker passes hyperparameters "
                f"as strings), got {_type_name(value)} {value!r}"
            )
        if len(value) > MAX_HYPERPARAMETER_LENGTH:
            raise ExecutionInputError(
                f"hyperparameters[{key!r}] is {len(value)} characters, "
                f"at most {MAX_HYPERPARAMETER_LENGTH} allowed"
            )
        known = contract.HYPERPARAMETERS.get(key)
        if strict_choices and known is not None and known.choices and value not in known.choices:
            allowed = ", ".join(repr(choice) for choice in known.choices)
            raise ExecutionInputError(
                f"hyperparameters[{key!r}] must be one of {allowed}, got {value!r}"
            )
    total = len(set(hps) | set(defaults))
    if total > MAX_USER_HYPERPARAMETERS:
        raise ExecutionInputError(
            f"hyperparameters: {total} keys with the defaults, at most {MAX_USER_HYPERPARAMETERS} "
            f"allowed (SageMaker takes {MAX_HYPERPARAMETERS}, the workflow sets the rest)"
        )
    return dict(hps)


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
    `strict_choices` checks the contract's enumerated hyperparameter values (the state
    machine does not: it checks types only).
    """
    if not isinstance(data, Mapping):
        raise ExecutionInputError(f"execution input must be a JSON object, got {_type_name(data)}")
    unknown = sorted(str(key) for key in data if key not in INPUT_KEYS)
    if unknown:
        raise ExecutionInputError(
            f"unknown execution input key {unknown[0]!r}; allowed: {', '.join(INPUT_KEYS)}"
        )
    out: dict[str, Any] = {}
    if "trigger" in data:
        trigger = data["trigger"]
        if trigger not in TRIGGERS or not isinstance(trigger, str):
            raise ExecutionInputError(
                f"trigger must be one of {', '.join(repr(t) for t in TRIGGERS)}, got {trigger!r}"
            )
        out["trigger"] = trigger
    if "hyperparameters" in data:
        out["hyperparameters"] = _check_hyperparameters(
            data["hyperparameters"], defaults or {}, strict_choices
        )
    if "instance_type" in data:
        instance_type = data["instance_type"]
        if not isinstance(instance_type, str) or not instance_type.startswith("ml.") or len(
            instance_type
        ) <= len("ml."):
            raise ExecutionInputError(
                f"instance_type must be a SageMaker instance type like 'ml.p4d.24xlarge', "
                f"got {instance_type!r}"
            )
        out["instance_type"] = instance_type
    if "instance_count" in data:
        count = data["instance_count"]
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 1 <= count <= MAX_INSTANCE_COUNT
        ):
            raise ExecutionInputError(
                f"instance_count must be an integer from 1 to {MAX_INSTANCE_COUNT}, got {count!r}"
            )
        out["instance_count"] = count
    if "spot" in data:
        spot = data["spot"]
        if not isinstance(spot, bool):
            raise ExecutionInputError(f"spot must be true or false, got {spot!r}")
        out["spot"] = spot
    if "train_s3_uri" in data:
        uri = data["train_s3_uri"]
        bucket = uri[len("s3://") :].split("/", 1)[0] if isinstance(uri, str) else ""
        if not isinstance(uri, str) or not uri.startswith("s3://") or not bucket or "/" not in uri[
            len("s3://") :
        ]:
            raise ExecutionInputError(
                f"train_s3_uri must be an s3:// URI with a bucket and a key prefix "
                f"(s3://bucket/prefix/), got {uri!r}"
            )
        out["train_s3_uri"] = uri
    if backend == "smddp":
        instance_type = out.get("instance_type", default_instance_type)
        if instance_type is not None and instance_type not in SMDDP_INSTANCE_TYPES:
            raise ExecutionInputError(
                f"instance_type {instance_type!r} cannot run the smddp backend; "
                f"use one of {', '.join(SMDDP_INSTANCE_TYPES)}"
            )
    return out
