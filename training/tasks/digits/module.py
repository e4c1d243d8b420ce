"""The digits classifier: an MLP (training/tasks/digits/model.py) trained with cross-entropy.

Distributed metrics: torchmetrics objects whose cross-rank sync is one all_reduce(SUM) per state
(`allreduce_gather`), never ReduceOp.AVG (which smddp rejects; Lightning's `sync_dist=True`
mean uses AVG on every backend but gloo) and never a new process group (smddp has none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from training.tasks.digits.data import NUM_CLASSES, NUM_FEATURES
from training.tasks.digits.model import HIDDEN_SIZES, MLP


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


class DigitsClassifier(pl.LightningModule):
    """Cross-entropy classification of 64-feature rows into 10 classes with an MLP.

    Args:
        hidden: hidden layer sizes of the MLP.
        lr: Adam learning rate (the runner scales it with the world size).
        in_features: features per row.
        num_classes: number of classes.
    """

    def __init__(
        self,
        hidden: Sequence[int] = HIDDEN_SIZES,
        lr: float = 1e-3,
        in_features: int = NUM_FEATURES,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net: nn.Module = MLP(in_features, num_classes, hidden)
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
