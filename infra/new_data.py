"""Retrain on new data: the marker object's upload starts one run (retrain_on_new_data).

Debounce by marker: the uploader writes `<train prefix><retrain_marker>` (default `_SUCCESS`)
after the data, as Spark/Hadoop jobs and `aws s3 sync && aws s3 cp _SUCCESS` scripts do. A
burst of 50 or 50 000 objects is one run, and a run never starts on a half-uploaded dataset
(a quiet-period timer would: an uploader that pauses longer than the window starts a run on
partial data). A run already in progress is not duplicated: the state machine's new-data guard
ends the second execution as SKIPPED and says so (infra/workflow_definition/new_data_stage.py).

The bucket sends its events to EventBridge natively (NotificationConfiguration.
EventBridgeConfiguration: no notification Lambda); deliveries that fail land in an encrypted
DLQ.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from core import execution_input as ei
from core.config import TrainingConfig
from infra.dead_letter import dead_letter_queue
from infra.outcomes import allow_eventbridge_to_encrypt

#: The input a new-data run starts with (the schedule sends {"trigger": "schedule"}).
NEW_DATA_INPUT = {"trigger": ei.NEW_DATA_TRIGGER}


class NewDataTrigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TrainingConfig,
        data_bucket: s3.IBucket,
        state_machine: sfn.IStateMachine,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        allow_eventbridge_to_encrypt(self, key)
        cfn_bucket = data_bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        self.dead_letter_queue = dead_letter_queue(self, key, "new-data rule")
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"Start a training run when {config.retrain_marker_key} is uploaded",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    "object": {"key": [config.retrain_marker_key]},
                },
            ),
        )
        self.rule.add_target(
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_object(NEW_DATA_INPUT),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=8,
                max_event_age=cdk.Duration.hours(2),
            )
        )
