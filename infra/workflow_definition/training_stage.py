"""Training stage: build the request, run the job, retry what capacity failed with a new name.

ChooseCapacity (spot: MaxWait + no warm pool) -> ChooseVolumeEncryption (no VolumeKmsKeyId on
instance types with local NVMe) -> BuildResourceConfig -> MergeResourceConfig -> MintJobName
(<prefix>-<run id>-<attempt>) -> BuildJobHyperparameters -> TrainModel (createTrainingJob.sync)
--Catch States.ALL--> ClassifyFailure:
    capacity/throttling and attempts left -> PrepareRetry -> WaitBeforeRetry -> MintJobName
    capacity/throttling, no attempts left -> CapacityExhausted (outcome stage)
    anything else -> JobFailed (outcome stage)

TrainModel is the one CustomState: CDK's SageMakerCreateTrainingJob task has no checkpoint,
spot, warm-pool or retry-name fields and adds its own 0.0.0.0/0 security group; its request is
core/job_request.py's, shared with the notebook path.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from core.job_request import (
    LOCAL_NVME_INSTANCE_PATTERNS,
    framework_hyperparameters,
    training_request,
)
from core.workflow_settings import WorkflowSettings
from infra.workflow_definition.asl import (
    API_RETRY_ERRORS,
    CREATE_TRAINING_JOB,
    CREATE_TRAINING_JOB_SYNC,
    RETRYABLE_CAUSE_PATTERNS,
    TASK_TIMEOUT_MARGIN_S,
    backoff_table,
)
from infra.workflow_definition.outcome_stage import Outcomes
from infra.workflow_definition.sagemaker_calls import sagemaker_call

C = sfn.Condition


def training_stage(scope: Construct, s: WorkflowSettings, outcomes: Outcomes) -> sfn.Choice:
    """ChooseCapacity ... TrainModel -> outcomes.summarize (retries loop back to MintJobName)."""
    mint = _mint_job_name(scope, s)
    train = _train_model(scope, s)
    train.add_catch(
        _classify_failure(scope, s, outcomes, retry_from=mint),
        errors=["States.ALL"],
        result_path="$.failure",
    )
    if s.integration == "sync":
        train.next(outcomes.summarize)
    else:
        train.next(_describe_training_job(scope, s)).next(outcomes.summarize)
    mint.next(
        sfn.Pass(
            scope,
            "BuildJobHyperparameters",
            comment="Script-mode keys last: they override any user key of the same name.",
            parameters={
                "name.$": "$.job.name",
                "hyperparameters.$": "States.JsonMerge($.hyperparameters, $.job.framework, false)",
            },
            result_path="$.job",
        )
    ).next(train)
    return _capacity(scope, s, then=_volume_encryption(scope, s, then=_resources(scope, s, mint)))


def _capacity(scope: Construct, s: WorkflowSettings, *, then: sfn.IChainable) -> sfn.Choice:
    """ChooseCapacity: the stopping condition and warm pool of a spot or on-demand run."""
    keep_alive = {"KeepAlivePeriodInSeconds": s.keep_alive_s} if s.keep_alive_s > 0 else {}
    spot = sfn.Pass(
        scope,
        "SpotCapacity",
        comment="Managed spot: MaxWait > MaxRuntime; warm pools cannot be used.",
        parameters={
            "stopping": {
                "MaxRuntimeInSeconds": s.max_runtime_s,
                "MaxWaitTimeInSeconds": s.spot_max_wait_s,
            },
            "keep_alive": {},
        },
        result_path="$.capacity",
    )
    on_demand = sfn.Pass(
        scope,
        "OnDemandCapacity",
        parameters={"stopping": {"MaxRuntimeInSeconds": s.max_runtime_s}, "keep_alive": keep_alive},
        result_path="$.capacity",
    )
    return (
        sfn.Choice(scope, "ChooseCapacity")
        .when(C.boolean_equals("$.run.spot", True), spot.next(then))
        .otherwise(on_demand.next(then))
    )


def _volume_encryption(
    scope: Construct, s: WorkflowSettings, *, then: sfn.IChainable
) -> sfn.Choice:
    local_nvme = C.or_(
        *(C.string_matches("$.run.instance_type", p) for p in LOCAL_NVME_INSTANCE_PATTERNS)
    )
    return (
        sfn.Choice(
            scope,
            "ChooseVolumeEncryption",
            comment="Instance types with local NVMe storage reject VolumeKmsKeyId.",
        )
        .when(local_nvme, _volume(scope, "LocalVolume", {}).next(then))
        .otherwise(_volume(scope, "EbsVolume", {"VolumeKmsKeyId": s.kms_key_arn}).next(then))
    )


def _resources(scope: Construct, s: WorkflowSettings, then: sfn.IChainable) -> sfn.Chain:
    """BuildResourceConfig -> MergeResourceConfig (volume key and warm pool merged in)."""
    base = sfn.Pass(
        scope,
        "BuildResourceConfig",
        parameters={
            "base": {
                "InstanceType.$": "$.run.instance_type",
                "InstanceCount.$": "$.run.instance_count",
                "VolumeSizeInGB": s.volume_size_gb,
            }
        },
        result_path="$.resources",
    )
    merged = sfn.Pass(
        scope,
        "MergeResourceConfig",
        parameters={
            "config.$": (
                "States.JsonMerge(States.JsonMerge($.resources.base, $.volume.encryption, "
                "false), $.capacity.keep_alive, false)"
            )
        },
        result_path="$.resources",
    )
    return sfn.Chain.start(base).next(merged).next(then)


def state_machine_timeout_s(s: WorkflowSettings) -> int:
    """Every attempt at its longest plus every backoff wait."""
    retries = max(0, s.max_capacity_retries)
    attempt = max(s.max_runtime_s, s.spot_max_wait_s) + TASK_TIMEOUT_MARGIN_S
    return (retries + 1) * attempt + sum(backoff_table(retries, s.backoff_base_s, s.backoff_max_s))


def _volume(scope: Construct, name: str, encryption: dict) -> sfn.Pass:
    return sfn.Pass(scope, name, parameters={"encryption": encryption}, result_path="$.volume")


def _mint_job_name(scope: Construct, s: WorkflowSettings) -> sfn.Pass:
    name_expr = f"States.Format('{s.job_name_prefix}-{{}}-{{}}', $.run_id, $.retry.attempt)"
    return sfn.Pass(
        scope,
        "MintJobName",
        comment="A fresh name per attempt: <prefix>-<run id>-<attempt>.",
        parameters={
            "name.$": name_expr,
            "framework": framework_hyperparameters(s, name_expr, "$.run.instance_type", state=True),
        },
        result_path="$.job",
    )


def _train_model(scope: Construct, s: WorkflowSettings) -> sfn.CustomState:
    sync = s.integration == "sync"
    return sfn.CustomState(
        scope,
        "TrainModel",
        state_json={
            "Type": "Task",
            "Resource": CREATE_TRAINING_JOB_SYNC if sync else CREATE_TRAINING_JOB,
            "Parameters": training_request(s),
            "TimeoutSeconds": max(s.max_runtime_s, s.spot_max_wait_s) + TASK_TIMEOUT_MARGIN_S,
            "ResultPath": "$.training",
        },
    ).add_retry(
        errors=list(API_RETRY_ERRORS),
        interval=cdk.Duration.seconds(10),
        max_attempts=3,
        backoff_rate=2.0,
    )


def _classify_failure(
    scope: Construct, s: WorkflowSettings, outcomes: Outcomes, *, retry_from: sfn.State
) -> sfn.Choice:
    retries = max(0, s.max_capacity_retries)
    backoff = ", ".join(str(x) for x in backoff_table(retries, s.backoff_base_s, s.backoff_max_s))
    retryable = C.and_(
        C.is_string("$.failure.Cause"),
        C.or_(*(C.string_matches("$.failure.Cause", p) for p in RETRYABLE_CAUSE_PATTERNS)),
    )
    classify = sfn.Choice(scope, "ClassifyFailure")
    add_cause = sfn.Pass(
        scope,
        "AddMissingCause",
        result=sfn.Result.from_string("no cause reported"),
        result_path="$.failure.Cause",
    )
    prepare_retry = sfn.Pass(
        scope,
        "PrepareRetry",
        comment="Exponential backoff from a table; the next attempt mints a new name.",
        parameters={
            "attempt.$": "States.MathAdd($.retry.attempt, 1)",
            "wait_s.$": f"States.ArrayGetItem(States.Array({backoff}), $.retry.attempt)",
        },
        result_path="$.retry",
    )
    wait = sfn.Wait(scope, "WaitBeforeRetry", time=sfn.WaitTime.seconds_path("$.retry.wait_s"))
    return (
        classify.when(C.not_(C.is_present("$.failure.Cause")), add_cause.next(classify))
        .when(
            C.and_(retryable, C.number_less_than("$.retry.attempt", retries)),
            prepare_retry.next(wait).next(retry_from),
        )
        .when(retryable, outcomes.capacity_exhausted)
        .otherwise(outcomes.job_failed)
    )


def _describe_training_job(scope: Construct, s: WorkflowSettings) -> tasks.CallAwsService:
    jobs = cdk.Stack.of(scope).format_arn(
        service="sagemaker", resource="training-job", resource_name=f"{s.job_name_prefix}-*"
    )
    return sagemaker_call(
        scope,
        "DescribeTrainingJob",
        "describeTrainingJob",
        resources=[jobs],
        comment="TEST ONLY: what .sync returns (moto has no .sync).",
        parameters={"TrainingJobName.$": "$.job.name"},
        # moto's SDK integration leaves datetimes in the output (AWS gives JSON numbers),
        # which moto cannot serialize later: keep the fields the success path reads.
        result_selector={
            "TrainingJobName.$": "$.TrainingJobName",
            "TrainingJobStatus.$": "$.TrainingJobStatus",
            "ModelArtifacts.$": "$.ModelArtifacts",
        },
        result_path="$.training",
    )
