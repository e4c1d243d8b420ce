"""The CreateTrainingJob request of one run: one builder for the state machine and the SDKs.

The state machine fills a run's values from its state with JSONPath (`"Key.$": "$.path"`); the
notebook path (trainops.sdk) fills the same fields with the values `plan_run` computes. Both go
through `training_request`, so a field added for one is there for the other; tests/e2e compare
what each path really sends.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.config import CHECKPOINT_PREFIX, OUTPUT_PREFIX
from core.execution_input import DEFAULT_TRIGGER
from core.workflow_settings import WorkflowSettings
from training import contract

# --- Container ---------------------------------------------------------------------------------
#: Kept minimal. PYTHONUNBUFFERED: metric lines reach CloudWatch (and the MetricDefinitions
#: regexes) as they are printed, not when a buffer fills. NCCL_DEBUG=WARN: NCCL init/transport
#: failures (the usual multi-node error) are logged with a reason instead of a bare timeout.
CONTAINER_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "NCCL_DEBUG": "WARN"}
CONTAINER_LOG_LEVEL = "20"  # logging.INFO for the sagemaker-training toolkit
#: SageMaker's own retries of a job that failed with an internal error (same job, resumes from
#: CheckpointConfig); capacity failures are retried by the state machine with a new name.
SAGEMAKER_RETRY_ATTEMPTS = 2
#: The environment key that ties a job to its execution (absent for jobs started by an SDK).
EXECUTION_ARN_ENV = "TRAINOPS_EXECUTION_ARN"

#: Instance families with local NVMe instance storage: SageMaker rejects VolumeKmsKeyId there
#: (the local volumes are encrypted by the instance's hardware module).
LOCAL_NVME_INSTANCE_PATTERNS = (
    "ml.p3dn.*",
    "ml.p4d.*",
    "ml.p4de.*",
    "ml.p5.*",
    "ml.p5e.*",
    "ml.p5en.*",
    "ml.p6-*",
    "ml.p6e-*",
    "ml.g4dn.*",
    "ml.g5.*",
    "ml.g6.*",
    "ml.g6e.*",
    "ml.g7.*",
    "ml.g7e.*",
    "ml.trn1.*",
    "ml.trn1n.*",
    "ml.trn2.*",
    "ml.r5d.*",
    "ml.m5d.*",
    "ml.c5d.*",
)


class Values(Protocol):
    """One run-dependent field: `{key: value}` (or `{}` to leave it out), given the JSONPath the
    state machine reads it from and the RunValues attribute that holds it concretely."""

    def __call__(self, key: str, path: str, name: str) -> dict[str, Any]: ...


def from_state(key: str, path: str, name: str) -> dict[str, Any]:
    """The state machine's form: the value is read from the execution's state."""
    return {f"{key}.$": path}


@dataclass(frozen=True)
class RunValues:
    """The concrete values of one run (what the state machine computes into its state)."""

    job_name: str
    run_id: str
    attempt: int
    trigger: str
    instance_type: str
    instance_count: int
    spot: bool
    train_s3_uri: str
    #: User + default hyperparameters, before the script-mode keys.
    hyperparameters: Mapping[str, str]
    resource_config: Mapping[str, Any]
    stopping_condition: Mapping[str, Any]
    checkpoint_s3_uri: str
    #: None outside an execution: the request then carries no TRAINOPS_EXECUTION_ARN.
    execution_arn: str | None = None

    def __call__(self, key: str, path: str, name: str) -> dict[str, Any]:
        value = getattr(self, name)
        return {} if value is None else {key: value}

    @property
    def job_hyperparameters(self) -> dict[str, str]:
        return dict(self.hyperparameters)

    @property
    def rdzv_conf(self) -> str:
        return f"timeout={self.hyperparameters['dist_timeout_s']}"

    @property
    def attempt_text(self) -> str:
        return str(self.attempt)


def is_local_nvme(instance_type: str) -> bool:
    """What ChooseVolumeEncryption's StringMatches decides (`*` is the only wildcard used)."""
    return any(fnmatch.fnmatchcase(instance_type, p) for p in LOCAL_NVME_INSTANCE_PATTERNS)


