"""DataLoader workers start from a clean, single-threaded process, never as a fork of a rank.

A loader's workers start at its first iteration, after the process group is up, and by then a
rank runs threads (the process group's, the store client's, the stall watchdog's). Linux's
default start method, `fork`, copies the rank with only the calling thread: a lock another
thread held at that instant stays held in the child, and a worker that needs it hangs (its
rank waits for data, the others in their next collective) until the stall watchdog fails the
job. Python itself warns about fork with threads (3.12) and makes `forkserver` the default on
Linux (3.14). So the runner makes `forkserver` the default start method before the Trainer
exists: workers fork from a server process started fresh (fork + exec) that has imported torch,
the entry module and the datamodule's module once, so starting a worker stays cheap. A DataLoader that names its own
`multiprocessing_context` keeps it.

What a worker receives (the dataset, collate_fn, worker_init_fn) is pickled on the way, as under
`spawn`: they must be importable objects (module-level classes and functions, not lambdas or
classes defined inside a function). A tensor in the dataset moves to shared memory once.
"""

from __future__ import annotations

import multiprocessing

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
