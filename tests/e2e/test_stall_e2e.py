"""The deployed workflow with a 2-host job whose rank 1 stops consuming data (the test-only
fault injector on the job's PYTHONPATH), and a job stopped with StopTrainingJob then restarted.

A stall fails the job within stall_timeout_s plus bounded slack: the watchdog's one line is the
FailureReason, the state machine's notification and what `trainops watch` shows; both hosts'
logs hold their ranks' Python stacks. A stop ends as Stopped (nothing reaches the processes,
as in a PyTorch DLC), the synced checkpoint is at most checkpoint_every_minutes old, and a job
with the same checkpoint location resumes from it.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from infra import workflow_definition as wd
from localaws.job_s3 import parse_s3_uri
from tests import timing
from tests.e2e.conftest import E2eStack
from training import contract
from training import watchdog as dog
from trainops import runs

INJECTOR = Path(__file__).resolve().parents[1] / "fixtures" / "fault_injector"
STALL_S = 5
SLACK_S = 15  # the watchdog's poll, the peer's stack dump, the emulator stopping the other host


@pytest.mark.timeout(150)
def test_a_stalled_rank_fails_the_run_with_one_line_everywhere(
    stack: E2eStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debug = tmp_path / "debug"
    environment = stack.emulator.sagemaker.environment
    monkeypatch.setitem(environment, "PYTHONPATH", str(INJECTOR))
    monkeypatch.setitem(environment, "TRAINOPS_TEST_FAULT", "data:1:3")
    monkeypatch.setitem(environment, contract.DEBUG_DIR_ENV, str(debug))
    arn = stack.start({"hyperparameters": {"epochs": "50", "stall_timeout_s": str(STALL_S)}})
    described = stack.wait(arn)
    assert described["status"] == "FAILED" and described["error"] == wd.ERROR_JOB_FAILED

    (request,) = stack.requests_of(arn)
    name = request["TrainingJobName"]
    job = stack.describe_job(name)
    line = (
        f"stalled: no progress for {STALL_S} s (stall_timeout_s={STALL_S}): rank 1 on 127.0.0.2 "
        "in loading the next batch after step 3; rank 0 on 127.0.0.1 in training step after "
        f"step 3; {dog.STACKS_NOTE}"
    )
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ") and line in job["FailureReason"]
    (note,) = stack.notifications(arn)
    assert note["Subject"].startswith("Training FAILED") and line in note["Message"]["cause"]
    assert runs.snapshot(stack.aws, arn).failure == job["FailureReason"]  # trainops watch

    run = stack.emulator.sagemaker.runs[name]
    for host in run.job.hosts:  # each host's log holds its rank's stacks
        text = host.log_path.read_text(errors="replace")
        assert len(re.findall(r"\[stall watchdog\] Python stacks of every thread", text)) == 1
    assert "fault_injector/sitecustomize.py" in run.job.hosts[1].log_path.read_text()
    last_step = json.loads((debug / "progress-rank-1.json").read_text())
    assert last_step["global_step"] == 3
    waited = run.job.ended_at - (debug / "progress-rank-1.json").stat().st_mtime
    assert waited < STALL_S + timing.bound(SLACK_S), waited


@pytest.mark.timeout(200)
def test_a_stopped_job_ends_stopped_with_a_recent_checkpoint_and_a_restart_resumes(
    stack: E2eStack,
) -> None:
    interval_min = 0.05  # 3 s
    arn = stack.start(
        {
            "instance_count": 1,
            "hyperparameters": {
                "epochs": "100000",
                "checkpoint_every_n_steps": "1000000",  # the time interval alone
                "checkpoint_every_minutes": str(interval_min),
            },
        }
    )
    name = stack.wait_for_job(arn, "Training")
    (request,) = stack.requests_of(arn)
    bucket, prefix = parse_s3_uri(request["CheckpointConfig"]["S3Uri"])
    s3, sagemaker = stack.client("s3"), stack.client("sagemaker")
    key = f"{prefix}{contract.CHECKPOINT_FILE}"

    def checkpoint() -> dict | None:
        try:
            return s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError:
            return None

    timing.wait_until(checkpoint, 120, f"s3://{bucket}/{key}", seen=lambda: stack.seen(arn))
    sagemaker.stop_training_job(TrainingJobName=name)
    timing.wait_until(
        lambda: stack.describe_job(name)["TrainingJobStatus"] == "Stopped",
        60,
        f"{name} Stopped",
        seen=lambda: stack.seen(arn),
    )
    job = stack.describe_job(name)
    saved = checkpoint()
    age = (job["TrainingEndTime"] - saved["LastModified"]).total_seconds()
    # At most the interval (+ S3's whole-second times and the 0.5 s sync), written by time.
    assert age <= interval_min * 60 + timing.bound(2), age
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    saved_step = _step(body)
    assert saved_step > 0
    stack.wait(arn)

    # A restart with the same checkpoint location resumes from that checkpoint.
    again = f"{name[:50]}-r{uuid.uuid4().hex[:6]}"
    sagemaker.create_training_job(**{**request, "TrainingJobName": again})
    run = timing.wait_until(lambda: stack.emulator.sagemaker.runs.get(again), 10, again)
    resumed = timing.wait_until(
        lambda: (
            run.job is not None
            and re.search(r"resuming from \S+ at global step (\d+)", "\n".join(run.job.log_lines()))
        ),
        120,
        f"{again} resuming",
        seen=lambda: "\n".join(run.job.log_lines()[-30:]) if run.job else "no job yet",
    )
    sagemaker.stop_training_job(TrainingJobName=again)
    assert int(resumed.group(1)) == saved_step
    timing.wait_until(
        lambda: stack.describe_job(again)["TrainingJobStatus"] == "Stopped", 60, f"{again} Stopped"
    )


def _step(body: bytes) -> int:
    import io

    import torch

    return int(torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)["global_step"])
