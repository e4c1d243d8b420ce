"""SageMaker API calls from the state machine through the aws-sdk integration.

Step Functions has optimized integrations for neither ListTrainingJobs, DescribeTrainingJob nor
CreateModelPackage. The role's statements for them are written in infra/workflow.py (the graph
goes in as a string, so CDK adds none); `resources` here says the same scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct


def sagemaker_call(
    scope: Construct, name: str, action: str, *, resources: Sequence[str], **props: Any
) -> tasks.CallAwsService:
    """The state `name` calling sagemaker:`action` (camelCase, as the integration names it)."""
    return tasks.CallAwsService(
        scope, name, service="sagemaker", action=action, iam_resources=list(resources), **props
    )
