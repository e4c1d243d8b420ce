"""Overrides and config checked against the classes that take them, before the parser runs.

jsonargparse (LightningCLI's parser) checks everything, but its errors name the innermost key
of a nested class (`lin1_sise` for `model.init_args.net.init_args.lin1_sise`), dump Namespaces
and Union alternatives, or leave out the path of a missing argument. Here each dotted key is
walked through the class paths it crosses (`model` -> its class -> `net` -> its class -> ...),
so a bad key or value is one line with the full key as written, the class that rejects it and
what it takes. What this cannot decide (no class path in the config, untyped arguments) is left
to the parser, and to building the classes, in the job's first seconds (training/task.py).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Mapping
from typing import Any

from training import lightning_flavour
from training.errors import ConfigError

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
#: Sections whose keys go through class paths (`optimizer`/`lr_scheduler`: LightningCLI's own).
_CLASS_SECTIONS = ("model", "data", "optimizer", "lr_scheduler")


def _node(config: Mapping[str, Any], prefix: str) -> Any:
    node: Any = config
    for part in prefix.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def class_path_at(config: Mapping[str, Any], overrides: Mapping[str, str], prefix: str) -> Any:
    """The class path of the object at `prefix` (an override first; `net: pkg.Net` counts)."""
    if f"{prefix}.class_path" in overrides:
        return overrides[f"{prefix}.class_path"]
    node = _node(config, prefix)
    return node.get("class_path") if isinstance(node, Mapping) else node


def _params(cls: type) -> Mapping[str, inspect.Parameter]:
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self", None)
    return params


def _hint(cls: type, name: str) -> Any:
    """The type annotation of `cls.__init__`'s argument, or None when it cannot be resolved."""
    try:
        return typing.get_type_hints(cls.__init__).get(name)
    except Exception:  # annotations that do not evaluate here: the parser decides
        return None


