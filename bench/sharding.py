"""DDP vs FSDP at 4 ranks: what each rank holds, its peak memory, and the throughput.

The same residual-MLP model (Block layers, AdamW) trains a few steps on 4 CPU processes over
gloo, once under DistributedDataParallel (every rank a full copy) and once sharded by the
runner's own code (training/sharding.py `shard`: each Block, then each top-level child), built
on the meta device first so no rank ever holds the whole model (what a `configure_model` that
creates its layers under `torch.device("meta")` gets from Lightning's materialization). Per rank
it counts the bytes of parameters, gradients and optimizer state that rank holds after a step
(target: FSDP <= 0.3 of DDP), its peak resident memory above what the process held before the
model was built, and the samples/s of all ranks together.

With 2+ CUDA devices the same comparison runs there (NCCL, bf16 autocast, torch's peak
allocated GPU memory); without them that part prints "skipped".
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import time
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from bench import parser as bench_parser

WORLD = 4


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class Net(nn.Module):
    """Stem, `depth` Blocks, head; `device_mesh` as a LightningModule exposes it under the
    runner's ModelParallelStrategy."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.blocks = nn.Sequential(*(Block(width) for _ in range(depth)))
        self.head = nn.Linear(width, 10)
        self.device_mesh: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def _local_bytes(tensors: Any) -> int:
    total = 0
    for t in tensors:
        if t is None or not torch.is_tensor(t):
            continue
        t = t.to_local() if hasattr(t, "to_local") else t
        total += t.numel() * t.element_size()
    return total


def _held_bytes(model: nn.Module, opt: torch.optim.Optimizer) -> int:
    params = list(model.parameters())
    state = [v for s in opt.state.values() for v in s.values()]
    return _local_bytes(params) + _local_bytes(p.grad for p in params) + _local_bytes(state)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(rank: int, mode: str, device: str, args: argparse.Namespace, port: int, out: Any):
    torch.set_num_threads(1)
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.world
    )
    from torch.distributed.device_mesh import init_device_mesh

    from training.cluster import Cluster
    from training.sharding import shard
    from training.sharding_rules import settings

    baseline = _rss_mib()  # imports done: what follows is the model and its training
    torch.manual_seed(0)
    if mode == "ddp":
        model = nn.parallel.DistributedDataParallel(Net(args.width, args.depth).to(device))
    else:
        with torch.device("meta"):  # as in a configure_model that builds on meta
            model = Net(args.width, args.depth)
        model.device_mesh = init_device_mesh(
            device, (args.world, 1), mesh_dim_names=("data_parallel", "tensor_parallel")
        )
        cluster = Cluster("torchrun", "gpu" if device == "cuda" else "cpu", args.world, 1,
                          args.world, 0, rank, rank, backend)  # fmt: skip
        shard(model, settings({"sharding": "fsdp", "shard_layers": "Block"}), cluster)
        model.to_empty(device=device)  # each rank allocates its shards only
        for sub in model.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, args.width, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    times, held = [], 0
    for step in range(args.warmup + args.steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step == 0:
            held = _held_bytes(model, opt)  # gradients and optimizer state exist now
        opt.zero_grad(set_to_none=False)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10 - baseline
    out.put((mode, rank, held / 2**20, peak, statistics.median(times)))
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(mode: str, device: str, args: argparse.Namespace) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(
        _worker, args=(mode, device, args, _free_port(), queue), nprocs=args.world,
        start_method="spawn",
    )  # fmt: skip
    rows = [queue.get(timeout=60) for _ in range(args.world)]
    step_s = max(r[4] for r in rows)  # the slowest rank sets the pace
    return {
        "held_mib": max(r[2] for r in rows),
        "peak_mib": max(r[3] for r in rows),
        "samples_per_s": args.batch * args.world / step_s,
    }


def _report(title: str, peak_label: str, ddp: dict[str, float], fsdp: dict[str, float]) -> None:
    print(title)
    print(f"  {'':34} {'DDP':>10} {'FSDP':>10} {'FSDP/DDP':>9}")
    for key, label in (
        ("held_mib", "params+grads+optimizer per rank MiB"),
        ("peak_mib", peak_label),
        ("samples_per_s", "samples/s (all ranks)"),
    ):
        ratio = fsdp[key] / ddp[key] if ddp[key] else float("nan")
        print(f"  {label:34} {ddp[key]:10.1f} {fsdp[key]:10.1f} {ratio:9.3f}")


def main(argv: list[str]) -> int:
    p = bench_parser("sharding", __doc__)
    p.add_argument("--world", type=int, default=WORLD)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--batch", type=int, default=32, help="per rank")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args(argv)
    params = sum(q.numel() for q in Net(args.width, args.depth).parameters())
    print(f"model: {params / 1e6:.2f} M parameters, AdamW, {args.world} ranks")
    ddp, fsdp = measure("ddp", "cpu", args), measure("fsdp", "cpu", args)
    _report("CPU (gloo, fp32)", "peak RSS above baseline per rank MiB", ddp, fsdp)
    ratio = fsdp["held_mib"] / ddp["held_mib"]
    print(f"  held ratio {ratio:.3f} (target <= 0.3): {'ok' if ratio <= 0.3 else 'MISSED'}")
    if torch.cuda.is_available() and torch.cuda.device_count() >= 2:
        args.world = torch.cuda.device_count()
        gddp, gfsdp = measure("ddp", "cuda", args), measure("fsdp", "cuda", args)
        _report(f"GPU x{args.world} (NCCL, bf16 autocast)", "peak GPU allocated MiB", gddp, gfsdp)
    else:
        print("GPU: skipped: needs 2+ CUDA devices")
    return 0 if ratio <= 0.3 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
