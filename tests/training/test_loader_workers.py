"""DataLoader workers under the runner's start method: a worker never inherits a lock that
another thread of its rank held when it started (training/loader_workers.py). The fork control
shows the hazard is real: the same loader forked hangs until its timeout."""

from __future__ import annotations

import pytest

from tests import timing
from tests.training.conftest import REPO, run_python, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
HELPER = ["-m", "tests.training.held_lock_loader"]


def test_a_worker_started_while_another_thread_holds_a_lock_delivers() -> None:
    done = run_python([*HELPER, "default", str(timing.bound(60))], subprocess_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["start method: forkserver", "[[0, 1], [2, 3]]"]


def test_the_same_worker_forked_inherits_the_held_lock_and_hangs() -> None:
    done = run_python([*HELPER, "fork", "5"], subprocess_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["start method: forkserver", "timed out"]
