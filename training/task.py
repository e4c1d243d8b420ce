"""The task: the user's LightningModule and LightningDataModule, from a LightningCLI config.

A config is LightningCLI's YAML (`model:` / `data:` with `class_path` + `init_args`, optional
`trainer:`, `optimizer:`, `lr_scheduler:`); hyperparameters override it with dotted keys
(`model.init_args.lr=3e-5`). LightningCLI's parser (jsonargparse) checks every value against
the classes' signatures, so a typo or a wrong type fails here, before any data is read, with one
line naming the key, the value and what is expected.

The runner owns the cluster: the Trainer keys in OWNED_TRAINER_KEYS are set by it, whatever the
config says (a logged note names each one overridden); every other Trainer key passes through.

`load()` is what the job runs; `check()` is the same parse without instantiating anything, which
`trainops start` / `local-train` run on this machine before anything is sent.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import config_forms, contract, lightning_flavour
from training.config_check import (
    OWNED_TRAINER_KEYS,
    check_config_keys,
    check_optimizer,
    check_override_keys,
    check_required,
    explain_build_error,
)
from training.errors import ConfigError
from training.learning_rate import apply_lr
from training.runner_cli import TrainerFactory, run_cli

log = logging.getLogger(__name__)

_RUNNER_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass
class Task:
    """A parsed (and, from load(), instantiated) task."""

    config_path: Path
    flavour: str  # lightning.pytorch | pytorch_lightning
    resolved_config: str  # YAML: the config with every override applied, base learning rate
    base_lr: float | None
    lr: float | None  # after scaling with the world size
    lr_key: str | None = None  # where the learning rate is (lr_key, or the one found)
    notes: list[str] = field(default_factory=list)
    model: Any = None
    datamodule: Any = None
    trainer: Any = None  # the config's Trainer with the runner's arguments and callbacks

    @property
    def pl(self) -> Any:
        return lightning_flavour.package(self.flavour)


def resolve_config_path(value: str, code_root: Path) -> Path:
    """`digits` -> <code root>/training/tasks/digits.yaml; a path -> <code root>/<path>."""
    rel = contract.builtin_config(value) if value in contract.BUILTIN_TASKS else value
    path = Path(rel) if Path(rel).is_absolute() else code_root / rel
    if not path.is_file():
        raise ConfigError(
            f"hyperparameter config={value!r}: no such file {path}; expected a built-in task "
            f"({', '.join(contract.BUILTIN_TASKS)}) or a YAML file inside the source dir"
        )
    return path


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})"
        ) from None
    return data


def read_config(path: Path, code_root: Path | None = None) -> dict[str, Any]:
    """The YAML config as a mapping with `model` and `data` sections (one-line ConfigError
    otherwise), in the runner's form (training/config_forms.py: with `code_root`, classes named
    only by the project's LightningCLI call are filled in)."""
    data = _load_yaml(path)
    if isinstance(data, dict):
        data = config_forms.unwrap_subcommand(data)
        if code_root is not None:
            data = config_forms.fill_class_paths(data, code_root, path.name)
        data = config_forms.host_paths(data, os.environ)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ConfigError(
            f"{path}: expected a LightningCLI config with model: (class_path, init_args) and "
            "data: sections"
        )
    if not isinstance(data.get("data"), dict):
        raise ConfigError(f"{path}: no data: section; expected data: class_path + init_args")
    return data


def _class_path(config: Mapping[str, Any], overrides: Mapping[str, str], section: str) -> Any:
    return overrides.get(f"{section}.class_path", (config.get(section) or {}).get("class_path"))


# jsonargparse reports a parse failure only as ArgumentError's text (no key, value or expected
# type as fields; so in 4.27.7 through 4.45.0): the lines it is condensed from are matched here,
# and tests assert the lines on both (tests/byo/test_task_check.py: 4.45.0;
# tests/byo/test_smddp_family.py: 4.27.7).
_EXPECTED = re.compile(r"Expected a <class '([\w.]+)'>")
_NOT_ACCEPTED = re.compile(r"(?:Option|Key) '([\w.]+)' is not accepted")


