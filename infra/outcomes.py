"""Every outcome notified: an EventBridge rule on the state machine's execution status.

The state machine notifies what it handles itself (success, a failed or capacity-starved job,
with the job and its metrics). What it cannot see reaches the topic through this rule: an
aborted execution (`trainops stop`, the console), a timed-out one, and failures outside its
Catch (bad input, a runtime error). Its own failures (TrainingJobFailed,
TrainingCapacityExhausted) are left out so nobody gets two messages for one failure.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.workflow_definition import asl as wd

STATUS_CHANGE = "Step Functions Execution Status Change"
NOTIFIED_BY_THE_STATE_MACHINE = (wd.ERROR_JOB_FAILED, wd.ERROR_CAPACITY)


class OutcomeNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        topic: sns.ITopic,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        allow_eventbridge_to_encrypt(self, key)
        self.rule = events.Rule(
            self,
            "Rule",
            description="Training executions that end ABORTED, TIMED_OUT or FAILED unhandled",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[STATUS_CHANGE],
                detail={
                    "stateMachineArn": [state_machine.state_machine_arn],
                    "$or": [
                        {"status": ["ABORTED", "TIMED_OUT"]},
                        {
                            "status": ["FAILED"],
                            "error": [{"anything-but": list(NOTIFIED_BY_THE_STATE_MACHINE)}],
                        },
                    ],
                },
            ),
        )
        field = events.EventField.from_path
        # By ARN: the target would otherwise grant EventBridge `kms:GenerateDataKey*` on the key;
        # allow_eventbridge_to_encrypt grants the two actions it needs, for this account only.
        by_arn = sns.Topic.from_topic_arn(self, "Topic", topic.topic_arn)
        self.rule.add_target(
            targets.SnsTopic(
                by_arn,
                message=events.RuleTargetInput.from_object(
                    {
                        "status": field("$.detail.status"),
                        "execution": field("$.detail.executionArn"),
                        "name": field("$.detail.name"),
                        "error": field("$.detail.error"),
                        "cause": field("$.detail.cause"),
                        "started": field("$.detail.startDate"),
                        "stopped": field("$.detail.stopDate"),
                        "see": "trainops watch <name> shows the run and its training job",
                    }
                ),
                retry_attempts=8,
            )
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowOutcomeRule",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.rule_arn}},
            )
        )


def allow_eventbridge_to_encrypt(scope: Construct, key: kms.IKey) -> None:
    """EventBridge delivers to the KMS-encrypted topic and queues only if the key lets it (its
    service principal, this account's rules only); idempotent per key."""
    stack = cdk.Stack.of(scope)
    if stack.node.try_find_child("EventBridgeMayEncrypt") is not None:
        return
    Construct(stack, "EventBridgeMayEncrypt")  # marks the statement as added (one key per stack)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowEventBridgeDeliveries",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
