"""The stack configuration (cdk.json's `training` block) as one pydantic model.

Each field's type, bounds, choices and default are written here once: synth (core/config.py),
`trainops start` and the SDK (trainops/run_input.py) check with them, and the JSON schema an
editor reads (docs/cdk-training.schema.json, `python -m core.schema`) is generated from them.
Rules that span fields (the backend for the instance, spot limits, the task config inside the
project) run after the fields, in `_across_fields`. Errors are one line (core/schema/errors.py).
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from core.instance_types import gpus_per_instance
from core.schema import hyperparameters as hp_schema
from core.schema import rules, task_rules
from core.schema.errors import ConfigError, config_error, first_error
from core.schema.fields import Allowed, Flag, choice, integer, optional_text
from core.schema.limits import (
    CONTEXT_KEY,
    DEFAULT_INSTANCE_TYPE,
    JOB_NAME_MAX_LEN,
    JOB_NAME_PREFIX_MAX_LEN,
    MAX_AZS,
    MAX_CAPACITY_RETRIES,
    MAX_FLEXIBLE_WINDOW_MIN,
    MAX_INSTANCE_COUNT,
    MAX_KEEP_ALIVE_S,
    MAX_RETENTION_DAYS,
    MAX_RUNTIME_S,
    MAX_VOLUME_GB,
    MIN_AZS,
    MODEL_APPROVAL_STATUSES,
    MODEL_PACKAGE_GROUP_MAX,
)
from training import contract


def _text(pattern: str, allowed: str, **constraints: Any) -> Any:
    """A string matching `pattern`; `allowed` is the error's wording."""
    return Annotated[str, Field(pattern=pattern, strict=True, **constraints), Allowed(allowed)]


def _no_pipe(value: Any) -> Any:
    if value == "Pipe":
        raise ConfigError(
            "input_mode", value, "training/ reads files, not FIFOs: use File or FastFile"
        )
    return value


def _string(allowed: str) -> Any:
    return Annotated[str, Field(strict=True), Allowed(allowed)]


def _checked(kind: Any, rule: Any) -> Any:
    """`kind` after `rule` (a function of core/schema/rules.py or task_rules.py, own errors)."""
    return Annotated[kind, BeforeValidator(rule)]


StackName = _text(
    r"^[A-Za-z][A-Za-z0-9-]{0,127}$", "expected a CloudFormation stack name ([A-Za-z][A-Za-z0-9-]*)"
)
InstanceType = Annotated[
    _text(
        r"^ml\.[a-z0-9-]+\.[a-z0-9]+$",
        f"expected a SageMaker instance type like {DEFAULT_INSTANCE_TYPE}",
    ),
    AfterValidator(rules.known_instance_type),
]
JobNamePrefix = _text(
    r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$",
    f"expected 1-{JOB_NAME_PREFIX_MAX_LEN} letters, digits and inner hyphens (job names"
    f" are <prefix>-<suffix>, at most {JOB_NAME_MAX_LEN} characters)",
    max_length=JOB_NAME_PREFIX_MAX_LEN,
)
Hyperparameters = Annotated[
    _checked(dict[str, str], task_rules.validate_hyperparameters),
    WithJsonSchema(hp_schema.json_schema("the runner's keys or config overrides, as strings")),
]
TimeZone = Annotated[
    _string("expected an IANA time zone like Europe/Berlin"), AfterValidator(rules.known_timezone)
]
EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
Email = Annotated[
    Annotated[str, Field(pattern=EMAIL, strict=True)] | None,
    BeforeValidator(optional_text),
    Allowed("expected an e-mail address or none"),
]
RUNTIME = f"expected seconds from 1 to {MAX_RUNTIME_S} (28 days)"
WAIT = f"expected seconds from 0 to {MAX_RUNTIME_S} (> max_runtime_s with spot)"


