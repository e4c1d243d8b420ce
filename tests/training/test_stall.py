"""A rank that blocks, and ranks with uneven data, in real 2-process runs (torchrun, the runner,
the digits task) with the test-only fault injector (tests/fixtures/fault_injector) on the path.
The 2-host job through the emulator, FailureReason and notification: tests/e2e/test_stall_e2e.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests import timing
from tests.training.conftest import REPO, free_port, run_python, subprocess_env
from training import watchdog as wd

INJECTOR = REPO / "tests" / "fixtures" / "fault_injector"
STALL_S = 5
#: What the watchdog may take beyond the stall limit: its 1 s poll, the other rank's stack
#: dump and acknowledgement, process exit (base figure, scaled).
SLACK_S = 10


def _run(tmp_path: Path, fault: str, *args: str):
    debug = tmp_path / "debug"
    env = subprocess_env(
        {
            "TRAINING_LOCAL_ROOT": str(tmp_path / "root"),
            "TRAINING_DEBUG_DIR": str(debug),
            "PYTHONPATH": f"{INJECTOR}:{REPO}",
            "TRAINOPS_TEST_FAULT": fault,
        }
    )
    command = ["-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(free_port()), "training/train.py", *args]
    proc = run_python(command, env)
    return proc, time.time(), debug


def _progress(debug: Path, rank: int) -> dict:
    return json.loads((debug / f"progress-rank-{rank}.json").read_text())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_rank_waiting_on_a_collective_the_other_never_reaches_fails_with_every_stack(
    tmp_path: Path,
) -> None:
    proc, ended, debug = _run(
        tmp_path, "collective:1:3", "--epochs", "50", "--stall_timeout_s", str(STALL_S)
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    reporter = [e for e in errors if e.startswith("error: stalled")]
    assert reporter == [
        f"error: stalled: no progress for {STALL_S} s (stall_timeout_s={STALL_S}): rank 1 on "
        "algo-1 in loading the next batch after step 3; rank 0 on algo-1 in training step "
        f"after step 3; {wd.STACKS_NOTE}"
    ], errors
    # Both ranks' Python stacks: rank 1 inside the barrier the other never reaches.
    dumps = re.findall(r"\[stall watchdog\] Python stacks of every thread of pid (\d+)", out)
    pids = {_progress(debug, rank)["pid"] for rank in (0, 1)}
    assert {int(p) for p in dumps} == pids
    assert re.search(r"distributed_c10d\.py\", line \d+ in barrier", out)
    # Failed within the limit plus bounded slack after the last finished step.
    last_step_at = (debug / "progress-rank-1.json").stat().st_mtime
    assert _progress(debug, 1)["global_step"] == 3
    assert ended - last_step_at < STALL_S + timing.bound(SLACK_S), ended - last_step_at


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_uneven_batch_counts_fail_in_the_first_epoch_with_the_counts(tmp_path: Path) -> None:
    proc, _, debug = _run(tmp_path, "uneven:1:1", "--epochs", "5")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert (
        "error: uneven data in epoch 0: the ranks have different numbers of training batches "
        "(rank 1: 3 batches; rank 0: 4 batches)" in out
    ), out[-3000:]
    assert "[stall watchdog]" not in out
    assert all(_progress(debug, rank)["global_step"] == 0 for rank in (0, 1))  # no step ran
