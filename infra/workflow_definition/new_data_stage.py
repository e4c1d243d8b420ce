"""The new-data guard: a run started by an upload never runs beside another run.

A run started by an upload (trigger `new-data`) first lists this stack's training jobs that are
InProgress (ListTrainingJobs, NameContains the job-name prefix); when one is, this run ends at
once as SKIPPED with a notification, so a second upload during a run starts no second training
(it is not queued: upload the marker again, or `trainops start`, after). A run between attempts
(capacity backoff) has no job in progress and does not block. Other triggers pass straight on.
"""

from __future__ import annotations

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from core import execution_input as ei
from core.workflow_settings import WorkflowSettings
from infra.workflow_definition.asl import SKIPPED_STATUS
from infra.workflow_definition.outcome_stage import notification
from infra.workflow_definition.sagemaker_calls import sagemaker_call


def new_data_stage(
    scope: Construct,
    s: WorkflowSettings,
    topic: sns.ITopic,
    *,
    next_state: sfn.IChainable,
    done_state: sfn.State,
) -> sfn.Choice:
    """IsNewDataRun -> FindRunningRuns -> AnotherRunInProgress -> (SkipNewDataRun | next)."""
    another_run = (
        sfn.Choice(
            scope,
            "AnotherRunInProgress",
            comment="This run has no job yet: any InProgress job is another run's.",
        )
        .when(
            sfn.Condition.number_greater_than("$.running.count", 0),
            _skip(scope, s, topic, done_state),
        )
        .otherwise(next_state)
    )
    return (
        sfn.Choice(scope, "IsNewDataRun")
        .when(
            sfn.Condition.string_equals("$.run.trigger", ei.NEW_DATA_TRIGGER),
            _find_running_runs(scope, s).next(another_run),
        )
        .otherwise(next_state)
    )


def _find_running_runs(scope: Construct, s: WorkflowSettings) -> tasks.CallAwsService:
    """This stack's InProgress training jobs: how many, and their names."""
    return sagemaker_call(
        scope,
        "FindRunningRuns",
        "listTrainingJobs",
        resources=["*"],  # ListTrainingJobs has no resource-level permission
        parameters={
            "StatusEquals": "InProgress",
            "NameContains": f"{s.job_name_prefix}-",
            "MaxResults": 100,
        },
        result_selector={
            "count.$": "States.ArrayLength($.TrainingJobSummaries)",
            "names.$": "$.TrainingJobSummaries[*].TrainingJobName",
        },
        result_path="$.running",
    )


def _skip(
    scope: Construct, s: WorkflowSettings, topic: sns.ITopic, done_state: sfn.State
) -> sfn.Chain:
    """SkipNewDataRun -> NotifySkipped -> done: the run ends SKIPPED, saying which run blocked."""
    skip = sfn.Pass(
        scope,
        "SkipNewDataRun",
        parameters={
            "status": SKIPPED_STATUS,
            "reason.$": (
                "States.Format('new data arrived while a run was in progress ({}): not "
                "started; upload the marker again after it ends, or trainops start', "
                "States.JsonToString($.running.names))"
            ),
            "execution.$": "$$.Execution.Id",
            "trigger.$": "$.run.trigger",
        },
        result_path="$.result",
    )
    notify = notification(
        scope, "NotifySkipped", s, topic, "Training skipped", "$.result"
    ).add_catch(done_state, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
    return skip.next(notify).next(done_state)
