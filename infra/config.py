"""The one typed configuration object of the stack, and all of its validation.

Config flows one way: cdk.json context (and `-c` overrides) -> `TrainingConfig.from_context`
-> constructs. This module must not import aws_cdk, so the operator CLI can apply the same rules
to its overrides before it sends anything. Every error is one line naming key, value and what
is allowed.

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

import importlib.util
import ipaddress
import json
import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from infra.image_contents import LAST_SMDDP_FRAMEWORK, family_for_framework
from training import contract


class ConfigError(ValueError):
    """A bad configuration value; the message is one line: key, value, what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:45] + "..." + shown[-10:]
        super().__init__(f"{key}={shown}: {allowed}")


# --- Limits (SageMaker / Scheduler / CloudFormation) -------------------------------------------
CONTEXT_KEY = "training"  # cdk.json context object; overrides are `-c training.<field>=<value>`
MAX_INSTANCE_COUNT = 64  # a typo guard (20 for 2); same as infra.execution_input
MAX_RUNTIME_S = 28 * 24 * 3600  # SageMaker's 28-day ceiling for MaxRuntime / MaxWait
MAX_KEEP_ALIVE_S = 3600  # warm-pool KeepAlivePeriodInSeconds ceiling
MAX_VOLUME_GB = 16384
MAX_HYPERPARAMETERS = 100  # CreateTrainingJob.HyperParameters entries, all included
#: sagemaker_* framework parameters the workflow adds to every job (program, submit directory,
#: region, container log level, job name, launcher flag, instance type, one spare).
RESERVED_HYPERPARAMETERS = 8
MAX_USER_HYPERPARAMETERS = MAX_HYPERPARAMETERS - RESERVED_HYPERPARAMETERS
MAX_HYPERPARAMETER_LEN = 256
JOB_NAME_MAX_LEN = 63
#: The workflow names jobs `<prefix>-<suffix>`; the suffix (execution + attempt) gets the rest.
JOB_NAME_PREFIX_MAX_LEN = 24
JOB_NAME_SUFFIX_MAX_LEN = JOB_NAME_MAX_LEN - JOB_NAME_PREFIX_MAX_LEN - 1
MAX_CAPACITY_RETRIES = 10
MAX_FLEXIBLE_WINDOW_MIN = 1440
MIN_AZS, MAX_AZS = 2, 4
SUBNET_PREFIX = 20  # each private subnet is a /20 (4091 usable addresses: EFA ENIs add up)
MAX_TAGS = 50
MAX_RETENTION_DAYS = 3650

# --- S3 layout shared by roles, workflow and operator --------------------------------------------
#: Artifacts bucket: SageMaker model output (OutputDataConfig) and checkpoints (CheckpointConfig).
#: Model registry: CreateModelPackage's ModelApprovalStatus values; group names <= 63 chars.
MODEL_APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
MODEL_PACKAGE_GROUP_MAX = 63
OUTPUT_PREFIX = "models/"  # = S3OutputPath of infra/workflow_definition.py
CHECKPOINT_PREFIX = "checkpoints/"

