"""Encryption key and buckets: training data, artifacts (model output + checkpoints), access logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import CHECKPOINT_PREFIX, TrainingConfig


class Storage(Construct):
    """`key` (KMS, rotated), `data_bucket`, `artifacts_bucket`, `access_log_bucket`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: TrainingConfig) -> None:
        super().__init__(scope, construct_id)
        destroy = config.removal_policy == "destroy"
        removal = cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN

        self.key = kms.Key(
            self,
            "Key",
            description=f"{config.stack_name}: training data, artifacts, logs, queues",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        noncurrent = cdk.Duration.days(config.noncurrent_retention_days)

        # Server access logs: S3 log delivery writes only to SSE-S3 buckets.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=removal,
            auto_delete_objects=False,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=noncurrent),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
        )
        # AwsSolutions-S1 on the log bucket itself: logging the log bucket would loop.
        cdk.Validations.of(self.access_log_bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the server access log bucket; logging it into itself would loop.",
            )
        )

        common = {
            "encryption": s3.BucketEncryption.KMS,
            "encryption_key": self.key,
            "bucket_key_enabled": True,
            "enforce_ssl": True,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "versioned": True,
            "removal_policy": removal,
            "auto_delete_objects": False,
            "server_access_logs_bucket": self.access_log_bucket,
        }
        self.data_bucket = s3.Bucket(
            self,
            "Data",
            server_access_logs_prefix="data/",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=noncurrent),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
            **common,
        )
        self.artifacts_bucket = s3.Bucket(
            self,
            "Artifacts",
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-checkpoints",
                    prefix=CHECKPOINT_PREFIX,
                    expiration=cdk.Duration.days(config.checkpoint_retention_days),
                ),
                s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=noncurrent),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
            **common,
        )
