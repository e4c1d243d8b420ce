"""The state machine's capacity retries, failure notices and job names, run in moto's ASL
interpreter (tests/infra/workflow_moto.py); names also against the Python mirror."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import boto3
import pytest
from botocore.exceptions import ClientError

from infra import workflow_definition as wd
from localaws.api_model import validate_request
from tests import timing
from tests.infra.workflow_moto import ACCOUNT, REGION, SETTINGS, run

JOB_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


# --- Failure handling --------------------------------------------------------------------------
def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateTrainingJob")


CAPACITY = "CapacityError: Unable to provision requested ML compute capacity. Please retry."


def test_capacity_failure_retries_with_a_fresh_name(moto_env):
    spy, _ = moto_env
    spy.failures = [_client_error("ResourceLimitExceeded", CAPACITY)]
    result = run(moto_env, {})
    # The failed attempt's request was sent too: two requests, two different valid names.
    assert result["status"] == "SUCCEEDED", result["cause"]
    names = [r["TrainingJobName"] for r in result["creates"]]
    assert names == [wd.job_name("lightning", result["arn"], i) for i in range(2)]
    for request in result["creates"]:
        validate_request("sagemaker", "CreateTrainingJob", request)
    second = result["creates"][1]
    assert second["HyperParameters"]["sagemaker_job_name"] == names[1]
    # Same checkpoint prefix on every attempt: the retried job resumes.
    assert {r["CheckpointConfig"]["S3Uri"] for r in result["creates"]} == {
        f"s3://artifacts-bucket/checkpoints/{wd.run_id(result['arn'])}/"
    }
    assert result["output"]["attempts"] == 2


def test_capacity_retries_are_capped(moto_env):
    spy, _ = moto_env
    cap = SETTINGS.max_capacity_retries
    spy.failures = [_client_error("ThrottlingException", "Rate exceeded")] + [
        _client_error("ResourceLimitExceeded", CAPACITY) for _ in range(cap)
    ]
    result = run(moto_env, {})
    assert (result["status"], result["error"]) == ("FAILED", wd.ERROR_CAPACITY)
    names = [r["TrainingJobName"] for r in result["creates"]]
    assert len(names) == cap + 1 == len(set(names))
    assert result["cause"].startswith(f"training job {names[-1]} got no capacity in {cap + 1}")
    assert len(result["publishes"]) == 1
    validate_request("sns", "Publish", result["publishes"][0])


def test_other_failure_notifies_and_fails_without_retry(moto_env):
    spy, _ = moto_env
    spy.failures = [_client_error("ValidationException", "Image does not exist")]
    result = run(moto_env, {"trigger": "schedule"})
    assert (result["status"], result["error"]) == ("FAILED", wd.ERROR_JOB_FAILED)
    name = wd.job_name("lightning", result["arn"], 0)
    assert [r["TrainingJobName"] for r in result["creates"]] == [name]
    assert result["cause"].startswith(f"training job {name} failed: ")
    assert "Image does not exist" in result["cause"]
    [publish] = result["publishes"]
    validate_request("sns", "Publish", publish)
    message = json.loads(publish["Message"])
    assert message["job_name"] == name
    assert message["execution"] == result["arn"]
    assert message["trigger"] == "schedule"
    assert message["error"] == wd.ERROR_JOB_FAILED
    assert "Image does not exist" in message["failure_cause"]


# --- Job names ---------------------------------------------------------------------------------
EXECUTION_NAMES = [
    "a",
    "x" * 80,
    "2026-11-21T03-00-00Z_scheduled",
    "retry!(2)@'run'+=1",
    "ünïcødé-名前-実行",
    "UPPER.lower_123",
]


def test_minted_names_in_moto_match_the_python_mirror(moto_env):
    """The MintJobName state itself, for odd and long execution names, attempts 0..cap."""
    cap = SETTINGS.max_capacity_retries
    mint = wd.build_definition(SETTINGS)["States"]["MintJobName"]
    harness = {
        "StartAt": "Seed",
        "States": {
            "Seed": {
                "Type": "Pass",
                "Parameters": {"run_id.$": wd.RUN_ID_EXPRESSION, "attempts.$": "$.attempts"},
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.attempts",
                "ItemSelector": {
                    "run_id.$": "$.run_id",
                    "retry": {"attempt.$": "$$.Map.Item.Value"},
                    "run": {"instance_type": "ml.p4d.24xlarge"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "MintJobName",
                    "States": {
                        "MintJobName": {k: v for k, v in mint.items() if k != "Next"}
                        | {"End": True}
                    },
                },
                "End": True,
            },
        },
    }
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name="mint-harness",
        definition=json.dumps(harness),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
    )["stateMachineArn"]
    for execution_name in EXECUTION_NAMES:
        execution = sfn.start_execution(
            stateMachineArn=arn,
            name=execution_name,
            input=json.dumps({"attempts": list(range(cap + 1))}),
        )["executionArn"]
        described = timing.wait_until(
            lambda e=execution: (
                (d := sfn.describe_execution(executionArn=e))["status"] != "RUNNING" and d
            ),
            10,
            f"{execution} ended",
            interval_s=0.02,
        )
        assert described["status"] == "SUCCEEDED", described.get("cause")
        names = [item["job"]["name"] for item in json.loads(described["output"])]
        assert names == [wd.job_name("lightning", execution, i) for i in range(cap + 1)]
        assert len(set(names)) == cap + 1
        for name in names:
            assert JOB_NAME_RE.fullmatch(name) and len(name) <= wd.JOB_NAME_MAX, name


@pytest.mark.parametrize("cap", [0, 3, 9, 10, 99])
def test_longest_prefix_still_yields_valid_names(cap):
    prefix = "p" * wd.max_prefix_length(cap)
    settings = replace(SETTINGS, job_name_prefix=prefix, max_capacity_retries=cap)
    wd.build_definition(settings)  # accepted
    for execution_name in EXECUTION_NAMES:
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{'s' * 80}:{execution_name}"
        names = [wd.job_name(prefix, arn, i) for i in range(cap + 1)]
        assert len(set(names)) == cap + 1
        for name in names:
            assert JOB_NAME_RE.fullmatch(name) and len(name) <= wd.JOB_NAME_MAX, name
    with pytest.raises(ValueError, match="job_name_prefix"):
        wd.build_definition(replace(settings, job_name_prefix=prefix + "p"))


@pytest.mark.parametrize("prefix", ["", "-abc", "abc-", "a_b", "ab c"])
def test_invalid_prefixes_are_rejected_at_synth(prefix):
    with pytest.raises(ValueError, match="job_name_prefix"):
        wd.build_definition(replace(SETTINGS, job_name_prefix=prefix))


def test_backoff_table_is_exponential_and_capped():
    assert wd.backoff_table(5, 300, 3600) == [300, 600, 1200, 2400, 3600]
    states = wd.build_definition(replace(SETTINGS, backoff_base_s=300))["States"]
    assert "States.Array(300, 600, 1200)" in states["PrepareRetry"]["Parameters"]["wait_s.$"]
