"""The runner's Trainer vs a plain PyTorch loop on the donut task's tiny model (offline mode).

Same module code (DonutModule.loss), same data loader, same AdamW and steps; the runner side is
the Trainer as training/train.py configures it (MetricLines, LastCheckpoint, atomic checkpoint
IO, CSVLogger). Training steps only (validation decodes and is the same code either way); the
first epoch is warm-up. One thread; rounds alternate which loop goes first; medians; target
ratio >= 0.98. The GPU part (bf16, a donut-base-sized random model) runs only with CUDA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _data(samples: int, batch: int):
    from training.tasks.donut.data import DonutDataModule

    os.environ.pop("SM_CHANNEL_TRAIN", None)
    data = DonutDataModule(
        batch_size=batch, image_size=(128, 96), max_length=96, synthetic_samples=samples,
        val_fraction=0,
    )  # fmt: skip
    data.setup("fit")
    return data


def _module(data):
    from training.tasks.donut.model import DonutModule

    torch.manual_seed(0)
    module = DonutModule(lr=1e-3, width=64)
    module.build(data)
    return module


def plain(data, epochs: int) -> float:
    module = _module(data)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    module.train()
    samples, start = 0, 0.0
    for epoch in range(epochs):
        if epoch == 1:
            start, samples = time.perf_counter(), 0
        for batch in data.train_dataloader():
            loss = module.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            samples += batch["pixel_values"].size(0)
    return samples / (time.perf_counter() - start)


def runner(data, epochs: int) -> float:
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from training.callbacks import callbacks_for
    from training.checkpoints import atomic_checkpoint_io

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                self.start, self.samples = time.perf_counter(), 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch >= 1:
                self.samples += batch["pixel_values"].size(0)

        def on_train_epoch_end(self, trainer, pl_module):  # after the runner's epoch-end save
            self.end = time.perf_counter()

    clock = Clock()
    cb = callbacks_for("pytorch_lightning")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, max_epochs=epochs, limit_val_batches=0,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, logger=CSVLogger(tmp), plugins=[atomic_checkpoint_io(pl)],
            callbacks=[cb.MetricLines(1, printer=lambda *a, **k: None),
                       cb.LastCheckpoint(Path(tmp), 10**9), clock],
        )  # fmt: skip
        module = _module(data)
        module.configure_optimizers = lambda: torch.optim.AdamW(module.parameters(), lr=1e-3)
        trainer.fit(module, train_dataloaders=data.train_dataloader())
    return clock.samples / (clock.end - clock.start)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench donut", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4, help="per loop, the first is warm-up")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    import logging
    import warnings

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    data = _data(args.samples, args.batch)
    ours, theirs = [], []
    for index in range(args.rounds):
        order = (runner, plain) if index % 2 == 0 else (plain, runner)
        for loop in order:
            (ours if loop is runner else theirs).append(loop(data, args.epochs))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"donut (tiny, [128, 96], batch {args.batch}, 1 thread): runner {a:.1f} samples/s, "
        f"plain {b:.1f} samples/s, ratio {a / b:.3f} (target >= 0.98)"
    )
    if torch.cuda.is_available():
        print("gpu: donut-base-sized bf16 comparison not implemented in this run")
    else:
        print("gpu: skipped: no CUDA")
    return 0
