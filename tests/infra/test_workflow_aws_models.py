"""tests/aws_models.py: the service-model validator catches what botocore.validate does not."""

from __future__ import annotations

import copy

import pytest

from localaws.api_model import RequestInvalid, request_problems, validate_request

GOOD = {
    "TrainingJobName": "lightning-0123456789abcdef0123456789abcdef-0",
    "RoleArn": "arn:aws:iam::123456789012:role/sagemaker-execution",
    "AlgorithmSpecification": {
        "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
        "TrainingInputMode": "FastFile",
    },
    "HyperParameters": {"epochs": "3"},
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/models/"},
    "ResourceConfig": {
        "InstanceType": "ml.p4d.24xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 100,
    },
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "Tags": [{"Key": "trainops:trigger", "Value": "schedule"}],
}


def _with(path: str, value) -> dict:
    request = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = request
    for part in parents:
        node = node[part]
    node[last] = value
    return request


def test_good_request_passes():
    validate_request("sagemaker", "CreateTrainingJob", GOOD)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "ResourceConfig.InstanceType",
            "ml.p9.mega",
            "CreateTrainingJob.ResourceConfig.InstanceType: 'ml.p9.mega' is not one of the enum "
            "values of TrainingInstanceType",
        ),
        (
            "TrainingJobName",
            "x" * 64,
            "CreateTrainingJob.TrainingJobName: has 64 characters, more than the maximum 63",
        ),
        (
            "TrainingJobName",
            "bad_name",
            "CreateTrainingJob.TrainingJobName: 'bad_name' does not match the pattern "
            "'[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}'",
        ),
        (
            "ResourceConfig.KeepAlivePeriodInSeconds",
            21601,
            "CreateTrainingJob.ResourceConfig.KeepAlivePeriodInSeconds: 21601 is above the "
            "maximum 21600",
        ),
        (
            "AlgorithmSpecification.TrainingInputMode",
            "Stream",
            "CreateTrainingJob.AlgorithmSpecification.TrainingInputMode: 'Stream' is not one of "
            "the enum values of TrainingInputMode",
        ),
        (
            "Tags",
            [{"Key": "k", "Value": "a!b"}],
            "CreateTrainingJob.Tags[0].Value: 'a!b' does not match the pattern "
            "'([\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+\\\\-@]*)'",
        ),
        (
            "HyperParameters",
            {"k" * 257: "v"},
            "CreateTrainingJob.HyperParameters key '" + "k" * 257 + "': has 257 characters, "
            "more than the maximum 256",
        ),
    ],
)
def test_metadata_constraints(path, value, expected):
    problems = request_problems("sagemaker", "CreateTrainingJob", _with(path, value))
    assert expected in problems, problems


def test_unknown_key_wrong_type_and_missing_required_key():
    request = _with("ResourceConfig.Bogus", 1)
    request["ResourceConfig"]["InstanceCount"] = "2"
    del request["RoleArn"]
    with pytest.raises(RequestInvalid) as err:
        validate_request("sagemaker", "CreateTrainingJob", request)
    text = str(err.value)
    assert 'Unknown parameter in ResourceConfig: "Bogus"' in text
    assert "Invalid type for parameter ResourceConfig.InstanceCount" in text
    assert 'Missing required parameter in input: "RoleArn"' in text
    assert text.splitlines()[0] == "CreateTrainingJob: 3 problem(s):"


def test_too_many_map_entries_and_other_services():
    hps = {f"k{i}": "v" for i in range(101)}
    assert (
        "CreateTrainingJob.HyperParameters: has 101 entries, more than the maximum 100"
        in request_problems("sagemaker", "CreateTrainingJob", _with("HyperParameters", hps))
    )
    validate_request("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "m"})
    with pytest.raises(RequestInvalid, match="Missing required parameter"):
        validate_request("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:1:t"})
