"""Whole files or nothing: what a killed process leaves behind must never be half a file.

SageMaker uploads the model dir as it is when the job ends, and readers of a node's prepared
cache may look while it is written: every write goes to a temp file in the same folder, is
fsynced and os.replace()d over the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temp file beside `target`: fsynced and os.replace()d over it when
    the block ends, removed if the block raises. Readers see the old file or the new one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` through atomic_file."""
    with atomic_file(target) as handle:
        handle.write(data)


def remove_stale_temps(folder: Path, names: Sequence[str]) -> None:
    """Delete temp files an earlier, killed write of `names` left in `folder` (`.<name>.*.tmp`)."""
    for name in names:
        for stale in Path(folder).glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
