"""The one typed configuration object of the stack: its fields, loading, and whole-config checks.

Config flows one way: cdk.json context (and `-c` overrides) -> `TrainingConfig.from_context`
-> constructs. This module must not import aws_cdk, so the operator CLI can apply the same rules
to its overrides before it sends anything. Every error is one line naming key, value and what
is allowed. The per-setting rules live in core/validators.py (cluster and stack) and
core/task_validators.py (what the job runs), the instance facts in core/instance_types.py;
this module re-exports them, so `core.config` stays the one name the rules are used by.

Where the values come from (later wins):

1. the dataclass defaults below;
2. cdk.json `context.training` (an object whose keys are the field names);
3. CLI overrides, one per field: `npx cdk synth -c training.instance_count=4`
   (`-c training.hyperparameters.epochs=5` / `-c training.tags.team=ml` set one entry of a map;
   `-c training.hyperparameters='{"epochs": "5"}'` replaces the whole map).

Values given on the command line arrive as strings and are converted to the field's type
(`true`/`false`, integers, `off`/`none` for optional fields). Unknown keys are errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.image_contents import family_for_framework
from core.instance_types import (  # noqa: F401 (also used as core.config.<name>)
    SMDDP_INSTANCE_TYPES,
    gpus_per_instance,
    instance_family,
    pytorch_training_images,
)
from core.schema.limits import (  # noqa: F401 (also used as core.config.<name>)
    CONTEXT_KEY,
    DEFAULT_INSTANCE_TYPE,
    JOB_NAME_PREFIX_MAX_LEN,
    JOB_NAME_SUFFIX_MAX_LEN,
    MAX_CAPACITY_RETRIES,
    MAX_FLEXIBLE_WINDOW_MIN,
    MAX_INSTANCE_COUNT,
    MAX_RETENTION_DAYS,
    MAX_USER_HYPERPARAMETERS,
    MAX_VOLUME_GB,
    MODEL_APPROVAL_STATUSES,
    MODEL_PACKAGE_GROUP_MAX,
    SUBNET_PREFIX,
)
from core.task_validators import (  # noqa: F401 (also used as core.config.<name>)
    hyperparameter_rule,
    validate_channels,
    validate_hyperparameter,
    validate_hyperparameters,
    validate_metrics,
    validate_sharding,
    validate_source_dir,
    validate_task_config,
)
from core.validators import (  # noqa: F401 (also used as core.config.<name>)
    ConfigError,
    _as_bool,
    _choice,
    _fail,
    _range,
    _version_tuple,
    resolve_backend,
    validate_email,
    validate_framework,
    validate_instance_count,
    validate_instance_type,
    validate_job_name_prefix,
    validate_keep_alive,
    validate_network,
    validate_schedule,
    validate_spot,
    validate_tags,
    validate_timezone,
)
from training import contract

# --- S3 layout shared by roles, workflow and operator --------------------------------------------
#: Artifacts bucket: SageMaker model output (OutputDataConfig) and checkpoints (CheckpointConfig).
OUTPUT_PREFIX = "models/"  # = S3OutputPath of infra/workflow_definition.py
CHECKPOINT_PREFIX = "checkpoints/"


@dataclass(frozen=True)
class TrainingConfig:
    """Validated stack configuration (see cdk.json `context.training` for the defaults).

    Constructing one validates every field and resolves `auto` values, so an instance is always
    valid: backend, framework_version and py_version hold concrete values afterwards.
    """

    stack_name: str = "SageMakerTraining"
    job_name_prefix: str = "lightning"  # training-job names: <prefix>-<execution>-<attempt>
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 2
    backend: str = "auto"  # resolved: smddp | torchrun | none ("auto" resolved at load time)
    framework_version: str = "auto"  # PyTorch DLC version (auto: 2.3.0 for smddp, else newest)
    py_version: str = "auto"  # auto: newest Python of that DLC
    volume_size_gb: int = 100
    max_runtime_s: int = 86400
    spot: bool = False
    max_wait_s: int = 0  # > max_runtime_s when spot
    checkpointing: bool = True
    keep_alive_s: int = 0  # warm pool; only without spot
    input_mode: str = "FastFile"  # File | FastFile
    hyperparameters: dict[str, str] = field(default_factory=dict)
    #: The user project (LightningModule + DataModule + config); None = built-in tasks only.
    source_dir: str | None = None
    #: The task config: a built-in task name or a YAML path inside source_dir.
    config: str = "digits"
    #: Metric names the task logs that get SageMaker MetricDefinitions.
    metrics: tuple[str, ...] = ()
    #: More input channels: name -> key prefix in the data bucket (`pretrained` for Donut).
    channels: dict[str, str] = field(default_factory=dict)
    schedule_cron: str | None = "cron(0 3 ? * SUN *)"  # None = no schedule
    schedule_timezone: str = "UTC"
    schedule_flexible_window_min: int = 0
    notification_email: str | None = None
    vpc_cidr: str = "10.42.0.0/16"
    max_azs: int = 2
    removal_policy: str = "retain"  # retain | destroy
    encrypt_inter_container_traffic: bool = False
    #: EnableNetworkIsolation: the container reaches only its peers (code arrives as a channel,
    #: dependencies as wheels in it). false needs an egress path this stack does not build.
    network_isolation: bool = True
    max_capacity_retries: int = 3
    tags: dict[str, str] = field(default_factory=dict)
    #: Register every trained model as a version of the stack's model package group.
    model_registry: bool = True
    #: The status a new version gets: PendingManualApproval (review first) | Approved | Rejected.
    model_approval_status: str = "PendingManualApproval"
    #: Start a run when `<train prefix><retrain_marker>` lands in the data bucket (off by default).
    retrain_on_new_data: bool = False
    #: The marker an uploader writes last: one run per completed upload, never one per object.
    retrain_marker: str = "_SUCCESS"
    # --- added by the stack (issue 3) ---
    checkpoint_retention_days: int = 30  # expire objects under checkpoints/ after N days
    noncurrent_retention_days: int = 30  # expire noncurrent object versions after N days

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in _validated(values).items():
            object.__setattr__(self, name, value)

    # --- derived values ---
    @property
    def gpus_per_instance(self) -> int:
        return gpus_per_instance(self.instance_type)

    @property
    def processor(self) -> str:
        """cpu | gpu: which DLC flavour the instance needs."""
        return "gpu" if self.gpus_per_instance else "cpu"

    @property
    def python_version(self) -> str:
        """The image's Python as `3.11` (py_version is `py311`)."""
        return f"{self.py_version[2]}.{self.py_version[3:]}"

    @property
    def image_family(self) -> str:
        """A key of core.image_contents.FAMILIES: the SMDDP-era DLC (<= 2.3.0) or a current one."""
        return family_for_framework(self.framework_version)

    @property
    def launcher_flag(self) -> str | None:
        """The sagemaker_* hyperparameter that selects the launcher (None for backend none)."""
        return contract.LAUNCHER_FLAGS.get(self.backend)

    @property
    def train_prefix(self) -> str:
        """Key prefix of the default `train` channel in the data bucket."""
        return f"{contract.TRAIN_CHANNEL}/"

    @property
    def validation_prefix(self) -> str:
        return f"{contract.VALIDATION_CHANNEL}/"

    @property
    def model_package_group_name(self) -> str:
        """The stack's model package group (validated: SageMaker allows 63 characters)."""
        return model_package_group_name(self.stack_name)

    @property
    def retrain_marker_key(self) -> str:
        """The data-bucket key whose upload starts a run (retrain_on_new_data)."""
        return f"{self.train_prefix}{self.retrain_marker}"

    # --- loading ---
    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TrainingConfig:
        """Build from a whole CDK context (cdk.json context + `-c` overrides)."""
        return cls(**merge_context(context))


