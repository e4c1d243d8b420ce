"""The job's own task check, run here before anything is sent (`start`, `local-train`).

The same parse the job runs in its first seconds (training/task.py): class paths, override keys
and value types against the user's class signatures. It needs the project importable on this
machine; when one of the project's own dependencies is not installed here, the check is skipped
with a note and the job does it instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from training import contract

#: Where the runner package (and the built-in tasks) live in this checkout.
RUNNER_ROOT = Path(__file__).resolve().parent.parent


class TaskCheckError(ValueError):
    """The job would refuse this task; the message is the job's one line."""


def check_task(
    source_dir: Path | None,
    hyperparameters: Mapping[str, str],
    *,
    world_size: int = 1,
) -> list[str]:
    """Notes (overridden Trainer keys, skipped check); raises TaskCheckError with one line."""
    from training.lightning_flavour import ImportFailure
    from training.sm_env import ConfigError, Hyperparameters
    from training.task import check

    try:
        hp = Hyperparameters.from_mapping(dict(hyperparameters))
    except ConfigError as err:
        raise TaskCheckError(str(err)) from None
    builtin = hp.config in contract.BUILTIN_TASKS
    if not builtin and source_dir is None:
        return [f"task config {hp.config!r} not checked here: no source dir given (--source-dir)"]
    code_root = RUNNER_ROOT if builtin else Path(source_dir).resolve()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    try:
        task = check(
            hp.config,
            hp.config_overrides(with_lr=False),
            lr=hp.lr,
            code_root=code_root,
            lr_key=hp.lr_key,
            lr_scaling=hp.lr_scaling,
            world_size=world_size,
        )
    except ImportFailure as err:
        top = (err.missing or "").split(".")[0]
        if top and not (code_root / top).exists() and not (code_root / f"{top}.py").exists():
            return [
                f"task not checked here: {top!r} is not installed on this machine (the job "
                "installs it from the bundle and checks the task in its first seconds)"
            ]
        raise TaskCheckError(str(err)) from None
    except ConfigError as err:
        raise TaskCheckError(str(err)) from None
    return task.notes
