"""The runner's Trainer vs a plain PyTorch loop on the donut task's tiny model (offline mode).

Same module code (DonutModule.loss), same data loader, same AdamW and steps; the runner side is
the Trainer as training/train.py configures it (MetricLines, LastCheckpoint, atomic checkpoint
IO, CSVLogger). Training steps only (validation decodes and is the same code either way); the
first epoch is warm-up. One thread; rounds alternate which loop goes first; medians; target
ratio >= 0.98. The GPU part (bf16, a donut-base-sized random model) runs only with CUDA.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench import parser as bench_parser


def _data(samples: int, batch: int, image_size=(128, 96), max_length: int = 96):
    from training.tasks.donut.data import DonutDataModule

    os.environ.pop("SM_CHANNEL_TRAIN", None)
    data = DonutDataModule(
        batch_size=batch, image_size=image_size, max_length=max_length,
        synthetic_samples=samples, val_fraction=0,
    )  # fmt: skip
    data.setup("fit")
    return data


#: donut-base's shape (DonutSwin 4 stages, window 10; MBart 1024 wide, 4 decoder layers), random.
BASE = {"embed_dim": 128, "depths": [2, 2, 14, 2], "num_heads": [4, 8, 16, 32], "window": 10}


def _module(data, base: bool = False):
    from training.tasks.donut.model import DonutModule

    torch.manual_seed(0)
    module = DonutModule(lr=1e-3, width=64)
    if base:
        module.model = _base_model(data)
        module.processor = data.processor
    if module.model is None:
        module.build(data)
    return module


def _base_model(data):
    from transformers import (
        DonutSwinConfig,
        DonutSwinModel,
        MBartConfig,
        MBartForCausalLM,
        VisionEncoderDecoderModel,
    )

    encoder = DonutSwinConfig(
        image_size=list(data.image_size), patch_size=4, embed_dim=BASE["embed_dim"],
        depths=BASE["depths"], num_heads=BASE["num_heads"], window_size=BASE["window"],
    )  # fmt: skip
    decoder = MBartConfig(
        vocab_size=len(data.processor.tokenizer), d_model=1024, decoder_layers=4,
        decoder_attention_heads=16, decoder_ffn_dim=4096, max_position_embeddings=1536,
        is_decoder=True, add_cross_attention=True, scale_embedding=True,
    )  # fmt: skip
    model = VisionEncoderDecoderModel(
        encoder=DonutSwinModel(encoder), decoder=MBartForCausalLM(decoder)
    )
    model.config.pad_token_id = data.processor.tokenizer.pad_token_id
    return model


def _to(batch: dict, device: str) -> dict:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def plain(data, epochs: int, device: str = "cpu", base: bool = False) -> float:
    module = _module(data, base).to(device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    module.train()
    samples, start = 0, 0.0
    for epoch in range(epochs):
        if epoch == 1:
            _sync(device)
            start, samples = time.perf_counter(), 0
        for batch in data.train_dataloader():
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = module.loss(_to(batch, device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            samples += batch["pixel_values"].size(0)
    _sync(device)
    return samples / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def gpu(args) -> None:
    """bf16 on the GPU, a donut-base-sized random model: samples/s and peak memory."""
    data = _data(args.batch * 8, args.batch, image_size=(1280, 960), max_length=768)
    results = {}
    for name, loop in (("plain", plain), ("runner", runner)):
        torch.cuda.reset_peak_memory_stats()
        speed = loop(data, 3, device="cuda", base=True)
        results[name] = (speed, torch.cuda.max_memory_allocated() / 2**30)
    (p, pm), (r, rm) = results["plain"], results["runner"]
    print(
        f"gpu bf16 (donut-base-sized, [1280, 960], batch {args.batch}): runner {r:.2f} "
        f"samples/s ({rm:.1f} GiB peak), plain {p:.2f} samples/s ({pm:.1f} GiB), "
        f"ratio {r / p:.3f} (target >= 0.98)"
    )


def runner(data, epochs: int, device: str = "cpu", base: bool = False) -> float:
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from training.callbacks import callbacks_for
    from training.checkpoints import atomic_checkpoint_io

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                _sync(device)
                self.start, self.samples = time.perf_counter(), 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.current_epoch >= 1:
                self.samples += batch["pixel_values"].size(0)

        def on_train_epoch_end(self, trainer, pl_module):  # after the runner's epoch-end save
            _sync(device)
            self.end = time.perf_counter()

    clock = Clock()
    cb = callbacks_for("pytorch_lightning")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=epochs,
            precision="bf16-mixed" if device == "cuda" else "32", limit_val_batches=0,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, logger=CSVLogger(tmp), plugins=[atomic_checkpoint_io(pl)],
            callbacks=[cb.MetricLines(1, printer=lambda *a, **k: None),
                       cb.LastCheckpoint(Path(tmp), 10**9), clock],
        )  # fmt: skip
        module = _module(data, base)
        module.setup = lambda stage: None  # built above (same weights as the plain loop)
        module.configure_optimizers = lambda: torch.optim.AdamW(module.parameters(), lr=1e-3)
        trainer.fit(module, train_dataloaders=data.train_dataloader())
    return clock.samples / (clock.end - clock.start)


def main(argv: list[str]) -> int:
    parser = bench_parser("donut", __doc__)
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
        gpu(args)
    else:
        print("gpu: skipped: no CUDA")
    return 0
