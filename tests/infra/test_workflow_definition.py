"""The training state machine definition, run for real in moto's ASL interpreter.

moto 5.2.5 has no `.sync`: these tests render the definition with the request-response
CreateTrainingJob (+ an aws-sdk DescribeTrainingJob, what `.sync` returns), capture every request
the interpreter sends at the botocore boundary, and validate each one against botocore's service
model (enums, patterns, lengths, ranges included: tests/aws_models.py).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from core import execution_input as ei
from infra import workflow_definition as wd
from localaws.api_model import validate_request
from tests import timing
from tests.infra.workflow_moto import REGION, SETTINGS, run
from training import contract

ROOT = Path(__file__).resolve().parents[2]


# --- ASL validity ------------------------------------------------------------------------------
def _asl_validate(definition: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        [str(ROOT / "node_modules/.bin/asl-validator"), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=timing.bound(60),
    )


@pytest.mark.parametrize("integration", ["sync", "request-response"])
def test_asl_validator_accepts_the_definition(integration, tmp_path):
    definition = wd.build_definition(replace(SETTINGS, integration=integration))
    result = _asl_validate(definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_is_not_a_no_op(tmp_path):
    definition = wd.build_definition(SETTINGS)
    definition["States"]["MintJobName"]["Next"] = "NoSuchState"
    assert _asl_validate(definition, tmp_path).returncode != 0


def test_sync_rendering_uses_the_sync_resource_and_no_describe_step():
    states = wd.build_definition(replace(SETTINGS, integration="sync"))["States"]
    assert states["TrainModel"]["Resource"] == wd.CREATE_TRAINING_JOB_SYNC
    assert states["TrainModel"]["Next"] == "SummarizeResult"
    assert "DescribeTrainingJob" not in states
    resources = {s.get("Resource") for s in states.values() if s["Type"] == "Task"}
    # Besides training and notifying: the new-data guard's look at its own running executions.
    assert resources == {wd.CREATE_TRAINING_JOB_SYNC, wd.SNS_PUBLISH, wd.LIST_TRAINING_JOBS_SDK}


# --- Input validation inside the state machine -------------------------------------------------
BAD_INPUTS = [
    ("not json object", [1, 2], ei.MSG_NOT_OBJECT),
    ("string input", "train", ei.MSG_NOT_OBJECT),
    ("unknown key", {"epochs": "3"}, ei.MSG_UNKNOWN_KEY),
    ("bad trigger", {"trigger": "cron"}, ei.MSG_TRIGGER),
    ("trigger not string", {"trigger": 1}, ei.MSG_TRIGGER),
    ("hps not object", {"hyperparameters": "epochs=3"}, ei.MSG_HYPERPARAMETERS),
    ("hps array", {"hyperparameters": ["epochs"]}, ei.MSG_HYPERPARAMETERS),
    ("hp value number", {"hyperparameters": {"epochs": 3}}, ei.MSG_HYPERPARAMETER_VALUE),
    ("hp value bool", {"hyperparameters": {"a": "1", "b": True}}, ei.MSG_HYPERPARAMETER_VALUE),
    ("instance type", {"instance_type": "p4d.24xlarge"}, ei.MSG_INSTANCE_TYPE),
    ("instance type number", {"instance_type": 4}, ei.MSG_INSTANCE_TYPE),
    ("count zero", {"instance_count": 0}, ei.MSG_INSTANCE_COUNT),
    ("count too big", {"instance_count": 65}, ei.MSG_INSTANCE_COUNT),
    ("count fraction", {"instance_count": 2.5}, ei.MSG_INSTANCE_COUNT),
    ("count string", {"instance_count": "2"}, ei.MSG_INSTANCE_COUNT),
    ("spot string", {"spot": "true"}, ei.MSG_SPOT),
    ("uri https", {"train_s3_uri": "https://b.s3.amazonaws.com/x"}, ei.MSG_TRAIN_S3_URI),
    ("uri no bucket", {"train_s3_uri": "s3:///x/"}, ei.MSG_TRAIN_S3_URI),
    ("uri no prefix", {"train_s3_uri": "s3://bucket"}, ei.MSG_TRAIN_S3_URI),
    ("smddp on p5", {"instance_type": "ml.p5.48xlarge"}, ei.MSG_SMDDP_INSTANCE_TYPE),
    (
        "too many hps",
        {"hyperparameters": {f"k{i}": "v" for i in range(ei.MAX_USER_HYPERPARAMETERS)}},
        ei.MSG_TOO_MANY_HYPERPARAMETERS,
    ),
]


@pytest.mark.parametrize(("payload", "cause"), [pytest.param(p, c, id=i) for i, p, c in BAD_INPUTS])
def test_bad_input_fails_before_any_training_job(moto_env, payload, cause):
    result = run(moto_env, payload)
    assert (result["status"], result["error"], result["cause"]) == (
        "FAILED",
        wd.ERROR_INVALID_INPUT,
        cause,
    )
    assert result["creates"] == []
    assert result["publishes"] == []


@pytest.mark.parametrize(("name", "payload", "cause"), BAD_INPUTS)
def test_python_validator_rejects_what_the_state_machine_rejects(name, payload, cause):
    with pytest.raises(ei.ExecutionInputError) as err:
        ei.validate_execution_input(
            payload,
            defaults=SETTINGS.default_hyperparameters,
            backend=SETTINGS.backend,
            default_instance_type=SETTINGS.instance_type,
        )
    assert str(err.value).startswith(cause.split(";")[0]), str(err.value)


# --- Requests sent for good inputs -------------------------------------------------------------
def _check_requests(result: dict, attempts: int = 1) -> dict:
    assert result["status"] == "SUCCEEDED", (result["error"], result["cause"])
    assert len(result["creates"]) == attempts
    for request in result["creates"]:
        validate_request("sagemaker", "CreateTrainingJob", request)
    assert len(result["publishes"]) == 1
    for request in result["publishes"]:
        validate_request("sns", "Publish", request)
    return result["creates"][-1]


def test_default_input(moto_env):
    result = run(moto_env, {})
    request = _check_requests(result)
    expected_name = wd.job_name("lightning", result["arn"], 0)
    assert request["TrainingJobName"] == expected_name
    hps = request["HyperParameters"]
    defaults = contract.runner_defaults()
    assert hps == {
        **defaults,
        "config": SETTINGS.config,  # the task config, a default the workflow adds
        "epochs": "20",  # configured on top of the runner defaults
        "model_name": "donut",
        "sagemaker_program": contract.ENTRY_POINT,
        "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz",
        "sagemaker_region": REGION,
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": expected_name,
        "sagemaker_instance_type": "ml.p4d.24xlarge",
        contract.LAUNCHER_FLAGS["smddp"]: "true",
    }
    assert all(isinstance(v, str) for v in hps.values())
    assert request["VpcConfig"] == {
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
        "Subnets": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
    }
    assert request["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://data-bucket/train/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        },
        {
            "ChannelName": "code",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": SETTINGS.code_s3_uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        },
    ]
    assert request["OutputDataConfig"] == {
        "S3OutputPath": "s3://artifacts-bucket/models/",
        "KmsKeyId": SETTINGS.kms_key_arn,
        "CompressionType": "GZIP",
    }
    # p4d has local NVMe: no VolumeKmsKeyId; on-demand without a warm pool: no KeepAlive.
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.p4d.24xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 100,
    }
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert request["EnableManagedSpotTraining"] is False
    assert request["CheckpointConfig"] == {
        "S3Uri": f"s3://artifacts-bucket/checkpoints/{wd.run_id(result['arn'])}/",
        "LocalPath": contract.CHECKPOINT_DIR,
    }
    # TensorBoard event files: uploaded by SageMaker beside the model, under the job's name.
    assert request["TensorBoardOutputConfig"] == {
        "S3OutputPath": "s3://artifacts-bucket/models/",
        "LocalPath": contract.TENSORBOARD_DIR,
    }
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": SETTINGS.image_uri,
        "TrainingInputMode": "FastFile",
        "MetricDefinitions": contract.metric_definitions(),
    }
    assert request["RoleArn"] == SETTINGS.role_arn
    assert request["EnableNetworkIsolation"] is True
    assert request["Environment"]["TRAINOPS_EXECUTION_ARN"] == result["arn"]
    rdzv = f"timeout={contract.HYPERPARAMETERS['dist_timeout_s'].default}"
    assert request["Environment"][contract.RDZV_CONF_ENV] == rdzv
    assert {t["Key"]: t["Value"] for t in request["Tags"]} == {
        "trainops:run-id": wd.run_id(result["arn"]),
        "trainops:trigger": "operator",
        "trainops:attempt": "0",
        "project": "donut",
    }
    assert result["output"] == {
        "status": "COMPLETED",
        "job_name": expected_name,
        "model_artifacts": f"s3://artifacts-bucket/models/{expected_name}/output/model.tar.gz",
        "execution": result["arn"],
        "trigger": "operator",
        "attempts": 1,
        "instance_type": "ml.p4d.24xlarge",
        "instance_count": 2,
        "spot": False,
        "final_metrics": [],
    }
    message = json.loads(result["publishes"][0]["Message"])
    assert message == result["output"]
    assert result["publishes"][0]["TopicArn"] == SETTINGS.topic_arn


def test_scheduled_input(moto_env):
    result = run(moto_env, {"trigger": "schedule"})
    request = _check_requests(result)
    assert {t["Key"]: t["Value"] for t in request["Tags"]}["trainops:trigger"] == "schedule"
    assert request["Environment"]["TRAINOPS_TRIGGER"] == "schedule"


def test_operator_overrides_merge_key_by_key(moto_env):
    result = run(
        moto_env,
        {
            "trigger": "operator",
            "hyperparameters": {"lr": "0.01", "custom_flag": "x", "dist_timeout_s": "120"},
            "instance_type": "ml.p4de.24xlarge",
            "instance_count": 4,
            "train_s3_uri": "s3://other-bucket/datasets/v2/",
        },
    )
    request = _check_requests(result)
    hps = request["HyperParameters"]
    assert (hps["lr"], hps["custom_flag"], hps["epochs"], hps["model_name"]) == (
        "0.01",
        "x",
        "20",
        "donut",
    )
    assert hps["sagemaker_instance_type"] == "ml.p4de.24xlarge"
    assert request["Environment"][contract.RDZV_CONF_ENV] == "timeout=120"
    assert request["ResourceConfig"]["InstanceCount"] == 4
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == (
        "s3://other-bucket/datasets/v2/"
    )


def test_spot_on(moto_env):
    settings = replace(SETTINGS, keep_alive_s=600)
    result = run(moto_env, {"spot": True}, settings)
    request = _check_requests(result)
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 86400,
        "MaxWaitTimeInSeconds": 2 * 86400,
    }
    assert "KeepAlivePeriodInSeconds" not in request["ResourceConfig"]  # no warm pool with spot
    assert "CheckpointConfig" in request


def test_spot_off_with_warm_pool_torchrun_on_ebs_instance(moto_env):
    settings = replace(
        SETTINGS,
        spot=True,
        max_wait_s=100000,
        keep_alive_s=600,
        backend="torchrun",
        instance_type="ml.m5.xlarge",
        instance_count=1,
    )
    result = run(moto_env, {"spot": False}, settings)
    request = _check_requests(result)
    assert request["EnableManagedSpotTraining"] is False
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 100,
        "VolumeKmsKeyId": SETTINGS.kms_key_arn,  # EBS-only instance type: encrypt with the CMK
        "KeepAlivePeriodInSeconds": 600,
    }
    hps = request["HyperParameters"]
    # One instance still gets the torchrun launcher (one process per GPU).
    assert hps[contract.LAUNCHER_FLAGS["torchrun"]] == "true"
    assert contract.LAUNCHER_FLAGS["smddp"] not in hps
    spot = run(moto_env, {}, settings)  # the configured default (spot) applies
    spot_request = _check_requests(spot)
    assert spot_request["StoppingCondition"]["MaxWaitTimeInSeconds"] == 100000


def test_checkpointing_off_and_backend_none(moto_env):
    settings = replace(SETTINGS, checkpointing=False, backend="none")
    request = _check_requests(run(moto_env, {"instance_type": "ml.g5.12xlarge"}, settings))
    assert "CheckpointConfig" not in request
    assert not set(contract.LAUNCHER_FLAGS.values()) & set(request["HyperParameters"])
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]  # g5 has local NVMe


@pytest.mark.parametrize("isolated", [True, False])
def test_network_isolation_follows_the_config_and_the_code_comes_as_a_channel(isolated):
    settings = replace(SETTINGS, network_isolation=isolated, code_file_name="abc.gz")
    params = wd.build_definition(settings)["States"]["TrainModel"]["Parameters"]
    assert params["EnableNetworkIsolation"] is isolated
    code = [c for c in params["InputDataConfig"] if c["ChannelName"] == contract.CODE_CHANNEL]
    assert code[0]["DataSource"]["S3DataSource"]["S3Uri"] == SETTINGS.code_s3_uri
    everything = json.dumps(wd.build_definition(settings))
    assert '"sagemaker_submit_directory": "/opt/ml/input/data/code/abc.gz"' in everything
