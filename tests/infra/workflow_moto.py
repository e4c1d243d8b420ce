"""The training state machine in moto's ASL interpreter, for the workflow-definition tests.

moto 5.2.5 has no `.sync`: the definition is rendered with the request-response
CreateTrainingJob (+ an aws-sdk DescribeTrainingJob, what `.sync` returns); every SageMaker and
SNS request the interpreter sends is captured at the botocore boundary (`Spy`), and the next
CreateTrainingJob calls can be made to fail (`Spy.failures`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from infra import workflow_definition as wd
from tests import timing

ACCOUNT = "123456789012"
REGION = "us-east-1"
TOPIC = "training-topic"
SETTINGS = wd.WorkflowSettings(
    region=REGION,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution",
    image_uri=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:2.3.0-gpu-py311",
    code_s3_uri="s3://artifacts-bucket/code/sourcedir.tar.gz",
    topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}",
    data_bucket_name="data-bucket",
    artifacts_bucket_name="artifacts-bucket",
    kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-1111-2222-3333-444455556666",
    security_group_ids=("sg-0123456789abcdef0",),
    subnet_ids=("subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"),
    hyperparameters={"epochs": "20", "model_name": "donut"},
    tags={"project": "donut"},
    backoff_base_s=0,
    integration="request-response",
)


class Spy:
    """Every AWS call the interpreter makes through botocore, with the exact params."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.failures: list[ClientError] = []  # raised by the next CreateTrainingJob calls

    def requests(self, operation: str, job_prefix: str | None = None) -> list[dict]:
        out = [params for _, op, params in self.calls if op == operation]
        if job_prefix is not None:
            out = [p for p in out if json.dumps(p).find(job_prefix) >= 0]
        return out


@pytest.fixture(scope="module")
def moto_env() -> Iterator[tuple[Spy, Any]]:
    spy = Spy()
    original = BaseClient._make_api_call

    def spying(client: BaseClient, operation: str, params: dict) -> Any:
        service = client.meta.service_model.service_name
        if service in ("sagemaker", "sns"):
            spy.calls.append((service, operation, json.loads(json.dumps(params))))
            if operation == "CreateTrainingJob" and spy.failures:
                raise spy.failures.pop(0)
        return original(client, operation, params)

    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        mock.patch.object(BaseClient, "_make_api_call", spying),
    ):
        boto3.client("sns", region_name=REGION).create_topic(Name=TOPIC)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machines: dict[wd.WorkflowSettings, str] = {}

        def machine(settings: wd.WorkflowSettings) -> str:
            if settings not in machines:
                machines[settings] = sfn.create_state_machine(
                    name=f"training-{len(machines)}",
                    definition=json.dumps(wd.build_definition(settings)),
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/states",
                )["stateMachineArn"]
            return machines[settings]

        yield spy, machine


_counter = iter(range(10**6))


def run(moto_env, payload: Any, settings: wd.WorkflowSettings = SETTINGS, name: str = "") -> dict:
    spy, machine = moto_env
    sfn = boto3.client("stepfunctions", region_name=REGION)
    name = name or f"run-{next(_counter)}"
    arn = sfn.start_execution(
        stateMachineArn=machine(_hashable(settings)), name=name, input=json.dumps(payload)
    )["executionArn"]
    described = timing.wait_until(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        60,
        f"{arn} ended",
        interval_s=0.02,
    )
    prefix = f"{settings.job_name_prefix}-{wd.run_id(arn)}"
    return {
        "arn": arn,
        "status": described["status"],
        "output": json.loads(described["output"]) if described.get("output") else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
        "creates": spy.requests("CreateTrainingJob", prefix),
        "publishes": [p for p in spy.requests("Publish") if arn in p.get("Message", "")],
    }


def _hashable(settings: wd.WorkflowSettings) -> wd.WorkflowSettings:
    # Mapping fields are dicts: make the dataclass usable as a cache key.
    return replace(
        settings,
        hyperparameters=_FrozenDict(settings.hyperparameters),
        tags=_FrozenDict(settings.tags),
        channels=_FrozenDict(settings.channels),
        efa_environment=_FrozenDict(settings.efa_environment),
    )


class _FrozenDict(dict):
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))
