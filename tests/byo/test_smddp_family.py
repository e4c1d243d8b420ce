"""The SMDDP image family rehearsed as the default cdk.json deploys it (ml.p4d.24xlarge, backend
auto): Lightning 2.2.5, jsonargparse 4.27.7, py311 wheels, installed offline into that image's
stand-in through the real toolkit, and the process group `smddp` through its stand-in (gloo with
SMDDP's limits), so what SMDDP refuses fails here too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.sourcedir import build_sourcedir
from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from tests import timing
from tests.byo.conftest import REGRESS_CONFIG, SEQCLF_CONFIG
from training import contract
from trainops.local_train import run_local_training
from trainops.rehearsal import from_deployment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_lightning_project_with_sync_dist_and_torchmetrics_trains_under_smddp(seqclf, tmp_path):
    """`import lightning.pytorch as L`, `self.log(..., sync_dist=True)` (a mean: AVG, which
    SMDDP refuses, unless the runner's protection turns it into SUM + divide), a torchmetrics
    metric and one pinned requirement (humanize), with `lightning` itself not listed."""
    assert "lightning" not in (seqclf / "requirements.txt").read_text()
    rehearsal = from_deployment()  # this repo's cdk.json, as `cdk deploy` reads it
    assert (rehearsal.image_family, rehearsal.backend) == ("smddp", "smddp")
    lines: list[str] = []
    result = run_local_training(
        source_dir=seqclf,
        config=SEQCLF_CONFIG,
        hosts=2,
        hyperparameters={"trainer.max_epochs": "2"},
        root=tmp_path,
        job_name="smddp-seqclf",
        rehearsal=rehearsal,
        echo=lines.append,
        timeout_s=timing.bound(300),
    )
    assert result.exit_codes == [0, 0], result.failure
    assert any("rehearsed as torchrun; process group smddp" in line for line in lines)
    names = sorted(p.name for p in result.model_files)
    assert names == sorted(
        [contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE, contract.MODEL_FILE, "labels.json"]
    )
    (info_file,) = (p for p in result.model_files if p.name == contract.MODEL_INFO_FILE)
    info = json.loads(info_file.read_text())
    assert info["cluster"]["backend"] == "smddp" and info["cluster"]["world_size"] == 2
    assert info["versions"]["lightning.pytorch"] == "2.2.5"  # the flavour came with the runner
    assert {"train/nll", "valid/accuracy"} <= set(result.metrics)
    # The image has no TensorBoard: the family's wheelhouse brings the writer (tensorboardX).
    assert list(tmp_path.rglob("output/tensorboard/events.out.tfevents.*")), result.failure


def _run(project: Path, root: Path, hosts: int, **hps: str) -> LocalTrainingJob:
    bundle = root / "sourcedir.tar.gz"
    build_sourcedir(bundle, image_family="smddp", project=project)
    params = {**contract.runner_defaults(), "config": REGRESS_CONFIG, **hps}
    params.update(
        script_mode_hyperparameters(
            submit_directory=str(bundle),
            job_name="smddp-family",
            instance_type="ml.p4d.24xlarge",
            backend="smddp",
        )
    )
    spec = LocalJobSpec(
        job_name="smddp-family",
        hyperparameters=params,
        instance_count=hosts,
        image_family="smddp",
        network_isolation=True,
    )
    job = LocalTrainingJob(spec, root / "job")
    job.start()
    job.wait(timing.bound(300))
    return job


def test_wrongly_typed_override_is_the_same_line_on_jsonargparse_4_27(regress, tmp_path):
    job = _run(regress, tmp_path, hosts=1, **{"model.init_args.hidden": "wide"})
    assert job.poll() == [1]
    assert job.failure_reason().endswith(
        "hyperparameter model.init_args.hidden='wide' is invalid: expected int "
        "(regress.model.WaveRegressor)"
    )
    assert job.model_files() == []
