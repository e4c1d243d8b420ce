"""The execution input of the training state machine, as one pydantic model.

Every key is optional; whatever is absent comes from the stack configuration. `ExecutionInput`
holds each key's rule once: `validate_execution_input` (the operator CLI and trainops.sdk,
before StartExecution) checks with it, and the state machine's own Choice-state checks
(infra/workflow_definition/input_stage.py) and the JSON schema are generated from it, so both
reject the same inputs with the same words (the Fail states' causes; Python adds `, got <value>`,
which the state machine cannot quote). No aws_cdk import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic.fields import FieldInfo

from core.instance_types import SMDDP_INSTANCE_TYPES
from core.schema import hyperparameters as hp_rules
from core.schema.errors import allowed_text, first_error, raised
from core.schema.export import json_schema
from core.schema.fields import Allowed, Glob, choice, glob_text, integer
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
SCHEDULE_TRIGGER, DEFAULT_TRIGGER, SDK_TRIGGER, NEW_DATA_TRIGGER = TRIGGERS = (
    "schedule",
    "operator",
    "sdk",
    "new-data",
)
#: The execution input of every scheduled run (the workflow merges it over its defaults).
SCHEDULED_INPUT: dict[str, str] = {"trigger": SCHEDULE_TRIGGER}
#: The globs the state machine matches strings with (StringMatches), in Python too.
INSTANCE_TYPE_GLOB = Glob("ml.*.*")
S3_PREFIX_GLOB = Glob("s3://*/*", exclude=("s3:///*",))

#: The rules, worded once: the state machine's Fail states use these as their Cause, and the
#: Python validator adds `, got <value>`.
MSG_NOT_OBJECT = "execution input must be a JSON object"
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
    for name, types in (("null", type(None)), ("boolean", bool), ("number", (int, float))):
        if isinstance(value, types):
            return name
    for name, types in (("string", str), ("array", (list, tuple)), ("object", Mapping)):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _check_hyperparameters(hps: Any, info: Any) -> dict[str, str]:
    """The hyperparameters' own rules (each with its own words); `info.context` carries the
    configured defaults (they count toward the limit) and whether to check enumerated values."""
    context = info.context or {}
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
        strict = context.get("strict_choices", True)
        if strict and known and known.choices and value not in known.choices:
            allowed = ", ".join(_json(choice) for choice in known.choices)
            raise ExecutionInputError(
                f"hyperparameters[{_json(key)}] must be one of {allowed}, got {_json(value)}"
            )
    total = len(set(hps) | set(context.get("defaults") or {}))
    if total > MAX_USER_HYPERPARAMETERS:
        raise ExecutionInputError(f"{MSG_TOO_MANY_HYPERPARAMETERS}, got {total}")
    return dict(hps)


#: An absent key: the deployed stack's configured value (no default of the input's own).
_STACK_DEFAULT: Any = Field(None, description="absent: the stack's configured value")


class ExecutionInput(BaseModel):
    """Training state machine execution input (every key optional: the stack's defaults)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        regex_engine="python-re",
        title="Training state machine execution input",
    )

    trigger: Annotated[choice(*TRIGGERS), Allowed(MSG_TRIGGER)] = DEFAULT_TRIGGER
    hyperparameters: Annotated[
        dict[str, str],
        BeforeValidator(_check_hyperparameters),
        Allowed(MSG_HYPERPARAMETERS),
        WithJsonSchema(hp_rules.json_schema("the run's hyperparameters, over the defaults")),
    ] = {}
    instance_type: glob_text(INSTANCE_TYPE_GLOB, MSG_INSTANCE_TYPE) = _STACK_DEFAULT
    instance_count: Annotated[
        integer(1, MAX_INSTANCE_COUNT, from_text=False), Allowed(MSG_INSTANCE_COUNT)
    ] = _STACK_DEFAULT
    spot: Annotated[bool, Allowed(MSG_SPOT)] = _STACK_DEFAULT
    #: Absent: the `train/` prefix of the stack's data bucket.
    train_s3_uri: glob_text(S3_PREFIX_GLOB, MSG_TRAIN_S3_URI) = _STACK_DEFAULT


#: The input's keys, sorted (the unknown-key message lists them).
INPUT_KEYS = tuple(sorted(ExecutionInput.model_fields))
MSG_UNKNOWN_KEY = f"execution input has an unknown key; allowed: {', '.join(INPUT_KEYS)}"
#: JSON Schema of the input (documentation and editor support), generated from the model.
EXECUTION_INPUT_SCHEMA: dict[str, Any] = json_schema(ExecutionInput)


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "model_type":
        return f"{MSG_NOT_OBJECT}, got {_type_name(error['input'])}"
    name = str(error["loc"][0])
    if error["type"] == "extra_forbidden":
        return f"{MSG_UNKNOWN_KEY}, got {_json(name)}"
    own = raised(error)
    if isinstance(own, ExecutionInputError):
        return str(own)
    return f"{allowed_text(ExecutionInput, name)}, got {_json(error['input'])}"


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
    context = {"defaults": defaults or {}, "strict_choices": strict_choices}
    try:
        checked = ExecutionInput.model_validate(data, context=context)
    except ValidationError as err:
        raise ExecutionInputError(_message(first_error(err))) from None
    out = checked.model_dump(exclude_unset=True)
    if backend == "smddp":
        instance_type = out.get("instance_type", default_instance_type)
        if instance_type is not None and instance_type not in SMDDP_INSTANCE_TYPES:
            raise ExecutionInputError(f"{MSG_SMDDP_INSTANCE_TYPE}, got {_json(instance_type)}")
    return out


# --- The same rules for the state machine ------------------------------------------------------
@dataclass(frozen=True)
class InputCheck:
    """One key's rule in the terms of a Choice state: what a valid value is, and the cause of
    the Fail state a bad one ends in. `kind` is object, choice, glob, range or boolean."""

    name: str  # the Fail state's rule name: InstanceType for instance_type
    key: str
    kind: str
    cause: str
    choices: tuple[str, ...] = ()
    glob: Glob | None = None
    low: int | None = None
    high: int | None = None


def _input_check(key: str, field: FieldInfo) -> InputCheck:
    name = "".join(part.capitalize() for part in key.split("_"))
    cause = allowed_text(ExecutionInput, key)
    glob = next((m for m in field.metadata if isinstance(m, Glob)), None)
    bounds = {type(m).__name__: m for m in field.metadata}
    if field.annotation is bool:
        return InputCheck(name, key, "boolean", cause)
    if get_origin(field.annotation) is dict:
        return InputCheck(name, key, "object", cause)
    if glob is not None:
        return InputCheck(name, key, "glob", cause, glob=glob)
    if "Ge" in bounds:
        return InputCheck(name, key, "range", cause, low=bounds["Ge"].ge, high=bounds["Le"].le)
    return InputCheck(name, key, "choice", cause, choices=get_args(field.annotation))


def input_checks() -> list[InputCheck]:
    """Every key's rule, in the model's order (the state machine's ValidateInput choices)."""
    return [_input_check(key, field) for key, field in ExecutionInput.model_fields.items()]
