"""Checkpoints for spot resume: atomic writes, last/previous rotation, choosing what to resume.

Global rank 0 writes `last.ckpt` through atomic_checkpoint_io; before each write the current one
becomes `previous.ckpt`, so a truncated or corrupt last.ckpt falls back to a whole, older one
and a job never silently starts over from step 0.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from training import contract, sharded_checkpoints
from training.atomic import atomic_file
from training.errors import ConfigError

log = logging.getLogger("training")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:500] if text else type(err).__name__


def atomic_checkpoint_io(pl: Any) -> Any:
    """`pl`'s TorchCheckpointIO, but local files are written to a temp file in the same
    folder, fsynced and os.replace()d: a job killed mid-write leaves the previous last.ckpt."""
    import torch

    from training.lightning_flavour import submodule

    TorchCheckpointIO = submodule(pl, "plugins.io").TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None):  # type: ignore[override]
            if storage_options is not None or "://" in str(path):
                return super().save_checkpoint(checkpoint, path, storage_options)
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.name == contract.CHECKPOINT_FILE:
                rotate_checkpoint(target)
            with atomic_file(target) as handle:  # streamed: no second copy in memory
                torch.save(checkpoint, handle)
            return None

    return AtomicCheckpointIO()


def rotate_checkpoint(last: Path) -> None:
    """Keep the current last.ckpt as previous.ckpt before a new one is written.

    A hard link to a temp name, then os.replace: at every instant last.ckpt is a whole
    checkpoint (old or new) and previous.ckpt is a whole, older or equal one."""
    if not last.exists():
        return
    previous = last.with_name(contract.PREVIOUS_CHECKPOINT_FILE)
    tmp = last.with_name(f".{previous.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(last, tmp)
    except OSError:  # no hard links on this file system: copy
        import shutil

        shutil.copy2(last, tmp)
    os.replace(tmp, previous)


def select_checkpoint(folder: Path, *, quarantine: bool = False) -> tuple[Path | None, int]:
    """The checkpoint to resume from: the newest complete sharded step folder (sharded runs:
    training/sharded_checkpoints.py), else last.ckpt, else previous.ckpt when last.ckpt is
    unreadable.

    Returns (None, 0) when neither file exists (a fresh start). Raises ConfigError when
    checkpoints exist but none can be read: a job never silently starts over from step 0.
    With `quarantine` (global rank 0, the only writer) an unreadable last.ckpt is renamed to a
    dot-file, so the next rotation cannot push it over the good previous.ckpt and the
    checkpoint sync (which skips dot-files) never uploads it again.
    """
    sharded = sharded_checkpoints.select(folder)
    if sharded is not None:
        return sharded
    candidates = [folder / contract.CHECKPOINT_FILE, folder / contract.PREVIOUS_CHECKPOINT_FILE]
    problems: list[str] = []
    for path in candidates:
        if not path.exists():
            continue
        try:
            step = checkpoint_step(path)
        except ConfigError as err:
            problem = str(err).split("; delete it")[0]
            log.warning("%s", problem)
            problems.append(problem.replace(f"{folder}{os.sep}", "", 1))
            continue
        if problems:
            log.warning(
                "falling back to %s at global step %d (%s is unreadable)",
                path,
                step,
                candidates[0].name,
            )
            if quarantine and candidates[0].exists():
                os.replace(candidates[0], folder / f".{candidates[0].name}.corrupt")
        return path, step
    if problems:
        raise ConfigError(
            "no usable checkpoint in "
            f"{folder}: {'; '.join(problems)}; refusing to start over from step 0: delete "
            f"{' and '.join(p.name for p in candidates if p.exists())} to train from scratch"
        )
    return None, 0


def checkpoint_step(path: Path) -> int:
    """The global step stored in a Lightning checkpoint."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return int(state["global_step"])
    except Exception as err:
        raise ConfigError(
            f"{path}: unreadable checkpoint ({type(err).__name__}: "
            f"{_one_line(err).split('. ')[0][:160]}); "
            "delete it to start over"
        ) from None
