"""The runner's Trainer vs a plain PyTorch loop on a user-style transformer, not a tiny MLP.

The MLP comparison (bench/training_loop.py) uses the project's own task, tuned to keep
Lightning's fixed per-step cost small. A user's model is written differently: a plain
LightningModule that calls `self.log` in its steps. This part trains such a model, a small
transformer encoder classifier on seeded synthetic data, with the Trainer configured as
training/train.py configures it (the runner's MetricLines, LastCheckpoint, stall-watchdog and
uneven-data callbacks, the atomic checkpoint IO, a CSVLogger), as bare Lightning (same model,
`self.log` calls and logger, no runner callbacks: the runner's own cost) and with a plain loop
over the same model code, data and steps. All time whole epochs (training, validation, and the
runner's checkpoints at its default policy) after a warm-up epoch; the batch is sized so one
optimizer step takes >= 20 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

NUM_CLASSES = 10
MIN_STEP_MS = 20.0


class EncoderClassifier(pl.LightningModule):
    """Sequence of feature vectors -> linear projection + learned positions -> N encoder
    layers -> mean pool -> LayerNorm -> class logits; written as a user would write it."""

    def __init__(
        self,
        features: int = 16,
        seq_len: int = 32,
        d_model: int = 128,
        nhead: int = 4,
        layers: int = 2,
        num_classes: int = NUM_CLASSES,
        lr: float = 3e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.proj = nn.Linear(features, d_model)
        self.pos = nn.Parameter(torch.zeros(seq_len, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=4 * d_model, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.proj(x) + self.pos)
        return self.head(self.norm(h.mean(1)))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


@dataclass
class Config:
    batch: int = 16
    steps: int = 40  # optimizer steps per epoch
    epochs: int = 4  # per run; the first is warm-up
    rounds: int = 5
    d_model: int = 128
    layers: int = 2
    seq_len: int = 32
    features: int = 16

    def model(self) -> EncoderClassifier:
        torch.manual_seed(0)  # both loops start from the same weights
        nhead = 4 if self.d_model % 4 == 0 else 1
        return EncoderClassifier(self.features, self.seq_len, self.d_model, nhead, self.layers)


@dataclass
class Run:
    samples_per_sec: float
    cpu_samples_per_sec: float  # per second of process CPU time: less hurt by busy cores
    val_acc: float
    step_ms: float = 0.0  # plain loop: forward + backward + optimizer step, timed epochs
    ckpt_ms: list[float] = field(default_factory=list)  # runner: each timed last.ckpt write


def synthetic(cfg: Config) -> tuple[TensorDataset, TensorDataset]:
    """Seeded N(0, 1) sequences labelled by a fixed rule a model can learn: the argmax of a
    fixed projection of the sequence mean. Validation is an eighth of the training size."""
    g = torch.Generator().manual_seed(0)
    n_train = cfg.steps * cfg.batch
    n_val = max(cfg.batch, n_train // 8)
    x = torch.randn(n_train + n_val, cfg.seq_len, cfg.features, generator=g)
    w = torch.randn(cfg.features, NUM_CLASSES, generator=g)
    y = (x.mean(1) @ w).argmax(1)
    return TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


def _loaders(data: tuple[TensorDataset, TensorDataset], batch: int) -> tuple[DataLoader, ...]:
    # No shuffle: the rows are i.i.d. already, and Lightning draws from a shuffling loader's
    # generator differently between epochs; unshuffled, both loops train bit for bit alike
    # (same val_acc), which shows they did the same work.
    return DataLoader(data[0], batch_size=batch), DataLoader(data[1], batch_size=batch)


def plain_loop(data: tuple[TensorDataset, TensorDataset], cfg: Config) -> Run:
    model = cfg.model()
    opt = model.configure_optimizers()
    train, val = _loaders(data, cfg.batch)
    start = cpu_start = step_s = acc = 0.0
    samples = steps = 0
    for epoch in range(cfg.epochs):
        if epoch == 1:
            start, cpu_start = time.perf_counter(), time.process_time()
            samples, step_s, steps = 0, 0.0, 0
        model.train()
        for x, y in train:
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)  # training_step without self.log
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_s += time.perf_counter() - t0
            steps += 1
            samples += len(y)
        model.eval()
        correct, seen = 0, 0
        with torch.inference_mode():
            for x, y in val:
                logits = model(x)
                F.cross_entropy(logits, y)  # as validation_step's val_loss
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
        acc = correct / seen
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Run(samples / elapsed, samples / cpu, acc, step_ms=1e3 * step_s / steps)


def lightning_loop(data: tuple[TensorDataset, TensorDataset], cfg: Config, *, runner: bool) -> Run:
    """The Trainer as training/train.py builds it (`runner`: its MetricLines, LastCheckpoint at
    the default policy, stall-watchdog heartbeat, uneven-data guard, atomic checkpoint IO), or
    bare Lightning: the same model, `self.log` calls, logger and settings, no runner callbacks."""
    from training import contract, watchdog
    from training.callbacks import callbacks_for
    from training.checkpoints import atomic_checkpoint_io
    from training.guards import guard_callbacks

    runner_cb = callbacks_for("pytorch_lightning")
    ckpt_ms: list[float] = []

    class Clock(pl.Callback):
        start = end = cpu_start = cpu_end = 0.0
        samples = 0

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 1:
                self.start, self.cpu_start = time.perf_counter(), time.process_time()
                self.samples = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.samples += len(batch[0])

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.end, self.cpu_end = time.perf_counter(), time.process_time()

    class TimedLastCheckpoint(runner_cb.LastCheckpoint):
        def _save(self, trainer: Any) -> None:
            t0 = time.perf_counter()
            super()._save(trainer)
            if clock.start:
                ckpt_ms.append(1e3 * (time.perf_counter() - t0))

    clock = Clock()  # first: its on_train_end comes before the runner's end-of-training save
    lines: list[str] = []
    model = cfg.model()
    hp = {k: contract.parse_hyperparameter(k, v) for k, v in contract.runner_defaults().items()}
    dog = watchdog.Watchdog(
        rank=0,
        world=1,
        host="bench",
        startup_timeout_s=int(hp["startup_timeout_s"]),
        stall_timeout_s=int(hp["stall_timeout_s"]),
    )
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        extra: dict[str, Any] = {}
        callbacks: list[Any] = [clock]
        if runner:
            callbacks += [
                runner_cb.MetricLines(world_size=1, printer=lambda line, **_: lines.append(line)),
                TimedLastCheckpoint(
                    tmp,
                    every_n_steps=int(hp["checkpoint_every_n_steps"]),
                    every_minutes=float(hp["checkpoint_every_minutes"]),
                ),
                *guard_callbacks("pytorch_lightning", 1, watchdog.install(dog)),
            ]
            extra["plugins"] = [atomic_checkpoint_io(pl)]
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            precision="32-true",
            max_epochs=cfg.epochs,
            callbacks=callbacks,
            logger=pl.loggers.CSVLogger(save_dir=tmp, name="lightning_logs"),
            enable_checkpointing=False,
            default_root_dir=tmp,
            enable_progress_bar=False,
            enable_model_summary=False,  # the runner prints one before training: not timed
            num_sanity_val_steps=0,
            **extra,
        )
        try:
            trainer.fit(model, *_loaders(data, cfg.batch))
        finally:
            watchdog.uninstall()
    if runner and len(lines) != cfg.epochs:
        raise RuntimeError(f"expected {cfg.epochs} metric lines from MetricLines, got {lines}")
    acc = float(trainer.callback_metrics["val_acc"])
    wall, cpu = clock.end - clock.start, clock.cpu_end - clock.cpu_start
    return Run(clock.samples / wall, clock.samples / cpu, acc, ckpt_ms=ckpt_ms)


def runner_loop(data: tuple[TensorDataset, TensorDataset], cfg: Config) -> Run:
    return lightning_loop(data, cfg, runner=True)


def bare_loop(data: tuple[TensorDataset, TensorDataset], cfg: Config) -> Run:
    return lightning_loop(data, cfg, runner=False)


def compare(cfg: Config) -> dict[str, Any]:
    data = synthetic(cfg)
    runs: dict[Any, list[Run]] = {plain_loop: [], bare_loop: [], runner_loop: []}
    fns = list(runs)
    for r in range(cfg.rounds):  # rotate the order: no variant always runs first
        for fn in fns[r % 3 :] + fns[: r % 3]:
            runs[fn].append(fn(data, cfg))
    plain, bare, runner = runs[plain_loop], runs[bare_loop], runs[runner_loop]

    def med(rs: list[Run], attr: str = "samples_per_sec") -> float:
        return statistics.median(getattr(r, attr) for r in rs)

    p, b, n = med(plain), med(bare), med(runner)
    ckpts = [ms for run in runner for ms in run.ckpt_ms]
    return {
        "plain_samples_per_sec": p,
        "bare_samples_per_sec": b,
        "runner_samples_per_sec": n,
        "ratio": n / p,
        "bare_ratio": b / p,
        "runner_vs_bare": n / b,
        "best_ratio": max(r.samples_per_sec for r in runner)
        / max(r.samples_per_sec for r in plain),
        "cpu_ratio": med(runner, "cpu_samples_per_sec") / med(plain, "cpu_samples_per_sec"),
        "cpu_runner_vs_bare": med(runner, "cpu_samples_per_sec") / med(bare, "cpu_samples_per_sec"),
        # What the runner's loop adds per optimizer step, all per-epoch work spread over steps.
        "extra_ms_per_step": 1e3 * cfg.batch / n - 1e3 * cfg.batch / p,
        "step_ms": statistics.median(run.step_ms for run in plain),
        "ckpt_ms": statistics.median(ckpts) if ckpts else 0.0,
        "plain_val_acc": plain[-1].val_acc,
        "runner_val_acc": runner[-1].val_acc,
        "params": sum(t.numel() for t in cfg.model().parameters()),
    }


def report(cfg: Config) -> None:
    """Run the comparison and print it (the lines `python -m bench training` shows)."""
    if cfg.epochs < 2 or cfg.rounds < 1 or cfg.steps < 1:
        raise SystemExit("need --tf-epochs >= 2 (one is warm-up), --tf-rounds/--tf-steps >= 1")
    print(
        f"training loop: transformer encoder classifier (d_model {cfg.d_model}, {cfg.layers} "
        f"layers, seq {cfg.seq_len}x{cfg.features}) on synthetic data, batch {cfg.batch}, "
        f"{cfg.steps} steps/epoch, {cfg.epochs - 1} timed epochs x {cfg.rounds} rounds, 1 thread"
    )
    res = compare(cfg)
    holds = "holds" if res["step_ms"] >= MIN_STEP_MS else "NOT met: raise --tf-batch-size"
    print(
        f"  {res['params'] / 1e6:.2f}M parameters; plain loop step {res['step_ms']:.1f} ms "
        f"(forward+backward+AdamW, median of rounds; >= {MIN_STEP_MS:.0f} ms: {holds})"
    )
    epoch_s = cfg.steps * cfg.batch / res["runner_samples_per_sec"]
    print(
        f"  runner last.ckpt (default policy: every 50 steps, every 10 min, at the end): "
        f"{res['ckpt_ms']:.1f} ms a write ({100 * res['ckpt_ms'] / 1e3 / epoch_s:.1f}% of a "
        f"{epoch_s:.2f} s epoch; at 10 min: {100 * res['ckpt_ms'] / 1e3 / 600:.3f}%)"
    )
    print(
        f"  val_acc after {cfg.epochs} epochs: plain {res['plain_val_acc']:.3f}, "
        f"runner {res['runner_val_acc']:.3f}"
    )
    print(
        f"  runner adds {res['extra_ms_per_step']:.2f} ms per step (train+val, per-epoch work "
        f"included); cpu-time ratio {res['cpu_ratio']:.3f} (less hurt by other processes)"
    )
    print(
        f"cpu fp32 transformer: bare Lightning / plain {res['bare_ratio']:.3f}; runner / bare "
        f"Lightning {res['runner_vs_bare']:.3f} (target >= 0.99; cpu-time "
        f"{res['cpu_runner_vs_bare']:.3f})"
    )
    print(
        f"cpu fp32 transformer: plain {res['plain_samples_per_sec']:.1f} samples/s, runner "
        f"{res['runner_samples_per_sec']:.1f} samples/s (medians, train+val epochs), "
        f"ratio {res['ratio']:.3f} (target >= 0.98), best-of-rounds ratio "
        f"{res['best_ratio']:.3f}"
    )
