"""The training state machine, built from `aws_stepfunctions` states, one module per stage.

    input_stage       ValidateInput ... PlanRun: the input checked and merged over the defaults
    new_data_stage    IsNewDataRun ...: a `new-data` run is skipped while another run trains
    training_stage    ChooseCapacity ... TrainModel (.sync), capacity retries with a new name
    registry_stage    MetricTags ... RegisterModel: the model as a model package version
    outcome_stage     SummarizeResult / JobFailed / CapacityExhausted -> notify -> Succeeded/Failed
    definition        the stages joined; the graph rendered as ASL
    sagemaker_calls   SageMaker API calls through the aws-sdk integration
    asl               the fixed vocabulary: resources, error names, expressions (CDK-free)

Every intrinsic used here also runs in moto 5.2.5's interpreter (JSONPath, no JSONata).
"""

from core.workflow_settings import (
    JOB_NAME_MAX,
    RUN_ID_LENGTH,
    WorkflowSettings,
    job_name,
    max_prefix_length,
    run_id,
)
from infra.workflow_definition.asl import (
    API_RETRY_ERRORS,
    CREATE_MODEL_PACKAGE_SDK,
    CREATE_TRAINING_JOB,
    CREATE_TRAINING_JOB_SYNC,
    DESCRIBE_TRAINING_JOB_SDK,
    ERROR_CAPACITY,
    ERROR_INVALID_INPUT,
    ERROR_JOB_FAILED,
    LIST_TRAINING_JOBS_SDK,
    RETRYABLE_CAUSE_PATTERNS,
    RUN_ID_EXPRESSION,
    SKIPPED_STATUS,
    SNS_PUBLISH,
    TASK_TIMEOUT_MARGIN_S,
    backoff_table,
)
from infra.workflow_definition.definition import build_definition, definition_json

__all__ = [
    "API_RETRY_ERRORS",
    "CREATE_MODEL_PACKAGE_SDK",
    "CREATE_TRAINING_JOB",
    "CREATE_TRAINING_JOB_SYNC",
    "DESCRIBE_TRAINING_JOB_SDK",
    "ERROR_CAPACITY",
    "ERROR_INVALID_INPUT",
    "ERROR_JOB_FAILED",
    "JOB_NAME_MAX",
    "LIST_TRAINING_JOBS_SDK",
    "RETRYABLE_CAUSE_PATTERNS",
    "RUN_ID_EXPRESSION",
    "RUN_ID_LENGTH",
    "SKIPPED_STATUS",
    "SNS_PUBLISH",
    "TASK_TIMEOUT_MARGIN_S",
    "WorkflowSettings",
    "backoff_table",
    "build_definition",
    "definition_json",
    "job_name",
    "max_prefix_length",
    "run_id",
]
