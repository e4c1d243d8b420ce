"""State machine states for the production loop: the new-data guard and the model registry.

Kept apart from infra/workflow_definition.py (the training core) because both are optional:
the guard only acts on `new-data` runs, the registry only with a model package group.

- New data: a run started by an upload (trigger `new-data`) first lists this stack's training
  jobs that are InProgress (ListTrainingJobs, NameContains the job-name prefix); when one is,
  this run ends at once as SKIPPED with a notification, so a second upload during a run starts
  no second training (it is not queued: upload the marker again, or `trainops start`, after).
  A run between attempts (capacity backoff) has no job in progress and does not block.
- Registry: after a successful job, CreateModelPackage (aws-sdk integration: Step Functions
  has no optimized one) registers the model in the group with the image, the model data URL,
  the run's hyperparameters and job (CustomerMetadataProperties) and the final metrics (tags
  `metric:<name>`, built by a Map state: JSONPath cannot turn the metric list into a map).
  A registry failure never fails a trained run: the model is in S3 and the notification says
  why it was not registered.
"""

from __future__ import annotations

from infra import execution_input as ei
from infra.workflow_settings import WorkflowSettings

LIST_TRAINING_JOBS_SDK = "arn:aws:states:::aws-sdk:sagemaker:listTrainingJobs"
CREATE_MODEL_PACKAGE_SDK = "arn:aws:states:::aws-sdk:sagemaker:createModelPackage"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
#: Entry states, for the core definition to link to.
GUARD_ENTRY = "IsNewDataRun"
REGISTRY_ENTRY = "MetricTags"
SKIPPED_STATUS = "SKIPPED"


def new_data_guard_states(s: WorkflowSettings, *, next_state: str, done_state: str) -> dict:
    """IsNewDataRun -> FindRunningRuns -> AnotherRunInProgress -> (SkipNewDataRun | next)."""
    return {
        GUARD_ENTRY: {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.run.trigger",
                    "StringEquals": ei.NEW_DATA_TRIGGER,
                    "Next": "FindRunningRuns",
                }
            ],
            "Default": next_state,
        },
        "FindRunningRuns": {
            "Type": "Task",
            "Resource": LIST_TRAINING_JOBS_SDK,
            "Parameters": {
                "StatusEquals": "InProgress",
                "NameContains": f"{s.job_name_prefix}-",
                "MaxResults": 100,
            },
            "ResultSelector": {
                "count.$": "States.ArrayLength($.TrainingJobSummaries)",
                "names.$": "$.TrainingJobSummaries[*].TrainingJobName",
            },
            "ResultPath": "$.running",
            "Next": "AnotherRunInProgress",
        },
        "AnotherRunInProgress": {
            "Type": "Choice",
            "Comment": "This run has no job yet: any InProgress job is another run's.",
            "Choices": [
                {"Variable": "$.running.count", "NumericGreaterThan": 0, "Next": "SkipNewDataRun"}
            ],
            "Default": next_state,
        },
        "SkipNewDataRun": {
            "Type": "Pass",
            "Parameters": {
                "status": SKIPPED_STATUS,
                "reason.$": (
                    "States.Format('new data arrived while a run was in progress ({}): not "
                    "started; upload the marker again after it ends, or trainops start', "
                    "States.JsonToString($.running.names))"
                ),
                "execution.$": "$$.Execution.Id",
                "trigger.$": "$.run.trigger",
            },
            "ResultPath": "$.result",
            "Next": "NotifySkipped",
        },
        "NotifySkipped": {
            "Type": "Task",
            "Resource": SNS_PUBLISH,
            "Parameters": {
                "TopicArn": s.topic_arn,
                "Subject": f"Training skipped ({s.job_name_prefix})",
                "Message.$": "States.JsonToString($.result)",
            },
            "ResultPath": None,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": done_state}],
            "Next": done_state,
        },
    }


def registry_states(s: WorkflowSettings, *, next_state: str) -> dict:
    """MetricTags -> RegistryMetadata -> RegisterModel -> RecordModelPackage -> next."""
    return {
        REGISTRY_ENTRY: {
            "Type": "Map",
            "Comment": "FinalMetricDataList -> [{Key: metric:<name>, Value: '<value>'}].",
            "ItemsPath": "$.result.final_metrics",
            "MaxConcurrency": 10,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "MetricTag",
                "States": {
                    "MetricTag": {
                        "Type": "Pass",
                        "Parameters": {
                            "Key.$": "States.Format('metric:{}', $.MetricName)",
                            "Value.$": "States.Format('{}', $.Value)",
                        },
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.registry.tags",
            "Next": "RegistryMetadata",
        },
        "RegistryMetadata": {
            "Type": "Pass",
            "Parameters": {
                "trainops:training-job.$": "$.result.job_name",
                "trainops:trigger.$": "$.run.trigger",
                "trainops:instance-type.$": "$.run.instance_type",
                "trainops:instance-count.$": "States.Format('{}', $.run.instance_count)",
            },
            "ResultPath": "$.registry.metadata",
            "Next": "RegisterModel",
        },
        "RegisterModel": {
            "Type": "Task",
            "Resource": CREATE_MODEL_PACKAGE_SDK,
            "Parameters": {
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
            "ResultSelector": {"arn.$": "$.ModelPackageArn"},
            "ResultPath": "$.registry.package",
            "Retry": [
                {
                    "ErrorEquals": ["SageMaker.ThrottlingException"],
                    "IntervalSeconds": 5,
                    "MaxAttempts": 3,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.registry.error",
                    "Next": "RecordRegistryError",
                }
            ],
            "Next": "RecordModelPackage",
        },
        "RecordModelPackage": {
            "Type": "Pass",
            "InputPath": "$.registry.package.arn",
            "ResultPath": "$.result.model_package_arn",
            "Next": next_state,
        },
        "RecordRegistryError": {
            "Type": "Pass",
            "InputPath": "$.registry.error",
            "ResultPath": "$.result.model_registry_error",
            "Next": next_state,
        },
    }