# --- Instance knowledge ---
#: Instances SMDDP supports (AWS docs; P3 is no longer optimized, P5 is not supported).
SMDDP_INSTANCE_TYPES = ("ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p3dn.24xlarge")
#: PyTorch DLC versions that ship SMDDP.
SMDDP_FRAMEWORK_RANGE = ("2.0.1", LAST_SMDDP_FRAMEWORK)
#: Oldest DLC the training code supports (Lightning 2.x).
MIN_FRAMEWORK_VERSION = "2.0.1"
#: GPUs per instance for sizes that are not 1 GPU per `xlarge`-class rule below.
_GPUS_BY_SIZE = {
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p2": {"xlarge": 1, "8xlarge": 8, "16xlarge": 16},
    "g4dn": {"12xlarge": 4},
    "g5": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6e": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g7e": {"12xlarge": 2, "24xlarge": 4, "48xlarge": 8},
    "g7": {"12xlarge": 2, "24xlarge": 4, "48xlarge": 8},
    "p5": {"4xlarge": 1, "48xlarge": 8},
    "p6e-gb200": {"36xlarge": 4},
}
#: Families with 8 GPUs at their one size, and single-GPU families below their multi-GPU sizes.
_EIGHT_GPU_FAMILIES = ("p3dn", "p4d", "p4de", "p5e", "p5en", "p6-b200", "p6-b300")
_ONE_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "g7", "g7e")
_NEURON_FAMILIES = ("trn1", "trn1n", "trn2", "inf1", "inf2")


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(key, value, allowed)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# --- Data from the SageMaker SDK (read as files: importing `sagemaker` probes the network) -------
def _sagemaker_core_dir() -> Path:
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("sagemaker-core is not installed (it carries the DLC image data)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "core" / "image_uri_config"
        if candidate.is_dir():
            return candidate
    raise RuntimeError("sagemaker-core's image_uri_config folder was not found")


@lru_cache(maxsize=1)
def pytorch_training_images() -> dict[str, Any]:
    """sagemaker-core's PyTorch *training* image data (versions, py_versions, registries)."""
    data = json.loads((_sagemaker_core_dir() / "pytorch.json").read_text())
    return data["training"]


@lru_cache(maxsize=1)
def training_instance_types() -> frozenset[str]:
    """Every TrainingInstanceType the SageMaker API model (botocore) accepts."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TrainingInstanceType").enum)


def instance_family(instance_type: str) -> str:
    return instance_type.split(".")[1]


def gpus_per_instance(instance_type: str) -> int:
    """GPUs on one instance of `instance_type` (0 for CPU instances)."""
    _, family, size = instance_type.split(".", 2)
    if family in _GPUS_BY_SIZE and size in _GPUS_BY_SIZE[family]:
        return _GPUS_BY_SIZE[family][size]
    if family in _EIGHT_GPU_FAMILIES:
        return 8
    if family in _ONE_GPU_FAMILIES or family in _GPUS_BY_SIZE:
        return 1
    return 0


# --- Public validators (also used by the operator CLI for its overrides) -------------------------
def validate_instance_type(value: Any) -> str:
    key = "instance_type"
    if not isinstance(value, str) or not re.fullmatch(r"ml\.[a-z0-9-]+\.[a-z0-9]+", value):
        raise _fail(key, value, "expected a SageMaker instance type like ml.p4d.24xlarge")
    if value not in training_instance_types():
        raise _fail(key, value, "not a SageMaker training instance type (botocore's API model)")
    if instance_family(value) in _NEURON_FAMILIES:
        raise _fail(key, value, "Trainium/Inferentia need the Neuron DLC; use a GPU or CPU type")
    return value


def validate_instance_count(value: Any) -> int:
    value = _as_int("instance_count", value)
    if not 1 <= value <= MAX_INSTANCE_COUNT:
        raise _fail("instance_count", value, f"expected an integer from 1 to {MAX_INSTANCE_COUNT}")
    return value


def resolve_backend(backend: Any, instance_type: str, instance_count: int) -> str:
    """smddp | torchrun | none; `auto` = smddp on SMDDP instances, none for one single-device
    instance, torchrun otherwise. Raises for combinations that cannot run."""
    key = "backend"
    allowed = (*contract.BACKENDS, "auto")
    if backend not in allowed:
        raise _fail(key, backend, f"expected one of {', '.join(allowed)}")
    devices = gpus_per_instance(instance_type)
    if backend == "auto":
        if instance_type in SMDDP_INSTANCE_TYPES:
            return "smddp"
        return "none" if instance_count == 1 and devices <= 1 else "torchrun"
    if backend == "smddp" and instance_type not in SMDDP_INSTANCE_TYPES:
        hint = " (SMDDP does not support P5: use backend=torchrun)" if "p5" in instance_type else ""
        raise _fail(
            key,
            backend,
            f"smddp runs only on {', '.join(SMDDP_INSTANCE_TYPES)}, not {instance_type}{hint}",
        )
    if backend == "none" and instance_count > 1:
        raise _fail(key, backend, "none runs one node only; use torchrun for instance_count > 1")
    return backend


def validate_framework(framework_version: Any, py_version: Any, backend: str) -> tuple[str, str]:
    """Resolve `auto` and check (framework_version, py_version) against the published DLCs and,
    for smddp, the SMDDP matrix (PyTorch DLC 2.0.1-2.3.0)."""
    images = pytorch_training_images()
    versions = images["versions"]
    low, high = SMDDP_FRAMEWORK_RANGE
    if framework_version == "auto":
        newest = max(versions, key=_version_tuple)
        framework_version = high if backend == "smddp" else newest
    framework_version = images["version_aliases"].get(framework_version, framework_version)
    supported = sorted(
        (v for v in versions if _version_tuple(v) >= _version_tuple(MIN_FRAMEWORK_VERSION)),
        key=_version_tuple,
    )
    if framework_version not in supported:
        raise _fail(
            "framework_version",
            framework_version,
            f"expected a PyTorch training DLC version from {supported[0]} to {supported[-1]}"
            " (sagemaker-core image data) or auto",
        )
    if backend == "smddp" and not (
        _version_tuple(low) <= _version_tuple(framework_version) <= _version_tuple(high)
    ):
        raise _fail(
            "framework_version",
            framework_version,
            f"SMDDP ships only in PyTorch DLCs {low} to {high}; use backend=torchrun for newer",
        )
    py_versions = versions[framework_version]["py_versions"]
    if py_version == "auto":
        py_version = max(py_versions, key=lambda p: int(p[2:]))
    if py_version not in py_versions:
        raise _fail(
            "py_version",
            py_version,
            f"PyTorch {framework_version} DLCs exist for {', '.join(py_versions)} only",
        )
    return framework_version, py_version


def validate_spot(spot: Any, max_runtime: Any, max_wait: Any) -> tuple[bool, int, int]:
    spot = _as_bool("spot", spot)
    max_runtime = _as_int("max_runtime_s", max_runtime)
    max_wait = _as_int("max_wait_s", max_wait)
    if not 1 <= max_runtime <= MAX_RUNTIME_S:
        raise _fail(
            "max_runtime_s", max_runtime, f"expected seconds from 1 to {MAX_RUNTIME_S} (28 days)"
        )
    if spot:
        if not max_runtime < max_wait <= MAX_RUNTIME_S:
            raise _fail(
                "max_wait_s",
                max_wait,
                f"with spot=true expected max_runtime_s ({max_runtime}) < max_wait_s"
                f" <= {MAX_RUNTIME_S}",
            )
    elif max_wait != 0:
        raise _fail("max_wait_s", max_wait, "only with spot=true; expected 0 without spot")
    return spot, max_runtime, max_wait


def validate_keep_alive(value: Any, spot: bool) -> int:
    value = _as_int("keep_alive_s", value)
    if not 0 <= value <= MAX_KEEP_ALIVE_S:
        raise _fail("keep_alive_s", value, f"expected seconds from 0 to {MAX_KEEP_ALIVE_S}")
    if value and spot:
        raise _fail("keep_alive_s", value, "warm pools cannot be used with spot; expected 0")
    return value


_NUMBER_RULE = re.compile(r"\((integer|float) (>=|>) (-?[0-9.]+)\)")
_HP_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def hyperparameter_rule(name: str) -> tuple[str, str, float] | None:
    """The numeric rule of a contract hyperparameter, parsed from its help: (kind, op, bound)."""
    match = _NUMBER_RULE.search(contract.HYPERPARAMETERS[name].help)
    if not match:
        return None
    return match.group(1), match.group(2), float(match.group(3))


def validate_hyperparameter(name: str, value: Any) -> str:
    key = f"hyperparameters.{name}"
    if not isinstance(name, str) or not _HP_KEY.fullmatch(name) or len(name) > 256:
        raise _fail("hyperparameters", name, "expected keys like batch_size ([A-Za-z_][\\w.-]*)")
    if name.startswith("sagemaker_"):
        raise _fail(key, value, "sagemaker_* keys are set by the workflow, not by users")
    if not isinstance(value, str):
        shown = json.dumps(value) if isinstance(value, (list, dict, int, float, bool)) else value
        raise _fail(
            key,
            value,
            "expected a string (SageMaker sends hyperparameters as strings): write it as "
            f"{json.dumps(str(shown))}",
        )
    if not value or len(value) > MAX_HYPERPARAMETER_LEN:
        raise _fail(key, value, f"expected 1 to {MAX_HYPERPARAMETER_LEN} characters")
    if contract.is_override_key(name):
        try:
            contract.parse_hyperparameter(name, value)
        except contract.HyperparameterError as err:
            raise _fail(key, value, str(err).split(" is invalid: ", 1)[-1]) from None
        return value
    spec = contract.HYPERPARAMETERS.get(name)
    if spec is None:
        raise _fail(
            key,
            value,
            "expected a runner key (" + ", ".join(contract.HYPERPARAMETERS) + ") or a config "
            "override like model.init_args.lr, data.init_args.batch_size, trainer.max_epochs",
        )
    if name == "config":
        raise _fail(key, value, "set training.config instead (the task config)")
    if spec.choices and value not in spec.choices:
        raise _fail(key, value, f"expected one of {', '.join(spec.choices)}")
    rule = hyperparameter_rule(name)
    if rule:
        kind, op, bound = rule
        try:
            number = int(value) if kind == "integer" else float(value)
        except ValueError:
            number = None
        ok = number is not None and (number >= bound if op == ">=" else number > bound)
        if kind == "float" and number is not None and not math.isfinite(number):
            ok = False
        if not ok:
            raise _fail(key, value, f"expected {spec.rule()}")
    if name == "lr_key" and not contract.is_override_key(value):
        raise _fail(key, value, "expected a config key like model.init_args.lr")
    return value


def validate_hyperparameters(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _fail("hyperparameters", value, "expected an object of string keys and values")
    if len(value) > MAX_USER_HYPERPARAMETERS:
        raise _fail(
            "hyperparameters",
            f"{len(value)} entries",
            f"expected at most {MAX_USER_HYPERPARAMETERS} ({MAX_HYPERPARAMETERS} minus"
            f" {RESERVED_HYPERPARAMETERS} sagemaker_* entries the workflow adds)",
        )
    return {name: validate_hyperparameter(name, v) for name, v in value.items()}


def validate_source_dir(value: Any, base: Path | None = None) -> str | None:
    """The user project folder (absolute), checked: exists, and no top-level entry clashes with
    the bundle's own (training/, wheels/). None = the built-in tasks only."""
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "none"):
        return None
    if not isinstance(value, str):
        raise _fail("source_dir", value, "expected a folder path (relative to cdk.json) or null")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    if not path.is_dir():
        raise _fail(
            "source_dir", value, f"no such folder {path} (relative paths start at cdk.json)"
        )
    for name in contract.RESERVED_TOP_LEVEL:
        clash = path / name
        if name != "requirements.txt" and (clash.exists() or clash.with_suffix(".py").exists()):
            raise _fail(
                "source_dir",
                value,
                f"its top-level {name!r} clashes with the bundle's own {name}/: rename the "
                "package (the runner is imported as `training`)",
            )
    return str(path.resolve())


