"""Encryption key and buckets: training data, artifacts (model output, checkpoints), access logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from core.config import CHECKPOINT_PREFIX, TrainingConfig

#: What the account (and, through IAM policies, its principals) may do with the stack key:
#: every KMS action that applies to a single key, named (a key policy `kms:*`, spelled out).
KEY_ACCOUNT_ACTIONS = (
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateGrant",
    "Decrypt",
    "DeleteAlias",
    "DeleteImportedKeyMaterial",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListResourceTags",
    "PutKeyPolicy",
    "ReEncryptFrom",
    "ReEncryptTo",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
    "DeriveSharedSecret",
)


class Storage(Construct):
    """`key` (KMS, rotated), `data_bucket`, `artifacts_bucket`, `access_log_bucket`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: TrainingConfig) -> None:
        super().__init__(scope, construct_id)
        destroy = config.removal_policy == "destroy"
        removal = cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN

        # L1 key + Key.from_cfn_key: the L2 Key always adds `kms:*` for the account root; this
        # policy names the actions instead (no wildcard actions anywhere in the template).
        cfn_key = kms.CfnKey(
            self,
            "Key",
            description=f"{config.stack_name}: training data, artifacts, queues",
            enable_key_rotation=True,
            key_policy={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministersAndDelegatesThroughIam",
                        "Effect": "Allow",
                        "Principal": {
                            "AWS": f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:root"
                        },
                        "Action": [f"kms:{action}" for action in KEY_ACCOUNT_ACTIONS],
                        "Resource": "*",
                    }
                ],
            },
        )
        cfn_key.apply_removal_policy(removal)
        self.key: kms.IKey = kms.Key.from_cfn_key(cfn_key)
        self.cfn_key = cfn_key
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
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(365)),
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
            "auto_delete_objects": destroy,
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
