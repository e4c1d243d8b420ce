"""The state machine's fixed vocabulary: task resources, error names, expressions, timing.

CDK-free: tests, the emulator and the outcome rule read these without building a graph.
"""

from __future__ import annotations

# --- Resources ---------------------------------------------------------------------------------
CREATE_TRAINING_JOB_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
#: Test-only rendering: request-response create (runs in moto) + an aws-sdk Describe after it.
CREATE_TRAINING_JOB = "arn:aws:states:::sagemaker:createTrainingJob"
DESCRIBE_TRAINING_JOB_SDK = "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob"
LIST_TRAINING_JOBS_SDK = "arn:aws:states:::aws-sdk:sagemaker:listTrainingJobs"
CREATE_MODEL_PACKAGE_SDK = "arn:aws:states:::aws-sdk:sagemaker:createModelPackage"
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
#: The execution output's status when a new-data run finds another run in progress.
SKIPPED_STATUS = "SKIPPED"

# --- Job names ---------------------------------------------------------------------------------
#: States.Hash of the execution ARN: stable across the attempts of one execution (so checkpoints
#: resume), unique per execution, and computable from the ARN (`workflow_settings.run_id`).
RUN_ID_EXPRESSION = "States.Hash($$.Execution.Id, 'MD5')"

# --- Timing ------------------------------------------------------------------------------------
#: Step Functions gives up on a .sync task this long after SageMaker's own limit should have hit.
TASK_TIMEOUT_MARGIN_S = 2 * 3600


def backoff_table(retries: int, base_s: int, max_s: int) -> list[int]:
    """Wait before attempt i+1: base * 2**i, capped; one entry per allowed retry."""
    return [min(base_s * 2**i, max_s) for i in range(max(1, retries))]
