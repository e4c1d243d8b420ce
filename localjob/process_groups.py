"""A host's processes as one group (torchrun and its workers can outlive the toolkit), and the
machine-wide lock that lets distributed jobs share torchrun's fixed rendezvous port."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
from pathlib import Path


def signal_group(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Signal the host's whole process group (the leader started with start_new_session)."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def group_alive(process: subprocess.Popen[bytes] | None) -> bool:
    """Whether any process of the host's group is left (the leader reaped if it exited)."""
    if process is None:
        return False
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class PortLock:
    """torchrun's port 7777 on this machine: exclusive, blocking, released by the OS if this
    process dies."""

    PATH = Path(tempfile.gettempdir()) / "trainops-torchrun-7777.lock"

    def __init__(self) -> None:
        self._file = self.PATH.open("a+")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
