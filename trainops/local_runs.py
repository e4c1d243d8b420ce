"""Old `local-train` job folders: each holds per-host venvs and copies (~70-90 MB), so only the
newest few are kept."""

from __future__ import annotations

import shutil
from pathlib import Path

#: Job folders `local-train` keeps under its root (the new one included); `--keep` changes it.
DEFAULT_KEEP = 5


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def job_folders(root: Path) -> list[Path]:
    """Folders under `root` that a local job made (its bundle or hosts are there), oldest first."""
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and ((p / "sourcedir.tar.gz").exists() or (p / "hosts").is_dir())
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def prune(root: Path, keep: int) -> tuple[int, int]:
    """Removes all but the newest `keep` job folders; (folders removed, bytes freed)."""
    old = job_folders(root)[: max(0, len(job_folders(root)) - keep)]
    freed = 0
    for folder in old:
        freed += _size(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return len(old), freed
