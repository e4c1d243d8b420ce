"""DataLoader workers start from a clean, single-threaded process, never as a fork of a rank.

A loader's workers start at its first iteration, after the process group is up, and by then a
rank runs threads (the process group's, the store client's, the stall watchdog's). Linux's
default start method, `fork`, copies the rank with only the calling thread: a lock another
thread held at that instant stays held in the child, and a worker that needs it hangs (its
rank waits for data, the others in their next collective) until the stall watchdog fails the
job. Python itself warns about fork with threads (3.12) and makes `forkserver` the default on
Linux (3.14). So the runner makes `forkserver` the default start method before the Trainer
exists: workers fork from a server process started fresh (fork + exec) that has imported torch,
the entry module and the datamodule's module once, so starting a worker stays cheap. A
DataLoader that names its own `multiprocessing_context` keeps it.

What a worker receives (the dataset, collate_fn, worker_init_fn) is pickled on the way, as under
`spawn`: they must be importable objects (module-level classes and functions, not lambdas or
classes defined inside a function). A tensor in the dataset moves to shared memory once. One
that does not pickle fails the job with one line saying so (`loader_guard`).
"""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

from training.sm_env import ConfigError

#: The start method for loaders (and any multiprocessing) that name none.
START_METHOD = "forkserver"
#: Imported once by the server, so each worker forks with them loaded. `__main__` (the entry
#: module) also hands the server the rank's sys.path: a src/ layout project imports there too.
PRELOAD = ("__main__", "torch")


def use_clean_workers(datamodule: object | None = None) -> str:
    """Make `forkserver` the default start method (where the platform has it); the one in use.
    The server also imports the datamodule's module (and with it Lightning): a worker unpickles
    its dataset without importing them again, at every epoch when workers are not persistent."""
    if START_METHOD not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_start_method()
    extra = [type(datamodule).__module__] if datamodule is not None else []
    multiprocessing.set_forkserver_preload([*PRELOAD, *extra])
    multiprocessing.set_start_method(START_METHOD, force=True)
    return START_METHOD


class UnpicklableLoaderError(ConfigError):
    """A DataLoader's worker could not be given its dataset, collate_fn or worker_init_fn."""


def unpicklable_line(err: BaseException) -> str | None:
    """One line for the error a worker start raises when what it is given does not pickle."""
    text = " ".join(str(err).split())
    pickling = isinstance(err, pickle.PicklingError)
    if not pickling and not (isinstance(err, (AttributeError, TypeError)) and "pickle" in text):
        return None
    return (
        f"a DataLoader worker could not start: {text} (workers start via {START_METHOD}, which "
        "pickles the loader's dataset, collate_fn and worker_init_fn): define them at module "
        "level (not as lambdas or inside a function), or give that DataLoader "
        "multiprocessing_context='fork'"
    )


class _LoaderWorkers:
    """Says in one line why a loader's workers did not start."""

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        line = unpicklable_line(exception)
        if line:
            raise UnpicklableLoaderError(line) from None


def loader_guard(flavour: str) -> list[Any]:
    """The guard as a Callback of `flavour`'s package."""
    from training.lightning_flavour import callback_class

    return [callback_class(flavour, _LoaderWorkers)()]