def validate_task_config(value: Any, source_dir: str | None) -> str:
    """A built-in task name, or a YAML path inside source_dir naming model and data classes."""
    if not isinstance(value, str) or not value:
        raise _fail("config", value, "expected a built-in task or a YAML path in source_dir")
    if value in contract.BUILTIN_TASKS:
        return value
    if source_dir is None:
        raise _fail(
            "config",
            value,
            f"expected a built-in task ({', '.join(contract.BUILTIN_TASKS)}), or set "
            "training.source_dir to the project holding this file",
        )
    rel = Path(value)
    path = (Path(source_dir) / rel).resolve()
    if rel.is_absolute() or Path(source_dir) not in path.parents:
        raise _fail("config", value, "expected a path relative to training.source_dir, inside it")
    if not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise _fail("config", value, f"no YAML file {path}")
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise _fail("config", value, f"not valid YAML: {str(err).splitlines()[0]}") from None
    for section in ("model", "data"):
        entry = data.get(section) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("class_path"), str):
            raise _fail(
                "config",
                value,
                f"expected a LightningCLI config with {section}: class_path (+ init_args)",
            )
    return rel.as_posix()


_CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
#: CreateTrainingJob takes at most 20 channels; train and code are the workflow's.
MAX_EXTRA_CHANNELS = 18