def plan_run(
    s: WorkflowSettings,
    checked_input: Mapping[str, Any],
    *,
    run_id: str,
    attempt: int = 0,
    execution_arn: str | None = None,
) -> RunValues:
    """The values the state machine computes for a (validated) execution input, in Python:
    ApplyDefaults, MergeInput, PlanRun, the capacity and volume choices, MintJobName."""
    instance_type = checked_input.get("instance_type", s.instance_type)
    spot = bool(checked_input.get("spot", s.spot))
    job_name = f"{s.job_name_prefix}-{run_id}-{attempt}"
    resource: dict[str, Any] = {
        "InstanceType": instance_type,
        "InstanceCount": checked_input.get("instance_count", s.instance_count),
        "VolumeSizeInGB": s.volume_size_gb,
    }
    if not is_local_nvme(instance_type):
        resource["VolumeKmsKeyId"] = s.kms_key_arn
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": s.max_runtime_s}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = s.spot_max_wait_s
    elif s.keep_alive_s > 0:
        resource["KeepAlivePeriodInSeconds"] = s.keep_alive_s
    hyperparameters = {**s.default_hyperparameters, **checked_input.get("hyperparameters", {})}
    hyperparameters.update(framework_hyperparameters(s, job_name, instance_type))
    return RunValues(
        job_name=job_name,
        run_id=run_id,
        attempt=attempt,
        trigger=checked_input.get("trigger", DEFAULT_TRIGGER),
        instance_type=instance_type,
        instance_count=resource["InstanceCount"],
        spot=spot,
        train_s3_uri=checked_input.get(
            "train_s3_uri", f"s3://{s.data_bucket_name}/{contract.TRAIN_CHANNEL}/"
        ),
        hyperparameters=hyperparameters,
        resource_config=resource,
        stopping_condition=stopping,
        checkpoint_s3_uri=f"s3://{s.artifacts_bucket_name}/{CHECKPOINT_PREFIX}{run_id}/",
        execution_arn=execution_arn,
    )


def framework_hyperparameters(
    s: WorkflowSettings, job_name: str, instance_type: str, *, state: bool = False
) -> dict[str, str]:
    """Script-mode keys of the sagemaker-training toolkit (all strings); with `state`, the job
    name and instance type are the state machine's JSONPath expressions for them."""
    hps: dict[str, str] = {
        "sagemaker_program": contract.ENTRY_POINT,
        # The bundle arrives as the `code` channel (SageMaker downloads it, so the container
        # needs no network); the toolkit unpacks a local tar.gz path like an s3:// one.
        "sagemaker_submit_directory": (
            f"{contract.CHANNEL_ROOT}/{contract.CODE_CHANNEL}/{s.code_file_name}"
        ),
        "sagemaker_region": s.region,
        "sagemaker_container_log_level": CONTAINER_LOG_LEVEL,
    }
    suffix = ".$" if state else ""
    hps[f"sagemaker_job_name{suffix}"] = job_name
    hps[f"sagemaker_instance_type{suffix}"] = instance_type
    # One instance with several GPUs still needs the launcher (torchrun/mpirun) for one
    # process per GPU: the flag depends on the backend only, never on the instance count.
    if s.backend != "none":
        hps[contract.LAUNCHER_FLAGS[s.backend]] = "true"
    return hps


def channel(name: str, uri: dict[str, Any], *, input_mode: str | None = None) -> dict[str, Any]:
    """One S3-prefix input channel; every node gets the whole channel (nodes share no disk)."""
    out: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                **uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }
    if input_mode:
        out["InputMode"] = input_mode
    return out


