"""A project written for SageMaker's PyTorch estimator (tests/fixtures/user_projects/
estimator_project): its LightningCLI subclass names the classes and fixes the optimizer and
scheduler (`parser.add_optimizer_args(torch.optim.AdamW)`, the config's `optimizer:` holding
only init args), the classes come through star imports, and the config names /opt/ml paths.
Each of these once stopped it here although SageMaker would have run it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import timing
from tests.byo.conftest import ESTIMATOR_CONFIG
from training import config_forms, contract
from training.task import check, read_config
from trainops.local_train import run_local_training
from trainops.rehearsal import from_deployment
from trainops.task_check import check_task


def test_the_cli_subclass_call_names_the_classes_and_fixes_the_optimizer(estimator):
    """It once answered `model: in train.yaml names no class ... and no LightningCLI(...)
    call in the project names one` (the call is `CLI(...)`, the classes star-imported)."""
    check_task(estimator, {"config": ESTIMATOR_CONFIG}, world_size=2)
    task = check(ESTIMATOR_CONFIG, {}, code_root=estimator, world_size=2)
    for class_path in (
        "models.MaskDenoiser",
        "data.SpectraData",
        "torch.optim.AdamW",
        "lightning.pytorch.cli.ReduceLROnPlateau",
    ):
        assert f"class_path: {class_path}\n" in task.resolved_config
    assert (task.lr_key, task.base_lr, task.lr) == ("optimizer.init_args.lr", 0.01, 0.02)


def test_a_fixed_optimizer_under_another_key_fills_nothing(estimator):
    main = estimator / "main.py"
    main.write_text(
        main.read_text().replace("(torch.optim.AdamW)", '(torch.optim.AdamW, nested_key="gen")')
    )
    assert config_forms.cli_classes(estimator) == {
        "model": "models.MaskDenoiser",
        "data": "data.SpectraData",
        "lr_scheduler": "lightning.pytorch.cli.ReduceLROnPlateau",
    }


def test_opt_ml_paths_in_the_config_are_the_simulated_hosts_folder(estimator, monkeypatch):
    config = estimator / ESTIMATOR_CONFIG
    monkeypatch.delenv(contract.BASE_DIR_ENV, raising=False)
    on_sagemaker = read_config(config, estimator)
    assert on_sagemaker["data"]["init_args"]["data_dir"] == "/opt/ml/input/data"
    monkeypatch.setenv(contract.BASE_DIR_ENV, "/jobs/j1/hosts/algo-2/")
    moved = read_config(config, estimator)
    assert moved["data"]["init_args"]["data_dir"] == "/jobs/j1/hosts/algo-2/input/data"
    logger = moved["trainer"]["logger"]["init_args"]
    assert logger["save_dir"] == "/jobs/j1/hosts/algo-2/model"
    assert config_forms.host_paths(["/opt/mlx", "/opt/ml"], {contract.BASE_DIR_ENV: "/h"}) == [
        "/opt/mlx",
        "/h",
    ]


def _pairs(into: Path, frames: int = 512, bins: int = 32) -> Path:
    """Clean magnitude frames (a few harmonics each) and the same frames with noise."""
    rng = np.random.default_rng(0)
    clean = np.zeros((frames, bins), dtype=np.float32)
    for row, f0 in zip(clean, rng.integers(1, 6, frames), strict=True):
        row[f0::f0] = rng.uniform(0.5, 1.0, len(row[f0::f0]))
    noisy = clean + rng.uniform(0.0, 0.6, clean.shape).astype(np.float32)
    into.mkdir(parents=True)
    np.savez(into / "pairs.npz", noisy=noisy, clean=clean)
    return into


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_it_trains_unchanged_on_two_hosts_as_the_deployment_runs_it(estimator, tmp_path):
    lines: list[str] = []
    result = run_local_training(
        source_dir=estimator,
        config=ESTIMATOR_CONFIG,
        hosts=2,
        data_dir=_pairs(tmp_path / "train"),
        root=tmp_path / "jobs",
        job_name="estimator",
        rehearsal=from_deployment(),
        echo=lines.append,
        timeout_s=timing.bound(300),
    )
    assert result.exit_codes == [0, 0], result.failure
    log = (result.root / "logs" / "algo-1.log").read_text()
    losses = [
        contract.parse_metric_line(line)["train_loss"]
        for line in log.splitlines()
        if line.startswith(contract.METRIC_LINE_PREFIX)
    ]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    assert result.metrics["lr-AdamW"] > 0  # the fixed scheduler's optimizer, monitored
    # the config's logger wrote into algo-1's model dir (model.tar.gz), nowhere else
    events = [p for p in result.model_files if p.name.startswith("events.out.tfevents")]
    assert [p.parent.name for p in events] == ["denoiser-1.0.0"], result.model_files
    assert not Path("/opt/ml/model/denoiser-1.0.0").exists()
