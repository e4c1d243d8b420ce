"""`training.channels` adds input channels (Donut's `pretrained` folder) to every job: checked at
synth, sent as botocore's model allows, downloaded by the emulator like any channel."""

from __future__ import annotations

import pytest

from infra import config as cfg
from infra import workflow_definition as wd
from localaws.api_model import validate_request

SETTINGS = dict(
    region="us-east-1",
    role_arn="arn:aws:iam::123456789012:role/training",
    image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-gpu-py313",
    code_s3_uri="s3://code-bucket/abc.gz",
    topic_arn="arn:aws:sns:us-east-1:123456789012:runs",
    data_bucket_name="data-bucket",
    artifacts_bucket_name="artifacts-bucket",
    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    security_group_ids=("sg-1",),
    subnet_ids=("subnet-1", "subnet-2"),
)


def _request(definition: dict) -> dict:
    for state in definition["States"].values():
        if state.get("Resource", "").startswith("arn:aws:states:::sagemaker:createTrainingJob"):
            return state["Parameters"]
        for branch in state.get("Branches", []) + (
            [state["Iterator"]] if "Iterator" in state else []
        ):
            found = _request(branch)
            if found:
                return found
    return {}


def test_extra_channel_in_the_training_request():
    settings = wd.WorkflowSettings(**SETTINGS, channels={"pretrained": "pretrained/donut-base/"})
    request = _request(wd.build_definition(settings))
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "pretrained", "code"}
    source = channels["pretrained"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == "s3://data-bucket/pretrained/donut-base/"
    assert source["S3DataDistributionType"] == "FullyReplicated"
    # the channels as botocore's CreateTrainingJob model takes them (the rest minimal)
    train = channels["train"]["DataSource"]["S3DataSource"]
    train["S3Uri"] = "s3://data-bucket/train/"
    del train["S3Uri.$"]
    validate_request(
        "sagemaker",
        "CreateTrainingJob",
        {
            "TrainingJobName": "job-1",
            "RoleArn": SETTINGS["role_arn"],
            "AlgorithmSpecification": {
                "TrainingImage": SETTINGS["image_uri"],
                "TrainingInputMode": "File",
            },
            "InputDataConfig": request["InputDataConfig"],
            "OutputDataConfig": {"S3OutputPath": "s3://artifacts-bucket/models/"},
            "ResourceConfig": {
                "InstanceType": "ml.m5.xlarge",
                "InstanceCount": 2,
                "VolumeSizeInGB": 30,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    )


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ({"train": "x/"}, "channels.train='x/': train is the workflow's own channel"),
        ({"pretrained": "/abs/"}, "channels.pretrained='/abs/': expected a key prefix in the data "
         "bucket like models/base/"),
        ({"pretrained": "no-slash"}, "channels.pretrained='no-slash': expected a key prefix in "
         "the data bucket like models/base/"),
        ({"bad name": "x/"}, "channels='bad name': expected channel names of [A-Za-z0-9.-_], "
         "1-64 chars"),
    ],
)  # fmt: skip
def test_bad_channels_fail_at_synth(channels, message):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.TrainingConfig.from_context({"training": {"channels": channels}})
    assert str(info.value) == message
