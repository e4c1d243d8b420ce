"""The LightningModule (network injected) and the metric-line callback.

Distributed metrics: torchmetrics objects whose cross-rank sync is one all_reduce(SUM) per state
(`allreduce_gather`), never ReduceOp.AVG (which smddp rejects; Lightning's `sync_dist=True`
mean uses AVG on every backend but gloo) and never a new process group (smddp has none).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from training import contract


def allreduce_gather(tensor: torch.Tensor, group: Any = None) -> list[torch.Tensor]:
    """A torchmetrics `dist_sync_fn` built on all_reduce(SUM) alone: every rank writes its
    tensor into its own slot of a zero buffer, the buffers are summed. Integer states travel
    as float64 (exact below 2**53) so backends with float-only collectives work too."""
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    wire_dtype = tensor.dtype
    if not tensor.is_floating_point():
        wire_dtype = torch.float64
    buffer = torch.zeros((world, *tensor.shape), dtype=wire_dtype, device=tensor.device)
    buffer[rank] = tensor.to(wire_dtype)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=group)
    return [t.to(tensor.dtype) for t in buffer.unbind(0)]


class Classifier(pl.LightningModule):
    """Cross-entropy classification of any network mapping features to class logits."""

    def __init__(self, net: nn.Module, num_classes: int, lr: float) -> None:
        super().__init__()
        self.net = net
        self.lr = lr
        self.loss_fn = nn.CrossEntropyLoss()
        sync = {"dist_sync_fn": allreduce_gather}
        self.train_loss = MeanMetric(**sync)
        self.val_loss = MeanMetric(**sync)
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro", **sync)
        # Set here too: a run resumed from a mid-epoch checkpoint starts inside an epoch, and
        # Lightning then skips on_train_epoch_start for that epoch.
        self._loss_sum: torch.Tensor | None = None
        self._loss_steps = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def setup(self, stage: str) -> None:
        # Input normalisation from the training split (the datamodule has set up by now; the
        # same values on every rank, and a resumed checkpoint restores them anyway).
        datamodule = getattr(self.trainer, "datamodule", None)
        mean = getattr(datamodule, "feature_mean", None)
        if mean is not None and hasattr(self.net, "set_normalization"):
            self.net.set_normalization(mean, datamodule.feature_std)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def on_train_epoch_start(self) -> None:
        self.train_loss.reset()
        self._loss_sum: torch.Tensor | None = None
        self._loss_steps = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        # A bare tensor add per step (no metric update, no self.log): Lightning's per-step cost
        # stays small next to the step itself; the epoch mean is formed at validation.
        detached = loss.detach().float()
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._loss_steps += 1
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_loss.update(self.loss_fn(logits, y), weight=y.numel())
        self.val_acc.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        # compute() syncs across ranks (all_reduce SUM), so every value logged here is global.
        metrics = {
            "val_loss": self.val_loss.compute(),
            "val_acc": self.val_acc.compute(),
        }
        fitting = self.trainer.state.fn == "fit" and not self.trainer.sanity_checking
        if fitting:
            steps = getattr(self, "_loss_steps", 0)
            if steps:
                self.train_loss.update(self._loss_sum / steps, weight=steps)
            metrics["train_loss"] = self.train_loss.compute()  # every rank calls: it syncs
        metrics["lr"] = torch.tensor(self.lr)
        self.log_dict(metrics, rank_zero_only=True)
        self.val_loss.reset()
        self.val_acc.reset()


class LastCheckpoint(pl.Callback):
    """Writes `<dir>/last.ckpt` every N optimizer steps and at every training-epoch end.

    Written by hand rather than with ModelCheckpoint, whose "last" rules differ between
    Lightning 2.2 and 2.6 (2.6 writes last.ckpt at epoch end only after a top-k save).
    `trainer.save_checkpoint` runs on every rank (it holds a barrier) and writes on global
    rank 0 through the strategy's CheckpointIO (atomic: see train.py).
    """

    def __init__(self, dirpath: Path, every_n_steps: int) -> None:
        self.path = Path(dirpath) / contract.CHECKPOINT_FILE
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    def _save(self, trainer: pl.Trainer) -> None:
        if trainer.global_step == self._saved_step or trainer.sanity_checking:
            return
        trainer.save_checkpoint(str(self.path), weights_only=False)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > 0 and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)


class MetricLines(pl.Callback):
    """Prints contract metric lines (global rank 0, flushed) after every validation."""

    def __init__(self, world_size: int, printer: Any = print) -> None:
        self.world_size = world_size
        self.printer = printer
        self._start = 0.0
        self._last = 0.0
        self._samples = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = 0.0
        self._samples = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._start:  # from the first batch on: restores and loader start-up excluded
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._samples += len(batch[0])
        self._last = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k in contract.METRIC_NAMES
        }
        if trainer.state.fn == "fit":
            metrics["epoch"] = trainer.current_epoch
            elapsed = self._last - self._start
            if self._samples and elapsed > 0:
                metrics["samples_per_sec"] = self._samples * self.world_size / elapsed
        else:
            metrics.pop("train_loss", None)
        self.printer(contract.format_metric_line(metrics, trainer.global_step), flush=True)


def write_progress(debug_dir: Path, rank: int, *, step: int, phase: str) -> None:
    """Test hook (TRAINING_DEBUG_DIR): `progress-rank-<N>.json` with pid, phase and global step;
    temp file + os.replace without fsync, cheap enough for every step."""
    debug_dir.mkdir(parents=True, exist_ok=True)
    target = debug_dir / f"progress-rank-{rank}.json"
    tmp = debug_dir / f".progress-rank-{rank}.json.tmp"
    record = {"pid": os.getpid(), "rank": rank, "global_step": step, "phase": phase}
    tmp.write_text(json.dumps(record))
    os.replace(tmp, target)


class DebugProgress(pl.Callback):
    """Test hook: every rank reports its pid and global step after each optimizer step."""

    def __init__(self, debug_dir: Path, rank: int) -> None:
        self.debug_dir, self.rank = Path(debug_dir), rank

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        write_progress(self.debug_dir, self.rank, step=trainer.global_step, phase="train")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        write_progress(self.debug_dir, self.rank, step=trainer.global_step, phase="train")
