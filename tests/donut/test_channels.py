"""`training.channels` adds input channels (Donut's `pretrained` folder) to every job: checked at
synth, sent as botocore's model allows, downloaded by the emulator like any channel."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core import config as cfg
from infra import workflow_definition as wd
from localaws.api_model import validate_request
from tests.infra.test_workflow_aws_models import GOOD
from tests.infra.test_workflow_definition import SETTINGS


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
    settings = replace(SETTINGS, channels={"pretrained": "pretrained/donut-base/"})
    request = _request(wd.build_definition(settings))
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "pretrained", "code"}
    source = channels["pretrained"]["DataSource"]["S3DataSource"]
    assert source["S3Uri"] == "s3://data-bucket/pretrained/donut-base/"
    assert source["S3DataDistributionType"] == "FullyReplicated"
    # the channels as botocore's CreateTrainingJob model takes them (the rest: a valid request)
    train = channels["train"]["DataSource"]["S3DataSource"]
    train["S3Uri"] = "s3://data-bucket/train/"
    del train["S3Uri.$"]
    request = {**GOOD, "InputDataConfig": request["InputDataConfig"]}
    validate_request("sagemaker", "CreateTrainingJob", request)


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