def training_request(s: WorkflowSettings, values: Values = from_state) -> dict[str, Any]:
    """CreateTrainingJob's parameters; `values` fills the run-dependent fields."""
    request: dict[str, Any] = {
        **values("TrainingJobName", "$.job.name", "job_name"),
        "RoleArn": s.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": s.image_uri,
            "TrainingInputMode": s.input_mode,
            "MetricDefinitions": contract.metric_definitions(s.metrics),
        },
        **values("HyperParameters", "$.job.hyperparameters", "job_hyperparameters"),
        "InputDataConfig": [
            channel(contract.TRAIN_CHANNEL, values("S3Uri", "$.run.train_s3_uri", "train_s3_uri")),
            *(
                channel(name, {"S3Uri": f"s3://{s.data_bucket_name}/{prefix}"})
                for name, prefix in sorted(s.channels.items())
            ),
            # A plain file on local disk, whatever the data channels use.
            channel(contract.CODE_CHANNEL, {"S3Uri": s.code_s3_uri}, input_mode="File"),
        ],
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{s.artifacts_bucket_name}/{OUTPUT_PREFIX}",
            "KmsKeyId": s.kms_key_arn,
            # The API's default, said out loud: SDK 3.x always sends it, and so the requests of
            # both paths are equal field by field.
            "CompressionType": "GZIP",
        },
        **values("ResourceConfig", "$.resources.config", "resource_config"),
        "VpcConfig": {
            "SecurityGroupIds": list(s.security_group_ids),
            "Subnets": list(s.subnet_ids),
        },
        **values("StoppingCondition", "$.capacity.stopping", "stopping_condition"),
        **values("EnableManagedSpotTraining", "$.run.spot", "spot"),
        "RetryStrategy": {"MaximumRetryAttempts": SAGEMAKER_RETRY_ATTEMPTS},
        "Environment": {
            **CONTAINER_ENVIRONMENT,
            **s.efa_environment,  # what the image's toolkit misses for this type (core/efa.py)
            # Traceability: the execution ARN may hold characters tag values reject; the
            # environment accepts any string and DescribeTrainingJob returns it.
            **values(EXECUTION_ARN_ENV, "$$.Execution.Id", "execution_arn"),
            **values("TRAINOPS_TRIGGER", "$.run.trigger", "trigger"),
            # torchrun's rendezvous waits 600 s for missing nodes unless told otherwise: bound
            # it by the same timeout as the script's collectives, so an unreachable peer (the
            # security-group trap) fails the job in minutes instead of hanging.
            **values(
                contract.RDZV_CONF_ENV,
                "States.Format('timeout={}', $.job.hyperparameters.dist_timeout_s)",
                "rdzv_conf",
            ),
        },
        "EnableInterContainerTrafficEncryption": bool(s.encrypt_inter_container_traffic),
        # On by default: the code is a channel and its requirements install from the bundle's
        # wheels, so nothing in the container needs a network path beyond its peers; channel
        # downloads, checkpoint sync, logs and the model upload are done by SageMaker.
        "EnableNetworkIsolation": bool(s.network_isolation),
        "Tags": [
            {"Key": "trainops:run-id", **values("Value", "$.run_id", "run_id")},
            {"Key": "trainops:trigger", **values("Value", "$.run.trigger", "trigger")},
            {
                "Key": "trainops:attempt",
                **values("Value", "States.Format('{}', $.retry.attempt)", "attempt_text"),
            },
            *({"Key": str(k), "Value": str(v)} for k, v in sorted(s.tags.items())),
        ],
    }
    # SageMaker uploads the runner's TensorBoard event files while the job runs, to
    # <S3OutputPath>/<job name>/tensorboard-output/: beside the job's model, under the prefix the
    # role may already write.
    request["TensorBoardOutputConfig"] = {
        "S3OutputPath": request["OutputDataConfig"]["S3OutputPath"],
        "LocalPath": contract.TENSORBOARD_DIR,
    }
    if s.checkpointing:
        request["CheckpointConfig"] = {
            **values("S3Uri", "$.checkpoint_s3_uri", "checkpoint_s3_uri"),
            "LocalPath": contract.CHECKPOINT_DIR,
        }
    return request
