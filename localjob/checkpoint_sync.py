"""Checkpoints across a local job's life: where CheckpointConfig.S3Uri points, and the sync.

SageMaker syncs CheckpointConfig.LocalPath with the S3 location while the job runs and restores
it into every host on a (spot) restart. Locally the store is a folder (DirCheckpointStore) or,
on the emulator, an S3 prefix (localaws); CheckpointSync uploads what the hosts write.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class CheckpointStore(Protocol):
    """Where CheckpointConfig.S3Uri points: a folder locally, an S3 prefix on the emulator."""

    def restore(self, into: Path) -> None:
        """Copy every stored checkpoint file into a host's checkpoint dir."""

    def save(self, relative: str, path: Path) -> None:
        """Store one checkpoint file (atomically: readers never see half of it)."""


@dataclass(frozen=True)
class DirCheckpointStore:
    """A local folder standing in for the checkpoint S3 prefix."""

    root: Path

    def restore(self, into: Path) -> None:
        if self.root.is_dir():
            shutil.copytree(self.root, into, dirs_exist_ok=True)

    def save(self, relative: str, path: Path) -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.sync")
        shutil.copy2(path, tmp)
        os.replace(tmp, target)


class CheckpointSync(threading.Thread):
    """Upload new or changed checkpoint files from every host, continuously.

    SageMaker syncs CheckpointConfig.LocalPath to S3 while the job runs; a spot reclaim then
    loses at most what was written since the last sync. Dot-files (temporary writes) are skipped.
    """

    def __init__(self, sources: list[Path], store: CheckpointStore, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.sources, self.store, self.interval_s = sources, store, interval_s
        self._halt = threading.Event()
        self._seen: dict[Path, tuple[int, int]] = {}

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.sync_once()
        self.sync_once()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def sync_once(self) -> None:
        for source in self.sources:
            for path in sorted(source.rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                try:
                    stat = path.stat()
                    stamp = (stat.st_mtime_ns, stat.st_size)
                    if self._seen.get(path) == stamp:
                        continue
                    self.store.save(path.relative_to(source).as_posix(), path)
                except FileNotFoundError:  # replaced between listing and copying
                    continue
                self._seen[path] = stamp
