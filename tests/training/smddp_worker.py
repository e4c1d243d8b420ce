"""One rank of tests/training/test_smddp_rules.py: collectives on the smddp stand-in, with and
without the runner's protection. Writes what each attempt returned or raised."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import smdistributed.dataparallel.torch.torch_smddp  # noqa: F401  (registers "smddp")
import torch
import torch.distributed as dist
import torchmetrics
from lightning.pytorch.strategies import DDPStrategy

from training import smddp_rules


def main(rank: int, world: int, port: int, out: Path) -> None:
    dist.init_process_group(
        "smddp", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    results: dict[str, object] = {"backend": dist.get_backend()}

    def attempt(name, fn):
        try:
            results[name] = fn()
        except RuntimeError as err:
            results[name] = {"error": str(err), "line": smddp_rules.explain(err)}

    strategy = DDPStrategy()
    value = float(rank + 1)
    attempt("unprotected_mean", lambda: strategy.reduce(torch.tensor([value])).tolist())
    smddp_rules.protect(strategy, "smddp")
    attempt("mean", lambda: strategy.reduce(torch.tensor([value]), reduce_op="mean").tolist())
    attempt(
        "avg_op", lambda: strategy.reduce(torch.tensor([value]), None, dist.ReduceOp.AVG).item()
    )
    attempt("int_mean", lambda: strategy.reduce(torch.tensor([rank * 3])).tolist())
    attempt("sum", lambda: strategy.reduce(torch.tensor([value]), reduce_op="sum").tolist())
    attempt("max", lambda: strategy.reduce(torch.tensor([value]), reduce_op="max").tolist())
    metric = torchmetrics.MeanMetric()
    metric.update(torch.tensor([value, value]))
    attempt("torchmetrics_mean", lambda: metric.compute().item())
    attempt("direct_avg", lambda: dist.all_reduce(torch.ones(1), op=dist.ReduceOp.AVG))
    attempt("new_group", lambda: dist.new_group(backend="gloo"))
    dist.barrier()
    dist.destroy_process_group()
    (out / f"rank-{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
