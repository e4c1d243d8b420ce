"""Fault 3, an unreachable peer (the security-group trap): host 2 cannot reach the master host's
rendezvous port. The job fails within the configured rendezvous timeout, and the reason names
the likely cause (the security group must allow all traffic from itself) instead of hanging."""

from __future__ import annotations

import stat
import time

import pytest

from tests import timing
from tests.faults.conftest import make_job
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TIMEOUT_S = 15
#: A `torchrun` that sends host 2 to a port nobody listens on, like a security group that drops
#: traffic between the instances (test-only: put first on that host's PATH; it runs the host's
#: real torchrun, the next one on PATH).
RIGGED_TORCHRUN = """#!/bin/sh
self_dir=$(dirname "$0")
real=""
IFS=:
for d in $PATH; do
  if [ "$d" != "$self_dir" ] && [ -x "$d/torchrun" ]; then real="$d/torchrun"; break; fi
done
unset IFS
args=""
for a in "$@"; do
  if [ "$a" = "7777" ]; then a="7779"; fi
  args="$args '$a'"
done
eval exec "$real" $args
"""


def test_host_that_cannot_reach_the_master_fails_in_time_naming_the_security_group(
    tmp_path, real_bundle, record_property
):
    rigged = tmp_path / "rigged-bin"
    rigged.mkdir()
    script = rigged / "torchrun"
    script.write_text(RIGGED_TORCHRUN)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    job = make_job(
        tmp_path / "job",
        real_bundle,
        hosts=2,
        hps={"epochs": "1", "dist_timeout_s": str(TIMEOUT_S)},
        # The rendezvous timeout is torchrun's (static rendezvous, default 600 s); the toolkit
        # builds the torchrun command, so it travels as PET_RDZV_CONF in the job environment.
        env={contract.RDZV_CONF_ENV: f"timeout={TIMEOUT_S}"},
        host_env={"algo-2": {"PATH": str(rigged)}},  # prepended to the host's own PATH
    )
    job.start()  # after the machine-wide torchrun port lock: time the job, not the queue
    started = time.monotonic()
    codes = timing.finish(job, TIMEOUT_S + 90)
    failed_after = time.monotonic() - started
    reason = job.failure_reason()
    assert any(code not in (0, None) for code in codes), codes
    assert reason is not None
    assert "security group must allow all traffic from itself" in reason, reason
    assert job.model_files() == []
    assert failed_after < TIMEOUT_S + timing.bound(60), failed_after
    record_property("failed_after_s", round(failed_after, 1))
    print(f"\nunreachable peer: failed after {failed_after:.1f} s (start to end); {reason}")


def test_script_wraps_a_process_group_init_failure_in_the_network_hint(monkeypatch):
    """When torchrun's rendezvous passed but the ranks cannot connect to each other (gloo's
    full mesh on ephemeral ports, e.g. a security group that opens only the master port)."""
    import torch.distributed as dist

    from training import train

    monkeypatch.setattr(
        train,
        "_STATE",
        {"distributed": True, "rank": 1, "world": 2, "host": "algo-2", "timeout_s": 600},
    )
    err = dist.DistNetworkError("Gloo connectFullMesh failed with ... Connection refused")
    assert train.explain_distributed_failure(err) == (
        "process group init failed for rank 1 of 2 on host algo-2 (timeout 600 s): "
        f"{contract.NETWORK_HINT}; DistNetworkError: Gloo connectFullMesh failed with ... "
        "Connection refused"
    )
    monkeypatch.setattr(train, "_STATE", {"distributed": False})
    assert train.explain_distributed_failure(err) is None
