"""cdk-nag (v3) registration, and acknowledgements for resources CDK generates for us.

Acknowledgements of our own resources sit next to the resource they excuse (storage, roles,
schedule); the ones here cover constructs the CDK framework adds (custom-resource providers),
which our code cannot reach by a variable. Each IAM finding is acknowledged by its own id.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack on every synth (errors fail the synth)."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, acknowledgements: dict[str, str]) -> None:
    """`{finding id: reason}` on `scope` (and everything below it)."""
    cdk.Validations.of(scope).acknowledge(
        *(cdk.Acknowledgment(id=rule, reason=reason) for rule, reason in acknowledgements.items())
    )


def acknowledge_stack(stack: cdk.Stack) -> None:
    """Findings on framework-generated constructs (filled in from the first nag report)."""
    lookup_provider = stack.node.try_find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
    if lookup_provider is not None:  # the S3 prefix-list lookup (network.py)
        acknowledge(
            lookup_provider,
            {
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]": "CDK's AwsCustomResource provider (one deploy-time"
                " DescribePrefixLists call) logs through the AWS basic execution policy: it only"
                " grants CreateLogGroup/CreateLogStream/PutLogEvents for its own function.",
            },
        )
    auto_delete = stack.node.try_find_child(AUTO_DELETE_PROVIDER_ID)
    if auto_delete is not None:  # only with removal_policy=destroy
        acknowledge(
            auto_delete,
            {
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]": "CDK's S3 auto-delete provider (removal_policy="
                "destroy only) logs through the AWS basic execution policy.",
            },
        )


AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def arn_placeholder(resource: IConstruct) -> str:
    """How cdk-nag spells `Fn::GetAtt <logical id>.Arn` of an L2's resource in a finding id."""
    default = resource.node.default_child if hasattr(resource, "node") else None
    cfn = default if default is not None else resource
    stack = cdk.Stack.of(resource)
    logical_id = stack.resolve(stack.get_logical_id(cfn))  # type: ignore[arg-type]
    return f"<{logical_id}.Arn>"
