"""Shared helpers for the training tests: a clean local environment, subprocess launches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests import timing

REPO = Path(__file__).resolve().parents[2]
#: Variables a launcher or the toolkit would set; none may leak into a test from outside.
_LAUNCH_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "PL_GLOBAL_SEED",
    "SAGEMAKER_BASE_DIR",
)
_PREFIXES = ("SM_", "OMPI_", "TRAINING_")


def _scrub(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in _LAUNCH_VARS and not k.startswith(_PREFIXES)}


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process runs: no SageMaker/launcher variables, folders under tmp_path/root."""
    for key in list(os.environ):
        if key in _LAUNCH_VARS or key.startswith(_PREFIXES):
            monkeypatch.delenv(key)
    root = tmp_path / "root"
    monkeypatch.setenv("TRAINING_LOCAL_ROOT", str(root))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield root
    torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = _scrub(dict(os.environ))
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra or {})
    return env


def run_python(
    args: Sequence[str], env: Mapping[str, str], cwd: Path = REPO, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the interpreter to completion; past timing.bound(timeout) fail with its output."""
    try:
        return subprocess.run(
            [sys.executable, *args],
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timing.bound(timeout),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args}: still running after {exc.timeout:.0f} s\n{_text(exc.stderr)}")


def communicate_all(procs: Sequence[subprocess.Popen[str]], seconds: float = 240) -> list[str]:
    """Each process's stdout once all have exited; past timing.bound(seconds) (one deadline
    for all) kill them all and fail with what each printed."""
    deadline = time.monotonic() + timing.bound(seconds)
    outputs: list[str] = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=max(0.1, deadline - time.monotonic()))[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        tails = [proc.communicate()[0][-2000:] for proc in procs[len(outputs) :]]
        pytest.fail(f"still running after {timing.bound(seconds):.0f} s\n" + "\n".join(tails))
    return outputs


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        data = data.decode(errors="replace")
    return (data or "")[-4000:]
