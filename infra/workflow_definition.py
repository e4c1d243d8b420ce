"""The training state machine as Amazon States Language, built from plain Python dicts.

`build_definition(settings)` returns the whole definition as a dict. It imports no aws_cdk: the
construct (infra/workflow.py) passes CDK tokens (ARNs, bucket names) as the string fields of
`WorkflowSettings` and renders the dict with `Stack.to_json_string`; tests pass concrete values
and run the result in moto's ASL interpreter.

Flow (JSONPath, every intrinsic used here also runs in moto 5.2.5):

    ValidateInput (Choice: types, ranges, 'ml.*.*', 's3://*/*')        -> RejectInput (Fail)
    ApplyDefaults -> MergeInput (States.JsonMerge over the defaults)
    InspectInput -> CountInput -> CheckMergedInput (unknown keys, integer count, #hyperparameters,
        SMDDP instance types) -> CheckHyperparameterValues (Map: every value IsString)
    PlanRun (run id = States.Hash(execution ARN, MD5), checkpoint prefix, attempt 0)
    ChooseCapacity (spot: MaxWait + no warm pool) -> ChooseVolumeEncryption (no VolumeKmsKeyId on
        instance types with local NVMe) -> BuildResourceConfig -> MergeResourceConfig
    MintJobName (<prefix>-<run id>-<attempt>) -> BuildJobHyperparameters
    TrainModel (createTrainingJob.sync) --Catch States.ALL--> ClassifyFailure
        capacity/throttling and attempts left -> PrepareRetry -> WaitBeforeRetry -> MintJobName
        capacity/throttling, no attempts left -> CapacityExhausted -> NotifyFailure -> Failed
        anything else -> JobFailed -> NotifyFailure -> Failed (ErrorPath/CausePath)
    SummarizeResult -> NotifySuccess -> Succeeded (OutputPath $.result)
"""

from __future__ import annotations

from typing import Any

from infra import execution_input as ei
from infra import workflow_extras as extras
from infra.config import CHECKPOINT_PREFIX
from infra.job_request import (
    LOCAL_NVME_INSTANCE_PATTERNS,
    framework_hyperparameters,
    training_request,
)
from infra.workflow_settings import (  # noqa: F401 (re-exported: the definition's vocabulary)
    JOB_NAME_MAX,
    RUN_ID_LENGTH,
    WorkflowSettings,
    job_name,
    max_prefix_length,
    run_id,
)
from training import contract

# --- Resources ---------------------------------------------------------------------------------
CREATE_TRAINING_JOB_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
#: Test-only rendering: request-response create (runs in moto) + an aws-sdk Describe after it.
CREATE_TRAINING_JOB = "arn:aws:states:::sagemaker:createTrainingJob"
DESCRIBE_TRAINING_JOB_SDK = "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob"
SNS_PUBLISH = "arn:aws:states:::sns:publish"

# --- Errors ------------------------------------------------------------------------------------
ERROR_INVALID_INPUT = "InvalidExecutionInput"
ERROR_JOB_FAILED = "TrainingJobFailed"
ERROR_CAPACITY = "TrainingCapacityExhausted"
#: API-level errors a Retrier may resend with the SAME job name: a throttled CreateTrainingJob
#: created nothing, so the name is still free. Job failures never match these (they arrive as
#: States.TaskFailed) and go through Catch -> ClassifyFailure -> a fresh name instead.
API_RETRY_ERRORS = ("SageMaker.ThrottlingException", "SageMaker.ServiceUnavailableException")
#: Failure causes worth another attempt (new job name, after a backoff): no capacity for the
#: instance type, the account's instance quota taken by other running jobs, API throttling.
RETRYABLE_CAUSE_PATTERNS = (
    "*CapacityError*",
    "*InsufficientCapacity*",
    "*ResourceLimitExceeded*",
    "*ThrottlingException*",
    "*Rate exceeded*",
)

# --- Job names ---------------------------------------------------------------------------------
#: States.Hash of the execution ARN: stable across the attempts of one execution (so checkpoints
#: resume), unique per execution, and computable from the ARN (`workflow_settings.run_id`).
RUN_ID_EXPRESSION = "States.Hash($$.Execution.Id, 'MD5')"

