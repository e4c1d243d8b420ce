"""A private network for one local job: what `EnableNetworkIsolation` means on SageMaker.

An isolated SageMaker job reaches nothing but its peers. Locally every simulated host of a job
runs inside one fresh Linux network namespace whose only interface is loopback (up): the hosts
still reach each other on 127.0.0.x, nothing else is reachable (no PyPI, no emulator, no
metadata address). A small holder process keeps the namespace alive; each host's command is
wrapped in `nsenter` to join it. Ports are per namespace too, so isolated jobs do not contend
for torchrun's fixed port.

Needs util-linux (`unshare`, `nsenter`) and root, or unprivileged user namespaces.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys

#: Brings `lo` up inside the new namespace (SIOCGIFFLAGS / SIOCSIFFLAGS), reports, then holds
#: the namespace until its stdin closes (the job ended or its supervisor died).
_HOLDER = r"""
import fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
print("ready", flush=True)
sys.stdin.read()
"""
_READY_TIMEOUT_S = 60.0


class IsolationUnavailable(RuntimeError):
    """This machine cannot make a private network namespace; the message says why."""


class PrivateNetwork:
    """A loopback-only network namespace, shared by every host of one job."""

    def __init__(self) -> None:
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool) is None:
                raise IsolationUnavailable(
                    f"network isolation needs `{tool}` (util-linux), not found on PATH"
                )
        self._rootless = os.geteuid() != 0
        cmd = ["unshare", "--net", *(["--map-root-user"] if self._rootless else [])]
        self._holder = subprocess.Popen(
            [*cmd, sys.executable, "-c", _HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._holder.stdout is not None
        ready, _, _ = select.select([self._holder.stdout], [], [], _READY_TIMEOUT_S)
        line = self._holder.stdout.readline().decode().strip() if ready else ""
        if line != "ready":
            self.close()
            err = self._holder.stderr.read().decode(errors="replace").strip().splitlines()
            raise IsolationUnavailable(
                "network isolation needs a private network namespace (root or user "
                f"namespaces): {(err or ['no answer from unshare'])[-1]}"
            )

    def command(self, argv: list[str]) -> list[str]:
        """`argv`, run inside the namespace (nsenter execs it: same pid, same process group)."""
        join = ["--user", "--preserve-credentials"] if self._rootless else []
        return ["nsenter", f"--target={self._holder.pid}", *join, "--net", "--", *argv]

    def close(self) -> None:
        """End the holder; the namespace goes when its last process does."""
        if self._holder.poll() is None:
            assert self._holder.stdin is not None
            try:
                self._holder.stdin.close()
                self._holder.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._holder.kill()
                self._holder.wait()
