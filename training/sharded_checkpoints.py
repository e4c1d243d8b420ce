"""Sharded checkpoints that survive SageMaker: one folder per step, one file per rank, a manifest.

With sharding, `last.ckpt` becomes `<checkpoint dir>/sharded-step-<NNNNNNNN>/`, written by every
rank at once with torch.distributed.checkpoint (DCP):

    __<global rank>_0.distcp   each rank's shard of weights and optimizer state (names unique
                               across hosts: SageMaker uploads every host's folder into one S3
                               prefix and restores all of it onto every host)
    .metadata, dcp.metadata    DCP's index (rank 0), and a copy under a name that is not a
                               dot-file, which upload tools may skip as temporary
    meta.pt                    Lightning's loop state, global step included (rank 0)
    complete.json              the manifest, written last (rank 0, atomically): every file the
                               checkpoint needs and its minimum size

A folder without its manifest, or with a file missing or shorter than the manifest says (a host
killed before its upload finished), is never resumed from. Each host keeps the newest
KEEP_FOLDERS folders on its disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from training import contract
from training.atomic import atomic_write_bytes
from training.errors import ConfigError

log = logging.getLogger("training")

FOLDER_PREFIX = "sharded-step-"
MANIFEST_FILE = "complete.json"
LIGHTNING_META_FILE = "meta.pt"  # Lightning's name for the loop state in a sharded checkpoint
DCP_METADATA_FILE = ".metadata"  # torch.distributed.checkpoint's index
METADATA_COPY_FILE = "dcp.metadata"
KEEP_FOLDERS = 2
_FOLDER = re.compile(re.escape(FOLDER_PREFIX) + r"(\d+)")


def step_folder(checkpoint_dir: Path, step: int) -> Path:
    return Path(checkpoint_dir) / f"{FOLDER_PREFIX}{step:08d}"


def folders(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every sharded checkpoint folder, newest first."""
    found = []
    for path in Path(checkpoint_dir).glob(f"{FOLDER_PREFIX}*"):
        match = _FOLDER.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def write_manifest(folder: Path, world_size: int, step: int) -> None:
    """Global rank 0, after every rank's DCP write returned: list what the checkpoint needs
    (from DCP's own index) and mark the folder complete."""
    from torch.distributed.checkpoint import FileSystemReader

    sizes: dict[str, int] = {}
    for info in FileSystemReader(str(folder)).read_metadata().storage_data.values():
        end = int(info.offset) + int(info.length)
        sizes[info.relative_path] = max(sizes.get(info.relative_path, 0), end)
    index = (folder / DCP_METADATA_FILE).read_bytes()
    atomic_write_bytes(folder / METADATA_COPY_FILE, index)
    for name in (METADATA_COPY_FILE, LIGHTNING_META_FILE):
        sizes[name] = (folder / name).stat().st_size
    record = {"global_step": step, "world_size": world_size, "files": dict(sorted(sizes.items()))}
    atomic_write_bytes(folder / MANIFEST_FILE, (json.dumps(record, indent=1) + "\n").encode())


def problem(folder: Path) -> str | None:
    """Why `folder` cannot be resumed from, or None when every file it needs is whole."""
    try:
        record = json.loads((folder / MANIFEST_FILE).read_text())
        files = dict(record["files"])
    except FileNotFoundError:
        return f"{folder.name} has no {MANIFEST_FILE} (its write did not finish)"
    except (ValueError, KeyError, TypeError):
        return f"{folder.name}/{MANIFEST_FILE} is unreadable"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"{folder.name}/{name} is missing"
        if path.stat().st_size < int(size):
            return f"{folder.name}/{name} is truncated ({path.stat().st_size} of {size} bytes)"
    return None


def _restore_index(folder: Path) -> None:
    """Put DCP's `.metadata` back from its copy when the restore brought only the copy."""
    target = folder / DCP_METADATA_FILE
    if target.is_file():
        return
    tmp = folder / f".{DCP_METADATA_FILE}.{os.getpid()}.tmp"  # ranks of a host race: own temp
    shutil.copyfile(folder / METADATA_COPY_FILE, tmp)
    os.replace(tmp, target)


def select(checkpoint_dir: Path) -> tuple[Path, int] | None:
    """The newest complete sharded checkpoint as (folder, global step); None when there is no
    sharded folder or only unfinished ones. Raises ConfigError when every finished one is
    damaged: a job never silently starts over from step 0."""
    damaged: list[str] = []
    for step, folder in folders(checkpoint_dir):
        why = problem(folder)
        if why is None:
            _restore_index(folder)
            if damaged:
                log.warning("falling back to %s (%s)", folder.name, "; ".join(damaged))
            return folder, step
        log.warning("skipping sharded checkpoint: %s", why)
        if (folder / MANIFEST_FILE).exists():
            damaged.append(why)
    if damaged:
        raise ConfigError(
            f"no usable sharded checkpoint in {checkpoint_dir}: {'; '.join(damaged)}; refusing "
            f"to start over from step 0: delete the {FOLDER_PREFIX}* folders to train from scratch"
        )
    return None


def prune(checkpoint_dir: Path, keep: int = KEEP_FOLDERS) -> None:
    """Remove all but the newest `keep` step folders from this host's disk (one process per
    host). The copies already in S3 stay; the manifest decides what a restart uses."""
    for _, folder in folders(checkpoint_dir)[keep:]:
        shutil.rmtree(folder, ignore_errors=True)


def with_step_folders(base: type) -> type:
    """`base` (a Lightning strategy that writes DCP folders) writing the runner's `last.ckpt`
    as a step folder, then its manifest; other paths (a user's ModelCheckpoint) pass through.

    Lightning broadcasts rank 0's checkpoint path to every rank; here each rank keeps its own
    (its host's checkpoint dir: the same path on SageMaker, another folder per simulated host),
    so a host writes and reads only its own disk, as on SageMaker."""

    class StepFolderCheckpoints(base):  # type: ignore[misc, valid-type]
        _own_path = False

        def broadcast(self, obj: Any, src: int = 0) -> Any:
            return obj if self._own_path else super().broadcast(obj, src)

        def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options=None):
            path = Path(filepath)
            if path.name != contract.CHECKPOINT_FILE:
                return super().save_checkpoint(checkpoint, filepath, storage_options)
            step = int(checkpoint["global_step"])
            folder = step_folder(path.parent, step)
            self._own_path = True
            try:
                super().save_checkpoint(checkpoint, folder, storage_options)
            finally:
                self._own_path = False
            self.barrier("sharded checkpoint written")
            if self.global_rank == 0:
                write_manifest(folder, self.world_size, step)
            if self.local_rank == 0:
                prune(path.parent)
            return None

        def load_checkpoint(self, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
            path = Path(checkpoint_path)
            chosen = super().broadcast(path.name, 0)
            if chosen != path.name:
                raise ConfigError(
                    f"rank {self.global_rank} would resume from {path.name} but rank 0 from "
                    f"{chosen}: the hosts' checkpoint folders differ"
                )
            self._own_path = True
            try:
                return super().load_checkpoint(path, *args, **kwargs)
            finally:
                self._own_path = False

    StepFolderCheckpoints.__name__ = StepFolderCheckpoints.__qualname__ = base.__name__
    return StepFolderCheckpoints