# --- State machine timing ---------------------------------------------------------------------
#: Step Functions gives up on a .sync task this long after SageMaker's own limit should have hit.
TASK_TIMEOUT_MARGIN_S = 2 * 3600


def backoff_table(retries: int, base_s: int, max_s: int) -> list[int]:
    """Wait before attempt i+1: base * 2**i, capped; one entry per allowed retry."""
    return [min(base_s * 2**i, max_s) for i in range(max(1, retries))]


# --- Small ASL helpers -------------------------------------------------------------------------
def _present(path: str) -> dict:
    return {"Variable": path, "IsPresent": True}


def _is(path: str, kind: str) -> dict:
    return {"Variable": path, kind: True}


def _bad_if_present(path: str, valid: dict) -> dict:
    """`path` is present and not `valid` (IsPresent first: And stops at the first false)."""
    return {"And": [_present(path), {"Not": valid}]}


def _reject(state: str) -> str:
    return f"Reject: {state}"


def _fail(cause: str) -> dict:
    return {"Type": "Fail", "Error": ERROR_INVALID_INPUT, "Cause": cause}


def _input_validation_states(s: WorkflowSettings) -> tuple[dict, dict]:
    """ValidateInput (raw input) and its Fail states."""
    rules = [
        (
            "NotAnObject",
            {
                "Or": [
                    _is("$", "IsString"),
                    _is("$", "IsNumeric"),
                    _is("$", "IsBoolean"),
                    _is("$", "IsNull"),
                    _present("$[0]"),
                ]
            },
            ei.MSG_NOT_OBJECT,
        ),
        (
            "Trigger",
            _bad_if_present(
                "$.trigger",
                {
                    "And": [
                        _is("$.trigger", "IsString"),
                        {"Or": [{"Variable": "$.trigger", "StringEquals": t} for t in ei.TRIGGERS]},
                    ]
                },
            ),
            ei.MSG_TRIGGER,
        ),
        (
            "Hyperparameters",
            {
                "And": [
                    _present("$.hyperparameters"),
                    {
                        "Or": [
                            _is("$.hyperparameters", "IsString"),
                            _is("$.hyperparameters", "IsNumeric"),
                            _is("$.hyperparameters", "IsBoolean"),
                            _is("$.hyperparameters", "IsNull"),
                            _present("$.hyperparameters[0]"),
                        ]
                    },
                ]
            },
            ei.MSG_HYPERPARAMETERS,
        ),
        (
            "InstanceType",
            _bad_if_present(
                "$.instance_type",
                {
                    "And": [
                        _is("$.instance_type", "IsString"),
                        {"Variable": "$.instance_type", "StringMatches": "ml.*.*"},
                    ]
                },
            ),
            ei.MSG_INSTANCE_TYPE,
        ),
        (
            "InstanceCount",
            _bad_if_present(
                "$.instance_count",
                {
                    "And": [
                        _is("$.instance_count", "IsNumeric"),
                        {"Variable": "$.instance_count", "NumericGreaterThanEquals": 1},
                        {
                            "Variable": "$.instance_count",
                            "NumericLessThanEquals": ei.MAX_INSTANCE_COUNT,
                        },
                    ]
                },
            ),
            ei.MSG_INSTANCE_COUNT,
        ),
        ("Spot", _bad_if_present("$.spot", _is("$.spot", "IsBoolean")), ei.MSG_SPOT),
        (
            "TrainS3Uri",
            _bad_if_present(
                "$.train_s3_uri",
                {
                    "And": [
                        _is("$.train_s3_uri", "IsString"),
                        {"Variable": "$.train_s3_uri", "StringMatches": "s3://*/*"},
                        {"Not": {"Variable": "$.train_s3_uri", "StringMatches": "s3:///*"}},
                    ]
                },
            ),
            ei.MSG_TRAIN_S3_URI,
        ),
    ]
    choices = [{**rule, "Next": _reject(name)} for name, rule, _ in rules]
    validate = {
        "Type": "Choice",
        "Comment": "Shape of the execution input; every rule ends in a Fail state.",
        "Choices": choices,
        "Default": "ApplyDefaults",
    }
    fails = {_reject(name): _fail(cause) for name, _, cause in rules}
    return validate, fails


