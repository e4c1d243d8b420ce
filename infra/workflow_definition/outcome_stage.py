"""Outcome stage: what a run ends as, and the notification that says so.

Success: SummarizeResult (with or without FinalMetricDataList) -> [registry] -> NotifySuccess ->
Succeeded (OutputPath $.result). Failure: CapacityExhausted | JobFailed -> NotifyFailure ->
Failed (ErrorPath/CausePath from $.outcome). A notification problem never hides the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from core.workflow_settings import WorkflowSettings
from infra.workflow_definition.asl import ERROR_CAPACITY, ERROR_JOB_FAILED


@dataclass(frozen=True)
class Outcomes:
    """The states the training stage ends in."""

    summarize: sfn.Choice  # after a completed job
    capacity_exhausted: sfn.Pass
    job_failed: sfn.Pass
    succeeded: sfn.Succeed


def outcome_stage(
    scope: Construct,
    s: WorkflowSettings,
    topic: sns.ITopic,
    *,
    before_success: Callable[[sfn.IChainable], sfn.IChainable] | None = None,
) -> Outcomes:
    """The end states; `before_success(notify)` puts states between the result and the notice."""
    succeeded = sfn.Succeed(scope, "Succeeded", output_path="$.result")
    notify_success = notification(
        scope, "NotifySuccess", s, topic, "Training completed", "$.result"
    )
    notify_success.add_catch(
        succeeded, errors=["States.ALL"], result_path="$.notification_error"
    ).next(succeeded)
    after_result = before_success(notify_success) if before_success else notify_success
    summarize = (
        sfn.Choice(
            scope,
            "SummarizeResult",
            comment="FinalMetricDataList is absent when the job logged no metric line.",
        )
        .when(
            sfn.Condition.is_present("$.training.FinalMetricDataList"),
            _result(scope, "ResultWithMetrics", "$.training.FinalMetricDataList").next(
                after_result
            ),
        )
        .otherwise(_result(scope, "ResultWithoutMetrics", None).next(after_result))
    )

    failed = sfn.Fail(scope, "Failed", error_path="$.outcome.error", cause_path="$.outcome.cause")
    notify_failure = notification(scope, "NotifyFailure", s, topic, "Training FAILED", "$.outcome")
    # A notification problem must not hide the training failure.
    notify_failure.add_catch(
        failed, errors=["States.ALL"], result_path="$.notification_error"
    ).next(failed)
    capacity_exhausted = _failure(
        scope,
        "CapacityExhausted",
        ERROR_CAPACITY,
        "training job {} got no capacity in {} attempt(s); last failure: {}: {}",
        "$.job.name",
        "States.MathAdd($.retry.attempt, 1)",
        "$.failure.Error",
        "$.failure.Cause",
    )
    job_failed = _failure(
        scope,
        "JobFailed",
        ERROR_JOB_FAILED,
        "training job {} failed: {}: {}",
        "$.job.name",
        "$.failure.Error",
        "$.failure.Cause",
    )
    capacity_exhausted.next(notify_failure)
    job_failed.next(notify_failure)
    return Outcomes(summarize, capacity_exhausted, job_failed, succeeded)


def notification(
    scope: Construct, name: str, s: WorkflowSettings, topic: sns.ITopic, subject: str, path: str
) -> tasks.SnsPublish:
    """The state `name` publishing the JSON at `path`, subject `<subject> (<job name prefix>)`."""
    return tasks.SnsPublish(
        scope,
        name,
        topic=topic,
        subject=f"{subject} ({s.job_name_prefix})",
        message=sfn.TaskInput.from_json_path_at(f"States.JsonToString({path})"),
        result_path=sfn.JsonPath.DISCARD,
    )


def _failure(scope: Construct, name: str, error: str, template: str, *args: str) -> sfn.Pass:
    return sfn.Pass(
        scope,
        name,
        parameters={
            "error": error,
            "cause.$": f"States.Format('{template}', {', '.join(args)})",
            "job_name.$": "$.job.name",
            "attempts.$": "States.MathAdd($.retry.attempt, 1)",
            "failure_error.$": "$.failure.Error",
            "failure_cause.$": "$.failure.Cause",
            "execution.$": "$$.Execution.Id",
            "trigger.$": "$.run.trigger",
            "status": "FAILED",
        },
        result_path="$.outcome",
    )


def _result(scope: Construct, name: str, metrics_path: str | None) -> sfn.Pass:
    result: dict[str, Any] = {
        "status": "COMPLETED",
        "job_name.$": "$.training.TrainingJobName",
        "model_artifacts.$": "$.training.ModelArtifacts.S3ModelArtifacts",
        "execution.$": "$$.Execution.Id",
        "trigger.$": "$.run.trigger",
        "attempts.$": "States.MathAdd($.retry.attempt, 1)",
        "instance_type.$": "$.run.instance_type",
        "instance_count.$": "$.run.instance_count",
        "spot.$": "$.run.spot",
    }
    if metrics_path:
        result["final_metrics.$"] = metrics_path
    else:
        result["final_metrics"] = []
    return sfn.Pass(scope, name, parameters=result, result_path="$.result")