def condense_parser_error(text: str, overrides: Mapping[str, str], config_path: Path) -> str:
    """jsonargparse's multi-line ArgumentError as one line: which key, which value, what is
    expected."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keys = re.findall(r'Parser key "([\w.]+)"', text)
    class_paths = re.findall(r"given class_path '([\w.]+)'", text)
    expected = [t for t in _EXPECTED.findall(text) if t != "NoneType"]
    section = keys[0].split(".")[0] if keys else ""
    leaf = keys[-1] if keys else ""
    if class_paths and len(keys) > 1 and "." not in leaf:
        full = f"{section}.init_args.{leaf}"
    else:
        full = leaf
    given = re.search(r"Got value: (.+)$", text, re.M) or re.search(
        r"Given value: (.+)$", text, re.M
    )
    value = overrides.get(full, given.group(1).strip() if given else "?")
    if full in overrides:
        source = f"hyperparameter {full}={value!r}"
    else:
        source = f"{full}={value!r} in {config_path.name}"
    if expected:
        what = " or ".join(dict.fromkeys(expected))
        owner = f" ({class_paths[-1]})" if class_paths else ""
        return f"{source} is invalid: expected {what}{owner}"
    if bad := _NOT_ACCEPTED.search(text):
        owner = class_paths[-1] if class_paths else section
        key = f"{section}.init_args.{bad.group(1)}"
        return f"{key} in {config_path.name} is invalid: {owner} takes no such argument"
    detail = [
        line
        for line in lines
        if not line.startswith(("Parser key", "Given value", "Subtypes", "Errors", "- Expected"))
    ]
    return f"{config_path.name}: {(detail or lines or ['invalid config'])[-1]}"


@contextlib.contextmanager
def _importable(code_root: Path, keep: bool) -> Iterator[None]:
    """The code root first on sys.path while the task is parsed (its packages are the user's);
    `keep` leaves it there (the job uses the classes afterwards)."""
    root = str(code_root)
    paths = [str(code_root / sub) for sub in contract.PACKAGE_ROOTS if (code_root / sub).is_dir()]
    added = [path for path in paths if path not in sys.path]
    sys.path[:0] = added
    before = set(sys.modules)
    try:
        yield
    finally:
        if not keep and root != _RUNNER_ROOT:  # a later check of another copy imports afresh
            for path in added:
                if path in sys.path:
                    sys.path.remove(path)
            for name in set(sys.modules) - before:
                if str(getattr(sys.modules[name], "__file__", None) or "").startswith(root):
                    del sys.modules[name]


def _owned_key_notes(config: Mapping[str, Any], config_path: Path, pl: Any) -> list[str]:
    """A note for each runner-owned Trainer key the config sets to something but its default."""
    written = config.get("trainer") or {}
    defaults = inspect.signature(pl.Trainer.__init__).parameters
    notes = []
    for key in OWNED_TRAINER_KEYS:
        default = defaults[key].default if key in defaults else None
        if key in written and written[key] not in (default, None):
            notes.append(
                f"trainer.{key}={written[key]!r} in {config_path.name} is ignored: the runner "
                "sets it for the cluster"
            )
    return notes


#: Keys of a `LightningCLI ... fit --print_config` dump that belong to the `fit` subcommand.
FIT_ONLY_KEYS = ("ckpt_path", "weights_only")


def _parser_config(config: Mapping[str, Any], config_path: Path) -> str:
    """The config for the parser: its path, or (a full `--print_config` dump) its text without
    the `fit` subcommand's keys; a checkpoint to start from is refused (the runner resumes
    from its own)."""
    import yaml

    if config.get("ckpt_path") is not None:
        raise ConfigError(
            f"ckpt_path={config['ckpt_path']!r} in {config_path.name} is not used: the runner "
            f"resumes from its own checkpoints ({contract.CHECKPOINT_FILE} in the checkpoint "
            "folder); set it to null"
        )
    if not any(key in config for key in FIT_ONLY_KEYS) and config == _load_yaml(config_path):
        return str(config_path)
    return yaml.safe_dump({k: v for k, v in config.items() if k not in FIT_ONLY_KEYS})


def parse(
    config_value: str,
    overrides: Mapping[str, str],
    *,
    code_root: Path,
    lr_key: str = "model.init_args.lr",
    lr_scaling: str = "linear",
    lr: float | None = None,
    world_size: int = 1,
    seed: int | bool = 42,
    build: bool = False,
    trainer: TrainerFactory | None = None,
    keep_path: bool = False,
    cluster_keys: Mapping[str, Any] | None = None,
) -> Task:
    """Parse (and with `build`, instantiate) the task and its Trainer, with the runner's part
    from `trainer` (training/runner_cli.py); ConfigError with one line on bad input."""
    from jsonargparse import ArgumentError

    config_path = resolve_config_path(config_value, code_root)
    config = read_config(config_path, code_root)
    with _importable(code_root, keep_path):
        flavour = lightning_flavour.detect(
            _class_path(config, overrides, "model"), _class_path(config, overrides, "data")
        )
        pl = lightning_flavour.package(flavour)
        lightning_flavour.submodule(pl, "cli")  # pl.cli is not imported by `import pl`
        notes = check_override_keys(config, overrides, pl)
        check_config_keys(config, overrides, config_path.name)
        check_required(config, overrides, config_path.name, pl)
        check_optimizer(config, overrides, config_path.name, pl)
        task = Task(config_path, flavour, "", None, None, notes=notes)

        def prepare(parser: Any, cfg: Any) -> None:
            task.notes += _owned_key_notes(config, config_path, pl)
            apply_lr(cfg, task, lr_key=lr_key, lr=lr, scaling=lr_scaling, world_size=world_size)
            recorded = copy.deepcopy(cfg)  # what ran: the base rate, the cluster, the seed
            if task.lr_key is not None:
                recorded[task.lr_key] = task.base_lr
            for name, value in (cluster_keys or {}).items():
                recorded[f"trainer.{name}"] = value
            task.resolved_config = parser.dump(recorded, skip_check=True)

        args = ["--config", _parser_config(config, config_path)]
        ordered = sorted(
            overrides.items(), key=lambda kv: (not kv[0].endswith(".class_path"), kv[0])
        )
        args += [f"--{key}={value}" for key, value in ordered]
        # the seed is the runner's (hyperparameter seed); a check seeds nothing
        args.append(f"--seed_everything={str(seed).lower()}")
        written_seed = config.get("seed_everything")
        if seed is not False and written_seed not in (None, True, False, seed):
            task.notes.append(
                f"seed_everything={written_seed!r} in {config_path.name} is replaced by "
                f"hyperparameter seed={seed!r}"
            )
        try:
            run_cli(
                pl,
                task,
                args,
                seed=seed,
                prepare=prepare,
                explain=lambda err: explain_build_error(err, config, overrides, config_path.name),
                build=build,
                trainer=trainer,
            )
        except ArgumentError as err:
            raise ConfigError(condense_parser_error(str(err), overrides, config_path)) from None
    return task


def load(
    config_value: str, overrides: Mapping[str, str], *, trainer: TrainerFactory, **kwargs: Any
) -> Task:
    """The task built, with the Trainer `trainer` completes, keeping the code root importable
    (the job uses the classes)."""
    return parse(config_value, overrides, build=True, trainer=trainer, keep_path=True, **kwargs)


def check(config_value: str, overrides: Mapping[str, str], *, code_root: Path, **kwargs) -> Task:
    """The job's own parse, on this machine, instantiating nothing (and seeding nothing)."""
    kwargs["seed"] = False
    return parse(config_value, overrides, code_root=code_root, **kwargs)