_FIELD_NAMES = tuple(f.name for f in fields(TrainingConfig))
_MAP_FIELDS = ("hyperparameters", "tags", "channels")
_OPTIONAL_FIELDS = ("schedule_cron", "notification_email", "source_dir")


def merge_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """cdk.json `training` object + `training.<key>` overrides -> TrainingConfig keyword args."""
    base = context.get(CONTEXT_KEY, {})
    if isinstance(base, str):
        try:
            base = json.loads(base)
        except json.JSONDecodeError:
            base = None
    if not isinstance(base, Mapping):
        raise _fail(CONTEXT_KEY, base, "expected an object of training settings")
    merged: dict[str, Any] = {}
    for key, value in base.items():
        if key not in _FIELD_NAMES:
            raise _fail(f"{CONTEXT_KEY}.{key}", value, _unknown_key_hint(key))
        merged[key] = dict(value) if key in _MAP_FIELDS and isinstance(value, Mapping) else value
    prefix = CONTEXT_KEY + "."
    for key in sorted(context):
        value = context[key]
        if key in _FIELD_NAMES:
            raise _fail(key, value, f"settings go under {prefix}: use -c {prefix}{key}=...")
        if not key.startswith(prefix):
            continue
        name, _, entry = key[len(prefix) :].partition(".")
        if name not in _FIELD_NAMES or (entry and name not in _MAP_FIELDS):
            raise _fail(key, value, _unknown_key_hint(key[len(prefix) :]))
        if entry:
            current = merged.get(name, {})
            merged[name] = {**(current if isinstance(current, Mapping) else {}), entry: value}
        elif name in _MAP_FIELDS and isinstance(value, str):
            try:
                merged[name] = json.loads(value)
            except json.JSONDecodeError:
                raise _fail(key, value, "expected a JSON object") from None
        else:
            merged[name] = value
    return merged


