"""The stack's request as SDK 2.x objects: a `PyTorch` estimator and its `TrainingInput`s.

The SDK's own refusals are stepped around, not passed on: no `distribution=` (its SMDDP table
ends at framework 2.2.0 and it refuses torch_distributed on CPU instance types); the launcher
flag goes in as the hyperparameter the state machine sends. `image_uri=` skips its version
table; `source_dir=` is the stack's bundle in S3 (nothing is uploaded), and network isolation
makes the SDK pass it as the `code` channel, as the state machine does.
"""

from __future__ import annotations

import json
from typing import Any

from trainops.sdk import offline
from trainops.sdk.errors import SdkError
from trainops.sdk.request_parts import Preview, StartsRuns, s3_channels

offline.require(2)

from sagemaker.debugger import TensorBoardOutputConfig  # noqa: E402
from sagemaker.inputs import TrainingInput  # noqa: E402
from sagemaker.pytorch import PyTorch  # noqa: E402
from sagemaker.session import Session  # noqa: E402

#: Script-mode keys SDK 2.x sets itself from the estimator (same values, JSON-encoded).
SDK_OWNED = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
)


class StackPyTorch(StartsRuns, PyTorch):
    """A PyTorch estimator whose every fit() is the next attempt of one run of the stack."""

    def fit(self, inputs=None, wait=True, logs="All", job_name=None, experiment_config=None):
        if job_name is not None:
            raise SdkError("job_name is the stack's (<prefix>-<run id>-<attempt>): leave it out")
        request = self._run.next_attempt()
        # Raw values, as the constructor stores them: hyperparameters() JSON-encodes on send.
        self._hyperparameters = wire_values(request["HyperParameters"])
        self.tags = [dict(t) for t in request["Tags"]]
        self.environment = dict(request["Environment"])
        return super().fit(
            inputs,
            wait,
            logs,
            job_name=request["TrainingJobName"],
            experiment_config=experiment_config,
        )


def pytorch_estimator(stack: Any, overrides: dict[str, Any]) -> StackPyTorch:
    from training import contract

    preview = Preview.of(stack, overrides)
    request, spec, resources = preview.request, preview.spec, preview.resources
    stopping, vpc = preview.stopping, preview.vpc
    code = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "code")
    checkpoint = request.get("CheckpointConfig") or {}
    try:
        estimator = StackPyTorch(
            entry_point=contract.ENTRY_POINT,
            source_dir=code["DataSource"]["S3DataSource"]["S3Uri"],
            image_uri=spec["TrainingImage"],
            role=request["RoleArn"],
            instance_type=resources["InstanceType"],
            instance_count=resources["InstanceCount"],
            volume_size=resources["VolumeSizeInGB"],
            volume_kms_key=resources.get("VolumeKmsKeyId"),
            keep_alive_period_in_seconds=resources.get("KeepAlivePeriodInSeconds"),
            use_spot_instances=request["EnableManagedSpotTraining"],
            max_run=stopping["MaxRuntimeInSeconds"],
            max_wait=stopping.get("MaxWaitTimeInSeconds"),
            max_retry_attempts=request["RetryStrategy"]["MaximumRetryAttempts"],
            input_mode=spec["TrainingInputMode"],
            output_path=request["OutputDataConfig"]["S3OutputPath"],
            output_kms_key=request["OutputDataConfig"]["KmsKeyId"],
            subnets=vpc["Subnets"],
            security_group_ids=vpc["SecurityGroupIds"],
            enable_network_isolation=request["EnableNetworkIsolation"],
            encrypt_inter_container_traffic=request["EnableInterContainerTrafficEncryption"],
            checkpoint_s3_uri=checkpoint.get("S3Uri"),
            checkpoint_local_path=checkpoint.get("LocalPath"),
            tensorboard_output_config=TensorBoardOutputConfig(
                s3_output_path=request["TensorBoardOutputConfig"]["S3OutputPath"],
                container_local_output_path=request["TensorBoardOutputConfig"]["LocalPath"],
            ),
            metric_definitions=spec["MetricDefinitions"] or None,
            container_log_level=int(request["HyperParameters"]["sagemaker_container_log_level"]),
            base_job_name=stack.settings.job_name_prefix,
            # The profiler and debugger add rules, an S3 output and a sidecar the stack's job
            # does not have (and that a network-isolated job could not reach anyway).
            disable_profiler=True,
            debugger_hook_config=False,
            sagemaker_session=offline.session(Session, stack.region, stack.profile),
        )
    except ValueError as exc:
        raise SdkError(f"SDK 2.x refused the stack's job: {str(exc).splitlines()[0]}") from None
    # The channel's file is the bundle's own name, not the SDK's fixed `sourcedir.tar.gz`.
    estimator.CONTAINER_CODE_CHANNEL_SOURCEDIR_PATH = request["HyperParameters"][
        "sagemaker_submit_directory"
    ]
    estimator._run = preview.run
    return estimator


def wire_values(hyperparameters: dict[str, str]) -> dict[str, Any]:
    """Values that SDK 2.x's JSON encoding turns back into the state machine's exact strings.

    It sends json.dumps(value): a string that is itself canonical JSON ("5", "true", "[64]")
    goes in decoded, so the wire value is the same string; any other string goes in as is
    (sent quoted; the toolkit json-decodes it back to the same string for the script).
    """
    out: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        if key in SDK_OWNED:
            continue
        try:
            decoded = json.loads(value)
        except ValueError:
            out[key] = value
            continue
        out[key] = decoded if json.dumps(decoded) == value else value
    return out


def inputs(channels: list[dict[str, Any]]) -> dict[str, TrainingInput]:
    """Request channels as SDK 2.x `TrainingInput`s for fit()."""
    return {
        name: TrainingInput(
            s3_data=source["S3Uri"],
            s3_data_type=source["S3DataType"],
            distribution=source["S3DataDistributionType"],
            **mode,
        )
        for name, source, mode in s3_channels(channels)
    }
