"""The SageMaker execution role, least privilege, every action named.

What a training job does with it: read the data bucket and the code bundle, write model output
and checkpoints (and read checkpoints back on a spot restart), use the stack key for those
objects, pull the DLC image, write its logs and metrics, and create/delete the ENIs of its VPC
configuration. The state machine's role is built by the workflow; the scheduler's by schedule.py.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from core.config import CHECKPOINT_PREFIX, OUTPUT_PREFIX
from infra import nag

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
S3_READ = ["s3:GetObject", "s3:GetObjectVersion"]
S3_WRITE = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
ECR_PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
ENI_DESCRIBE = [
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
]
ENI_MANAGE = [
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
]


class ExecutionRole(Construct):
    """`role`: what SageMaker assumes to run the training job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        code_bucket: s3.IBucket,
        code_object_key: str,
        image_repository_arn: str,
        vpc: ec2.IVpc,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker training jobs of this stack",
        )
        add = self.role.add_to_policy

        # --- S3: data (read), code bundle (read), artifacts (model output + checkpoints) ---
        add(
            iam.PolicyStatement(
                sid="ReadData", actions=S3_READ, resources=[data_bucket.arn_for_objects("*")]
            )
        )
        add(
            iam.PolicyStatement(
                sid="ListData", actions=["s3:ListBucket"], resources=[data_bucket.bucket_arn]
            )
        )
        add(
            iam.PolicyStatement(
                sid="ReadCode",
                actions=S3_READ,
                resources=[code_bucket.arn_for_objects(code_object_key)],
            )
        )
        artifact_prefixes = (OUTPUT_PREFIX, CHECKPOINT_PREFIX)
        add(
            iam.PolicyStatement(
                sid="WriteArtifacts",
                actions=S3_WRITE,
                resources=[artifacts_bucket.arn_for_objects(f"{p}*") for p in artifact_prefixes],
            )
        )
        add(
            iam.PolicyStatement(
                sid="ListArtifacts",
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in artifact_prefixes]}},
            )
        )
        # --- KMS: the stack key encrypts both buckets (bucket keys on) ---
        add(
            iam.PolicyStatement(
                sid="UseStackKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"],
                resources=[key.key_arn],
            )
        )
        add(
            iam.PolicyStatement(
                sid="GrantStackKeyToAwsResources",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        # --- ECR: the DLC repository in AWS's registry account for this region ---
        add(
            iam.PolicyStatement(
                sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            )
        )
        add(
            iam.PolicyStatement(sid="PullImage", actions=ECR_PULL, resources=[image_repository_arn])
        )
        # --- CloudWatch Logs and metrics ---
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRAINING_LOG_GROUP,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        add(
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[log_group_arn, f"{log_group_arn}:*"],
            )
        )
        add(
            iam.PolicyStatement(
                sid="LogStreams",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{log_group_arn}:log-stream:*"],
            )
        )
        add(
            iam.PolicyStatement(
                sid="Metrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        # --- EC2: the ENIs of the job's VpcConfig, in this VPC only ---
        vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)
        eni_arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
        in_vpc = {"StringEquals": {"ec2:Vpc": vpc_arn}}
        add(
            iam.PolicyStatement(
                sid="CreateEni",
                actions=["ec2:CreateNetworkInterface"],
                resources=[
                    eni_arn,
                    *(
                        stack.format_arn(service="ec2", resource="subnet", resource_name=s)
                        for s in subnet_ids
                    ),
                    stack.format_arn(
                        service="ec2",
                        resource="security-group",
                        resource_name=security_group.security_group_id,
                    ),
                ],
                conditions=in_vpc,
            )
        )
        add(
            iam.PolicyStatement(
                sid="ManageEni", actions=ENI_MANAGE, resources=[eni_arn], conditions=in_vpc
            )
        )
        add(iam.PolicyStatement(sid="DescribeNetwork", actions=ENI_DESCRIBE, resources=["*"]))

        # --- cdk-nag: each wildcard resource, with why it cannot be narrower ---
        logs = (
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"{TRAINING_LOG_GROUP}"
        )
        artifacts = nag.arn_placeholder(artifacts_bucket)
        nag.acknowledge(
            self.role,
            {
                "AwsSolutions-IAM5[Resource::*]": "Only actions without resource-level permissions:"
                " ecr:GetAuthorizationToken (registry login), ec2:Describe* for the job's VPC"
                " config, and cloudwatch:PutMetricData, which is limited by a cloudwatch:namespace"
                " condition to /aws/sagemaker/TrainingJobs.",
                f"AwsSolutions-IAM5[Resource::{nag.arn_placeholder(data_bucket)}/*]": "Training"
                " jobs read any dataset the operator stages in this stack's own data bucket"
                " (read-only actions).",
                f"AwsSolutions-IAM5[Resource::{artifacts}/{OUTPUT_PREFIX}*]": "Model output goes"
                f" under {OUTPUT_PREFIX}<job name>/; job names are minted per execution/attempt.",
                f"AwsSolutions-IAM5[Resource::{artifacts}/{CHECKPOINT_PREFIX}*]": "Checkpoints"
                " sync under checkpoints/<run>/, named at run time; read back on spot restarts.",
                f"AwsSolutions-IAM5[Resource::{logs}:*]": "SageMaker writes one log stream per"
                " job and host into the fixed /aws/sagemaker/TrainingJobs group.",
                f"AwsSolutions-IAM5[Resource::{logs}:log-stream:*]": "Stream names are"
                " <job name>/algo-<n>-<timestamp>, unknown before the job runs.",
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:"
                "<AWS::AccountId>:network-interface/*]": "ENI ids do not exist before SageMaker"
                " creates them; every ENI action is limited by an ec2:Vpc condition to this VPC.",
            },
        )
