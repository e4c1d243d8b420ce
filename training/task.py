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
import io
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import cluster as cluster_mod
from training import contract, lightning_flavour
from training.sm_env import ConfigError

log = logging.getLogger(__name__)

#: Trainer arguments the runner sets for the cluster, checkpoints and logs.
OWNED_TRAINER_KEYS = (
    "accelerator",
    "strategy",
    "devices",
    "num_nodes",
    "precision",
    "plugins",
    "enable_checkpointing",
    "default_root_dir",
    "enable_progress_bar",
)
_CLASS_KEYS = ("class_path", "init_args", "dict_kwargs")
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
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)  # the user's, owned keys removed

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


def read_config(path: Path) -> dict[str, Any]:
    """The YAML config as a mapping with a `model` section (one-line ConfigError otherwise)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})"
        ) from None
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


def check_override_keys(
    config: Mapping[str, Any], overrides: Mapping[str, str], pl: Any
) -> list[str]:
    """Names each override key that cannot be right before the parser runs (its messages are
    long); returns notes for overrides of runner-owned Trainer keys."""
    notes = []
    trainer_params = inspect.signature(pl.Trainer.__init__).parameters
    for key, value in overrides.items():
        section, _, rest = key.partition(".")
        head, _, tail = rest.partition(".")
        if section == "trainer":
            if head not in trainer_params:
                raise ConfigError(
                    f"hyperparameter {key}={value!r} is invalid: Trainer has no argument {head!r}"
                )
            if head in OWNED_TRAINER_KEYS:
                notes.append(
                    f"hyperparameter {key}={value!r} is ignored: the runner sets trainer.{head} "
                    "for the cluster"
                )
            continue
        if section not in ("model", "data"):
            continue
        if head not in _CLASS_KEYS:
            raise ConfigError(
                f"hyperparameter {key}={value!r} is invalid: expected {section}.class_path or "
                f"{section}.init_args.<name>"
            )
        if head != "init_args" or not tail:
            continue
        cls = lightning_flavour.import_class(
            f"{section}.class_path", _class_path(config, overrides, section)
        )
        name = tail.split(".")[0]
        params = inspect.signature(cls.__init__).parameters
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        accepted = [n for n, p in params.items() if n != "self" and p.kind is not p.VAR_KEYWORD]
        if name not in params and not takes_kwargs:
            raise ConfigError(
                f"hyperparameter {key}={value!r} is invalid: {cls.__module__}.{cls.__name__} "
                f"takes no argument {name!r}; it takes: {', '.join(accepted) or 'nothing'}"
            )
    return notes


_EXPECTED = re.compile(r"Expected a <class '([\w.]+)'>")
_NOT_ACCEPTED = re.compile(r"(?:Option|Key) '([\w.]+)' is not accepted")


def condense_parser_error(text: str, overrides: Mapping[str, str], config_path: Path) -> str:
    """jsonargparse's multi-line error as one line: which key, which value, what is expected."""
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
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    before = set(sys.modules)
    try:
        yield
    finally:
        if not keep and root != _RUNNER_ROOT:  # a later check of another copy imports afresh
            if added and root in sys.path:
                sys.path.remove(root)
            for name in set(sys.modules) - before:
                if str(getattr(sys.modules[name], "__file__", None) or "").startswith(root):
                    del sys.modules[name]


