"""DataLoader workers under the runner's start method: a worker never inherits a lock that
another thread of its rank held when it started (training/loader_workers.py). The fork control
shows the hazard is real: the same loader forked hangs until its timeout. What does not pickle is
one line."""

from __future__ import annotations

import pickle

import pytest

from tests import timing
from tests.training.conftest import REPO, run_python, subprocess_env
from training.loader_workers import unpicklable_line

HELPER = ["-m", "tests.training.held_lock_loader"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_started_while_another_thread_holds_a_lock_delivers() -> None:
    done = run_python([*HELPER, "default", str(timing.bound(60))], subprocess_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["start method: forkserver", "[[0, 1], [2, 3]]"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_same_worker_forked_inherits_the_held_lock_and_hangs() -> None:
    done = run_python([*HELPER, "fork", "5"], subprocess_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["start method: forkserver", "timed out"]


#: A module-level lambda (a collate_fn written inline): pickle finds no name for it.
_INLINE = (lambda batch: batch,)


def _local_dataset() -> object:
    class Rows(list):
        pass

    return Rows()


def test_what_does_not_pickle_is_one_line() -> None:
    errors = []
    for thing in (_local_dataset(), _INLINE[0]):
        with pytest.raises((AttributeError, pickle.PicklingError)) as err:
            pickle.dumps(thing)
        errors.append(err.value)
    tail = (
        " (workers start via forkserver, which pickles the loader's dataset, collate_fn and "
        "worker_init_fn): define them at module level (not as lambdas or inside a function), or "
        "give that DataLoader multiprocessing_context='fork'"
    )
    assert unpicklable_line(errors[0]) == (
        "a DataLoader worker could not start: Can't pickle local object "
        "'_local_dataset.<locals>.Rows'" + tail
    )
    assert isinstance(errors[1], pickle.PicklingError)
    assert unpicklable_line(errors[1]) == (
        f"a DataLoader worker could not start: {errors[1]}" + tail  # its text names an address
    )
    assert unpicklable_line(AttributeError("'NoneType' object has no attribute 'x'")) is None
