"""The SMDDP image family's runner (Lightning 2.2.5, jsonargparse 4.27.7, py311 wheels) carries a
user project too: installed offline into that image's stand-in, through the real toolkit."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.sourcedir import build_sourcedir
from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from tests import timing
from tests.byo.conftest import REGRESS_CONFIG
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(project: Path, root: Path, hosts: int, **hps: str) -> LocalTrainingJob:
    bundle = root / "sourcedir.tar.gz"
    build_sourcedir(bundle, image_family="smddp", project=project)
    params = {**contract.runner_defaults(), "config": REGRESS_CONFIG, **hps}
    params.update(
        script_mode_hyperparameters(
            submit_directory=str(bundle),
            job_name="smddp-family",
            instance_type="ml.m5.xlarge",
            backend="torchrun",
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


def test_pytorch_lightning_2_2_project_trains_on_two_hosts(regress, tmp_path):
    job = _run(regress, tmp_path, hosts=2, epochs="3")
    assert job.poll() == [0, 0], job.failure_reason()
    assert sorted(p.name for p in job.model_files()) == sorted(
        [contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE, contract.MODEL_FILE]
    )
    assert "pytorch_lightning==2.2.5" in (job.model_files()[0].parent / "config.yaml").read_text()
    assert "val_rmse" in job.metrics()
    # The image has no TensorBoard: the family's wheelhouse brings the writer (tensorboardX).
    events = job.hosts[0].base_dir / "output" / "tensorboard"
    assert list(events.glob("events.out.tfevents.*")), job.log_lines()[-20:]


def test_wrongly_typed_override_is_the_same_line_on_jsonargparse_4_27(regress, tmp_path):
    job = _run(regress, tmp_path, hosts=1, **{"model.init_args.hidden": "wide"})
    assert job.poll() == [1]
    assert job.failure_reason().endswith(
        "hyperparameter model.init_args.hidden='wide' is invalid: expected int "
        "(regress.model.WaveRegressor)"
    )
    assert job.model_files() == []
