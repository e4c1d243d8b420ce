"""Training runs as the operator sees them: start, snapshot, list and stop executions.

A run is one execution of the stack's state machine; its training job (the latest attempt) is
found in the execution history, where the CreateTrainingJob task was scheduled with its name.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from core.execution_input import validate_execution_input
from training import contract
from trainops.aws import Aws
from trainops.outage import Outage

_LOG_TAIL = 200
_TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class RunStatus:
    """One snapshot of a run: the execution, its current training job and the latest metrics."""

    execution_arn: str
    name: str
    status: str
    started: str | None = None
    stopped: str | None = None
    job_name: str | None = None
    attempt: int = 0
    job_status: str | None = None
    secondary_status: str | None = None
    failure: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model_artifacts: str | None = None
    #: The registered model version (ARN ends with /<version>); skipped/registry notes.
    model_package_arn: str | None = None
    note: str | None = None

    @property
    def done(self) -> bool:
        return self.status in _TERMINAL_EXECUTION

    @property
    def seconds(self) -> float | None:
        if not self.started:
            return None
        end = dt.datetime.fromisoformat(self.stopped) if self.stopped else _now()
        return (end - dt.datetime.fromisoformat(self.started)).total_seconds()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = None if self.seconds is None else round(self.seconds, 1)
        return data


def start_run(
    aws: Aws,
    state_machine_arn: str,
    execution_input: dict[str, Any],
    *,
    name: str | None = None,
    **validation: Any,
) -> str:
    """Validate the input with the workflow's own rules, then StartExecution; returns its ARN."""
    checked = validate_execution_input(execution_input, **validation)
    return aws.client("stepfunctions").start_execution(
        stateMachineArn=state_machine_arn,
        name=name or execution_name(checked.get("trigger", "operator")),
        input=json.dumps(checked),
    )["executionArn"]


def execution_name(trigger: str) -> str:
    """Readable and unique: `operator-20261121-150312-3fa9`."""
    return f"{trigger}-{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def resolve_execution(aws: Aws, state_machine_arn: str, ref: str | None) -> str:
    """An execution ARN from an ARN, a name, or None (the most recent execution)."""
    if ref and ref.startswith("arn:"):
        return ref
    sfn = aws.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=100)[
        "executions"
    ]
    executions.sort(key=lambda e: e["startDate"], reverse=True)
    for execution in executions:
        if ref is None or execution["name"] == ref:
            return execution["executionArn"]
    raise LookupError(f"no execution named {ref!r}" if ref else "no executions yet")


def snapshot(aws: Aws, execution_arn: str) -> RunStatus:
    """The run's state now: execution, latest training job, metrics, outcome."""
    sfn = aws.client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    run = RunStatus(
        execution_arn=execution_arn,
        name=described.get("name") or execution_arn.rsplit(":", 1)[-1],
        status=described["status"],
        started=_iso(described.get("startDate")),
        stopped=_iso(described.get("stopDate")),
    )
    jobs = training_jobs_of(aws, execution_arn)
    run.attempt = len(jobs)
    if jobs:
        run.job_name = jobs[-1]
        _add_job(aws, run)
    if described["status"] == "FAILED":
        run.failure = run.failure or _execution_failure(sfn, execution_arn, described)
    if described["status"] == "SUCCEEDED" and described.get("output"):
        output = json.loads(described["output"])
        run.model_artifacts = run.model_artifacts or _find(output, "S3ModelArtifacts")
        if isinstance(output, dict):
            run.model_package_arn = output.get("model_package_arn")
            if output.get("status") == "SKIPPED":
                run.note = output.get("reason")
            elif output.get("model_registry_error"):
                error = output["model_registry_error"]
                run.note = f"model not registered: {error.get('Error')}: {error.get('Cause')}"
    return run