def _unknown_key_hint(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key.split(".")[0], _FIELD_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown training setting{hint}; known: see TrainingConfig in core/config.py"


def _validated(v: dict[str, Any]) -> dict[str, Any]:
    """Check every field (strings from `-c` converted) and resolve `auto`; returns new values."""
    out: dict[str, Any] = {}
    name = v["stack_name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", name):
        raise _fail(
            "stack_name", name, "expected a CloudFormation stack name ([A-Za-z][A-Za-z0-9-]*)"
        )
    out["job_name_prefix"] = validate_job_name_prefix(v["job_name_prefix"])
    instance_type = out["instance_type"] = validate_instance_type(v["instance_type"])
    count = out["instance_count"] = validate_instance_count(v["instance_count"])
    backend = out["backend"] = resolve_backend(v["backend"], instance_type, count)
    out["framework_version"], out["py_version"] = validate_framework(
        v["framework_version"], v["py_version"], backend
    )
    out["volume_size_gb"] = _range("volume_size_gb", v["volume_size_gb"], 1, MAX_VOLUME_GB, " GB")
    spot, out["max_runtime_s"], out["max_wait_s"] = validate_spot(
        v["spot"], v["max_runtime_s"], v["max_wait_s"]
    )
    out["spot"] = spot
    out["checkpointing"] = _as_bool("checkpointing", v["checkpointing"])
    if spot and not out["checkpointing"]:
        raise _fail("checkpointing", False, "spot=true needs checkpointing=true to resume")
    out["keep_alive_s"] = validate_keep_alive(v["keep_alive_s"], spot)
    mode = v["input_mode"]
    if mode == "Pipe":
        raise _fail("input_mode", mode, "training/ reads files, not FIFOs: use File or FastFile")
    out["input_mode"] = _choice("input_mode", mode, ("File", "FastFile"))
    hps = out["hyperparameters"] = validate_hyperparameters(v["hyperparameters"])
    pg = hps.get("process_group_backend", "auto")
    if pg == "smddp" and backend != "smddp":
        raise _fail("hyperparameters.process_group_backend", pg, "smddp needs backend=smddp")
    if pg == "nccl" and not gpus_per_instance(instance_type):
        raise _fail(
            "hyperparameters.process_group_backend",
            pg,
            f"nccl needs GPUs; {instance_type} has none",
        )
    validate_sharding(hps, count)
    source_dir = out["source_dir"] = validate_source_dir(v["source_dir"])
    out["config"] = validate_task_config(v["config"], source_dir)
    out["metrics"] = validate_metrics(v["metrics"])
    out["channels"] = validate_channels(v["channels"])
    out["schedule_cron"] = validate_schedule(v["schedule_cron"])
    out["schedule_timezone"] = validate_timezone(v["schedule_timezone"])
    out["schedule_flexible_window_min"] = _range(
        "schedule_flexible_window_min",
        v["schedule_flexible_window_min"],
        0,
        MAX_FLEXIBLE_WINDOW_MIN,
        " minutes (0 = off)",
    )
    out["notification_email"] = validate_email(v["notification_email"])
    out["vpc_cidr"], out["max_azs"] = validate_network(v["vpc_cidr"], v["max_azs"])
    out["removal_policy"] = _choice("removal_policy", v["removal_policy"], ("retain", "destroy"))
    out["encrypt_inter_container_traffic"] = _as_bool(
        "encrypt_inter_container_traffic", v["encrypt_inter_container_traffic"]
    )
    out["network_isolation"] = _as_bool("network_isolation", v["network_isolation"])
    out["max_capacity_retries"] = _range(
        "max_capacity_retries", v["max_capacity_retries"], 0, MAX_CAPACITY_RETRIES
    )
    out["tags"] = validate_tags(v["tags"])
    out["model_registry"] = _as_bool("model_registry", v["model_registry"])
    out["model_approval_status"] = _choice(
        "model_approval_status", v["model_approval_status"], MODEL_APPROVAL_STATUSES
    )
    if out["model_registry"]:
        group = model_package_group_name(name)
        if len(group) > MODEL_PACKAGE_GROUP_MAX:
            raise _fail(
                "stack_name",
                name,
                f"the model package group {group!r} would be longer than "
                f"{MODEL_PACKAGE_GROUP_MAX} characters: shorten the stack name or set "
                "model_registry=false",
            )
    out["retrain_on_new_data"] = _as_bool("retrain_on_new_data", v["retrain_on_new_data"])
    marker = v["retrain_marker"]
    if not isinstance(marker, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", marker):
        raise _fail(
            "retrain_marker", marker, "expected a file name of [A-Za-z0-9_.-], e.g. _SUCCESS"
        )
    out["retrain_marker"] = marker
    for key in ("checkpoint_retention_days", "noncurrent_retention_days"):
        out[key] = _range(key, v[key], 1, MAX_RETENTION_DAYS, " days")
    return out


def model_package_group_name(stack_name: str) -> str:
    return f"{stack_name}-models"


def load_cdk_json_context(path: str | Path) -> dict[str, Any]:
    """The `context` object of a cdk.json (what the CLI would pass), for plain `python app.py`."""
    return dict(json.loads(Path(path).read_text()).get("context", {}))
