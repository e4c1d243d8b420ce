"""The deployed workflow end to end: schedule input -> state machine -> SageMaker -> S3 -> SNS.

Each test starts real executions of the synthesized, deployed state machine on the embedded AWS
and reads the outcome back from the emulator (execution, history, DescribeTrainingJob, S3
objects, the SQS queue subscribed to the stack's topic).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from core import execution_input as ei
from core.execution_input import SCHEDULED_INPUT
from infra import workflow_definition as wd
from localaws.training_jobs import CAPACITY_FAILURE
from tests.job_statuses import COMPLETED, secondary_statuses
from training import contract
from trainops import runs

from .conftest import E2eStack, read_model, run_cli

pytestmark = [pytest.mark.slow]


def _metrics(result: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in result.get("final_metrics", [])}


def _attempt(job_name: str) -> int:
    return int(job_name.rsplit("-", 1)[1])


@pytest.mark.timeout(150)
def test_scheduled_run_trains_on_two_hosts_and_notifies(
    stack: E2eStack, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = stack.start(SCHEDULED_INPUT)
    described = stack.wait(arn)
    assert described["status"] == "SUCCEEDED", described
    result = json.loads(described["output"])

    # One CreateTrainingJob, named after the execution, for the configured 2 CPU hosts.
    (request,) = stack.requests_of(arn)
    name = wd.job_name(stack.config.job_name_prefix, arn, 0)
    assert request["TrainingJobName"] == name == result["job_name"]
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert request["HyperParameters"]["epochs"] == "4"
    assert request["Environment"]["TRAINOPS_TRIGGER"] == "schedule"

    job = stack.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    assert secondary_statuses(job) == COMPLETED

    # The model: one file set (rank 0 only), trained by world size 2.
    assert result["model_artifacts"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert result["model_artifacts"].endswith(f"/{name}/output/model.tar.gz")
    files = read_model(stack, result["model_artifacts"])
    assert sorted(files) == sorted(
        [contract.MODEL_FILE, contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE]
    )
    info = json.loads(files[contract.MODEL_INFO_FILE])
    assert info["cluster"]["world_size"] == 2
    assert info["cluster"]["num_nodes"] == 2
    assert info["epochs_completed"] == 4
    # The resolved task config has the epochs shortcut applied (trainer.max_epochs).
    assert yaml.safe_load(files[contract.MODEL_CONFIG_FILE])["trainer"]["max_epochs"] == 4

    # The execution output and the success notification carry the model and the metrics.
    metrics = _metrics(result)
    assert metrics["val_acc"] >= 0.95, metrics
    assert result["status"] == "COMPLETED"
    assert result["trigger"] == "schedule"
    assert result["attempts"] == 1
    (note,) = stack.notifications(arn)
    assert note["TopicArn"] == stack.topic_arn
    assert note["Subject"].startswith("Training completed")
    assert note["Message"]["model_artifacts"] == result["model_artifacts"]
    assert _metrics(note["Message"])["val_acc"] == metrics["val_acc"]

    # The operator's view agrees.
    run = runs.snapshot(stack.aws, arn)
    assert run.status == "SUCCEEDED" and run.attempt == 1
    assert run.model_artifacts == result["model_artifacts"]
    assert run.metrics["val_acc"] >= 0.95
    _check_registered(stack, result, note, job, capsys)


def _check_registered(
    stack: E2eStack, result: dict, note: dict, job: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model is a registered version: image, model data, hyperparameters, the job's own
    final metrics; `trainops models` lists it and `trainops approve` approves it."""
    arn = result["model_package_arn"]
    assert note["Message"]["model_package_arn"] == arn
    group = stack.outputs.values["ModelPackageGroupName"]
    assert f":model-package/{group.lower()}/" in arn.lower()
    sagemaker = stack.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == result["model_artifacts"]
    assert container["Image"] == stack.outputs.values["ImageUri"]
    props = package["CustomerMetadataProperties"]
    assert props["epochs"] == "4" and props["trainops:training-job"] == result["job_name"]
    code, out, _ = run_cli(stack, capsys, "models", "--json")
    assert code == 0
    listed = json.loads(out)
    mine = next(v for v in listed if v["arn"] == arn)
    expected = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert mine["metrics"] == pytest.approx(expected)
    assert mine["approval"] == "PendingManualApproval"
    code, out, _ = run_cli(stack, capsys, "approve", str(mine["version"]), "--json")
    assert code == 0
    assert json.loads(out)["approval"] == "Approved"
    code, _, error = run_cli(stack, capsys, "approve", "999")
    assert code == 1
    error = error.strip()
    assert error.startswith(f"error: version 999 does not exist in model package group {group}")
    assert "\n" not in error


