"""The model registry: one SageMaker model package group per stack, retained on delete.

Every successful run registers its model there as a new version (the state machine's
RegisterModel state, infra/workflow_definition/registry_stage.py); `trainops models` lists the
versions with their metrics and `trainops approve VERSION` approves one.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from core.config import TrainingConfig


class ModelRegistry(Construct):
    """`group_name`, `group_arn`, `package_arns` (the versions: <group arn>/<n>)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: TrainingConfig) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.group_name = config.model_package_group_name
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=self.group_name,
            model_package_group_description=(
                f"Models trained by the {config.stack_name} training workflow"
            ),
        )
        # Registered versions are the product of paid training: never deleted with the stack.
        self.group.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.group_arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=self.group_name
        )
        self.package_arns = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{self.group_name}/*"
        )
