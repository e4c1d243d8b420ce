"""The rules for what a job runs: hyperparameters, the user's project, its task config, the
extra channels and the metrics that get MetricDefinitions (one-line ConfigErrors, as in
core/schema/rules.py, which holds the cluster and stack rules)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.schema.errors import ConfigError as _fail
from core.schema.limits import (
    MAX_EXTRA_CHANNELS,
    MAX_HYPERPARAMETER_LEN,
    MAX_HYPERPARAMETERS,
    MAX_USER_HYPERPARAMETERS,
    RESERVED_HYPERPARAMETER_PREFIX,
    RESERVED_HYPERPARAMETERS,
)
from training import config_forms, contract, sharding_rules

_HP_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def validate_hyperparameter(name: str, value: Any) -> str:
    key = f"hyperparameters.{name}"
    if not isinstance(name, str) or not _HP_KEY.fullmatch(name) or len(name) > 256:
        raise _fail("hyperparameters", name, "expected keys like batch_size ([A-Za-z_][\\w.-]*)")
    if name.startswith(RESERVED_HYPERPARAMETER_PREFIX):
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
    spec = contract.HYPERPARAMETERS.get(name)
    if spec is None and not contract.is_override_key(name):
        raise _fail(
            key,
            value,
            "expected a runner key (" + ", ".join(contract.HYPERPARAMETERS) + ") or a config "
            "override like model.init_args.lr, data.init_args.batch_size, trainer.max_epochs",
        )
    if name == "config":
        raise _fail(key, value, "set training.config instead (the task config)")
    if name == "lr_key" and not contract.is_override_key(value):
        raise _fail(key, value, "expected a config key like model.init_args.lr")
    try:  # the runner's own rule for the key (training/contract.py), as the job applies it
        contract.parse_hyperparameter(name, value)
    except contract.HyperparameterError as err:
        raise _fail(key, value, str(err).split(" is invalid: ", 1)[-1]) from None
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


def validate_sharding(hps: Mapping[str, str], instance_count: int) -> None:
    """The sharding hyperparameters against each other and the cluster (training/sharding_rules.py,
    the rules the job applies in its first seconds)."""
    try:
        sharding_rules.check_cluster(sharding_rules.settings(hps), instance_count)
    except sharding_rules.ShardingRuleError as err:
        raise _fail(f"hyperparameters.{err.name}", err.value, err.allowed) from None


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
    try:
        found = path.is_dir()
    except OSError:  # a name the file system refuses (too long)
        found = False
    if not found:
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
    if isinstance(data, dict):  # the forms the job reads too (`fit:` configs, class-less ones)
        data = config_forms.unwrap_subcommand(data)
        try:
            data = config_forms.fill_class_paths(data, Path(source_dir), rel.name)
        except ValueError as err:
            raise _fail("config", value, str(err)) from None
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
    if isinstance(value, str) and value.lstrip().startswith("["):
        # `-c 'training.metrics=["a","b"]'` reaches synth as that text: a JSON list.
        try:
            value = json.loads(value)
        except ValueError:
            raise _fail("metrics", value, "expected a JSON list of metric names") from None
    elif isinstance(value, str):
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