class StackSettings(BaseModel):
    """Training settings of the stack (cdk.json `context.training`; `-c training.<key>=...`)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        regex_engine="python-re",
        use_attribute_docstrings=True,
        title="cdk.json training settings",
    )

    stack_name: StackName = "SageMakerTraining"
    job_name_prefix: JobNamePrefix = "lightning"
    """training-job names: <prefix>-<execution>-<attempt>"""
    instance_type: InstanceType = DEFAULT_INSTANCE_TYPE
    instance_count: integer(1, MAX_INSTANCE_COUNT) = 2
    backend: choice(*contract.BACKENDS, "auto") = "auto"
    """auto: smddp on SMDDP instances, none on one single-device instance, else torchrun"""
    framework_version: _string("expected a PyTorch training DLC version or auto") = "auto"
    """the PyTorch DLC; auto: the last SMDDP one for smddp, else the newest"""
    py_version: _string("expected py3NN or auto") = "auto"
    """auto: the newest Python of that DLC"""
    volume_size_gb: integer(1, MAX_VOLUME_GB, unit=" GB") = 100
    max_runtime_s: integer(1, MAX_RUNTIME_S, RUNTIME) = 86400
    spot: Flag = False
    max_wait_s: integer(0, MAX_RUNTIME_S, WAIT) = 0
    """with spot: more than max_runtime_s; 0 without spot"""
    checkpointing: Flag = True
    keep_alive_s: integer(0, MAX_KEEP_ALIVE_S, f"expected seconds from 0 to {MAX_KEEP_ALIVE_S}") = 0
    """warm pool; only without spot"""
    input_mode: _checked(choice("File", "FastFile"), _no_pipe) = "FastFile"
    hyperparameters: Hyperparameters = {}
    source_dir: _checked(str | None, task_rules.validate_source_dir) = None
    """the user project (relative to cdk.json); null = the built-in tasks only"""
    config: _string("expected a built-in task or a YAML path in source_dir") = "digits"
    """the task config: a built-in task or a YAML path inside source_dir"""
    metrics: _checked(tuple[str, ...], task_rules.validate_metrics) = ()
    """metric names the task logs that get SageMaker MetricDefinitions"""
    channels: _checked(dict[str, str], task_rules.validate_channels) = {}
    """more input channels: name -> key prefix in the data bucket"""
    schedule_cron: _checked(str | None, rules.validate_schedule) = "cron(0 3 ? * SUN *)"
    """cron(minutes hours day-of-month month day-of-week year), or off"""
    schedule_timezone: TimeZone = "UTC"
    schedule_flexible_window_min: integer(0, MAX_FLEXIBLE_WINDOW_MIN, unit=" minutes (0 = off)") = 0
    notification_email: Email = None
    vpc_cidr: _string("expected a private IPv4 network") = "10.42.0.0/16"
    max_azs: integer(MIN_AZS, MAX_AZS, f"expected {MIN_AZS} to {MAX_AZS} availability zones") = 2
    removal_policy: choice("retain", "destroy") = "retain"
    encrypt_inter_container_traffic: Flag = False
    network_isolation: Flag = True
    """EnableNetworkIsolation: the container reaches only its peers (code, wheels: a channel)"""
    max_capacity_retries: integer(0, MAX_CAPACITY_RETRIES) = 3
    tags: _checked(dict[str, str], rules.validate_tags) = {}
    model_registry: Flag = True
    """register every trained model as a version of the stack's model package group"""
    model_approval_status: choice(*MODEL_APPROVAL_STATUSES) = "PendingManualApproval"
    retrain_on_new_data: Flag = False
    """start a run when <train prefix><retrain_marker> lands in the data bucket"""
    retrain_marker: _text(
        r"^[A-Za-z0-9_.-]{1,64}$", "expected a file name of [A-Za-z0-9_.-], e.g. _SUCCESS"
    ) = "_SUCCESS"
    checkpoint_retention_days: integer(1, MAX_RETENTION_DAYS, unit=" days") = 30
    noncurrent_retention_days: integer(1, MAX_RETENTION_DAYS, unit=" days") = 30

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise _one_line(err) from None

    @model_validator(mode="after")
    def _across_fields(self) -> StackSettings:
        """Rules between fields, in the order a user fixes them; resolves the `auto` values."""
        resolved: dict[str, Any] = {}
        backend = resolved["backend"] = rules.resolve_backend(
            self.backend, self.instance_type, self.instance_count
        )
        resolved["framework_version"], resolved["py_version"] = rules.validate_framework(
            self.framework_version, self.py_version, backend
        )
        rules.check_spot(self.spot, self.max_runtime_s, self.max_wait_s, self.checkpointing)
        rules.check_keep_alive(self.keep_alive_s, self.spot)
        _check_process_group(
            self.hyperparameters.get("process_group_backend", "auto"), backend, self.instance_type
        )
        task_rules.validate_sharding(self.hyperparameters, self.instance_count)
        resolved["config"] = task_rules.validate_task_config(self.config, self.source_dir)
        resolved["vpc_cidr"] = rules.validate_network(self.vpc_cidr, self.max_azs)
        group = model_package_group_name(self.stack_name)
        if self.model_registry and len(group) > MODEL_PACKAGE_GROUP_MAX:
            raise ConfigError(
                "stack_name",
                self.stack_name,
                f"the model package group {group!r} would be longer than "
                f"{MODEL_PACKAGE_GROUP_MAX} characters: shorten the stack name or set "
                "model_registry=false",
            )
        self.__dict__.update(resolved)  # frozen to users; `auto` resolved once, here
        return self