def _merged_checks(s: WorkflowSettings) -> tuple[dict, dict]:
    rules: list[tuple[str, dict, str]] = [
        (
            "UnknownKey",
            {"Variable": "$.top_key_count", "NumericGreaterThan": len(ei.INPUT_KEYS)},
            ei.MSG_UNKNOWN_KEY,
        ),
        (
            "FractionalInstanceCount",
            {"Variable": "$.count_text", "StringMatches": "*.*"},
            ei.MSG_INSTANCE_COUNT,
        ),
        (
            "TooManyHyperparameters",
            {"Variable": "$.hp_count", "NumericGreaterThan": ei.MAX_USER_HYPERPARAMETERS},
            ei.MSG_TOO_MANY_HYPERPARAMETERS,
        ),
    ]
    if s.backend == "smddp":
        rules.append(
            (
                "SmddpInstanceType",
                {
                    "Not": {
                        "Or": [
                            {"Variable": "$.run.instance_type", "StringEquals": t}
                            for t in ei.SMDDP_INSTANCE_TYPES
                        ]
                    }
                },
                ei.MSG_SMDDP_INSTANCE_TYPE,
            )
        )
    check = {
        "Type": "Choice",
        "Comment": "Rules that need the merged input: unknown keys, integer count, limits.",
        "Choices": [{**rule, "Next": _reject(name)} for name, rule, _ in rules],
        "Default": "CheckHyperparameterValues",
    }
    return check, {_reject(name): _fail(cause) for name, _, cause in rules}


