"""The project's Lightning training loop vs a plain PyTorch loop: same model, data and batch.

One process, torch.set_num_threads(1). Each round runs both loops for a few epochs (the first
epoch is warm-up and not timed), alternating which goes first; the medians of the rounds give
samples/s of each and the ratio Lightning / plain (target >= 0.98 at the default model and
batch). With CUDA the same comparison runs there in bf16 autocast; without it that part prints
"skipped: no CUDA". A second CPU comparison (bench/training_transformer.py, `--tf-*` flags)
does the same for a user-style transformer LightningModule under the runner's Trainer setup.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from bench import parser as bench_parser


def _data(repeat: int = 1) -> TensorDataset:
    """The default task's training split, tiled `repeat` times.

    Digits' split is 6 batches of 256: per-epoch work (hooks, metric lines, loader restarts)
    would be weighed against 6 steps. Tiling gives both loops the same longer epochs, so the
    ratio measures the training loop itself; `--repeat 1` shows the raw digits figure.
    """
    import numpy as np

    from training.tasks.digits.data import VAL_FRACTION, load_default_arrays

    x, y = load_default_arrays()
    order = np.random.default_rng(42).permutation(len(y))
    train = order[max(1, round(len(y) * VAL_FRACTION)) :]
    xs, ys = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    return TensorDataset(xs.repeat(repeat, 1), ys.repeat(repeat))


def _net(dataset: TensorDataset) -> torch.nn.Module:
    from training.tasks.digits.data import NUM_CLASSES, NUM_FEATURES
    from training.tasks.digits.model import MLP

    torch.manual_seed(0)
    net = MLP(NUM_FEATURES, NUM_CLASSES)
    x = dataset.tensors[0]
    net.set_normalization(x.mean(0), x.std(0).clamp_min(1e-6))
    return net


def plain_loop(
    dataset: TensorDataset, batch: int, epochs: int, device: str, bf16: bool
) -> tuple[float, float]:
    net = _net(dataset).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = DataLoader(dataset, batch_size=batch, shuffle=True)
    samples, start, cpu_start = 0, 0.0, 0.0
    for epoch in range(epochs):
        if epoch == 1:
            _sync(device)
            start, cpu_start, samples = time.perf_counter(), time.process_time(), 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            samples += len(y)
    _sync(device)
    return _rates(samples, start, cpu_start)


def lightning_loop(
    dataset: TensorDataset, batch: int, epochs: int, device: str, bf16: bool
) -> tuple[float, float]:
    import pytorch_lightning as pl

    from training.callbacks import callbacks_for
    from training.tasks.digits.module import DigitsClassifier

    class Clock(pl.Callback):
        start = cpu_start = 0.0
        samples = 0

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 1:
                _sync(device)
                self.start, self.cpu_start = time.perf_counter(), time.process_time()
                self.samples = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch_, batch_idx) -> None:
            self.samples += len(batch_[0])

    clock = Clock()
    module = DigitsClassifier(lr=1e-3)
    # The plain loop's exact network: same initial weights and input normalisation.
    module.net.load_state_dict(_net(dataset).state_dict())
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if bf16 else "32",
        max_epochs=epochs,
        callbacks=[callbacks_for("pytorch_lightning").MetricLines(world_size=1), clock],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dataloaders=DataLoader(dataset, batch_size=batch, shuffle=True))
    _sync(device)
    return _rates(clock.samples, clock.start, clock.cpu_start)


def _rates(samples: int, start: float, cpu_start: float) -> tuple[float, float]:
    """Samples per wall second and per second of process CPU time; the latter is less hurt
    when other processes share the cores (with CUDA it leaves out time spent waiting)."""
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return samples / wall, samples / cpu


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def compare(
    device: str, bf16: bool, batch: int, epochs: int, rounds: int, repeat: int = 8
) -> dict[str, float]:
    dataset = _data(repeat)
    plain: list[tuple[float, float]] = []
    light: list[tuple[float, float]] = []
    for r in range(rounds):
        order = [plain_loop, lightning_loop] if r % 2 == 0 else [lightning_loop, plain_loop]
        for fn in order:
            rates = fn(dataset, batch, epochs, device, bf16)
            (plain if fn is plain_loop else light).append(rates)
    result = {
        "plain_samples_per_sec": statistics.median(w for w, _ in plain),
        "lightning_samples_per_sec": statistics.median(w for w, _ in light),
    }
    result["ratio"] = result["lightning_samples_per_sec"] / result["plain_samples_per_sec"]
    # Best-of-rounds: the least disturbed run of each (other processes share the cores).
    result["best_ratio"] = max(w for w, _ in light) / max(w for w, _ in plain)
    result["cpu_ratio"] = statistics.median(c for _, c in light) / statistics.median(
        c for _, c in plain
    )
    return result


def main(argv: list[str]) -> int:
    import logging
    import warnings

    from bench.training_transformer import Config
    from bench.training_transformer import report as report_transformer

    parser = bench_parser("training", __doc__)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6, help="per run; the first is warm-up")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=8, help="tile the training split N times")
    parser.add_argument("--only", choices=("mlp", "transformer"), help="run one comparison")
    tf = Config()
    parser.add_argument("--tf-batch-size", type=int, default=tf.batch)
    parser.add_argument("--tf-steps", type=int, default=tf.steps, help="steps per epoch")
    parser.add_argument("--tf-epochs", type=int, default=tf.epochs, help="first is warm-up")
    parser.add_argument("--tf-rounds", type=int, default=tf.rounds)
    parser.add_argument("--tf-d-model", type=int, default=tf.d_model)
    parser.add_argument("--tf-layers", type=int, default=tf.layers)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    if args.only != "transformer":
        _report_mlp(args)
    if args.only != "mlp":
        report_transformer(
            Config(
                batch=args.tf_batch_size,
                steps=args.tf_steps,
                epochs=args.tf_epochs,
                rounds=args.tf_rounds,
                d_model=args.tf_d_model,
                layers=args.tf_layers,
            )
        )
    return 0


def _report_mlp(args: argparse.Namespace) -> None:
    from training.tasks.digits.model import HIDDEN_SIZES

    print(
        f"training loop: MLP 64-{'-'.join(map(str, HIDDEN_SIZES))}-10 on digits, batch "
        f"{args.batch_size}, {args.epochs - 1} timed epochs x {args.rounds} rounds, 1 thread"
    )
    cpu = compare("cpu", False, args.batch_size, args.epochs, args.rounds, args.repeat)
    print(
        f"cpu fp32: plain {cpu['plain_samples_per_sec']:.0f} samples/s, lightning "
        f"{cpu['lightning_samples_per_sec']:.0f} samples/s (medians), ratio {cpu['ratio']:.3f} "
        f"(target >= 0.98), best-of-rounds ratio {cpu['best_ratio']:.3f}, cpu-time ratio "
        f"{cpu['cpu_ratio']:.3f}"
    )
    if torch.cuda.is_available():
        gpu = compare("cuda", True, args.batch_size, args.epochs, args.rounds, args.repeat)
        print(
            f"cuda bf16: plain {gpu['plain_samples_per_sec']:.0f} samples/s, lightning "
            f"{gpu['lightning_samples_per_sec']:.0f} samples/s (medians), "
            f"ratio {gpu['ratio']:.3f}, best-of-rounds ratio {gpu['best_ratio']:.3f}"
        )
    else:
        print("cuda bf16: skipped: no CUDA")
