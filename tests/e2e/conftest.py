"""One deployed stack on one embedded AWS for every end-to-end test.

The session synthesizes the real CDK app ONCE through the pinned CDK CLI (the demo's CPU
configuration plus a few test-only context overrides), deploys the template to the embedded AWS
(moto on 127.0.0.1, in this process), uploads the default dataset to the data bucket and
subscribes an SQS queue to the stack's notification topic, the way an operator would listen.
Every test then starts real executions of the deployed state machine and reads what happened
back from the emulator: execution history, DescribeTrainingJob, S3 objects, SQS messages.

Time: the state machine's capacity backoff (300 s, 600 s, ...) is kept as synthesized; the
Wait states are time-warped instead (`E2eStack.waits` records what they asked for), so the
tests check the real backoff table without sleeping through it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)

from core.config import TrainingConfig, load_cdk_json_context
from localaws.deploy import deploy
from localaws.job_s3 import parse_s3_uri
from localaws.server import EmbeddedAws
from tests import timing
from tests.job_statuses import secondary_statuses
from trainops import runs
from trainops.aws import Aws, StackOutputs, stack_outputs
from trainops.demo import DEMO_CONTEXT, REPO, synth, upload_default_dataset

STACK_NAME = "E2eTraining"
#: Test-only overrides on top of the demo's CPU configuration: short default runs.
E2E_CONTEXT = {
    **DEMO_CONTEXT,
    "training.stack_name": STACK_NAME,
    "training.hyperparameters.epochs": "4",
    "training.retrain_on_new_data": "true",
}
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class E2eStack:
    """Handle on the deployed stack: clients, outputs, emulator, notifications, time warp."""

    emulator: EmbeddedAws
    aws: Aws
    outputs: StackOutputs
    config: TrainingConfig
    topic_arn: str
    queue_url: str
    work: Path
    #: Seconds each Wait state asked for (time-warped to 0), in order.
    waits: list[int] = field(default_factory=list)
    _messages: list[dict[str, Any]] = field(default_factory=list)

    # --- clients -------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return self.aws.client(service)

    @property
    def state_machine_arn(self) -> str:
        return self.outputs.state_machine_arn

    # --- executions ----------------------------------------------------------------------
    def start(self, execution_input: dict[str, Any], *, validate: bool = True) -> str:
        """StartExecution; `validate=False` sends the input as is (skips the CLI's checks)."""
        if validate:
            return runs.start_run(self.aws, self.state_machine_arn, execution_input)
        return self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn,
            name=runs.execution_name("operator"),
            input=json.dumps(execution_input),
        )["executionArn"]

    def wait(self, arn: str, timeout_s: float = 120) -> dict[str, Any]:
        """DescribeExecution once the execution has ended (bound: timing.bound(timeout_s))."""
        sfn = self.client("stepfunctions")
        last: dict[str, Any] = {}

        def ended() -> dict[str, Any] | None:
            last.update(sfn.describe_execution(executionArn=arn))
            return dict(last) if last["status"] in _TERMINAL else None

        return timing.wait_until(
            ended, timeout_s, f"{arn} ended", seen=lambda: self.seen(arn, last.get("status"))
        )

    def wait_for_job(self, arn: str, secondary: str, timeout_s: float = 90) -> str:
        """Name of the execution's latest training job once its SecondaryStatus is `secondary`."""

        def reached() -> str | None:
            names = runs.training_jobs_of(self.aws, arn)
            job = self.describe_job(names[-1]) if names else {}
            return names[-1] if job.get("SecondaryStatus") == secondary else None

        return timing.wait_until(
            reached, timeout_s, f"a job of {arn} in {secondary}", seen=lambda: self.seen(arn)
        )

    def describe_job(self, name: str) -> dict[str, Any]:
        """DescribeTrainingJob, or {} while the job does not exist yet."""
        sagemaker = self.client("sagemaker")
        try:
            return sagemaker.describe_training_job(TrainingJobName=name)
        except sagemaker.exceptions.ClientError:
            return {}

    def seen(self, arn: str, status: str | None = None) -> str:
        """What a failed wait reports: the execution's status, its latest job's statuses and
        that job's log tail."""
        names = runs.training_jobs_of(self.aws, arn)
        lines = [f"execution status: {status or '?'}; jobs: {names}"]
        if names:
            job = self.describe_job(names[-1])
            transitions = secondary_statuses(job)
            lines.append(f"{names[-1]}: {job.get('TrainingJobStatus')} {transitions}")
            lines.append(job.get("FailureReason", ""))
            run = self.emulator.sagemaker.runs.get(names[-1])
            if run is not None and run.job is not None:
                lines += run.job.log_lines()[-40:]
        return "\n".join(lines)

    def history(self, arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def requests_of(self, arn: str) -> list[dict[str, Any]]:
        """CreateTrainingJob requests the emulated SageMaker received for this execution."""
        return [
            r
            for r in list(self.emulator.sagemaker.requests)
            if r.get("Environment", {}).get("TRAINOPS_EXECUTION_ARN") == arn
        ]

    # --- notifications -------------------------------------------------------------------
    def notifications(self, arn: str, timeout_s: float = 10) -> list[dict[str, Any]]:
        """SNS notifications about `arn` delivered to the subscribed queue: Subject + Message.

        Waits up to timing.bound(timeout_s) for the first one; the execution has ended when this
        is called, and the notification precedes the end, so one read normally suffices
        (`timeout_s=0`: read what is there, for checks that none was sent).
        """
        sqs = self.client("sqs")
        deadline = time.monotonic() + timing.bound(timeout_s)
        while True:
            got = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in got:
                envelope = json.loads(message["Body"])
                self._messages.append(
                    {
                        "TopicArn": envelope["TopicArn"],
                        "Subject": envelope.get("Subject"),
                        "Message": json.loads(envelope["Message"]),
                    }
                )
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            mine = [m for m in self._messages if m["Message"].get("execution") == arn]
            if mine or (not got and time.monotonic() > deadline):
                return mine
            if not got:
                time.sleep(0.2)


def invalid_requests(calls: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """What botocore's API models say is wrong with each captured call ([] when all are valid)."""
    from localaws.api_model import validate_request

    problems = []
    for service, operation, params in calls:
        try:
            validate_request(service, operation, params)
        except ValueError as exc:
            problems.append(f"{service}.{operation}: {exc}")
    return problems


def valid_operations(calls: list[tuple[str, str, dict[str, Any]]]) -> set[tuple[str, str]]:
    """The (service, operation) pairs of the captured calls, once each is valid for the real API."""
    assert invalid_requests(calls) == []
    return {(service, operation) for service, operation, _ in calls}


def read_model(stack: E2eStack, uri: str) -> dict[str, bytes]:
    """The files of a model.tar.gz on the emulated S3, by name."""
    bucket, key = parse_s3_uri(uri)
    body = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def run_cli(
    stack: E2eStack, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """`trainops <argv[0]> --stack-name ... --endpoint-url ... <argv[1:]>` in this process:
    (exit code, stdout, stderr) of that command alone."""
    from trainops import cli

    capsys.readouterr()
    code = cli.main(
        [
            *argv[:1],
            "--stack-name",
            stack.outputs.stack_name,
            "--endpoint-url",
            stack.emulator.endpoint_url,
            *argv[1:],
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def processes_gone(emulator: EmbeddedAws, job_name: str, timeout_s: float = 15) -> bool:
    """Every host process group of the emulated job has exited (within timing.bound)."""
    job = emulator.sagemaker.runs[job_name].job
    assert job is not None, f"{job_name} never started its hosts"
    deadline = time.monotonic() + timing.bound(timeout_s)
    while time.monotonic() < deadline:
        if not any(h.process and group_alive(h.process.pid) for h in job.hosts):
            return True
        time.sleep(0.2)
    return False


def _warp_waits(waits: list[int]) -> pytest.MonkeyPatch:
    """Wait states return at once; the seconds they asked for are recorded in `waits`."""
    original = WaitFunction._wait_interval
    patch = pytest.MonkeyPatch()

    def _wait_interval(self, env, wait_seconds: int) -> None:
        waits.append(wait_seconds)
        return original(self, env=env, wait_seconds=0)

    patch.setattr(WaitFunction, "_wait_interval", _wait_interval)
    return patch


@pytest.fixture(scope="package")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eStack]:
    """Synthesize once, deploy once, upload the dataset once (package scope: torn down before
    other test packages start their own emulator, which shares moto's process-wide backends)."""
    work = tmp_path_factory.mktemp("e2e")
    assembly = synth(work / "cdk.out", E2E_CONTEXT, STACK_NAME)
    context = load_cdk_json_context(REPO / "cdk.json")
    config = TrainingConfig.from_context({**context, **E2E_CONTEXT})
    waits: list[int] = []
    warp = _warp_waits(waits)
    with EmbeddedAws(work / "aws") as emulator:
        # moto's backends are process-wide: start from a clean account.
        requests.post(f"{emulator.endpoint_url}/moto-api/reset", timeout=timing.bound(10))
        try:
            deployed_stack = deploy(emulator, assembly, STACK_NAME)
            aws = Aws(region=emulator.region, endpoint_url=emulator.endpoint_url)
            outputs = stack_outputs(aws, STACK_NAME)
            assert outputs.values == deployed_stack.outputs
            upload_default_dataset(aws, outputs.train_data_uri, work)
            topic_arn = outputs.values["NotificationTopicArn"]
            sqs = aws.client("sqs")
            queue_url = sqs.create_queue(QueueName="e2e-notifications")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
            yield E2eStack(
                emulator=emulator,
                aws=aws,
                outputs=outputs,
                config=config,
                topic_arn=topic_arn,
                queue_url=queue_url,
                work=work,
                waits=waits,
            )
        finally:
            warp.undo()
            requests.post(f"{emulator.endpoint_url}/moto-api/reset", timeout=timing.bound(10))


@pytest.fixture
def stack(deployed: E2eStack) -> Iterator[E2eStack]:
    """The deployed stack, with no fault injection left over from another test."""
    deployed.emulator.sagemaker.injected_failures.clear()
    deployed.waits.clear()
    yield deployed
    leftover = list(deployed.emulator.sagemaker.injected_failures)
    deployed.emulator.sagemaker.injected_failures.clear()
    # No job of one test may keep running into the next (the torchrun port is machine-wide).
    for name, run in list(deployed.emulator.sagemaker.runs.items()):
        if run.is_alive():
            deployed.emulator.sagemaker.stop(name)
            run.join(timing.bound(30))
            if run.job is not None:
                for host in run.job.hosts:
                    if host.process is not None and group_alive(host.process.pid):
                        os.killpg(host.process.pid, signal.SIGKILL)
    assert not leftover, f"injected failures not consumed: {leftover}"


@pytest.fixture
def operator_calls(deployed: E2eStack) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Every AWS API call the operator side sends during the test: (service, operation, params).

    Captured at botocore's `_make_api_call` for the clients that `trainops.aws.Aws` objects
    create during the test (the CLI's own; s3transfer's worker threads included), other than
    the fixture's: the emulator's internal clients and the test's own reads are left out.
    """
    import botocore.client

    calls: list[tuple[str, str, dict[str, Any]]] = []
    original_call = botocore.client.BaseClient._make_api_call
    original_client = Aws.client

    def client(self: Aws, service: str) -> Any:
        made = original_client(self, service)
        if self is not deployed.aws:
            made._e2e_capture = True
        return made

    def _make_api_call(self, operation_name, api_params):
        if getattr(self, "_e2e_capture", False):
            service = self.meta.service_model.service_name
            calls.append((service, operation_name, dict(api_params)))
        return original_call(self, operation_name, api_params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Aws, "client", client)
        patch.setattr(botocore.client.BaseClient, "_make_api_call", _make_api_call)
        yield calls
