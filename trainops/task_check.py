"""The job's own task check, run here before anything is sent (`start`, `local-train`).

First the project's imports against what the job will have (trainops/job_imports.py: the
image, the bundle's wheels, the project folder; never this machine's venv). Then the same parse
the job runs in its first seconds (training/task.py): class paths, override keys and value types
against the user's class signatures. That parse imports the project here; when a package the job
has is not installed on this machine, it is skipped with a note and the job does it instead.
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
    image_family: str = "current",
) -> list[str]:
    """Notes (overridden Trainer keys, skipped check); raises TaskCheckError with one line."""
    from core.wheelhouse import BundleError
    from training.lightning_flavour import ImportFailure
    from training.sm_env import ConfigError, Hyperparameters
    from training.task import check, read_config, resolve_config_path
    from trainops.job_imports import MissingImport, check_imports

    try:
        hp = Hyperparameters.from_mapping(dict(hyperparameters))
    except ConfigError as err:
        raise TaskCheckError(str(err)) from None
    builtin = hp.config in contract.BUILTIN_TASKS
    if not builtin and source_dir is None:
        return [f"task config {hp.config!r} not checked here: no source dir given (--source-dir)"]
    code_root = RUNNER_ROOT if builtin else Path(source_dir).resolve()
    if not builtin:  # what the job will have, before anything is imported here
        try:
            config = read_config(resolve_config_path(hp.config, code_root), code_root)
            check_imports(code_root, config, hp.config_overrides(), image_family)
        except (ConfigError, MissingImport, BundleError) as err:
            raise TaskCheckError(str(err)) from None
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
                f"task not checked here: {top!r} is not installed on this machine (the job has "
                "it, and checks the task in its first seconds)"
            ]
        raise TaskCheckError(str(err)) from None
    except ConfigError as err:
        raise TaskCheckError(str(err)) from None
    return task.notes