def training_jobs_of(aws: Aws, execution_arn: str) -> list[str]:
    """Names of the training jobs an execution has created, oldest first."""
    sfn = aws.client("stepfunctions")
    names: list[str] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            details = event.get("taskScheduledEventDetails")
            if details and details.get("resource", "").startswith("createTrainingJob"):
                name = json.loads(details.get("parameters", "{}")).get("TrainingJobName")
                if name and name not in names:
                    names.append(name)
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]


def _add_job(aws: Aws, run: RunStatus) -> None:
    sagemaker = aws.client("sagemaker")
    try:
        job = sagemaker.describe_training_job(TrainingJobName=run.job_name)
    except sagemaker.exceptions.ClientError:
        return  # scheduled but not created yet
    run.job_status = job.get("TrainingJobStatus")
    run.secondary_status = job.get("SecondaryStatus")
    run.failure = job.get("FailureReason")
    if run.failure:
        # On SageMaker an unreachable peer fails inside torchrun, before the script can say
        # why: name the likely cause (the security group) where the operator reads it.
        hint = contract.explain_network_failure(run.failure)
        if hint and hint not in run.failure:
            run.failure = f"{run.failure} ({hint})"
    run.model_artifacts = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    run.metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    run.metrics.update(latest_logged_metrics(aws, run.job_name))


def latest_logged_metrics(aws: Aws, job_name: str) -> dict[str, float]:
    """The newest metric line in the job's CloudWatch log streams (live, unlike the API's)."""
    logs = aws.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job_name}/")
    except logs.exceptions.ClientError:
        return {}
    latest: dict[str, float] = {}
    for stream in streams.get("logStreams", []):
        events = logs.get_log_events(  # the newest lines hold the latest metric line
            logGroupName=group,
            logStreamName=stream["logStreamName"],
            startFromHead=False,
            limit=_LOG_TAIL,
        )["events"]
        for event in events:
            latest.update(contract.parse_metric_line(event["message"]))
    return latest


def _execution_failure(sfn: Any, execution_arn: str, described: dict[str, Any]) -> str:
    error, cause = described.get("error"), described.get("cause")
    if not error:
        events = sfn.get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=20
        )["events"]
        for event in events:
            details = event.get("executionFailedEventDetails")
            if details:
                error, cause = details.get("error"), details.get("cause")
                break
    return ": ".join(str(part) for part in (error, cause) if part) or "failed"


def list_runs(aws: Aws, state_machine_arn: str, limit: int = 20) -> list[RunStatus]:
    """Recent runs, newest first, with their job and result."""
    executions = aws.client("stepfunctions").list_executions(
        stateMachineArn=state_machine_arn, maxResults=min(limit, 1000)
    )["executions"]
    executions.sort(key=lambda e: e["startDate"], reverse=True)
    return [snapshot(aws, e["executionArn"]) for e in executions[:limit]]


def stop_run(aws: Aws, execution_arn: str, cause: str = "stopped by operator") -> RunStatus:
    """Stop the run's training job (if running) and abort the execution."""
    run = snapshot(aws, execution_arn)
    if run.job_name and run.job_status == "InProgress":
        aws.client("sagemaker").stop_training_job(TrainingJobName=run.job_name)
    if not run.done:
        aws.client("stepfunctions").stop_execution(
            executionArn=execution_arn, error="OperatorStop", cause=cause
        )
    return snapshot(aws, execution_arn)


def wait_for(aws: Aws, execution_arn: str, on_update=None, interval_s: float = 2.0) -> RunStatus:
    """Poll until the execution ends, calling `on_update(snapshot)` each time; network outages
    and throttling are outlasted (trainops.outage)."""
    outage = Outage()
    while True:
        run = outage.poll(lambda: snapshot(aws, execution_arn))
        if run is not None:
            if on_update is not None:
                on_update(run)
            if run.done:
                return run
        time.sleep(interval_s)


def _find(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found is not None:
                return found
    if isinstance(data, list):
        for value in data:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat()
    return str(value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
