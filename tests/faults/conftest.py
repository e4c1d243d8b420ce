"""Fault-injection helpers: real local jobs (the real code bundle through the real toolkit).

`FaultJob` is localjob.job.LocalTrainingJob with one test-only addition: extra
environment per host (e.g. a PATH that puts a rigged `torchrun` in front for one host).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from core.sourcedir import build_sourcedir
from localjob.checkpoint_sync import DirCheckpointStore
from localjob.hosts import HostRun
from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from tests import timing

DEBUG_DIR_ENV = "TRAINING_DEBUG_DIR"
#: Every fault job: one thread per process, offline, quiet.
BASE_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real sourcedir.tar.gz (training/ + requirements), built once per session."""
    path = tmp_path_factory.mktemp("real-bundle") / "sourcedir.tar.gz"
    build_sourcedir(path, image_family="current")
    return path


class FaultJob(LocalTrainingJob):
    """A local job whose hosts may each get extra environment variables (test hook)."""

    def __init__(self, *args, host_env: Mapping[str, Mapping[str, str]] | None = None, **kw):
        super().__init__(*args, **kw)
        self.host_env = dict(host_env or {})

    def _host_env(self, host: HostRun, bindir: Path) -> dict[str, str]:
        env = super()._host_env(host, bindir)
        extra = dict(self.host_env.get(host.base_dir.name, {}))
        if "PATH" in extra:  # in front of the host's own tools, which stay reachable
            extra["PATH"] = os.pathsep.join([extra["PATH"], env["PATH"]])
        env.update(extra)
        return env


def make_job(
    root: Path,
    bundle: Path,
    *,
    hosts: int = 2,
    procs: int = 1,
    hps: Mapping[str, str] | None = None,
    store: Path | None = None,
    channels: Mapping[str, Path] | None = None,
    env: Mapping[str, str] | None = None,
    host_env: Mapping[str, Mapping[str, str]] | None = None,
    job_name: str = "fault",
) -> FaultJob:
    params = script_mode_hyperparameters(
        submit_directory=str(bundle),
        job_name=job_name,
        instance_type="ml.m5.xlarge",
        backend="torchrun" if hosts * procs > 1 else "none",
        processes_per_host=procs,
    )
    params.update(hps or {})
    spec = LocalJobSpec(
        job_name=job_name,
        hyperparameters=params,
        instance_count=hosts,
        channels=dict(channels or {}),
        environment={**BASE_ENV, **(env or {})},
        checkpoint_store=DirCheckpointStore(store) if store is not None else None,
    )
    return FaultJob(spec, root, host_env=host_env)


def wait_for(
    predicate: Callable[[], object], timeout_s: float, what: str, job: LocalTrainingJob
) -> object:
    """Poll until `predicate()` is truthy; past timing.bound(timeout_s), or once the job has
    exited, kill it and fail with its log tail."""
    deadline = time.monotonic() + timing.bound(timeout_s)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if not job.running:
            break
        time.sleep(0.05)
    job.kill()
    tail = "\n".join(job.log_lines()[-60:])
    pytest.fail(
        f"{what}: not reached within {timing.bound(timeout_s):.0f} s (codes {job.poll()})\n{tail}"
    )


def read_progress(debug_dir: Path, rank: int) -> dict | None:
    """The rank's live progress record (pid, global step), written by the script's test hook."""
    path = debug_dir / f"progress-rank-{rank}.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, timeout_s: float = 10.0) -> bool:
    """Wait for `pid` to die (signals are delivered asynchronously; bound: timing.bound);
    True if it did."""
    deadline = time.monotonic() + timing.bound(timeout_s)
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