@pytest.mark.timeout(90)
def test_script_failure_is_not_retried_and_notifies_the_reason(stack: E2eStack) -> None:
    # A value the state machine accepts (a string) and the CLI's input check lets through
    # (it checks enumerated choices only), but the training script rejects.
    before = len(stack.emulator.sagemaker.requests)
    arn = stack.start({"instance_count": 1, "hyperparameters": {"epochs": "0"}})
    described = stack.wait(arn)
    assert described["status"] == "FAILED"
    assert described["error"] == wd.ERROR_JOB_FAILED

    (request,) = stack.requests_of(arn)  # no retry: a user-code failure is final
    assert len(stack.emulator.sagemaker.requests) == before + 1
    assert stack.waits == []
    job = stack.client("sagemaker").describe_training_job(
        TrainingJobName=request["TrainingJobName"]
    )
    reason = "hyperparameter epochs='0' is invalid: expected an integer >= 1"
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: ")
    assert reason in job["FailureReason"] and "\n" not in job["FailureReason"]
    assert reason in described["cause"]

    (note,) = stack.notifications(arn)
    assert note["Subject"].startswith("Training FAILED")
    message = note["Message"]
    assert message["status"] == "FAILED" and message["error"] == wd.ERROR_JOB_FAILED
    assert message["job_name"] == request["TrainingJobName"]
    assert message["attempts"] == 1
    assert reason in message["cause"]
    assert runs.snapshot(stack.aws, arn).failure == job["FailureReason"]


@pytest.mark.timeout(60)
def test_empty_train_channel_fails_before_training_without_retry(stack: E2eStack) -> None:
    empty = f"s3://{stack.outputs.data_bucket}/nothing-here/"
    arn = stack.start({"instance_count": 1, "train_s3_uri": empty})
    described = stack.wait(arn)
    assert described["status"] == "FAILED" and described["error"] == wd.ERROR_JOB_FAILED
    (request,) = stack.requests_of(arn)
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == empty
    job = stack.client("sagemaker").describe_training_job(
        TrainingJobName=request["TrainingJobName"]
    )
    assert "Training" not in secondary_statuses(job)
    assert job["FailureReason"].startswith("ClientError: Data download failed")
    (note,) = stack.notifications(arn)
    assert empty in note["Message"]["cause"]