def type_text(hint: Any) -> str:
    """`float`, `tuple[int, int, int]`, `Literal['min', 'max']`: how a line names a type."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    text = re.sub(r"\btyping\.", "", str(hint))
    return re.sub(r"<class '([\w.]+)'>", r"\1", text)


def _value_error(hint: Any, value: str) -> bool:
    """Whether jsonargparse refuses `value` for `hint` (False when it cannot tell here)."""
    from jsonargparse import ArgumentError, ArgumentParser

    try:
        parser = ArgumentParser(exit_on_error=False)
        parser.add_argument("--value", type=hint)
    except Exception:
        return False
    try:
        parser.parse_args([f"--value={value}"])
    except ArgumentError:
        return True
    except Exception:
        return False
    return False


def _takes(cls: type) -> str:
    names = [n for n, p in _params(cls).items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return ", ".join(names) or "nothing"


def check_class_key(
    config: Mapping[str, Any], overrides: Mapping[str, str], key: str
) -> str | None:
    """Walks `key` (model.init_args.net.init_args.lin1_size) through the classes it crosses;
    one-line ConfigError naming the full key, the class that rejects it and what it takes. A
    note when the value cannot be checked here (an untyped argument)."""
    value = overrides[key]
    parts = key.split(".")
    source = f"hyperparameter {key}={value!r} is invalid"
    index = 1
    while index < len(parts):
        prefix = ".".join(parts[:index])
        head = parts[index]
        if head not in _CLASS_KEYS:
            raise ConfigError(
                f"{source}: expected {prefix}.class_path or {prefix}.init_args.<name>"
            )
        path = class_path_at(config, overrides, prefix)
        if head == "class_path":
            lightning_flavour.import_class(key, value)
            return None
        if head == "dict_kwargs" or path is None or index + 1 >= len(parts):
            return None  # no class known here: the parser decides
        cls = lightning_flavour.import_class(f"{prefix}.class_path", path)
        name = parts[index + 1]
        params = _params(cls)
        if name not in params:
            if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                return None
            raise ConfigError(
                f"{source}: {path} takes no argument {name!r}; it takes: {_takes(cls)}"
            )
        index += 2
        if index == len(parts):
            hint = _hint(cls, name)
            if hint is not None and _value_error(hint, value):
                raise ConfigError(f"{source}: expected {type_text(hint)} ({path})")
            if params[name].annotation is params[name].empty:
                return (
                    f"hyperparameter {key}={value!r} is not checked here: {path} leaves {name} "
                    "untyped (the job checks it when it builds the class)"
                )
    return None


def _partial_fix(pl: Any, key: str, path: str, hint: Any) -> str | None:
    """The LightningCLI form for an argument typed as an optimizer or scheduler instance."""
    import torch

    if not isinstance(hint, type):
        return None
    if issubclass(hint, torch.optim.Optimizer):
        form, call = "OptimizerCallable", "self.hparams.optimizer(self.parameters())"
    elif issubclass(
        hint, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    ):
        form, call = "LRSchedulerCallable", "self.hparams.scheduler(optimizer)"
    else:
        return None
    name = key.rsplit(".", 1)[-1]
    return (
        f"{key}: {path} takes an instantiated {type_text(hint)}, which no config can build (it "
        f"needs the model's parameters; Hydra passes a partial): type it `{name}: {form}` (from "
        f"{pl.__name__}.cli import {form}) and call {call} in configure_optimizers"
    )


def check_required(
    config: Mapping[str, Any], overrides: Mapping[str, str], config_name: str, pl: Any
) -> None:
    """Every required argument of the model and data classes (and of the classes given to
    arguments typed as a class, like an injected `net`) is set by the config or an override;
    none is typed as an optimizer or scheduler instance (the Hydra idiom: refused with the
    LightningCLI form)."""
    todo = [section for section in ("model", "data") if section in config]
    while todo:
        prefix = todo.pop(0)
        path = class_path_at(config, overrides, prefix)
        if not isinstance(path, str):
            continue
        cls = lightning_flavour.import_class(f"{prefix}.class_path", path)
        given = _node(config, f"{prefix}.init_args") or {}
        for name, param in _params(cls).items():
            key = f"{prefix}.init_args.{name}"
            if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            set_here = name in given or key in overrides
            if param.default is param.empty and not set_here:
                raise ConfigError(
                    f"{key} is required: {path} takes {name} without a default, and "
                    f"neither {config_name} nor a hyperparameter sets it"
                )
            hint = _hint(cls, name)
            fix = _partial_fix(pl, key, path, hint) if set_here else None
            if fix:
                raise ConfigError(fix)
            node = _node(config, key)  # a class given to a class-typed argument (not a callable)
            given_class = f"{key}.class_path" in overrides or (
                isinstance(node, Mapping) and "class_path" in node
            )
            if given_class and isinstance(hint, type):
                todo.append(key)


def check_override_keys(
    config: Mapping[str, Any], overrides: Mapping[str, str], pl: Any
) -> list[str]:
    """Names each override key that cannot be right before the parser runs (its messages are
    long); returns notes for overrides of runner-owned Trainer keys."""
    notes = []
    trainer_params = inspect.signature(pl.Trainer.__init__).parameters
    for key, value in overrides.items():
        section, _, rest = key.partition(".")
        head = rest.partition(".")[0]
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
        elif section in _CLASS_SECTIONS:
            notes += filter(None, [check_class_key(config, overrides, key)])
    return notes


def explain_build_error(
    err: BaseException, config: Mapping[str, Any], overrides: Mapping[str, str], config_name: str
) -> str:
    """One line for a class that failed to build from values the parser could not check (untyped
    arguments): which section and class, the error, and the untyped arguments it was given."""
    text = str(err)
    reasons = [
        line.strip()[2:]
        for line in text.splitlines()
        if line.strip().startswith("- ") and "Expected a <class 'NoneType'>" not in line
    ]
    reason = " ".join(
        (reasons or [text.splitlines()[0] if text else type(err).__name__])[-1].split()
    )
    built = re.search(r"class_path='([\w.]+)'", text)
    section = next(
        (s for s in ("model", "data") if built and class_path_at(config, overrides, s) == built[1]),
        "model",
    )
    path = class_path_at(config, overrides, section)
    untyped = []
    if isinstance(path, str):
        cls = lightning_flavour.import_class(f"{section}.class_path", path)
        untyped = [
            f"{section}.init_args.{name}"
            for name, param in _params(cls).items()
            if param.annotation is param.empty
            and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)
        ]
    hint = (
        f"; its untyped arguments ({', '.join(untyped)}) are checked only here" if untyped else ""
    )
    return (
        f"{section}.class_path={path!r} could not be built from {config_name}: {reason[:300]}{hint}"
    )


def check_optimizer(
    config: Mapping[str, Any], overrides: Mapping[str, str], config_name: str, pl: Any
) -> None:
    """A model without configure_optimizers() needs the config's `optimizer:` (LightningCLI
    builds it); without either, Lightning would stop the job when fit() starts."""
    path = class_path_at(config, overrides, "model")
    if not isinstance(path, str):
        return
    cls = lightning_flavour.import_class("model.class_path", path)
    if getattr(cls, "configure_optimizers", None) is not pl.LightningModule.configure_optimizers:
        return
    if config.get("optimizer") or any(key.startswith("optimizer.") for key in overrides):
        return
    raise ConfigError(
        f"model.class_path={path!r} has no configure_optimizers() and {config_name} sets no "
        "optimizer: add `optimizer: {class_path: torch.optim.Adam, init_args: {lr: 0.001}}` to "
        "the config (LightningCLI builds it), or the method to the module"
    )


def check_config_keys(
    config: Mapping[str, Any], overrides: Mapping[str, str], config_name: str
) -> None:
    """Every `init_args` key in the config file, at any depth (an injected net, an optimizer
    config, a callback), is an argument of the class next to it; one line naming the full key."""

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{prefix}[{index}]")
            return
        if not isinstance(node, Mapping):
            return
        path, given = node.get("class_path"), node.get("init_args")
        if not (isinstance(path, str) and isinstance(given, Mapping)):
            for name, value in node.items():
                walk(value, f"{prefix}.{name}" if prefix else str(name))
            return
        if f"{prefix}.class_path" in overrides:
            return  # another class than the file's: the parser decides
        cls = lightning_flavour.import_class(f"{prefix}.class_path", path)
        params = _params(cls)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for name, value in given.items():
            if name not in params and not takes_any:
                raise ConfigError(
                    f"{prefix}.init_args.{name} in {config_name} is invalid: {path} takes no "
                    f"argument {name!r}; it takes: {_takes(cls)}"
                )
            walk(value, f"{prefix}.init_args.{name}")

    walk({k: v for k, v in config.items() if k in (*_CLASS_SECTIONS, "trainer")}, "")