def build_definition(s: WorkflowSettings) -> dict:
    """The complete state machine definition (a JSON-serializable dict; tokens allowed)."""
    s.check()
    validate, input_fails = _input_validation_states(s)
    check_merged, merged_fails = _merged_checks(s)
    retries = max(0, s.max_capacity_retries)
    backoff = ", ".join(str(x) for x in backoff_table(retries, s.backoff_base_s, s.backoff_max_s))
    name_expr = f"States.Format('{s.job_name_prefix}-{{}}-{{}}', $.run_id, $.retry.attempt)"
    cause_patterns = [
        {"Variable": "$.failure.Cause", "StringMatches": p} for p in RETRYABLE_CAUSE_PATTERNS
    ]
    retryable = {"And": [_is("$.failure.Cause", "IsString"), {"Or": cause_patterns}]}
    keep_alive = {"KeepAlivePeriodInSeconds": s.keep_alive_s} if s.keep_alive_s > 0 else {}
    sync = s.integration == "sync"
    after_result = extras.REGISTRY_ENTRY if s.model_package_group else "NotifySuccess"

    states: dict[str, Any] = {
        "ValidateInput": validate,
        **input_fails,
        "ApplyDefaults": {
            "Type": "Pass",
            "Parameters": {
                "input.$": "$",
                "defaults": {
                    "trigger": ei.DEFAULT_TRIGGER,
                    "hyperparameters": {},
                    "instance_type": s.instance_type,
                    "instance_count": s.instance_count,
                    "spot": bool(s.spot),
                    "train_s3_uri": f"s3://{s.data_bucket_name}/{contract.TRAIN_CHANNEL}/",
                },
                "hp_defaults": s.default_hyperparameters,
                # Two keys keep `.*` a list in every engine (one match is unwrapped in moto).
                "hp_sentinel": {"__probe_a": "", "__probe_b": ""},
            },
            "Next": "MergeInput",
        },
        "MergeInput": {
            "Type": "Pass",
            "Comment": "Top level: input keys override the defaults.",
            "Parameters": {
                "run.$": "States.JsonMerge($.defaults, $.input, false)",
                "hp_defaults.$": "$.hp_defaults",
                "hp_sentinel.$": "$.hp_sentinel",
            },
            "Next": "InspectInput",
        },
        "InspectInput": {
            "Type": "Pass",
            "Comment": "Hyperparameters: user keys override the defaults key by key.",
            "Parameters": {
                "run.$": "$.run",
                "hyperparameters.$": (
                    "States.JsonMerge($.hp_defaults, $.run.hyperparameters, false)"
                ),
                "top_values.$": "$.run.*",
                "hp_probe.$": "States.JsonMerge($.hp_sentinel, $.run.hyperparameters, false)",
                "count_text.$": "States.JsonToString($.run.instance_count)",
            },
            "Next": "CountInput",
        },
        "CountInput": {
            "Type": "Pass",
            "Parameters": {
                "run.$": "$.run",
                "hyperparameters.$": "$.hyperparameters",
                "count_text.$": "$.count_text",
                # Defaults hold every known key, so more keys than that means an unknown one.
                "top_key_count.$": "States.ArrayLength($.top_values)",
                "hp_values.$": "$.hp_probe.*",
                "hp_all_values.$": "$.hyperparameters.*",
            },
            "ResultPath": "$",
            "Next": "CountHyperparameters",
        },
        "CountHyperparameters": {
            "Type": "Pass",
            "Parameters": {"count.$": "States.ArrayLength($.hp_all_values)"},
            "ResultPath": "$.hp_count_result",
            "Next": "LiftHyperparameterCount",
        },
        "LiftHyperparameterCount": {
            "Type": "Pass",
            "InputPath": "$.hp_count_result.count",
            "ResultPath": "$.hp_count",
            "Next": "CheckMergedInput",
        },
        "CheckMergedInput": check_merged,
        **merged_fails,
        "CheckHyperparameterValues": {
            "Type": "Map",
            "Comment": "Every hyperparameter value must be a string.",
            "ItemsPath": "$.hp_values",
            "MaxConcurrency": 10,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "IsStringValue",
                "States": {
                    "IsStringValue": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$", "IsString": True, "Next": "StringValue"}],
                        "Default": "NotAStringValue",
                    },
                    "StringValue": {"Type": "Pass", "End": True},
                    "NotAStringValue": _fail(ei.MSG_HYPERPARAMETER_VALUE),
                },
            },
            "ResultPath": None,
            "Next": "PlanRun",
        },
        "PlanRun": {
            "Type": "Pass",
            "Parameters": {
                "run": {
                    key + ".$": f"$.run.{key}"
                    for key in ("trigger", "instance_type", "instance_count", "spot")
                }
                | {"train_s3_uri.$": "$.run.train_s3_uri"},
                "hyperparameters.$": "$.hyperparameters",
                "run_id.$": RUN_ID_EXPRESSION,
                "checkpoint_s3_uri.$": (
                    f"States.Format('s3://{s.artifacts_bucket_name}/{CHECKPOINT_PREFIX}{{}}/', "
                    f"{RUN_ID_EXPRESSION})"
                ),
                "retry": {"attempt": 0, "wait_s": 0},
            },
            "Next": extras.GUARD_ENTRY,
        },
        **extras.new_data_guard_states(s, next_state="ChooseCapacity", done_state="Succeeded"),
        "ChooseCapacity": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.run.spot", "BooleanEquals": True, "Next": "SpotCapacity"}],
            "Default": "OnDemandCapacity",
        },
        "SpotCapacity": {
            "Type": "Pass",
            "Comment": "Managed spot: MaxWait > MaxRuntime; warm pools cannot be used.",
            "Parameters": {
                "stopping": {
                    "MaxRuntimeInSeconds": s.max_runtime_s,
                    "MaxWaitTimeInSeconds": s.spot_max_wait_s,
                },
                "keep_alive": {},
            },
            "ResultPath": "$.capacity",
            "Next": "ChooseVolumeEncryption",
        },
        "OnDemandCapacity": {
            "Type": "Pass",
            "Parameters": {
                "stopping": {"MaxRuntimeInSeconds": s.max_runtime_s},
                "keep_alive": keep_alive,
            },
            "ResultPath": "$.capacity",
            "Next": "ChooseVolumeEncryption",
        },
        "ChooseVolumeEncryption": {
            "Type": "Choice",
            "Comment": "Instance types with local NVMe storage reject VolumeKmsKeyId.",
            "Choices": [
                {
                    "Or": [
                        {"Variable": "$.run.instance_type", "StringMatches": p}
                        for p in LOCAL_NVME_INSTANCE_PATTERNS
                    ],
                    "Next": "LocalVolume",
                }
            ],
            "Default": "EbsVolume",
        },
        "LocalVolume": {
            "Type": "Pass",
            "Parameters": {"encryption": {}},
            "ResultPath": "$.volume",
            "Next": "BuildResourceConfig",
        },
        "EbsVolume": {
            "Type": "Pass",
            "Parameters": {"encryption": {"VolumeKmsKeyId": s.kms_key_arn}},
            "ResultPath": "$.volume",
            "Next": "BuildResourceConfig",
        },
        "BuildResourceConfig": {
            "Type": "Pass",
            "Parameters": {
                "base": {
                    "InstanceType.$": "$.run.instance_type",
                    "InstanceCount.$": "$.run.instance_count",
                    "VolumeSizeInGB": s.volume_size_gb,
                }
            },
            "ResultPath": "$.resources",
            "Next": "MergeResourceConfig",
        },
        "MergeResourceConfig": {
            "Type": "Pass",
            "Parameters": {
                "config.$": (
                    "States.JsonMerge(States.JsonMerge($.resources.base, $.volume.encryption, "
                    "false), $.capacity.keep_alive, false)"
                )
            },
            "ResultPath": "$.resources",
            "Next": "MintJobName",
        },
        "MintJobName": {
            "Type": "Pass",
            "Comment": "A fresh name per attempt: <prefix>-<run id>-<attempt>.",
            "Parameters": {
                "name.$": name_expr,
                "framework": framework_hyperparameters(
                    s, name_expr, "$.run.instance_type", state=True
                ),
            },
            "ResultPath": "$.job",
            "Next": "BuildJobHyperparameters",
        },
        "BuildJobHyperparameters": {
            "Type": "Pass",
            "Comment": "Script-mode keys last: they override any user key of the same name.",
            "Parameters": {
                "name.$": "$.job.name",
                "hyperparameters.$": "States.JsonMerge($.hyperparameters, $.job.framework, false)",
            },
            "ResultPath": "$.job",
            "Next": "TrainModel",
        },
        "TrainModel": {
            "Type": "Task",
            "Resource": CREATE_TRAINING_JOB_SYNC if sync else CREATE_TRAINING_JOB,
            "Parameters": training_request(s),
            "TimeoutSeconds": max(s.max_runtime_s, s.spot_max_wait_s) + TASK_TIMEOUT_MARGIN_S,
            "ResultPath": "$.training",
            "Retry": [
                {
                    "ErrorEquals": list(API_RETRY_ERRORS),
                    "IntervalSeconds": 10,
                    "MaxAttempts": 3,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.failure",
                    "Next": "ClassifyFailure",
                }
            ],
            "Next": "SummarizeResult" if sync else "DescribeTrainingJob",
        },
        "ClassifyFailure": {
            "Type": "Choice",
            "Choices": [
                {"Not": _present("$.failure.Cause"), "Next": "AddMissingCause"},
                {
                    "And": [
                        retryable,
                        {"Variable": "$.retry.attempt", "NumericLessThan": retries},
                    ],
                    "Next": "PrepareRetry",
                },
                {**retryable, "Next": "CapacityExhausted"},
            ],
            "Default": "JobFailed",
        },
        "AddMissingCause": {
            "Type": "Pass",
            "Result": "no cause reported",
            "ResultPath": "$.failure.Cause",
            "Next": "ClassifyFailure",
        },
        "PrepareRetry": {
            "Type": "Pass",
            "Comment": "Exponential backoff from a table; the next attempt mints a new name.",
            "Parameters": {
                "attempt.$": "States.MathAdd($.retry.attempt, 1)",
                "wait_s.$": f"States.ArrayGetItem(States.Array({backoff}), $.retry.attempt)",
            },
            "ResultPath": "$.retry",
            "Next": "WaitBeforeRetry",
        },
        "WaitBeforeRetry": {"Type": "Wait", "SecondsPath": "$.retry.wait_s", "Next": "MintJobName"},
        "CapacityExhausted": {
            "Type": "Pass",
            "Parameters": _outcome(
                ERROR_CAPACITY,
                "training job {} got no capacity in {} attempt(s); last failure: {}: {}",
                "$.job.name",
                "States.MathAdd($.retry.attempt, 1)",
                "$.failure.Error",
                "$.failure.Cause",
            ),
            "ResultPath": "$.outcome",
            "Next": "NotifyFailure",
        },
        "JobFailed": {
            "Type": "Pass",
            "Parameters": _outcome(
                ERROR_JOB_FAILED,
                "training job {} failed: {}: {}",
                "$.job.name",
                "$.failure.Error",
                "$.failure.Cause",
            ),
            "ResultPath": "$.outcome",
            "Next": "NotifyFailure",
        },
        "NotifyFailure": {
            "Type": "Task",
            "Resource": SNS_PUBLISH,
            "Parameters": {
                "TopicArn": s.topic_arn,
                "Subject": f"Training FAILED ({s.job_name_prefix})",
                "Message.$": "States.JsonToString($.outcome)",
            },
            "ResultPath": None,
            # A notification problem must not hide the training failure.
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.notification_error",
                    "Next": "Failed",
                }
            ],
            "Next": "Failed",
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.outcome.error", "CausePath": "$.outcome.cause"},
        "SummarizeResult": {
            "Type": "Choice",
            "Comment": "FinalMetricDataList is absent when the job logged no metric line.",
            "Choices": [
                {
                    "Variable": "$.training.FinalMetricDataList",
                    "IsPresent": True,
                    "Next": "ResultWithMetrics",
                }
            ],
            "Default": "ResultWithoutMetrics",
        },
        "ResultWithMetrics": _result_state("$.training.FinalMetricDataList", after_result),
        "ResultWithoutMetrics": _result_state(None, after_result),
        **(extras.registry_states(s, next_state="NotifySuccess") if s.model_package_group else {}),
        "NotifySuccess": {
            "Type": "Task",
            "Resource": SNS_PUBLISH,
            "Parameters": {
                "TopicArn": s.topic_arn,
                "Subject": f"Training completed ({s.job_name_prefix})",
                "Message.$": "States.JsonToString($.result)",
            },
            "ResultPath": None,
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.notification_error",
                    "Next": "Succeeded",
                }
            ],
            "Next": "Succeeded",
        },
        "Succeeded": {"Type": "Succeed", "OutputPath": "$.result"},
    }
    if not sync:
        states["DescribeTrainingJob"] = {
            "Type": "Task",
            "Comment": "TEST ONLY: what .sync returns (moto has no .sync).",
            "Resource": DESCRIBE_TRAINING_JOB_SDK,
            "Parameters": {"TrainingJobName.$": "$.job.name"},
            # moto's SDK integration leaves datetimes in the output (AWS gives JSON numbers),
            # which moto cannot serialize later: keep the fields the success path reads.
            "ResultSelector": {
                "TrainingJobName.$": "$.TrainingJobName",
                "TrainingJobStatus.$": "$.TrainingJobStatus",
                "ModelArtifacts.$": "$.ModelArtifacts",
            },
            "ResultPath": "$.training",
            "Next": "SummarizeResult",
        }
    return {
        "Comment": (
            "Multi-node PyTorch Lightning training on SageMaker: validate the input, merge it over "
            "the configured defaults, run CreateTrainingJob (.sync) with a fresh name per "
            "attempt, retry capacity failures with backoff, notify, and fail loudly."
        ),
        "StartAt": "ValidateInput",
        "TimeoutSeconds": (retries + 1)
        * (max(s.max_runtime_s, s.spot_max_wait_s) + TASK_TIMEOUT_MARGIN_S)
        + sum(backoff_table(retries, s.backoff_base_s, s.backoff_max_s)),
        "States": states,
    }


