"""local-train keeps the newest few job folders and says what it freed."""

from __future__ import annotations

import os
from pathlib import Path

from trainops.local_runs import job_folders, prune


def _job(root: Path, name: str, size: int, mtime: int) -> Path:
    folder = root / name
    (folder / "hosts" / "algo-1").mkdir(parents=True)
    (folder / "sourcedir.tar.gz").write_bytes(b"\0" * size)
    os.utime(folder, (mtime, mtime))
    return folder


def test_prune_removes_the_oldest_job_folders_and_counts_their_bytes(tmp_path):
    for index in range(4):
        _job(tmp_path, f"local-{index}", 1000 * (index + 1), 1_000_000 + index)
    (tmp_path / "notes").mkdir()  # not a job folder: never touched
    assert prune(tmp_path, keep=2) == (2, 1000 + 2000)
    assert [p.name for p in job_folders(tmp_path)] == ["local-2", "local-3"]
    assert (tmp_path / "notes").is_dir()
    assert prune(tmp_path, keep=2) == (0, 0)


def test_prune_of_a_root_that_does_not_exist(tmp_path):
    assert prune(tmp_path / "none", keep=1) == (0, 0)
