"""The runner's callbacks: metric lines, last.ckpt, and the test hook's progress records.

Built per Lightning flavour (`callbacks_for(pl)`): a `pytorch_lightning.Trainer` only takes
`pytorch_lightning.Callback`s, a `lightning.pytorch.Trainer` only `lightning.pytorch` ones, and
the logic is the same for both.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from training import contract
from training.checkpoint_schedule import TimeSchedule


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """Every logged value that is one finite-or-not number (tensors of one element included)."""
    out = {}
    for key, value in metrics.items():
        try:
            if hasattr(value, "numel"):
                if value.numel() != 1:
                    continue
                value = value.item()
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number) or math.isnan(number):
            out[contract.metric_name(key)] = number
    return out


class _MetricLines:
    """Prints a contract metric line (global rank 0, flushed) at every training-epoch end:
    every scalar the task logged for that epoch, training and validation alike, then the epoch
    and the training throughput.

    Built as a Checkpoint (callbacks_for) only for where Lightning calls it: "monitoring"
    callbacks run their `on_train_epoch_end` after the module's own, so values the module logs
    there are in the line too; validation has run by then whether or not the module has a
    validation loop."""

    def __init__(self, world_size: int, printer: Any = print) -> None:
        self.world_size = world_size
        self.printer = printer
        self._start = 0.0
        self._last = 0.0
        self._samples = 0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = self._last = 0.0
        self._samples = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._start:  # from the first batch on: restores and loader start-up excluded
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._samples += _batch_size(batch)
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        metrics = scalars(dict(trainer.callback_metrics))
        metrics["epoch"] = trainer.current_epoch
        elapsed = self._last - self._start
        if self._samples and elapsed > 0:
            metrics["samples_per_sec"] = self._samples * self.world_size / elapsed
        self.printer(contract.format_metric_line(metrics, trainer.global_step), flush=True)


def has_validation_loop(pl: Any, module: Any, datamodule: Any) -> bool:
    """Whether fit() validates this module: a `validation_step` and a `val_dataloader` (on the
    module or its datamodule), Lightning's own rule for running the validation loop."""
    from training.lightning_flavour import submodule

    overridden = submodule(pl, "utilities.model_helpers").is_overridden
    loaders = [obj for obj in (module, datamodule) if obj is not None]
    return overridden("validation_step", module) and any(
        overridden("val_dataloader", obj) for obj in loaders
    )


def _batch_size(batch: Any) -> int:
    """Samples in a batch: the first dimension of its first tensor (tuple, list or dict)."""
    first = batch
    while isinstance(first, (list, tuple, dict)) and first:
        first = next(iter(first.values())) if isinstance(first, dict) else first[0]
    shape = getattr(first, "shape", None)
    return int(shape[0]) if shape else 1


class _LastCheckpoint:
    """Writes `<dir>/last.ckpt` every N optimizer steps, once `every_minutes` of training
    passed since the last one (training/checkpoint_schedule.py), and when training ends.

    Not at every epoch end: with short epochs that costs more than the work it saves (a stop
    loses at most the time interval). Written by hand rather than with ModelCheckpoint, whose
    "last" rules differ between Lightning 2.2 and 2.6. `trainer.save_checkpoint` runs on every
    rank (it holds a barrier) and writes on global rank 0 through the strategy's CheckpointIO
    (atomic: training/checkpoints.py).
    """

    def __init__(self, dirpath: Path, every_n_steps: int, every_minutes: float = 0.0) -> None:
        self.path = Path(dirpath) / contract.CHECKPOINT_FILE
        self.every_n_steps = every_n_steps
        self.schedule = TimeSchedule(every_minutes * 60.0)
        self._saved_step = -1

    def _save(self, trainer: Any) -> None:
        if trainer.global_step == self._saved_step or trainer.sanity_checking:
            return
        trainer.save_checkpoint(str(self.path), weights_only=False)
        self._saved_step = trainer.global_step
        self.schedule.reset(trainer.global_step)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.schedule.reset(trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        by_steps = step > 0 and step % self.every_n_steps == 0
        # Evaluated on every rank alike (a probe step broadcasts), so ranks save together.
        if by_steps or self.schedule.due(step, lambda v: trainer.strategy.broadcast(v, src=0)):
            self._save(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._save(trainer)


def write_progress(debug_dir: Path, rank: int, *, step: int, phase: str) -> None:
    """Test hook (TRAINING_DEBUG_DIR): `progress-rank-<N>.json` with pid, phase and global step;
    temp file + os.replace without fsync, cheap enough for every step."""
    debug_dir.mkdir(parents=True, exist_ok=True)
    target = debug_dir / f"progress-rank-{rank}.json"
    tmp = debug_dir / f".progress-rank-{rank}.json.tmp"
    record = {"pid": os.getpid(), "rank": rank, "global_step": step, "phase": phase}
    tmp.write_text(json.dumps(record))
    os.replace(tmp, target)


class _DebugProgress:
    """Test hook: every rank reports its pid and global step after each optimizer step."""

    def __init__(self, debug_dir: Path, rank: int) -> None:
        self.debug_dir, self.rank = Path(debug_dir), rank

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        write_progress(self.debug_dir, self.rank, step=trainer.global_step, phase="train")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        write_progress(self.debug_dir, self.rank, step=trainer.global_step, phase="train")


@functools.cache
def callbacks_for(flavour: str) -> SimpleNamespace:
    """MetricLines, LastCheckpoint and DebugProgress as Callbacks of `flavour`'s package."""
    from training.lightning_flavour import package, submodule

    pl = package(flavour)
    base, monitoring = pl.Callback, submodule(pl, "callbacks").Checkpoint
    return SimpleNamespace(
        **{
            name: type(name, (logic, kind), {"__doc__": logic.__doc__})
            for name, logic, kind in (
                ("MetricLines", _MetricLines, monitoring),
                ("LastCheckpoint", _LastCheckpoint, base),
                ("DebugProgress", _DebugProgress, base),
            )
        }
    )
