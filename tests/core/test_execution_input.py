"""core/execution_input.py: the operator-side validator, one exact one-line message per rule."""

from __future__ import annotations

import json

import pytest

from core import execution_input as ei

ALLOWED = "hyperparameters, instance_count, instance_type, spot, train_s3_uri, trigger"
DEFAULTS = {"epochs": "10"}

TRIGGERS_ONE_OF = "trigger must be one of 'schedule', 'operator', 'sdk', 'new-data'"
BAD = [
    ([], "execution input must be a JSON object, got array"),
    (None, "execution input must be a JSON object, got null"),
    ({"epochs": 3}, f'execution input has an unknown key; allowed: {ALLOWED}, got "epochs"'),
    ({"trigger": "cron"}, f'{TRIGGERS_ONE_OF}, got "cron"'),
    ({"trigger": None}, f"{TRIGGERS_ONE_OF}, got null"),
    (
        {"hyperparameters": ["a"]},
        "hyperparameters must be an object of string values, got array",
    ),
    (
        {"hyperparameters": {"epochs": 5}},
        "hyperparameters values must be strings (SageMaker passes hyperparameters as strings), "
        'got "epochs": 5',
    ),
    (
        {"hyperparameters": {"": "x"}},
        'hyperparameters key "" must be 1-256 characters',
    ),
    (
        {"hyperparameters": {"sagemaker_program": "x.py"}},
        'hyperparameters key "sagemaker_program" is reserved: keys starting with "sagemaker_" '
        "are set by the workflow",
    ),
    (
        {"hyperparameters": {"lr": "1" * 257}},
        'hyperparameters["lr"] is 257 characters, at most 256 allowed',
    ),
    (
        {"hyperparameters": {"precision": "fp8"}},
        'hyperparameters["precision"] must be one of "auto", "32", "16-mixed", "bf16-mixed", '
        'got "fp8"',
    ),
    (
        {"hyperparameters": {f"k{i}": "v" for i in range(92)}},
        "hyperparameters: at most 92 keys including the defaults (SageMaker takes 100, the "
        "workflow sets the rest), got 93",
    ),
    (
        {"instance_type": "p4d.24xlarge"},
        "instance_type must be a SageMaker instance type like 'ml.p4d.24xlarge', "
        'got "p4d.24xlarge"',
    ),
    (
        {"instance_type": "ml.p4d"},
        "instance_type must be a SageMaker instance type like 'ml.p4d.24xlarge', got \"ml.p4d\"",
    ),
    ({"instance_count": 0}, "instance_count must be an integer from 1 to 64, got 0"),
    ({"instance_count": 65}, "instance_count must be an integer from 1 to 64, got 65"),
    ({"instance_count": 2.0}, "instance_count must be an integer from 1 to 64, got 2.0"),
    ({"instance_count": True}, "instance_count must be an integer from 1 to 64, got true"),
    ({"spot": "yes"}, 'spot must be true or false, got "yes"'),
    ({"spot": 1}, "spot must be true or false, got 1"),
    (
        {"train_s3_uri": "https://b.s3.amazonaws.com/k"},
        "train_s3_uri must be an s3:// URI with a bucket and a key prefix (s3://bucket/prefix/), "
        'got "https://b.s3.amazonaws.com/k"',
    ),
    (
        {"train_s3_uri": "s3://bucket"},
        "train_s3_uri must be an s3:// URI with a bucket and a key prefix (s3://bucket/prefix/), "
        'got "s3://bucket"',
    ),
]


@pytest.mark.parametrize(("payload", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_inputs_have_exact_one_line_messages(payload, message):
    with pytest.raises(ei.ExecutionInputError) as err:
        ei.validate_execution_input(payload, defaults=DEFAULTS)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_smddp_instance_rule_uses_the_default_instance_type_too():
    kwargs = {"backend": "smddp", "default_instance_type": "ml.p4d.24xlarge"}
    assert ei.validate_execution_input({}, **kwargs) == {}
    with pytest.raises(ei.ExecutionInputError) as err:
        ei.validate_execution_input({"instance_type": "ml.p5.48xlarge"}, **kwargs)
    assert str(err.value) == (
        "instance_type cannot run the smddp backend; use one of ml.p4d.24xlarge, "
        'ml.p4de.24xlarge, ml.p3dn.24xlarge, got "ml.p5.48xlarge"'
    )
    ei.validate_execution_input({"instance_type": "ml.p5.48xlarge"}, backend="torchrun")


def test_good_input_round_trips_as_json():
    payload = {
        "trigger": "schedule",
        "hyperparameters": {"epochs": "3", "custom": "x"},
        "instance_type": "ml.p4de.24xlarge",
        "instance_count": 4,
        "spot": True,
        "train_s3_uri": "s3://bucket/datasets/v2/",
    }
    checked = ei.validate_execution_input(payload, defaults=DEFAULTS)
    assert checked == payload
    assert json.loads(json.dumps(checked)) == payload
    assert ei.validate_execution_input({}) == {}


def test_schema_lists_exactly_the_input_keys():
    schema = ei.EXECUTION_INPUT_SCHEMA
    assert sorted(schema["properties"]) == sorted(ei.INPUT_KEYS)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["instance_count"]["maximum"] == ei.MAX_INSTANCE_COUNT