def validate_channels(value: Any) -> dict[str, str]:
    """Extra input channels: {name: "prefix/"} in the data bucket, each FullyReplicated."""
    if not isinstance(value, Mapping):
        raise _fail("channels", value, 'expected an object like {"pretrained": "pretrained/"}')
    if len(value) > MAX_EXTRA_CHANNELS:
        raise _fail("channels", f"{len(value)} entries", f"expected at most {MAX_EXTRA_CHANNELS}")
    out = {}
    for name, prefix in value.items():
        key = f"channels.{name}"
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise _fail("channels", name, "expected channel names of [A-Za-z0-9.-_], 1-64 chars")
        if name in (contract.TRAIN_CHANNEL, contract.CODE_CHANNEL):
            raise _fail(key, prefix, f"{name} is the workflow's own channel")
        if (
            not isinstance(prefix, str)
            or not prefix.endswith("/")
            or prefix.startswith("/")
            or "//" in prefix
        ):
            raise _fail(key, prefix, "expected a key prefix in the data bucket like models/base/")
        out[name] = prefix
    return out


def validate_metrics(value: Any) -> tuple[str, ...]:
    """Task metric names that get MetricDefinitions (the runner's own are always added)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail("metrics", value, "expected a list of metric names")
    names = tuple(dict.fromkeys(v for v in value if v not in contract.RUNNER_METRICS))
    for name in names:
        if not contract.is_metric_name(name):
            raise _fail("metrics", name, "expected a metric name without spaces or '='")
    limit = contract.MAX_METRIC_DEFINITIONS - len(contract.RUNNER_METRICS)
    if len(names) > limit:
        raise _fail(
            "metrics",
            f"{len(names)} names",
            f"expected at most {limit} (SageMaker takes {contract.MAX_METRIC_DEFINITIONS} metric "
            f"definitions; the runner adds {', '.join(contract.RUNNER_METRICS)})",
        )
    return names


# EventBridge Scheduler cron: cron(minutes hours day-of-month month day-of-week year)
_MON = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DOW = "SUN|MON|TUE|WED|THU|FRI|SAT"


def _cron_field(atom: str, extra: str = "") -> re.Pattern[str]:
    item = rf"(?:\*|{atom}(?:-{atom})?)(?:/\d+)?{extra}"
    return re.compile(rf"{item}(?:,{item})*")


_CRON_FIELDS = (
    ("minutes", _cron_field(r"(?:[0-5]?\d)")),
    ("hours", _cron_field(r"(?:[01]?\d|2[0-3])")),
    (
        "day-of-month",
        re.compile(
            r"\?|L|LW|(?:[1-9]|[12]\d|3[01])W|" + _cron_field(r"(?:[1-9]|[12]\d|3[01])").pattern
        ),
    ),
    ("month", _cron_field(rf"(?:[1-9]|1[0-2]|{_MON})")),
    (
        "day-of-week",
        re.compile(r"\?|[1-7]L|[1-7]#[1-5]|" + _cron_field(rf"(?:[1-7]|{_DOW})").pattern),
    ),
    ("year", _cron_field(r"(?:19[7-9]\d|2[01]\d\d)")),
)


def validate_schedule(value: Any) -> str | None:
    """`cron(m h dom mon dow y)` (EventBridge Scheduler syntax) or off/none -> None."""
    key = "schedule_cron"
    if value is None or (isinstance(value, str) and value.lower() in ("off", "none", "")):
        return None
    allowed = "expected cron(minutes hours day-of-month month day-of-week year) or off"
    match = re.fullmatch(r"cron\((.*)\)", value) if isinstance(value, str) else None
    if not match:
        raise _fail(key, value, allowed)
    parts = match.group(1).split()
    if len(parts) != 6:
        raise _fail(key, value, f"{allowed}; got {len(parts)} fields, need 6")
    for (name, pattern), part in zip(_CRON_FIELDS, parts, strict=True):
        if not pattern.fullmatch(part.upper()):
            raise _fail(key, value, f"{name} field {part!r} is not valid cron syntax")
    if (parts[2] == "?") == (parts[4] == "?"):
        raise _fail(key, value, "exactly one of day-of-month and day-of-week must be ?")
    return value


def validate_timezone(value: Any) -> str:
    if not isinstance(value, str) or value not in zoneinfo.available_timezones():
        raise _fail("schedule_timezone", value, "expected an IANA time zone like Europe/Berlin")
    return value


def validate_email(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("", "off", "none")):
        return None
    if not isinstance(value, str) or not re.fullmatch(
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", value
    ):
        raise _fail("notification_email", value, "expected an e-mail address or none")
    return value


def validate_network(vpc_cidr: Any, max_azs: Any) -> tuple[str, int]:
    max_azs = _as_int("max_azs", max_azs)
    if not MIN_AZS <= max_azs <= MAX_AZS:
        raise _fail("max_azs", max_azs, f"expected {MIN_AZS} to {MAX_AZS} availability zones")
    widest = SUBNET_PREFIX - math.ceil(math.log2(max_azs))
    allowed = f"expected a private IPv4 network /16 to /{widest} (a /{SUBNET_PREFIX} per AZ)"
    try:
        network = ipaddress.IPv4Network(vpc_cidr, strict=True)
    except (ValueError, TypeError):
        raise _fail("vpc_cidr", vpc_cidr, allowed) from None
    if not 16 <= network.prefixlen <= widest or not network.is_private:
        raise _fail("vpc_cidr", vpc_cidr, allowed)
    return str(network), max_azs


def validate_tags(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or len(value) > MAX_TAGS:
        raise _fail("tags", value, f"expected an object of at most {MAX_TAGS} string tags")
    pattern = re.compile(r"[\w .:/=+\-@]*")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 128 or not pattern.fullmatch(k):
            raise _fail("tags", k, "expected tag keys of 1-128 letters, digits, spaces, _.:/=+-@")
        if k.lower().startswith("aws:"):
            raise _fail(f"tags.{k}", v, "tag keys starting with aws: are reserved by AWS")
        if not isinstance(v, str) or len(v) > 256 or not pattern.fullmatch(v):
            raise _fail(f"tags.{k}", v, "expected a string of 0-256 letters, digits, _.:/=+-@")
    return dict(value)


def validate_job_name_prefix(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= JOB_NAME_PREFIX_MAX_LEN
        or not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", value)
    ):
        raise _fail(
            "job_name_prefix",
            value,
            f"expected 1-{JOB_NAME_PREFIX_MAX_LEN} letters, digits and inner hyphens (job names"
            f" are <prefix>-<suffix>, at most {JOB_NAME_MAX_LEN} characters)",
        )
    return value


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _fail(key, value, "expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _fail(key, value, "expected an integer")


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(key, value, "expected true or false")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(key, value, f"expected one of {', '.join(choices)}")
    return value


def _range(key: str, value: Any, low: int, high: int, unit: str = "") -> int:
    value = _as_int(key, value)
    if not low <= value <= high:
        raise _fail(key, value, f"expected an integer from {low} to {high}{unit}")
    return value


@dataclass(frozen=True)
class TrainingConfig:
    """Validated stack configuration (see cdk.json `context.training` for the defaults).

    Constructing one validates every field and resolves `auto` values, so an instance is always
    valid: backend, framework_version and py_version hold concrete values afterwards.
    """

    stack_name: str = "SageMakerTraining"
    job_name_prefix: str = "lightning"  # training-job names: <prefix>-<execution>-<attempt>
    instance_type: str = "ml.p4d.24xlarge"
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
        """A key of infra.image_contents.FAMILIES: the SMDDP-era DLC (<= 2.3.0) or a current one."""
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
    return f"unknown training setting{hint}; known: see TrainingConfig in infra/config.py"


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
