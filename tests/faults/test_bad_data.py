"""Fault 5, bad data through the toolkit: the job fails before training starts, the failure
reason the job reports is the script's one line naming the file and what was expected, and
nothing reaches the model dir. The same holds for a user's own data module that raises the
runner's error (training.errors.DataError) in setup()."""

from __future__ import annotations

import time

import pytest
import torch

from core.sourcedir import build_sourcedir
from tests import timing
from tests.byo.conftest import SEQCLF, SEQCLF_CONFIG, copy_project
from tests.faults.conftest import make_job
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROW = ",".join(["1"] * 64)
CASES = {
    # name: (file contents or None for an empty channel folder, expected line after the path)
    "empty-file": (
        b"",
        ": empty file; expected comma-separated rows of 64 numbers followed by "
        "an integer label 0..9",
    ),
    "no-csv-files": (
        None,
        ": no .csv files in channel 'train'; expected comma-separated rows "
        "of 64 numbers followed by an integer label 0..9",
    ),
    "wrong-format": (
        f"{ROW},3\n{ROW[:-1]}x,3\n".encode(),
        ":2: column 64 is not a number: "
        "'x'; expected comma-separated rows of 64 numbers followed by an integer "
        "label 0..9",
    ),
    "wrong-shape": (b"1,2,3\n", ":1: 3 columns; expected 65 (64 features + 1 label)"),
    "wrong-label": (
        f"{ROW},3\n{ROW},12\n".encode(),
        ":2: label '12' is out of range; expected an integer 0..9",
    ),
}
#: The user project's case: its data module (seqclf/data.py) finds a tensor, not a pair.
USER_LINE = ": expected a (sequences, labels) pair saved with torch.save, got Tensor"


def _user_project_job(root):
    """The seqclf project's bundle with a channel file its data module refuses."""
    project = copy_project(SEQCLF, root)
    bundle = root / "sourcedir.tar.gz"
    build_sourcedir(bundle, image_family="current", project=project, config=SEQCLF_CONFIG)
    channel = root / "data"
    channel.mkdir()
    torch.save(torch.zeros(3), channel / "part-0.pt")
    return make_job(
        root / "job",
        bundle,
        hosts=1,
        hps={"config": SEQCLF_CONFIG, "epochs": "1"},
        channels={contract.TRAIN_CHANNEL: channel},
        job_name="bad-user-data",
    )


def test_bad_channels_fail_before_training_with_one_line(tmp_path, real_bundle, record_property):
    jobs = {}
    for name, (content, _) in CASES.items():
        channel = tmp_path / name / "data"
        channel.mkdir(parents=True)
        if content is not None:
            (channel / "part-0.csv").write_bytes(content)
        else:
            (channel / "README.txt").write_text("not data")
        job = make_job(
            tmp_path / name / "job",
            real_bundle,
            hosts=1,
            hps={"epochs": "1"},
            store=tmp_path / name / "store",
            channels={contract.TRAIN_CHANNEL: channel},
            job_name=f"bad-{name}",
        )
        jobs[name] = job
    user = _user_project_job(tmp_path / "user")
    started = time.monotonic()
    for job in [*jobs.values(), user]:  # plain (one-process) jobs: they may run side by side
        job.start()
    seconds = {}
    for name, job in jobs.items():
        assert timing.finish(job, 180, name) != [0], name
        seconds[name] = time.monotonic() - started
        host = job.hosts[0]
        data = host.base_dir / "input" / "data" / contract.TRAIN_CHANNEL
        where = data / "part-0.csv" if CASES[name][0] is not None else data
        assert job.failure_reason() == f"algo-1 (127.0.0.1): {where}{CASES[name][1]}", name
        assert "ExitCode 2" in (host.failure_reason() or "")
        assert job.model_files() == [], name
        assert not any(host.checkpoint_dir.iterdir()), name  # no training step ran
        assert not job.metrics(), name
    assert timing.finish(user, 180, "user") != [0]
    seconds["user"] = time.monotonic() - started
    host = user.hosts[0]
    where = host.base_dir / "input" / "data" / contract.TRAIN_CHANNEL / "part-0.pt"
    assert user.failure_reason() == f"algo-1 (127.0.0.1): {where}{USER_LINE}"
    assert "ExitCode 2" in (host.failure_reason() or "")
    assert "Traceback" not in "\n".join(user.log_lines())
    assert user.model_files() == [] and not any(host.checkpoint_dir.iterdir())
    record_property("slowest_failure_s", round(max(seconds.values()), 1))
    print(f"\nbad data: failed after {seconds} s ({len(seconds)} jobs side by side)")