def _check_process_group(pg: str, backend: str, instance_type: str) -> None:
    key = "hyperparameters.process_group_backend"
    if pg == "smddp" and backend != "smddp":
        raise ConfigError(key, pg, "smddp needs backend=smddp")
    if pg == "nccl" and not gpus_per_instance(instance_type):
        raise ConfigError(key, pg, f"nccl needs GPUs; {instance_type} has none")


def model_package_group_name(stack_name: str) -> str:
    return f"{stack_name}-models"


#: The setting names, in the model's order, and their defaults (before `auto` is resolved).
SETTING_NAMES = tuple(StackSettings.model_fields)
DEFAULTS: dict[str, Any] = {name: f.default for name, f in StackSettings.model_fields.items()}


def setting(name: str, value: Any) -> Any:
    """One setting checked alone by its field's rule (a `-c` string converted): the operator
    CLI's overrides. Rules between settings are not applied."""
    field = StackSettings.model_fields[name]
    adapter = TypeAdapter(Annotated[(field.annotation, *field.metadata)])  # type: ignore[valid-type]
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        raise _one_line(err, name) from None


def unknown_setting(key: str, value: Any) -> ConfigError:
    """`key` (as the user wrote it, `training.<name>`) is no setting: name the closest one."""
    close = difflib.get_close_matches(key.split(".")[1], SETTING_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(
        key, value, f"unknown training setting{hint}; known: see TrainingConfig in core/config.py"
    )


def _one_line(err: ValidationError, name: str | None = None) -> ConfigError:
    error = first_error(err)
    if error["type"] == "extra_forbidden":
        return unknown_setting(f"{CONTEXT_KEY}.{error['loc'][0]}", error["input"])
    return config_error(err, StackSettings, name)


# --- One setting at a time: the operator CLI's overrides, and the checks tests call by name -----
def validate_instance_type(value: Any) -> str:
    return setting("instance_type", value)


def validate_instance_count(value: Any) -> int:
    return setting("instance_count", value)


def validate_job_name_prefix(value: Any) -> str:
    return setting("job_name_prefix", value)


def validate_keep_alive(value: Any, spot: bool) -> int:
    keep_alive_s = setting("keep_alive_s", value)
    rules.check_keep_alive(keep_alive_s, spot)
    return keep_alive_s


def validate_spot(spot: Any, max_runtime: Any, max_wait: Any) -> tuple[bool, int, int]:
    spot = setting("spot", spot)
    max_runtime = setting("max_runtime_s", max_runtime)
    max_wait = setting("max_wait_s", max_wait)
    rules.check_spot(spot, max_runtime, max_wait)
    return spot, max_runtime, max_wait
