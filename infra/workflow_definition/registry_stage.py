"""Registry stage: a trained model becomes a version of the stack's model package group.

MetricTags (Map: FinalMetricDataList -> tags `metric:<name>`; JSONPath cannot turn the list
into a map) -> RegistryMetadata -> RegisterModel (CreateModelPackage through the aws-sdk
integration: Step Functions has no optimized one) -> RecordModelPackage -> next. A registry
failure never fails a trained run: the model is in S3 and the notification says why it was not
registered (RecordRegistryError).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from core.workflow_settings import WorkflowSettings
from infra.workflow_definition.sagemaker_calls import sagemaker_call


def registry_stage(
    scope: Construct, s: WorkflowSettings, *, next_state: sfn.IChainable
) -> sfn.Chain:
    """MetricTags -> RegistryMetadata -> RegisterModel -> RecordModelPackage -> next."""
    tags = sfn.Map(
        scope,
        "MetricTags",
        comment="FinalMetricDataList -> [{Key: metric:<name>, Value: '<value>'}].",
        items_path="$.result.final_metrics",
        max_concurrency=10,
        result_path="$.registry.tags",
    )
    tags.item_processor(
        sfn.Pass(
            scope,
            "MetricTag",
            parameters={
                "Key.$": "States.Format('metric:{}', $.MetricName)",
                "Value.$": "States.Format('{}', $.Value)",
            },
        )
    )
    metadata = sfn.Pass(
        scope,
        "RegistryMetadata",
        parameters={
            "trainops:training-job.$": "$.result.job_name",
            "trainops:trigger.$": "$.run.trigger",
            "trainops:instance-type.$": "$.run.instance_type",
            "trainops:instance-count.$": "States.Format('{}', $.run.instance_count)",
        },
        result_path="$.registry.metadata",
    )
    # Into the result (the notification and the execution output): the version or the error.
    record_error, record_package = (
        sfn.Pass(scope, name, input_path=source, result_path=f"$.result.{field}").next(next_state)
        for name, source, field in (
            ("RecordRegistryError", "$.registry.error", "model_registry_error"),
            ("RecordModelPackage", "$.registry.package.arn", "model_package_arn"),
        )
    )
    register = _register_model(scope, s).add_catch(
        record_error, errors=["States.ALL"], result_path="$.registry.error"
    )
    return sfn.Chain.start(tags).next(metadata).next(register).next(record_package)


def _register_model(scope: Construct, s: WorkflowSettings) -> tasks.CallAwsService:
    """CreateModelPackage: the image, the model data, the run's metadata and metric tags."""
    versions = cdk.Stack.of(scope).format_arn(
        service="sagemaker", resource="model-package", resource_name=f"{s.model_package_group}/*"
    )
    register = sagemaker_call(
        scope,
        "RegisterModel",
        "createModelPackage",
        resources=[versions],
        parameters={
            "ModelPackageGroupName": s.model_package_group,
            "ModelPackageDescription.$": (
                "States.Format('trained by {} (execution {})', $.result.job_name, "
                "$$.Execution.Name)"
            ),
            "ModelApprovalStatus": s.model_approval_status,
            "InferenceSpecification": {
                "Containers": [
                    {"Image": s.image_uri, "ModelDataUrl.$": "$.result.model_artifacts"}
                ],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            # The run's hyperparameters as they were sent, plus where the model came from.
            "CustomerMetadataProperties.$": (
                "States.JsonMerge($.hyperparameters, $.registry.metadata, false)"
            ),
            "Tags.$": "$.registry.tags",
        },
        result_selector={"arn.$": "$.ModelPackageArn"},
        result_path="$.registry.package",
    )
    return register.add_retry(
        errors=["SageMaker.ThrottlingException"],
        interval=cdk.Duration.seconds(5),
        max_attempts=3,
        backoff_rate=2.0,
    )
