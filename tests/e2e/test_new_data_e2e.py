"""Retrain on new data, debounced by the marker: a burst of uploads is one run, never two at once.

The e2e stack is deployed with retrain_on_new_data=true. S3 -> EventBridge -> Step Functions
is delivered by the emulator (localaws/event_delivery.py) synchronously inside PutObject, so
"no execution started" is read right after the uploads, without a guessed wait.
"""

from __future__ import annotations

import json

import pytest

from core import execution_input as ei
from localaws.job_s3 import parse_s3_uri
from tests import timing
from trainops import runs

from .conftest import E2eStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(timing.bound(240))]
BURST = 50


def _executions(stack: E2eStack) -> list[dict]:
    sfn = stack.client("stepfunctions")
    return sfn.list_executions(stateMachineArn=stack.state_machine_arn, maxResults=1000)[
        "executions"
    ]


def _upload_burst(stack: E2eStack) -> None:
    """BURST uploads under the train prefix: the dataset file rewritten with its own bytes (the
    channel's content stays what the other tests train on)."""
    s3 = stack.client("s3")
    bucket, prefix = parse_s3_uri(stack.outputs.train_data_uri)
    (key,) = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
        if not o["Key"].endswith(stack.config.retrain_marker)
    ]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    for _ in range(BURST):
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _marker(stack: E2eStack) -> None:
    bucket, _ = parse_s3_uri(stack.outputs.train_data_uri)
    stack.client("s3").put_object(Bucket=bucket, Key=stack.config.retrain_marker_key, Body=b"")


def test_a_burst_then_the_marker_starts_one_run_and_a_second_burst_starts_none(
    stack: E2eStack,
) -> None:
    before = {e["executionArn"] for e in _executions(stack)}
    _upload_burst(stack)
    assert {e["executionArn"] for e in _executions(stack)} == before, "data alone starts nothing"

    _marker(stack)
    started = [e for e in _executions(stack) if e["executionArn"] not in before]
    assert len(started) == 1, started
    first = started[0]["executionArn"]
    execution_input = json.loads(
        stack.client("stepfunctions").describe_execution(executionArn=first)["input"]
    )
    assert execution_input == {"trigger": ei.NEW_DATA_TRIGGER}
    stack.wait_for_job(first, "Training")

    # A second burst and marker while the first run trains: that execution skips itself.
    _upload_burst(stack)
    _marker(stack)
    seen = before | {first}
    (second,) = [e["executionArn"] for e in _executions(stack) if e["executionArn"] not in seen]
    described = stack.wait(second, timeout_s=60)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["status"] == "SKIPPED"
    (first_job,) = runs.training_jobs_of(stack.aws, first)
    assert first_job in output["reason"], "the reason names the run in progress"
    assert not stack.requests_of(second), "a skipped run creates no training job"
    (note,) = stack.notifications(second)
    assert note["Subject"].startswith("Training skipped")
    assert runs.snapshot(stack.aws, second).note == output["reason"]

    # The first run is still the only one training; stop it (its outcome is tested elsewhere).
    assert (
        stack.describe_job(runs.training_jobs_of(stack.aws, first)[-1])["TrainingJobStatus"]
        == "InProgress"
    )
    runs.stop_run(stack.aws, first, cause="new-data test done")
    assert stack.wait(first, timeout_s=60)["status"] == "ABORTED"
