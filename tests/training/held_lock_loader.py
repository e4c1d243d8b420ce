"""A DataLoader whose items need a lock that another thread of the loading process holds, as a
rank's threads (process group, store client, watchdog) hold theirs when a loader's workers start.
Prints the batches, or `timed out` when the worker never delivers (tests/training/
test_loader_workers.py). argv: the loader's multiprocessing_context (`default`: none given,
after the runner chose the start method), seconds to wait for the worker."""

from __future__ import annotations

import sys
import threading

import torch
from torch.utils.data import DataLoader, Dataset

from training.loader_workers import use_clean_workers

LOCK = threading.Lock()


class NeedsLock(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        with LOCK:
            return torch.tensor([index])


def main(context: str, wait_s: float) -> None:
    print(f"start method: {use_clean_workers()}", flush=True)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with LOCK:
            held.set()
            done.wait()

    threading.Thread(target=hold, daemon=True).start()
    held.wait()
    loader = DataLoader(
        NeedsLock(),
        batch_size=2,
        num_workers=1,
        timeout=wait_s,
        multiprocessing_context=None if context == "default" else context,
    )
    try:
        print([batch.flatten().tolist() for batch in loader], flush=True)
    except RuntimeError as err:
        print("timed out" if "timed out" in str(err) else f"error: {err}", flush=True)
    done.set()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