def _throttle_next_create(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The emulated CreateTrainingJob answers the next call with ThrottlingException."""
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.responses import SageMakerResponse

    throttled: list[str] = []
    installed = SageMakerResponse.create_training_job

    def create_training_job(self):
        if not throttled:
            throttled.append(json.loads(self.body)["TrainingJobName"])
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        return installed(self)

    monkeypatch.setattr(SageMakerResponse, "create_training_job", create_training_job)
    return throttled


@pytest.mark.timeout(120)
def test_throttling_and_capacity_failures_are_retried_with_fresh_names(
    stack: E2eStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Attempt 0: CreateTrainingJob throttled (no job created). Attempt 1: the job is created
    # and fails for capacity. Attempt 2: it runs.
    throttled = _throttle_next_create(monkeypatch)
    stack.emulator.sagemaker.injected_failures.append(CAPACITY_FAILURE)
    arn = stack.start({"instance_count": 1, "hyperparameters": {"epochs": "1"}})
    described = stack.wait(arn)
    assert described["status"] == "SUCCEEDED", described
    result = json.loads(described["output"])

    prefix = stack.config.job_name_prefix
    names = [wd.job_name(prefix, arn, attempt) for attempt in range(3)]
    assert throttled == names[:1]
    assert runs.training_jobs_of(stack.aws, arn) == names
    received = stack.requests_of(arn)
    assert [r["TrainingJobName"] for r in received] == names[1:]
    assert [_attempt(r["TrainingJobName"]) for r in received] == [1, 2]
    # Same run: one checkpoint prefix for every attempt, the attempt in the tags.
    assert len({r["CheckpointConfig"]["S3Uri"] for r in received}) == 1
    assert received[0]["CheckpointConfig"]["S3Uri"].endswith(f"/{wd.run_id(arn)}/")
    assert [{t["Key"]: t["Value"] for t in r["Tags"]}["trainops:attempt"] for r in received] == [
        "1",
        "2",
    ]

    sagemaker = stack.client("sagemaker")
    first = sagemaker.describe_training_job(TrainingJobName=names[1])
    assert (first["TrainingJobStatus"], first["FailureReason"]) == ("Failed", CAPACITY_FAILURE)
    second = sagemaker.describe_training_job(TrainingJobName=names[2])
    assert second["TrainingJobStatus"] == "Completed"

    # The configured exponential backoff, one wait per retry (time-warped here).
    table = wd.backoff_table(stack.config.max_capacity_retries, 300, 3600)
    assert stack.waits == table[:2]
    assert result["attempts"] == 3 and result["job_name"] == names[2]
    (note,) = stack.notifications(arn)
    assert note["Message"]["attempts"] == 3
    assert note["Message"]["model_artifacts"] == second["ModelArtifacts"]["S3ModelArtifacts"]


@pytest.mark.timeout(60)
def test_capacity_on_every_attempt_fails_with_the_cap_message(stack: E2eStack) -> None:
    cap = stack.config.max_capacity_retries
    stack.emulator.sagemaker.injected_failures.extend([CAPACITY_FAILURE] * (cap + 1))
    arn = stack.start({"instance_count": 1})
    described = stack.wait(arn)
    assert described["status"] == "FAILED"
    assert described["error"] == wd.ERROR_CAPACITY

    received = stack.requests_of(arn)
    names = [wd.job_name(stack.config.job_name_prefix, arn, a) for a in range(cap + 1)]
    assert [r["TrainingJobName"] for r in received] == names
    assert stack.waits == wd.backoff_table(cap, 300, 3600)
    assert described["cause"].startswith(
        f"training job {names[-1]} got no capacity in {cap + 1} attempt(s); "
        "last failure: States.TaskFailed: "
    )
    assert "CapacityError" in described["cause"]

    (note,) = stack.notifications(arn)
    assert note["Subject"].startswith("Training FAILED")
    assert note["Message"]["error"] == wd.ERROR_CAPACITY
    assert note["Message"]["attempts"] == cap + 1
    assert note["Message"]["cause"] == described["cause"]


BAD_INPUTS = [
    (["epochs", "5"], ei.MSG_NOT_OBJECT),
    ({"instance_count": 0}, ei.MSG_INSTANCE_COUNT),
    ({"instance_count": 1.5}, ei.MSG_INSTANCE_COUNT),
    ({"instance_count": "2"}, ei.MSG_INSTANCE_COUNT),
    ({"instance_type": "p4d"}, ei.MSG_INSTANCE_TYPE),
    ({"hyperparameters": {"epochs": 5}}, ei.MSG_HYPERPARAMETER_VALUE),
    ({"hyperparameters": ["epochs", "5"]}, ei.MSG_HYPERPARAMETERS),
    ({"train_s3_uri": "https://bucket/train/"}, ei.MSG_TRAIN_S3_URI),
    ({"spot": "yes"}, ei.MSG_SPOT),
    ({"trigger": "cron"}, ei.MSG_TRIGGER),
    ({"surprise": True}, ei.MSG_UNKNOWN_KEY),
]


@pytest.mark.timeout(60)
def test_bad_execution_input_fails_before_any_training_job(stack: E2eStack) -> None:
    before = len(stack.emulator.sagemaker.requests)
    started = {}
    for data, message in BAD_INPUTS:
        # The CLI's validator rejects it with the same rule...
        with pytest.raises(ei.ExecutionInputError, match=re.escape(message)):
            ei.validate_execution_input(data)
        # ...and so does the state machine, when a caller skips the CLI.
        started[stack.start(data, validate=False)] = (data, message)
    for arn, (data, message) in started.items():
        described = stack.wait(arn, timeout_s=30)
        assert (described["status"], described.get("error"), described.get("cause")) == (
            "FAILED",
            wd.ERROR_INVALID_INPUT,
            message,
        ), data
        history = stack.history(arn)
        assert not [e for e in history if e["type"] == "TaskScheduled"], data
    assert len(stack.emulator.sagemaker.requests) == before
    # The state machine cannot notify a run it rejects: the outcome rule does, with the reason.
    for arn, (_, message) in started.items():
        (note,) = stack.notifications(arn)
        assert note["Message"]["status"] == "FAILED"
        assert (note["Message"]["error"], note["Message"]["cause"]) == (
            wd.ERROR_INVALID_INPUT,
            message,
        )
