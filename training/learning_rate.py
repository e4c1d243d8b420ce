"""Where a task's learning rate is, and its value scaled with the world size.

`lr_key` names it; left at its default, the one number at a `*.lr` / `*.learning_rate` key
under `model:` or `optimizer:` is found (nested optimizer configs included), LightningCLI's own
`optimizer:` first when the module has no configure_optimizers() (the CLI builds the optimizer
from it). Errors name the key given or the keys found.
"""

from __future__ import annotations

from typing import Any

from training import cluster as cluster_mod
from training import contract, lightning_flavour
from training.errors import ConfigError

#: Preferred in this order when lr_key is left at its default and the config has no number
#: there (any other model/optimizer `*.lr` is found too: _lr_keys).
LR_KEY_CANDIDATES = (
    "model.init_args.lr",
    "model.init_args.learning_rate",
    "optimizer.init_args.lr",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lr_keys(cfg: Any) -> list[str]:
    """Every number at a `*.lr` / `*.learning_rate` key under model: or optimizer:, nested
    optimizer configs (LightningCLI's OptimizerCallable, class_path/init_args) included;
    LR_KEY_CANDIDATES first."""
    found = [
        key
        for key, value in cfg.items()
        if key.split(".")[0] in ("model", "optimizer")
        and key.rsplit(".", 1)[-1] in ("lr", "learning_rate")
        and _is_number(value)
    ]
    return sorted(found, key=lambda k: LR_KEY_CANDIDATES.index(k) if k in LR_KEY_CANDIDATES else 9)


#: Where LightningCLI's own optimizer keeps its rate: the one used when the module has no
#: configure_optimizers() (the CLI builds the optimizer from the config's `optimizer:`).
CLI_OPTIMIZER_LR = "optimizer.init_args.lr"


def _find_lr_key(cfg: Any, lr_key: str, scaling: str, cli_optimizer: bool) -> str | None:
    """lr_key as given; or, left at its default, the one learning rate the config holds
    (None: none found). One-line ConfigError naming the key given or the keys found."""
    default = contract.HYPERPARAMETERS["lr_key"].default
    if lr_key != default:
        return lr_key
    if cli_optimizer and CLI_OPTIMIZER_LR in cfg and _is_number(cfg.get(CLI_OPTIMIZER_LR)):
        return CLI_OPTIMIZER_LR
    if _is_number(cfg.get(lr_key) if lr_key in cfg else None):
        return lr_key
    found = _lr_keys(cfg)
    if len(found) > 1 and found[0] not in LR_KEY_CANDIDATES:
        raise ConfigError(
            f"the config holds several learning rates ({', '.join(found)}): set hyperparameter "
            "lr_key to the one to scale (or lr_scaling=none)"
        )
    if not found and scaling != "none":
        raise ConfigError(
            f"no learning rate to scale: the config holds no number at {default} (the default "
            "lr_key) nor at any other model/optimizer *.lr or *.learning_rate key; set "
            "hyperparameter lr_key to its key, or lr_scaling=none"
        )
    return found[0] if found else None


def apply_lr(
    cfg: Any, task: Any, *, lr_key: str, lr: float | None, scaling: str, world_size: int
) -> None:
    """Finds the learning rate, sets the `lr` shortcut there, scales it with the world size
    (cfg and task updated); one-line ConfigError naming the key given or found."""
    model = lightning_flavour.import_class("model.class_path", cfg.get("model.class_path"))
    cli_optimizer = model.configure_optimizers is task.pl.LightningModule.configure_optimizers
    key = _find_lr_key(cfg, lr_key, scaling if lr is None else "linear", cli_optimizer)
    if lr is not None:
        if key is None or key not in cfg:
            raise ConfigError(
                f"hyperparameter lr={lr!r} is invalid: the config holds no learning rate at "
                f"{key or lr_key}; set hyperparameter lr_key to its key"
            )
        cfg[key] = lr
    base = cfg.get(key) if key is not None and key in cfg else None
    if scaling != "none" and not _is_number(base):
        raise ConfigError(
            f"hyperparameter lr_key={key!r} is invalid: the config holds no number there (got "
            f"{base!r}); expected the key of the learning rate to scale (model.init_args.lr, "
            "optimizer.init_args.lr, ...) or lr_scaling=none"
        )
    if _is_number(base):
        task.lr_key, task.base_lr = key, float(base)
        task.lr = cluster_mod.scaled_lr(float(base), scaling, world_size)
        cfg[key] = task.lr
