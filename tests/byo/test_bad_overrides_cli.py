"""Typo'd and wrongly typed overrides fail before anything is sent (CLI) and in the job's first
seconds (the entry script), each with one exact line and nothing written to the model dir."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from core.sourcedir import build_sourcedir_bytes
from tests import timing
from tests.byo.conftest import SEQCLF_CONFIG

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # each case starts Python + torch

REPO = Path(__file__).resolve().parents[2]
TYPO = (
    "hyperparameter model.init_args.d_modl='64' is invalid: seqclf.model.SequenceClassifier "
    "takes no argument 'd_modl'; it takes: features, d_model, n_classes, learning_rate"
)
WRONG_TYPE = "hyperparameter trainer.max_epochs='many' is invalid: expected int"


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timing.bound(120),
    )


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


@pytest.mark.parametrize(
    ("override", "line"),
    [("model.init_args.d_modl=64", TYPO), ("trainer.max_epochs=many", WRONG_TYPE)],
)
def test_local_train_refuses_before_any_job_starts(seqclf, tmp_path, override, line):
    root = tmp_path / "runs"
    done = _run(
        [
            "-m",
            "trainops",
            "local-train",
            "--source-dir",
            str(seqclf),
            "--config",
            SEQCLF_CONFIG,
            "--hp",
            override,
            "--root",
            str(root),
        ],
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert _last_line(done.stderr) == f"error: {line}"
    assert not root.exists()  # no bundle built, no host started


def test_start_refuses_before_any_aws_call(tmp_path):
    """Nothing listens on the endpoint: the check must not need one."""
    done = _run(
        [
            "-m",
            "trainops",
            "start",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--hp",
            "model.init_args.hiden=[64]",
        ],
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert _last_line(done.stderr) == (
        "error: hyperparameter model.init_args.hiden='[64]' is invalid: "
        "training.tasks.digits.module.DigitsClassifier takes no argument 'hiden'; it takes: "
        "hidden, lr, in_features, num_classes"
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--model.init_args.d_modl", "64"], TYPO),
        (["--trainer.max_epochs", "many"], WRONG_TYPE),
    ],
)
def test_the_job_refuses_in_its_first_seconds(seqclf, tmp_path, argv, line):
    """The bundle as shipped, its entry script run as the toolkit runs it."""
    code = tmp_path / "code"
    code.mkdir()
    bundle = build_sourcedir_bytes(image_family="current", project=seqclf)
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    model_dir = tmp_path / "model"
    env = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
        "TRAINING_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "SM_CHANNEL_TRAIN": str(tmp_path / "data"),
        "PYTHONPATH": "",
    }
    done = _run(["training/train.py", "--config", SEQCLF_CONFIG, *argv], cwd=code, env=env)
    assert done.returncode == 2, done.stderr
    assert _last_line(done.stderr) == f"error: {line}"
    assert not model_dir.exists() or not any(model_dir.iterdir())
