"""The local job runner drives the real SageMaker toolkit: hosts, ranks, failures, checkpoints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from localjob.checkpoint_sync import DirCheckpointStore
from localjob.hosts import host_names
from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from tests import timing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _job(tmp_path: Path, bundle: Path, *, hosts: int, procs: int, **hps: str) -> LocalTrainingJob:
    params = script_mode_hyperparameters(
        submit_directory=str(bundle),
        job_name="stub",
        instance_type="ml.m5.xlarge",
        backend="torchrun" if hosts * procs > 1 else "none",
        processes_per_host=procs,
    )
    params.update(hps)
    spec = LocalJobSpec(
        job_name="stub",
        hyperparameters=params,
        instance_count=hosts,
        checkpoint_store=DirCheckpointStore(tmp_path / "store"),
    )
    return LocalTrainingJob(spec, tmp_path / "job")


def test_two_hosts_two_processes_get_distinct_ranks_and_one_model(tmp_path, stub_bundle):
    job = _job(tmp_path, stub_bundle, hosts=2, procs=2)
    job.start()
    assert timing.finish(job, 180) == [0, 0]
    # The ranks of one host share its stdout and their lines may interleave: match, not split.
    found = re.findall(r"stub rank=(\d+) world=(\d+)", "\n".join(job.log_lines()))
    assert sorted(found) == [("0", "4"), ("1", "4"), ("2", "4"), ("3", "4")]
    models = job.model_files()
    assert [p.relative_to(tmp_path / "job").as_posix() for p in models] == [
        "hosts/algo-1/model/model.json"
    ]
    assert json.loads(models[0].read_text()) == {"world_size": 4, "hosts": host_names(2)}
    assert (tmp_path / "store" / "last.ckpt").read_text() == "step=1"
    assert job.metrics()["val_acc"] == pytest.approx(0.90)


def test_a_failing_rank_fails_the_job_naming_its_host(tmp_path, stub_bundle):
    job = _job(tmp_path, stub_bundle, hosts=2, procs=1, fail_rank="1")
    job.start()
    codes = timing.finish(job, 180)
    assert codes[1] != 0
    reason = job.failure_reason()
    assert reason is not None and reason.startswith("algo-2 (127.0.0.2):")
    assert job.model_files() == [] or all("algo-1" in str(p) for p in job.model_files())


def test_checkpoints_are_restored_into_every_host(tmp_path, stub_bundle):
    store = tmp_path / "store"
    store.mkdir()
    (store / "previous.ckpt").write_text("old")
    job = _job(tmp_path, stub_bundle, hosts=2, procs=1)
    job.prepare()
    for host in job.hosts:
        assert (host.checkpoint_dir / "previous.ckpt").read_text() == "old"
        config = json.loads((host.base_dir / "input/config/resourceconfig.json").read_text())
        assert config["hosts"] == ["127.0.0.1", "127.0.0.2"]


@pytest.mark.parametrize("count", [0, 10])
def test_host_count_outside_what_loopback_names_allow_is_refused(count):
    with pytest.raises(ValueError, match=f"instance_count={count} cannot run locally"):
        host_names(count)
