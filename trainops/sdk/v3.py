"""The stack's request as SDK 3.x objects: `ModelTrainer` and its `Channel`s.

No `source_code` and no `distributed`: those make ModelTrainer start its own driver
(ContainerEntrypoint + an `sm_drivers` channel), bypassing the image's toolkit, the bundle's
wheelhouse and the runner's launcher flag. The stack's job is script mode through the toolkit,
so the trainer carries the script-mode hyperparameters and the code channel itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trainops.sdk import offline
from trainops.sdk.errors import SdkError
from trainops.sdk.request_parts import Preview, StartsRuns, s3_channels

offline.require(3)

from pydantic import PrivateAttr  # noqa: E402
from sagemaker.core.helper.session_helper import Session  # noqa: E402
from sagemaker.core.training.configs import (  # noqa: E402
    Channel,
    CheckpointConfig,
    Compute,
    DataSource,
    MetricDefinition,
    Networking,
    OutputDataConfig,
    RetryStrategy,
    S3DataSource,
    StoppingCondition,
    Tag,
    TensorBoardOutputConfig,
)
from sagemaker.train import ModelTrainer  # noqa: E402


class StackModelTrainer(StartsRuns, ModelTrainer):
    """A ModelTrainer whose every train() is the next attempt of one run of the stack: the job
    name, the attempt tag and the script-mode job name follow the state machine's scheme."""

    _run: Any = PrivateAttr(default=None)

    def _create_training_job_args(self, input_data_config=None, boto3=False):
        request = self._run.next_attempt()
        self.hyperparameters = dict(request["HyperParameters"])
        self.tags = [Tag(key=t["Key"], value=t["Value"]) for t in request["Tags"]]
        self.environment = dict(request["Environment"])
        args = super()._create_training_job_args(input_data_config=input_data_config, boto3=boto3)
        args["TrainingJobName" if boto3 else "training_job_name"] = request["TrainingJobName"]
        return args


def model_trainer(stack: Any, overrides: dict[str, Any]) -> StackModelTrainer:
    preview = Preview.of(stack, overrides)
    request, spec, resources = preview.request, preview.spec, preview.resources
    stopping, vpc = preview.stopping, preview.vpc
    with _role_checked_by_the_stack():
        trainer = StackModelTrainer(
            sagemaker_session=offline.session(Session, stack.region, stack.profile),
            role=request["RoleArn"],
            base_job_name=stack.settings.job_name_prefix,
            training_image=spec["TrainingImage"],
            training_input_mode=spec["TrainingInputMode"],
            compute=Compute(
                instance_type=resources["InstanceType"],
                instance_count=resources["InstanceCount"],
                volume_size_in_gb=resources["VolumeSizeInGB"],
                volume_kms_key_id=resources.get("VolumeKmsKeyId"),
                keep_alive_period_in_seconds=resources.get("KeepAlivePeriodInSeconds"),
                enable_managed_spot_training=request["EnableManagedSpotTraining"],
            ),
            networking=Networking(
                security_group_ids=vpc["SecurityGroupIds"],
                subnets=vpc["Subnets"],
                enable_network_isolation=request["EnableNetworkIsolation"],
                enable_inter_container_traffic_encryption=request[
                    "EnableInterContainerTrafficEncryption"
                ],
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=stopping["MaxRuntimeInSeconds"],
                max_wait_time_in_seconds=stopping.get("MaxWaitTimeInSeconds"),
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=request["OutputDataConfig"]["S3OutputPath"],
                kms_key_id=request["OutputDataConfig"]["KmsKeyId"],
                compression_type=request["OutputDataConfig"]["CompressionType"],
            ),
            checkpoint_config=_checkpoint(request),
            # The code channel travels with the trainer (train() merges the data channels in).
            input_data_config=inputs(
                [c for c in request["InputDataConfig"] if c["ChannelName"] == "code"]
            ),
            hyperparameters=dict(request["HyperParameters"]),
            environment=dict(request["Environment"]),
        )
    trainer.with_retry_strategy(
        RetryStrategy(maximum_retry_attempts=request["RetryStrategy"]["MaximumRetryAttempts"])
    )
    tensorboard = request["TensorBoardOutputConfig"]
    trainer.with_tensorboard_output_config(
        TensorBoardOutputConfig(
            s3_output_path=tensorboard["S3OutputPath"], local_path=tensorboard["LocalPath"]
        )
    )
    if spec["MetricDefinitions"]:
        trainer.with_metric_definitions(
            [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in spec["MetricDefinitions"]]
        )
    trainer._run = preview.run
    return trainer


def inputs(channels: list[dict[str, Any]]) -> list[Channel]:
    """Request channels as SDK 3.x `Channel`s (InputMode kept: the code channel is File)."""
    return [
        Channel(
            channel_name=name,
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type=source["S3DataType"],
                    s3_uri=source["S3Uri"],
                    s3_data_distribution_type=source["S3DataDistributionType"],
                )
            ),
            **mode,
        )
        for name, source, mode in s3_channels(channels)
    ]


def _checkpoint(request: dict[str, Any]) -> CheckpointConfig | None:
    config = request.get("CheckpointConfig")
    if config is None:
        return None
    return CheckpointConfig(s3_uri=config["S3Uri"], local_path=config["LocalPath"])


@contextmanager
def _role_checked_by_the_stack() -> Iterator[None]:
    """ModelTrainer validates the role with iam:SimulatePrincipalPolicy, which a notebook's
    identity often may not call; the role is the stack's own, made for these jobs."""
    previous = os.environ.get("SAGEMAKER_VALIDATE_ROLE")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    try:
        yield
    except ValueError as exc:  # pydantic's ValidationError is one
        raise SdkError(f"SDK 3.x refused the stack's job: {str(exc).splitlines()[0]}") from None
    finally:
        if previous is None:
            os.environ.pop("SAGEMAKER_VALIDATE_ROLE", None)
        else:
            os.environ["SAGEMAKER_VALIDATE_ROLE"] = previous
