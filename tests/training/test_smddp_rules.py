"""The smddp stand-in (localjob/smddp_standin) refuses what SMDDP refuses, and the runner's
protection (training/smddp_rules.py) makes Lightning's means work on it with NCCL's values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localjob.image_standin import STAND_INS
from tests.training.conftest import REPO, communicate_all, free_port, subprocess_env
from training import smddp_rules

STANDIN = STAND_INS["smddp"][0].parent
REFUSED_AVG = (
    "SMDDP does not support: ReduceOp: a reduction asked for ReduceOp.AVG, which SMDDP lacks: "
    "reduce with ReduceOp.SUM and divide by the world size (self.log(..., sync_dist=True) is "
    "made safe by the runner; a direct torch.distributed call is not); or deploy with "
    "backend=torchrun (NCCL) if the code needs it"
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_ranks_on_the_stand_in(tmp_path: Path) -> None:
    port = free_port()
    env = subprocess_env({"PYTHONPATH": f"{STANDIN}:{REPO}"})
    worker = str(Path(__file__).with_name("smddp_worker.py"))
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(rank), "2", str(port), str(tmp_path)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = communicate_all(procs, 120)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    for got in ranks:
        assert got["backend"] == "smddp"
        # Lightning's own mean (protection off): AVG, refused with SMDDP's line.
        assert got["unprotected_mean"] == {
            "error": "SMDDP does not support: ReduceOp",
            "line": REFUSED_AVG,
        }
        # The runner's protection: NCCL's AVG values (mean of 1 and 2; of 0 and 3).
        assert got["mean"] == [1.5] and got["avg_op"] == 1.5
        assert got["int_mean"] == [1]  # integer tensors stay integer, as on gloo
        assert got["sum"] == [3.0] and got["max"] == [2.0]
        assert got["torchmetrics_mean"] == 1.5  # all_gather: no reduce op involved
        assert got["direct_avg"]["error"] == "SMDDP does not support: ReduceOp"
        assert got["new_group"]["line"].startswith(
            "SMDDP does not support: new_group: torch.distributed.new_group() has no SMDDP "
            "equivalent"
        )


def test_other_errors_are_not_smddp_refusals() -> None:
    assert smddp_rules.explain(RuntimeError("Connection reset by peer")) is None
