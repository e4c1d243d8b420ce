"""A checkpoint from another model (the user changed the architecture between runs) is one line
naming the checkpoint and the first mismatch, not Lightning's state_dict dump."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import timing
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]


def _train(root: Path, hidden: str):
    return subprocess.run(
        [sys.executable, "training/train.py", "--epochs", "1", "--model.init_args.hidden", hidden],
        cwd=REPO,
        env={**os.environ, contract.LOCAL_ROOT_ENV: str(root)},
        capture_output=True,
        text=True,
        timeout=timing.bound(120),
    )


def test_resuming_with_another_architecture_is_one_line(tmp_path):
    assert _train(tmp_path, "[32]").returncode == 0
    done = _train(tmp_path, "[16]")
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: {tmp_path / 'checkpoints' / 'last.ckpt'} was written by another model "
        "(net.layers.0.weight: copying a param with shape torch.Size([32, 64]) from checkpoint, "
        "the shape in current model is torch.Size([16, 64])): delete the checkpoints in "
        f"{tmp_path / 'checkpoints'} (or give the job a new checkpoint location) to train this "
        "model from scratch"
    )