#: Tried in order when lr_key is left at its default and the config has no number there.
LR_KEY_CANDIDATES = (
    "model.init_args.lr",
    "model.init_args.learning_rate",
    "optimizer.init_args.lr",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _find_lr_key(cfg: Any, lr_key: str) -> str:
    """lr_key, or (when lr_key is the default and holds no number) the one candidate that does."""
    if lr_key != contract.HYPERPARAMETERS["lr_key"].default or (
        lr_key in cfg and _is_number(cfg.get(lr_key))
    ):
        return lr_key
    found = [k for k in LR_KEY_CANDIDATES if k in cfg and _is_number(cfg.get(k))]
    return found[0] if len(found) == 1 else lr_key


def _cli_class(pl: Any) -> type:
    """LightningCLI of the task's flavour, made to parse and instantiate model and data only:
    the Trainer is the runner's (train.py)."""
    base = pl.cli.LightningCLI

    class RunnerCLI(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, prepare: Callable[[Any, Any], None], build: bool, **kw):
            self._prepare, self._build = prepare, build
            super().__init__(*args, **kw)

        def before_instantiate_classes(self) -> None:
            self._prepare(self.parser, self.config)

        def instantiate_classes(self) -> None:
            if not self._build:
                return
            self.config_init = self.parser.instantiate_classes(self.config)
            self.datamodule = self._get(self.config_init, "data")
            self.model = self._get(self.config_init, "model")
            self._add_configure_optimizers_method_to_model(None)

    return RunnerCLI


def parse(
    config_value: str,
    overrides: Mapping[str, str],
    *,
    code_root: Path,
    lr_key: str = "model.init_args.lr",
    lr_scaling: str = "linear",
    world_size: int = 1,
    seed: int | bool = 42,
    build: bool = False,
    keep_path: bool = False,
) -> Task:
    """Parse (and with `build`, instantiate) the task; ConfigError with one line on bad input."""
    config_path = resolve_config_path(config_value, code_root)
    config = read_config(config_path)
    with _importable(code_root, keep_path):
        flavour = lightning_flavour.detect(
            _class_path(config, overrides, "model"), _class_path(config, overrides, "data")
        )
        pl = lightning_flavour.package(flavour)
        lightning_flavour.submodule(pl, "cli")  # pl.cli is not imported by `import pl`
        notes = check_override_keys(config, overrides, pl)
        task = Task(config_path, flavour, "", None, None, notes)

        def prepare(parser: Any, cfg: Any) -> None:
            written = config.get("trainer") or {}
            for key in OWNED_TRAINER_KEYS:
                if key in written and f"trainer.{key}" not in overrides:
                    task.notes.append(
                        f"trainer.{key}={written[key]!r} in {config_path.name} is ignored: the "
                        "runner sets it for the cluster"
                    )
            task.resolved_config = parser.dump(copy.deepcopy(cfg), skip_check=True)
            key = _find_lr_key(cfg, lr_key)
            base = cfg.get(key) if key in cfg else None
            if lr_scaling != "none" and not _is_number(base):
                raise ConfigError(
                    f"hyperparameter lr_key={lr_key!r} is invalid: the config holds no number "
                    f"there (got {base!r}); expected the key of the learning rate to scale "
                    "(model.init_args.lr, optimizer.init_args.lr, ...) or lr_scaling=none"
                )
            if _is_number(base):
                task.lr_key, task.base_lr = key, float(base)
                task.lr = cluster_mod.scaled_lr(float(base), lr_scaling, world_size)
                cfg[key] = task.lr

        args = ["--config", str(config_path)]
        ordered = sorted(
            overrides.items(), key=lambda kv: (not kv[0].endswith(".class_path"), kv[0])
        )
        args += [f"--{key}={value}" for key, value in ordered]
        stderr = io.StringIO()
        argv, sys.argv = sys.argv, sys.argv[:1]  # the job's argv is the runner's, not the CLI's
        try:
            with contextlib.redirect_stderr(stderr):
                cli = _cli_class(pl)(
                    pl.LightningModule,
                    pl.LightningDataModule,
                    subclass_mode_model=True,
                    subclass_mode_data=True,
                    save_config_callback=None,
                    seed_everything_default=seed,
                    run=False,
                    args=args,
                    parser_kwargs={"exit_on_error": False},
                    prepare=prepare,
                    build=build,
                )
        except ConfigError:
            raise
        except SystemExit:
            raise ConfigError(
                condense_parser_error(stderr.getvalue(), overrides, config_path)
            ) from None
        except Exception as err:
            if type(err).__name__ != "ArgumentError":
                raise
            raise ConfigError(condense_parser_error(str(err), overrides, config_path)) from None
        finally:
            sys.argv = argv
        if build:
            task.model, task.datamodule = cli.model, cli.datamodule
            trainer = cli.config_init.get("trainer")
            task.trainer_kwargs = {
                k: v for k, v in vars(trainer).items() if k not in OWNED_TRAINER_KEYS
            }
    return task


def load(config_value: str, overrides: Mapping[str, str], **kwargs: Any) -> Task:
    """parse(..., build=True), keeping the code root importable (the job uses the classes)."""
    return parse(config_value, overrides, build=True, keep_path=True, **kwargs)


def check(config_value: str, overrides: Mapping[str, str], *, code_root: Path, **kwargs) -> Task:
    """The job's own parse, on this machine, instantiating nothing (and seeding nothing)."""
    kwargs["seed"] = False
    return parse(config_value, overrides, code_root=code_root, build=False, **kwargs)
