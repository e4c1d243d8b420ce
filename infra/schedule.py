"""Retraining trigger: an EventBridge Scheduler schedule that starts the state machine.

Cron + IANA time zone from the config, optional flexible window, bounded retries and an
encrypted SQS dead-letter queue for starts that could not be delivered. No schedule when the
config says `schedule_cron: off`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from core.config import TrainingConfig
from core.execution_input import SCHEDULED_INPUT
from infra.dead_letter import dead_letter_queue

RETRY_ATTEMPTS = 3
MAX_EVENT_AGE = cdk.Duration.hours(6)


class RetrainingSchedule(Construct):
    """`schedule`, `dead_letter_queue`, `role`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TrainingConfig,
        state_machine: sfn.IStateMachine,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        if config.schedule_cron is None:
            raise ValueError(
                "RetrainingSchedule needs config.schedule_cron (the stack skips it when off)"
            )
        self.dead_letter_queue = dead_letter_queue(self, key, "schedule")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            ),
            description="EventBridge Scheduler: start the training state machine",
        )
        # Scheduler writes undeliverable starts to the KMS-encrypted DLQ as this role; the L2
        # target grants sqs:SendMessage only, SSE-KMS also needs the data key.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptDeadLetters",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
            )
        )
        window = (
            scheduler.TimeWindow.flexible(cdk.Duration.minutes(config.schedule_flexible_window_min))
            if config.schedule_flexible_window_min
            else scheduler.TimeWindow.off()
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=(
                f"Retrain {config.stack_name}: {config.schedule_cron} {config.schedule_timezone}"
            ),
            schedule=scheduler.ScheduleExpression.expression(
                config.schedule_cron, cdk.TimeZone.of(config.schedule_timezone)
            ),
            time_window=window,
            target=targets.StepFunctionsStartExecution(
                state_machine,
                input=scheduler.ScheduleTargetInput.from_object(SCHEDULED_INPUT),
                role=self.role,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            ),
        )
