"""The emulator's SageMaker: CreateTrainingJob runs the toolkit, `.sync` waits for it in the
real ASL interpreter, failures and stops surface the way AWS reports them."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from localaws.training_jobs import CAPACITY_FAILURE
from localjob.script_mode import script_mode_hyperparameters
from tests import timing
from tests.conftest import STUB_CODE
from tests.job_statuses import COMPLETED, secondary_statuses

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROLE = "arn:aws:iam::123456789012:role/training"
BUCKET = "emulator-tests"


@pytest.fixture(scope="module")
def code_uri(emulator, stub_bundle) -> str:
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(stub_bundle), BUCKET, "code/sourcedir.tar.gz")
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=b"0,1\n")
    return f"s3://{BUCKET}/code/sourcedir.tar.gz"


def _request(name: str, code_uri: str, *, hosts: int = 2, **hps: str) -> dict:
    params = script_mode_hyperparameters(
        submit_directory=code_uri,
        job_name=name,
        instance_type="ml.m5.xlarge",
        backend="torchrun",
        processes_per_host=1,
    )
    params.update(hps)
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "val_acc", "Regex": r"val_acc=([0-9.]+)"}],
        },
        "HyperParameters": params,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/data/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": hosts,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "CheckpointConfig": {"S3Uri": f"s3://{BUCKET}/checkpoints/{name}/"},
    }


def _name() -> str:
    return f"job-{uuid.uuid4().hex[:10]}"


def _run_sync(emulator, request: dict) -> dict:
    """Run `request` through a one-state `.sync` state machine; return describe_execution."""
    sfn = emulator.client("stepfunctions")
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": request,
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    return timing.wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        240,
        f"{execution} ended",
        seen=lambda: _seen(emulator, request["TrainingJobName"]),
    )


def _seen(emulator, name: str) -> str:
    """A failed wait's report: the job's status history and log tail."""
    run = emulator.sagemaker.runs.get(name)
    try:
        job = emulator.client("sagemaker").describe_training_job(TrainingJobName=name)
    except ClientError as exc:
        return f"{name}: {exc}"
    transitions = secondary_statuses(job)
    tail = run.job.log_lines()[-40:] if run is not None and run.job is not None else []
    return "\n".join([f"{name}: {job['TrainingJobStatus']} {transitions}", *tail])


def test_sync_task_waits_for_a_real_two_host_job_and_returns_its_description(emulator, code_uri):
    name = _name()
    described = _run_sync(emulator, _request(name, code_uri))
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["TrainingJobStatus"] == "Completed"
    assert output["FinalMetricDataList"][0]["MetricName"] == "val_acc"
    assert output["FinalMetricDataList"][0]["Value"] == pytest.approx(0.9)
    key = f"models/{name}/output/model.tar.gz"
    assert output["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/{key}"
    body = emulator.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["model.json"]
        model = json.load(tar.extractfile("model.json"))
    assert model == {"world_size": 2, "hosts": ["127.0.0.1", "127.0.0.2"]}
    job = emulator.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert secondary_statuses(job) == COMPLETED
    ckpt = emulator.client("s3").get_object(Bucket=BUCKET, Key=f"checkpoints/{name}/last.ckpt")
    assert ckpt["Body"].read() == b"step=1"


def test_failed_job_fails_the_task_with_the_failure_reason_as_cause(emulator, code_uri):
    described = _run_sync(emulator, _request(_name(), code_uri, fail_rank="1"))
    assert described["status"] == "FAILED"
    assert described["error"] == "States.TaskFailed"
    cause = json.loads(described["cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert cause["FailureReason"].startswith("AlgorithmError: algo-2 (127.0.0.2):")


def test_injected_capacity_failure_is_reported_like_sagemaker(emulator, code_uri):
    emulator.sagemaker.injected_failures.append(CAPACITY_FAILURE)
    described = _run_sync(emulator, _request(_name(), code_uri))
    assert described["status"] == "FAILED"
    assert json.loads(described["cause"])["FailureReason"] == CAPACITY_FAILURE


def test_stop_training_job_stops_the_processes(emulator, code_uri):
    sagemaker = emulator.client("sagemaker")
    name = _name()
    sagemaker.create_training_job(**_request(name, code_uri, sleep=str(timing.bound(120))))
    timing.wait_until(
        lambda: (
            sagemaker.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training"
        ),
        60,
        f"{name} Training",
        seen=lambda: _seen(emulator, name),
    )
    run = emulator.sagemaker.runs[name]
    timing.wait_until(
        lambda: run.job is not None and "stub rank=1 world=2" in "\n".join(run.job.log_lines()),
        60,
        f"{name}'s ranks running",
        seen=lambda: _seen(emulator, name),
    )
    started = time.monotonic()
    sagemaker.stop_training_job(TrainingJobName=name)
    emulator.sagemaker.runs[name].join(timing.bound(60))
    # The stub sleeps 120 s: stopped well before that (scaled: the machine's share).
    assert time.monotonic() - started < timing.bound(30), _seen(emulator, name)
    job = sagemaker.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Stopped"
    assert all(code is not None for code in emulator.sagemaker.runs[name].job.poll())
    # As in a PyTorch DLC: the stop's SIGTERM reaches no process of the job, SIGKILL ends it.
    assert "received SIGTERM" not in "\n".join(run.job.log_lines())


def test_a_reused_job_name_is_refused_as_sagemaker_does(emulator, code_uri):
    name = _name()
    sagemaker = emulator.client("sagemaker")
    sagemaker.create_training_job(**_request(name, code_uri, hosts=1))
    with pytest.raises(ClientError, match="already exists"):
        sagemaker.create_training_job(**_request(name, code_uri, hosts=1))
    emulator.sagemaker.runs[name].join(timing.bound(120))


def test_a_request_breaking_the_api_model_is_refused_before_anything_runs(emulator, code_uri):
    request = _request("bad_name_with_underscores", code_uri)
    before = len(emulator.sagemaker.requests)
    with pytest.raises(
        ClientError, match="TrainingJobName: 'bad_name_with_underscores' does not match"
    ):
        emulator.client("sagemaker").create_training_job(**request)
    assert len(emulator.sagemaker.requests) == before


# --- network isolation: the code as a channel, no network but the peers ------------------------
def _isolated(request: dict, code_uri: str, *, isolated: bool = True) -> dict:
    """`request` as the stack sends it: the bundle as the `code` channel, isolation on."""
    request["InputDataConfig"].append(
        {
            "ChannelName": "code",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": code_uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
    )
    file_name = code_uri.rsplit("/", 1)[1]
    request["HyperParameters"]["sagemaker_submit_directory"] = (
        f"/opt/ml/input/data/code/{file_name}"
    )
    request["EnableNetworkIsolation"] = isolated
    return request


def _log_text(emulator, name: str) -> str:
    events = emulator.client("logs").filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/"
    )["events"]
    return "\n".join(e["message"] for e in events)


@pytest.mark.parametrize("isolated", [True, False])
def test_an_isolated_job_reaches_its_peers_and_nothing_else(emulator, code_uri, isolated):
    """Both hosts rendezvous (torchrun over loopback) and finish; a connection to the emulator
    itself, reachable from a plain job, fails from inside an isolated one."""
    name = _name()
    probe = emulator.endpoint_url.removeprefix("http://")
    request = _isolated(_request(name, code_uri, probe=probe), code_uri, isolated=isolated)
    described = _run_sync(emulator, request)
    assert described["status"] == "SUCCEEDED", described
    logs = _log_text(emulator, name)
    assert "stub rank=0 world=2" in logs and "stub rank=1 world=2" in logs
    outcome = "unreachable" if isolated else "reachable"
    assert logs.count(f"stub probe={probe} {outcome}") == 2, logs[-2000:]


def test_a_bundle_that_cannot_install_offline_fails_with_pips_line(emulator, code_uri, tmp_path):
    """The bundle the stack shipped before the wheelhouse: PyPI requirements, no wheels."""
    bundle = tmp_path / "legacy.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        legacy = tmp_path / "requirements.txt"
        legacy.write_text("pytorch-lightning==2.2.5\ntorchmetrics==1.4.0\n")
        tar.add(legacy, arcname="requirements.txt")
        tar.add(STUB_CODE / "training", arcname="training")
    emulator.client("s3").upload_file(str(bundle), BUCKET, "code/legacy.tar.gz")
    name = _name()
    request = _isolated(_request(name, "", hosts=1), f"s3://{BUCKET}/code/legacy.tar.gz")
    described = _run_sync(emulator, request)
    assert described["status"] == "FAILED"
    job = emulator.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "No matching distribution found for pytorch-lightning==2.2.5" in job["FailureReason"]
    assert "\n" not in job["FailureReason"]
