"""What the runner watches during fit: progress for the stall watchdog, and equal batch counts.

Uneven data across ranks does not fail in DDP, it hangs: the rank with fewer batches leaves the
epoch while the others wait for it in their next gradient all-reduce, until the collective
timeout. So at the start of every epoch the ranks compare their batch counts (one tiny
all-gather per epoch) and a mismatch fails the job with one line.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

from training import watchdog as wd
from training.errors import ConfigError


class UnevenDataError(ConfigError):
    """Ranks would run different numbers of training batches in an epoch."""


def uneven_batches_line(counts: list[int], epoch: int) -> str | None:
    """One line naming the ranks and their counts when they differ, else None."""
    if len(set(counts)) <= 1:
        return None
    groups: dict[int, list[int]] = {}
    for rank, count in enumerate(counts):
        groups.setdefault(count, []).append(rank)
    parts = []
    for count, ranks in sorted(groups.items(), key=lambda item: (len(item[1]), item[0])):
        shown = ", ".join(str(r) for r in ranks[:8]) + (" ..." if len(ranks) > 8 else "")
        label = "rank" if len(ranks) == 1 else "ranks"
        parts.append(f"{label} {shown}: {'unknown' if count < 0 else count} batches")
    return (
        f"uneven data in epoch {epoch}: the ranks have different numbers of training batches "
        f"({'; '.join(parts)}); DDP needs the same count on every rank or the longer ones hang "
        "in a collective: shard the data evenly (drop the remainder) or let Lightning's "
        "DistributedSampler split it (trainer.use_distributed_sampler: true)"
    )


class _EqualBatches:
    """At each training epoch's start, all-gather every rank's batch count; raise on a
    mismatch (every rank raises the same line at the same point: nobody is left waiting)."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.world_size <= 1:
            return
        import torch

        count = trainer.num_training_batches
        local = int(count) if math.isfinite(count) else -1
        gathered = trainer.strategy.all_gather(torch.tensor([local], device=pl_module.device))
        counts = [int(v) for v in gathered.flatten().tolist()]
        line = uneven_batches_line(counts, trainer.current_epoch)
        if line:
            raise UnevenDataError(line)


class _Heartbeat:
    """Tells the stall watchdog what the rank is doing and when something finished."""

    def __init__(self, watchdog: wd.Watchdog) -> None:
        self.watchdog = watchdog

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.watchdog.beat(wd.TRAINING_STEP, progress=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.watchdog.step_done(trainer.global_step)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self.watchdog.beat(wd.VALIDATION, progress=False)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        self.watchdog.beat(wd.VALIDATION)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        fitting = trainer.state.fn == "fit"
        self.watchdog.beat(wd.WAITING_FOR_DATA if fitting else wd.VALIDATION)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: Any) -> None:
        self.watchdog.beat(wd.CHECKPOINT)


@functools.cache
def _classes(flavour: str) -> SimpleNamespace:
    from training.lightning_flavour import package

    base = package(flavour).Callback
    return SimpleNamespace(
        **{
            name: type(name, (logic, base), {"__doc__": logic.__doc__})
            for name, logic in (("EqualBatches", _EqualBatches), ("Heartbeat", _Heartbeat))
        }
    )


def guard_callbacks(flavour: str, world_size: int, watchdog: wd.Watchdog) -> list[Any]:
    """The guards as Callbacks of `flavour`'s package; put them after the checkpoint callback
    (a step's heartbeat then comes after that step's checkpoint write)."""
    classes = _classes(flavour)
    out: list[Any] = [classes.EqualBatches(world_size)]
    if watchdog.enabled:
        out.append(classes.Heartbeat(watchdog))
    return out
