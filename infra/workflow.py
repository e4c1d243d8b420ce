"""The training workflow: a Standard state machine around CreateTrainingJob (.sync).

The definition is built from `aws_stepfunctions` states, one module per stage
(infra/workflow_definition/); the training task is a CustomState (CDK's
SageMakerCreateTrainingJob has no spot/checkpoint/warm-pool fields and adds its own 0.0.0.0/0
security group). Every permission the state machine role needs is written here, explicitly,
with no wildcard actions: the graph goes in as a string (DefinitionBody.from_string), so the
tasks' own policy statements are never added.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from core.config import TrainingConfig
from infra.registry import ModelRegistry
from infra.workflow_definition import WorkflowSettings, definition_json

#: The managed EventBridge rule Step Functions creates for SageMaker training .sync tasks.
SYNC_EVENTS_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
#: What sfn.StateMachine adds to the role for `logs=` and `tracing_enabled=` (asserted in tests):
#: these APIs support no resource-level permissions, hence Resource "*" (acknowledged below).
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)


class TrainingWorkflow(Construct):
    """State machine + its role, an encrypted SNS topic and an encrypted log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TrainingConfig,
        execution_role: iam.IRole,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        security_group: ec2.ISecurityGroup,
        subnet_ids: list[str],
        image_uri: str,
        code_s3_uri: str,
        code_file_name: str,
        registry: ModelRegistry | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.registry = registry
        #: Named after the stack: readable in the console and in `trainops list`.
        self.state_machine_name = f"{config.stack_name}-training"
        removal = (
            cdk.RemovalPolicy.DESTROY
            if getattr(config, "removal_policy", "retain") == "destroy"
            else cdk.RemovalPolicy.RETAIN
        )

        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name="SageMaker training notifications",
            master_key=key,
            enforce_ssl=True,
        )
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))

        self.settings = WorkflowSettings.from_config(
            config,
            region=stack.region,
            role_arn=execution_role.role_arn,
            image_uri=image_uri,
            code_s3_uri=code_s3_uri,
            code_file_name=code_file_name,
            topic_arn=self.topic.topic_arn,
            data_bucket_name=data_bucket.bucket_name,
            artifacts_bucket_name=artifacts_bucket.bucket_name,
            kms_key_arn=key.key_arn,
            security_group_ids=(security_group.security_group_id,),
            subnet_ids=tuple(subnet_ids),
            model_package_group=registry.group_name if registry else "",
        )
        #: The definition as a dict (tokens unresolved): tests render it with concrete values.
        self.definition = definition_json(Construct(self, "Definition"), self.settings)

        log_group_name = f"/aws/vendedlogs/states/{config.stack_name}-training"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            retention=LOG_RETENTION,
            encryption_key=key,
            removal_policy=removal,
        )
        # CloudWatch Logs encrypts with the key as its service principal (no-op for an imported
        # key: then its key policy must already allow this).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowStepFunctionsLogGroupEncryption",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=log_group_name,
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

        self.role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Training state machine: CreateTrainingJob .sync, SNS, logs, X-Ray",
        )
        # In the role's default policy, which sfn.StateMachine already depends on.
        for statement in self._statements(
            stack, config, execution_role, key, security_group, subnet_ids
        ):
            self.role.add_to_principal_policy(statement)

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # json.dumps keeps `"ResultPath": null` (CDK's to_json_string drops None values);
            # the token strings it contains are resolved by CDK into Fn::Join.
            definition_body=sfn.DefinitionBody.from_string(json.dumps(self.definition)),
            role=self.role,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                # Hyperparameters and S3 URIs are not secrets, and the input/output of each
                # state is what an operator needs to debug a failed run.
                include_execution_data=True,
            ),
            tracing_enabled=True,
            removal_policy=removal,
        )
        # sfn.StateMachine also lists the role in DependsOn, which its RoleArn GetAtt already
        # implies (cfn-lint W3005): keep only the policy the state machine needs at creation.
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        cfn_machine = self.state_machine.node.default_child
        cfn_machine.add_override("DependsOn", [stack.get_logical_id(policy)])
        if registry is not None:
            # Versions land in the group: it must exist before the first run.
            self.state_machine.node.add_dependency(registry.group)
        self._acknowledge(config)

    def _statements(
        self,
        stack: cdk.Stack,
        config: TrainingConfig,
        execution_role: iam.IRole,
        key: kms.IKey,
        security_group: ec2.ISecurityGroup,
        subnet_ids: list[str],
    ) -> list[iam.PolicyStatement]:
        jobs = stack.format_arn(
            service="sagemaker",
            resource="training-job",
            resource_name=f"{config.job_name_prefix}-*",
        )
        return [
            iam.PolicyStatement(
                sid="CreateTrainingJobsInTheVpcOnly",
                actions=["sagemaker:CreateTrainingJob"],
                resources=[jobs],
                conditions={
                    "ForAllValues:StringEquals": {
                        "sagemaker:VpcSecurityGroupIds": [security_group.security_group_id],
                        "sagemaker:VpcSubnets": list(subnet_ids),
                    },
                    "Null": {"sagemaker:VpcSecurityGroupIds": "false"},
                },
            ),
            iam.PolicyStatement(
                sid="ManageOwnTrainingJobs",
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[jobs],
            ),
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="SyncEventsRule",
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events", resource="rule", resource_name=SYNC_EVENTS_RULE
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="PublishNotifications",
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            ),
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
            ),
            iam.PolicyStatement(
                sid="FindRunningTrainingJobs",
                # The new-data guard; ListTrainingJobs supports no resource-level permission.
                actions=["sagemaker:ListTrainingJobs"],
                resources=["*"],
            ),
            *self._registry_statements(),
            # LOG_DELIVERY_ACTIONS and XRAY_ACTIONS on "*": added to the role's default policy
            # by sfn.StateMachine itself for `logs=` and `tracing_enabled=True`.
        ]

    def _registry_statements(self) -> list[iam.PolicyStatement]:
        if self.registry is None:
            return []
        return [
            iam.PolicyStatement(
                sid="RegisterModelVersions",
                actions=["sagemaker:CreateModelPackage", "sagemaker:AddTags"],
                resources=[self.registry.group_arn, self.registry.package_arns],
            )
        ]

    def _acknowledge(self, config: TrainingConfig) -> None:
        jobs = (
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
            f"training-job/{config.job_name_prefix}-*"
        )
        cdk.Validations.of(self).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "CloudWatch Logs vended-log delivery (logs:*LogDelivery*, "
                    "PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups), X-Ray "
                    "(PutTraceSegments, PutTelemetryRecords, GetSampling*) and "
                    "sagemaker:ListTrainingJobs (the new-data guard, read-only) support no "
                    "resource-level permissions; every action is listed explicitly."
                ),
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[{jobs}]",
                reason=(
                    "Each execution mints a new training-job name per attempt "
                    f"(<{config.job_name_prefix}>-<run id>-<attempt>), unknown at deploy "
                    "time; the ARN is scoped to this stack's job-name prefix."
                ),
            ),
        )
        if self.registry is not None:
            packages = (
                "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                f"model-package/{self.registry.group_name}/*"
            )
            cdk.Validations.of(self).acknowledge(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[{packages}]",
                    reason=(
                        "Each successful run registers a new version (<group>/<n>, numbered by "
                        "SageMaker), unknown at deploy time; the ARN is scoped to this stack's "
                        "model package group."
                    ),
                )
            )
