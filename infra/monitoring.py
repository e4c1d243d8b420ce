"""CloudWatch dashboard and alarms for the stack's runs.

Training-job names change every attempt (`<prefix>-<run id>-<attempt>`), so nothing here names a
job: the dashboard finds the stack's jobs with SEARCH expressions, and the one alarm on job
metrics is a Metrics Insights query (SEARCH cannot be alarmed). Every alarm notifies the stack's
SNS topic, which is KMS-encrypted: the topic policy and the key policy let CloudWatch publish for
exactly these alarms (named, so their ARNs are known without a reference cycle through the key).
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from core.config import ConfigError, TrainingConfig, gpus_per_instance
from training import contract

#: Where SageMaker publishes a training job's MetricDefinitions (dimension TrainingJobName) and
#: its instance metrics (dimension Host = <job name>/algo-<n>).
NAMESPACE = contract.METRICS_NAMESPACE
JOB_DIMENSION = contract.METRICS_JOB_DIMENSION
HOST_DIMENSION = "Host"
#: Instance metrics per host, in percent (GPU ones: 0-100 x GPUs on the host).
HOST_METRICS = (
    "GPUUtilization",
    "GPUMemoryUtilization",
    "CPUUtilization",
    "MemoryUtilization",
    "DiskUtilization",
)
PERIOD = cdk.Duration.minutes(5)
#: Instance metrics arrive every minute: the host graphs keep that resolution.
HOST_PERIOD = cdk.Duration.minutes(1)
#: A GPU host counts as idle below this utilization per GPU, in percent.
IDLE_GPU_PERCENT = 1
#: Idle this long (consecutive 5-minute periods) = hung: longer than a job's setup (image pull,
#: data download, wheel install) and teardown (model upload), and well inside the 3 hours of
#: data a Metrics Insights query can see.
IDLE_GPU_PERIODS = 6
KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def search_expression(
    metric_name: str,
    dimension: str,
    job_name_prefix: str,
    *,
    statistic: str = "Average",
    period: cdk.Duration = PERIOD,
) -> str:
    """One series per job (or host) of this stack for `metric_name`.

    SEARCH has no prefix match: `<dimension>=<prefix>` (unquoted) is a partial match on the
    prefix's tokens, so it keeps the jobs whose name contains the prefix as a whole token, which
    every job of this stack does (`<prefix>-<run id>-<attempt>`).
    """
    if "'" in metric_name:
        raise ConfigError(
            "metrics",
            metric_name,
            "expected a metric name without ' (a CloudWatch SEARCH expression cannot quote"
            " it): rename the metric",
        )
    exact = re.sub(r'(["\\()])', r"\\\1", metric_name)  # SEARCH's exact-match escapes
    return (
        f'SEARCH(\'{{"{NAMESPACE}",{dimension}}} MetricName="{exact}" '
        f"{dimension}={job_name_prefix}', '{statistic}', {int(period.to_seconds())})"
    )


def idle_gpu_query() -> str:
    """The lowest GPU utilization of any training host, per period (one series, alarmable).

    Metrics Insights' WHERE compares whole label values (`=`, `!=`; no prefix match), so this
    sees every training host in the account and region, not only this stack's.
    """
    return f'SELECT MIN({HOST_METRICS[0]}) FROM SCHEMA("{NAMESPACE}", {HOST_DIMENSION})'


class TrainingMonitoring(Construct):
    """`dashboard`, `failed_executions` alarm, `dead_letters` and `idle_gpu` alarms (or None)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TrainingConfig,
        state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
        dead_letter_queue: sqs.IQueue | None = None,
        new_data_dead_letter_queue: sqs.IQueue | None = None,
        job_name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._stack_name = stack.stack_name
        self._alarm_names: list[str] = []
        notify = actions.SnsAction(topic)

        self.failed_executions = self._alarm(
            "FailedExecutions",
            "failed-executions",
            cloudwatch.MathExpression(
                expression="FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)",
                using_metrics={
                    "failed": state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                    "timedOut": state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                    "aborted": state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                },
                period=PERIOD,
                label="Failed + timed out + aborted executions",
            ),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # AWS/States publishes a data point only when an execution starts or ends: a period
            # without one had no failure.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description="A training execution failed, timed out or was aborted in the last 5"
            " minutes. Missing data (no executions) is not breaching. No OK action: the next quiet"
            " period always clears it and says nothing new.",
        )
        self.failed_executions.add_alarm_action(notify)

        self.dead_letters = self._dead_letter_alarm(
            "ScheduleDeadLetters",
            "schedule-dead-letters",
            dead_letter_queue,
            notify,
            "A scheduled retraining could not be started (EventBridge Scheduler gave up and left"
            " the start in the dead-letter queue). Read the message for the error, then purge the"
            " queue; OK is sent once it is empty. Missing data (an idle empty queue) is not"
            " breaching.",
        )
        self.new_data_dead_letters = self._dead_letter_alarm(
            "NewDataDeadLetters",
            "new-data-dead-letters",
            new_data_dead_letter_queue,
            notify,
            "New data arrived but EventBridge could not start the run (the event is in the"
            " new-data dead-letter queue). Read it for the error, start the run with trainops"
            " start, then purge the queue. Missing data is not breaching.",
        )

        # CPU instances publish no GPUUtilization: on them this alarm could never fire.
        gpus = gpus_per_instance(config.instance_type)
        self.idle_gpu: cloudwatch.Alarm | None = None
        if gpus:
            self.idle_gpu = self._alarm(
                "IdleGpu",
                "idle-gpu",
                cloudwatch.MathExpression(
                    expression=idle_gpu_query(),
                    period=PERIOD,
                    label="Lowest GPU utilization of any training host",
                ),
                threshold=IDLE_GPU_PERCENT * gpus,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                periods=IDLE_GPU_PERIODS,
                # No GPU host reporting = no job running = nothing hung.
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                description=f"A training host's GPUs ({gpus} x {config.instance_type}) averaged"
                f" under {IDLE_GPU_PERCENT}% for"
                f" {IDLE_GPU_PERIODS * int(PERIOD.to_minutes())} minutes: a hung job is burning"
                " money. Check its logs, stop it with `trainops stop`. Covers every training host"
                " in this account and region (Metrics Insights cannot filter by job-name prefix)."
                " Missing data (no job running) is not breaching; OK is sent when it recovers.",
            )
            self.idle_gpu.add_alarm_action(notify)
            self.idle_gpu.add_ok_action(notify)

        self._allow_alarms_to_notify(stack, topic)
        self.dashboard = self._dashboard(config, state_machine, dead_letter_queue, job_name_prefix)

    # --- alarms ----------------------------------------------------------------------------------
    def _dead_letter_alarm(
        self,
        construct_id: str,
        suffix: str,
        queue: sqs.IQueue | None,
        notify: cloudwatch.IAlarmAction,
        description: str,
    ) -> cloudwatch.Alarm | None:
        """Anything in a dead-letter queue alarms; OK once it is empty again."""
        if queue is None:
            return None
        alarm = self._alarm(
            construct_id,
            suffix,
            queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            threshold=0,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # SQS publishes queue metrics only while a queue is active (holds messages or was
            # used in the last 6 hours): an idle, empty dead-letter queue has no data.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=description,
        )
        alarm.add_alarm_action(notify)
        alarm.add_ok_action(notify)
        return alarm

    def _alarm(
        self,
        construct_id: str,
        suffix: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        missing: cloudwatch.TreatMissingData,
        description: str,
        periods: int = 1,
    ) -> cloudwatch.Alarm:
        name = f"{self._stack_name}-{suffix}"
        self._alarm_names.append(name)
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
        )

    def alarm_arns(self) -> list[str]:
        """ARNs of this construct's alarms, built from their names (no GetAtt: the key policy
        naming them would otherwise depend on alarms that depend on the topic and its key)."""
        stack = cdk.Stack.of(self)
        return [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=name,
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in self._alarm_names
        ]

    def _allow_alarms_to_notify(self, stack: cdk.Stack, topic: sns.ITopic) -> None:
        """CloudWatch publishes alarm actions as its service principal: the topic policy (which
        holds only the TLS guard) must allow it, and so must the topic's key policy (SNS asks
        KMS for a data key on the publisher's behalf). Both scoped to these alarms' ARNs."""
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnEquals": {"aws:SourceArn": self.alarm_arns()},
        }
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowStackAlarmsToPublish",
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=conditions,
            )
        )
        key = getattr(topic, "master_key", None)
        if key is not None:
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowStackAlarmsToPublishEncrypted",
                    principals=[cloudwatch_principal],
                    actions=list(KEY_ACTIONS),
                    resources=["*"],  # in a key policy: this key
                    conditions=conditions,
                )
            )

    # --- dashboard -------------------------------------------------------------------------------
    def _dashboard(
        self,
        config: TrainingConfig,
        state_machine: sfn.IStateMachine,
        dead_letter_queue: sqs.IQueue | None,
        job_name_prefix: str,
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{self._stack_name}-training"
        )
        executions = [
            state_machine.metric_started(period=PERIOD, statistic="Sum", label="Started"),
            state_machine.metric_succeeded(period=PERIOD, statistic="Sum", label="Succeeded"),
            state_machine.metric_failed(period=PERIOD, statistic="Sum", label="Failed"),
            state_machine.metric_aborted(period=PERIOD, statistic="Sum", label="Aborted"),
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum", label="Timed out"),
        ]
        # By their ARNs, not GetAtt: the dashboard then needs no alarm resource to exist (moto's
        # CloudFormation creates no alarms, and refuses a GetAtt of a resource it skipped).
        alarms = [
            cloudwatch.Alarm.from_alarm_arn(self, f"Shown{i}", arn)
            for i, arn in enumerate(self.alarm_arns())
        ]
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Executions", left=executions, width=12),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=12),
        )
        hosts = [
            self._search_graph(name, HOST_DIMENSION, job_name_prefix, HOST_PERIOD, "per host")
            for name in HOST_METRICS
        ]
        # The runner's metrics and the task's, exactly as the jobs' MetricDefinitions name them.
        names = [d["Name"] for d in contract.metric_definitions(config.metrics)]
        jobs = [
            self._search_graph(name, JOB_DIMENSION, job_name_prefix, PERIOD, "per job")
            for name in names
        ]
        for row in _rows([*hosts, *jobs], per_row=3):
            dashboard.add_widgets(*row)
        if dead_letter_queue is not None:
            depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum", label="Messages"
            )
            dashboard.add_widgets(
                cloudwatch.GraphWidget(title="Schedule dead-letter queue", left=[depth], width=12)
            )
        return dashboard

    @staticmethod
    def _search_graph(
        metric_name: str, dimension: str, prefix: str, period: cdk.Duration, per: str
    ) -> cloudwatch.GraphWidget:
        search = cloudwatch.SearchExpression(
            expression=search_expression(metric_name, dimension, prefix, period=period),
            label="",  # each series keeps its job or host name
            period=period,
        )
        return cloudwatch.GraphWidget(title=f"{metric_name} ({per})", left=[search], width=8)


def _rows(widgets: list[cloudwatch.IWidget], per_row: int) -> list[list[cloudwatch.IWidget]]:
    return [widgets[i : i + per_row] for i in range(0, len(widgets), per_row)]