def _outcome(error: str, template: str, *args: str) -> dict:
    return {
        "error": error,
        "cause.$": f"States.Format('{template}', {', '.join(args)})",
        "job_name.$": "$.job.name",
        "attempts.$": "States.MathAdd($.retry.attempt, 1)",
        "failure_error.$": "$.failure.Error",
        "failure_cause.$": "$.failure.Cause",
        "execution.$": "$$.Execution.Id",
        "trigger.$": "$.run.trigger",
        "status": "FAILED",
    }


def _result_state(metrics_path: str | None, next_state: str) -> dict:
    result: dict[str, Any] = {
        "status": "COMPLETED",
        "job_name.$": "$.training.TrainingJobName",
        "model_artifacts.$": "$.training.ModelArtifacts.S3ModelArtifacts",
        "execution.$": "$$.Execution.Id",
        "trigger.$": "$.run.trigger",
        "attempts.$": "States.MathAdd($.retry.attempt, 1)",
        "instance_type.$": "$.run.instance_type",
        "instance_count.$": "$.run.instance_count",
        "spot.$": "$.run.spot",
    }
    if metrics_path:
        result["final_metrics.$"] = metrics_path
    else:
        result["final_metrics"] = []
    return {"Type": "Pass", "Parameters": result, "ResultPath": "$.result", "Next": next_state}
