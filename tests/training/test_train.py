"""The entry point, in process (single device) and as the toolkit runs it (script mode)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import torch

from tests.training.conftest import REPO, run_python, subprocess_env
from training import contract
from training.errors import TrainingError
from training.export import load_model
from training.tasks.digits.data import EXPECTED, DigitsDataModule, write_default_dataset
from training.train import main

#: What the digits task logs (cdk.json's training.metrics).
TASK_METRICS = ("train_loss", "val_loss", "val_acc", "lr")


def metric_lines(out: str) -> list[dict[str, float]]:
    return [
        contract.parse_metric_line(line)
        for line in out.splitlines()
        if line.startswith(contract.METRIC_LINE_PREFIX)
    ]


@pytest.mark.timeout(120)
def test_default_task_reaches_accuracy(local_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    assert main(["--epochs", "3"]) == 0
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    lines = metric_lines(out)
    assert [line.get("epoch") for line in lines] == [0, 1, 2]  # one line per epoch end
    assert lines[-1]["val_acc"] >= 0.95, lines
    assert elapsed < 60

    # Every line: the epoch's training and validation scalars (sorted), then the runner's own.
    for line in lines:
        assert list(line) == ["step", *sorted(TASK_METRICS), *contract.RUNNER_METRICS]
    # SageMaker's MetricDefinitions find every metric in the real output.
    definitions = contract.metric_definitions(TASK_METRICS)
    assert [d["Name"] for d in definitions] == [*TASK_METRICS, *contract.RUNNER_METRICS]
    for definition in definitions:
        found = [float(m) for m in re.findall(definition["Regex"], out)]
        expected = [line[definition["Name"]] for line in lines if definition["Name"] in line]
        assert found == pytest.approx(expected), definition["Name"]

    model_dir = local_env / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE, contract.MODEL_FILE]
    )
    info = json.loads((model_dir / contract.MODEL_INFO_FILE).read_text())
    assert info["metrics"]["val_acc"] == pytest.approx(lines[-1]["val_acc"])
    assert info["hyperparameters"]["epochs"] == 3
    assert info["cluster"]["world_size"] == 1
    assert info["versions"]["torch"] == torch.__version__
    assert info["global_step"] == 21 and info["effective_lr"] == 0.001
    assert info["config"] == "digits" and info["lr_key"] == "model.init_args.lr"
    assert info["classes"] == {
        "model": "training.tasks.digits.module.DigitsClassifier",
        "data": "training.tasks.digits.data.DigitsDataModule",
    }

    # model.pt is the LightningModule's state_dict; config.yaml rebuilds the module.
    state = torch.load(model_dir / contract.MODEL_FILE, weights_only=True)
    assert "net.layers.0.weight" in state and "net.input_std" in state
    module = load_model(model_dir)
    assert not module.training
    assert module.net.input_std.min() > 0  # normalisation travelled with the weights
    from training.tasks.digits.data import DigitsDataModule

    data = DigitsDataModule(channels={}, cache_dir=local_env / "cache")
    data.setup("fit")
    x, y = data.val_set.tensors
    with torch.no_grad():
        accuracy = (module(x).argmax(dim=1) == y).float().mean().item()
    assert accuracy == pytest.approx(info["metrics"]["val_acc"], abs=1e-6)

    ckpt = torch.load(local_env / "checkpoints" / contract.CHECKPOINT_FILE, weights_only=False)
    assert ckpt["global_step"] == 21
    assert list((local_env / "output/data").rglob("metrics.csv"))
    # TensorBoard beside it, where SageMaker uploads from (TensorBoardOutputConfig.LocalPath).
    assert list((local_env / "output/tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.timeout(120)
def test_resume_continues_from_checkpoint(
    local_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--checkpoint_every_n_steps", "4"]
    assert main(["--epochs", "3", "--max_steps", "10", *args]) == 0  # stops early: "interrupted"
    ckpt_path = local_env / "checkpoints" / contract.CHECKPOINT_FILE
    assert torch.load(ckpt_path, weights_only=False)["global_step"] == 10
    capsys.readouterr()

    assert main(["--epochs", "3", *args]) == 0
    captured = capsys.readouterr()
    assert f"resuming from {ckpt_path} at global step 10" in captured.err
    steps = [int(line["step"]) for line in metric_lines(captured.out)]
    assert steps and min(steps) > 10  # no step was trained twice
    info = json.loads((local_env / "model" / contract.MODEL_INFO_FILE).read_text())
    assert info["resumed_from"] == str(ckpt_path)
    assert info["global_step"] == torch.load(ckpt_path, weights_only=False)["global_step"] > 10


BAD_DATA = [
    ("empty", "", "{f}: empty file; expected " + EXPECTED),
    ("malformed", "1,2,oops\n", "{f}:1: 3 columns; expected 65 (64 features + 1 label)"),
    (
        "label-out-of-range",
        ",".join(["0"] * 64) + ",12\n",
        "{f}:1: label '12' is out of range; expected an integer 0..9",
    ),
    ("nan", ",".join(["nan"] * 64) + ",1\n", "{f}:1: column 1 is 'nan'; expected finite numbers"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA]
)
def test_bad_data_fails_before_training(
    local_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    channel = local_env.parent / "train"
    channel.mkdir()
    (channel / "part-0.csv").write_text(text)
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(channel))
    assert main(["--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == "error: " + message.format(
        f=channel / "part-0.csv"
    )
    assert contract.METRIC_LINE_PREFIX not in captured.out
    assert not (local_env / "model").exists() or not any((local_env / "model").iterdir())
    assert not (local_env / "checkpoints" / contract.CHECKPOINT_FILE).exists()


def test_bad_hyperparameter_exit_code(local_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--epochs", "0"]) == 2
    assert capsys.readouterr().err == (
        "error: hyperparameter epochs='0' is invalid: expected an integer >= 1\n"
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_script_mode_like_the_toolkit(tmp_path: Path) -> None:
    """/opt/ml/code holds training/ at its root; the toolkit runs `python training/train.py`
    from there with JSON-encoded values as arguments and a channel from SM_CHANNEL_TRAIN."""
    code = tmp_path / "code"
    shutil.copytree(
        REPO / "training", code / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    write_default_dataset(tmp_path / "data" / "train")
    env = subprocess_env(
        {
            "TRAINING_LOCAL_ROOT": str(tmp_path / "root"),
            "SM_CHANNELS": '["train"]',
            "SM_CHANNEL_TRAIN": str(tmp_path / "data" / "train"),
        }
    )
    env.pop("PYTHONPATH")
    proc = run_python(
        ["training/train.py", "--epochs", '"1"', "--lr_scaling", '"none"', "--batch_size", "128"],
        env,
        cwd=code,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "root/model" / contract.MODEL_INFO_FILE).read_text())
    assert info["hyperparameters"]["lr_scaling"] == "none"
    assert info["hyperparameters"]["epochs"] == 1 and info["hyperparameters"]["batch_size"] == 128
    # The train channel from SM_CHANNEL_TRAIN was read: 1797 rows, 1617 after the split, so
    # one epoch of batch 128 is 13 steps.
    assert f"prepared 1797 training rows from {tmp_path / 'data' / 'train'}" in proc.stderr
    assert info["global_step"] == 13
    assert metric_lines(proc.stdout)[-1]["val_acc"] > 0.9


def test_a_users_own_training_error_in_prepare_data_is_one_line_without_traceback(
    local_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data module's own subclass of the runner's error base (its public API)."""

    class ShardsMissing(TrainingError):
        pass

    line = "s3://bucket/shards: no part-*.tar files; expected the shards written by prep.py"

    def prepare_data(self) -> None:
        raise ShardsMissing(line)

    monkeypatch.setattr(DigitsDataModule, "prepare_data", prepare_data)
    assert main(["--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {line}"
    assert "Traceback" not in err
    assert not (local_env / "checkpoints" / contract.CHECKPOINT_FILE).exists()
