"""Fault 2, a dead rank: SIGKILL one training process mid-run. Every other process exits
non-zero on its own within the collective timeout (dist_timeout_s), nothing hangs, and the job
fails with a reason that names the host and the rank."""

from __future__ import annotations

import time

import pytest

from tests import timing
from tests.faults.conftest import DEBUG_DIR_ENV, make_job, read_progress, wait_dead, wait_for
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TIMEOUT_S = 20  # dist_timeout_s for these jobs: the bound on how long any survivor may hang
#: What a survivor may take beyond TIMEOUT_S to notice and exit (scaled: the machine's share).
SLACK_S = timing.bound(15)
HPS = {
    "epochs": "1000",
    "max_steps": "100000",
    "batch_size": "16",
    "checkpoint_every_n_steps": "1000",
    "dist_timeout_s": str(TIMEOUT_S),
}


def test_default_collective_timeout_is_ten_minutes():
    assert contract.HYPERPARAMETERS["dist_timeout_s"].default == "600"


@pytest.mark.parametrize(
    ("hosts", "procs", "victim_host"),
    [(1, 2, "algo-1 (127.0.0.1)"), (2, 1, "algo-2 (127.0.0.2)")],
    ids=["1host-x-2procs", "2hosts-x-1proc"],
)
def test_killing_one_rank_fails_the_job_in_bounded_time(
    tmp_path, real_bundle, hosts, procs, victim_host, record_property
):
    debug = tmp_path / "debug"
    job = make_job(
        tmp_path / "job",
        real_bundle,
        hosts=hosts,
        procs=procs,
        hps=HPS,
        env={DEBUG_DIR_ENV: str(debug)},
    )
    job.start()

    def training() -> dict | None:
        records = [read_progress(debug, rank) for rank in (0, 1)]
        if all(r and r["phase"] == "train" and r["global_step"] >= 5 for r in records):
            return records[1]
        return None

    victim = wait_for(training, 180, "both ranks training", job)
    import os
    import signal

    os.kill(victim["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    assert wait_dead(victim["pid"])
    # Poll, not job.wait(): wait() stops the other hosts as soon as one fails (as SageMaker
    # does); here every host must exit by itself.
    deadline = killed_at + TIMEOUT_S + 2 * SLACK_S
    exit_after: dict[int, float] = {}
    while time.monotonic() < deadline and len(exit_after) < hosts:
        for index, code in enumerate(job.poll()):
            if code is not None and index not in exit_after:
                exit_after[index] = time.monotonic() - killed_at
        time.sleep(0.05)
    hung = [job.hosts[i].name for i in range(hosts) if i not in exit_after]
    codes = job.wait(timing.bound(5)) if not hung else (job.kill() or job.poll())
    assert not hung, f"hosts still running {TIMEOUT_S + 2 * SLACK_S:.0f} s after the kill: {hung}"
    assert all(code != 0 for code in codes), codes
    survivor = read_progress(debug, 0)
    assert survivor is not None and wait_dead(survivor["pid"], 1.0)

    reason = job.failure_reason()
    assert reason is not None
    assert reason.startswith(victim_host), reason
    assert "rank 1" in reason, reason
    assert job.model_files() == []
    slowest = max(exit_after.values())
    assert slowest < TIMEOUT_S + SLACK_S, exit_after
    record_property("all_hosts_exited_after_s", round(slowest, 1))
    print(f"\ndead rank ({hosts}x{procs}): exits after {exit_after} s; reason: {reason}")
