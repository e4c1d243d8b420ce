"""core/schema: the committed JSON schema is current and means what the models mean; pydantic's
own error text never reaches a user; the state machine's checks are the model's."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from core import execution_input as ei
from core.config import ConfigError, TrainingConfig, load_cdk_json_context
from core.schema import export
from core.schema.fields import Glob
from core.schema.stack import SETTING_NAMES, StackSettings
from infra.stack import app_context

ROOT = export.CDK_JSON_SCHEMA_PATH.parents[1]


def test_committed_cdk_json_schema_is_current():
    stale = "docs/cdk-training.schema.json is stale: run python -m core.schema (or make schema)"
    assert export.CDK_JSON_SCHEMA_PATH.read_text() == export.cdk_json_schema_text(), stale
    check = subprocess.run(
        [sys.executable, "-m", "core.schema", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_cdk_json_validates_against_the_schema_and_bad_values_do_not():
    schema = json.loads(export.CDK_JSON_SCHEMA_PATH.read_text())
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    jsonschema.validate(cdk_json, schema)
    TrainingConfig.from_context(load_cdk_json_context(ROOT / "cdk.json"))  # and the model agrees
    for bad in (
        {"instance_count": 0},
        {"instance_count": 65},
        {"backend": "mpi"},
        {"instanse_type": "ml.m5.xlarge"},
        {"hyperparameters": {"precision": "fp8"}},
        {"hyperparameters": {"sagemaker_program": "x.py"}},
        {"job_name_prefix": "a" * 25},
    ):
        doc = {"context": {"training": {**cdk_json["context"]["training"], **bad}}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, schema)
        with pytest.raises(ConfigError):
            TrainingConfig.from_context({**app_context(), **doc["context"]})


WRONG_VALUES = (None, object(), [1], {"a": 1}, -1, 10**9, "x" * 300, 1.5, True, "")


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_setting_error_is_one_of_our_lines(name):
    """Whatever a setting is given, the error is our one line naming the setting."""
    for value in WRONG_VALUES:
        try:
            StackSettings(**{name: value})
        except ConfigError as err:
            text = str(err)
            assert "\n" not in text and "pydantic" not in text and "Input should" not in text
            # This setting, or the one a rule between settings names (spot=true: max_wait_s).
            assert text.split("=")[0].split(".")[0] in SETTING_NAMES, text


def test_every_execution_input_error_is_one_of_our_lines():
    for key in ei.INPUT_KEYS:
        for value in WRONG_VALUES:
            try:
                ei.validate_execution_input({key: value})
            except ei.ExecutionInputError as err:
                text = str(err)
                assert "\n" not in text and "pydantic" not in text and "Input should" not in text
                assert key in text, text


def test_state_machine_checks_are_generated_from_every_input_key():
    checks = ei.input_checks()
    assert [c.key for c in checks] == list(ei.ExecutionInput.model_fields)
    assert {c.name for c in checks} == {
        "Trigger",
        "Hyperparameters",
        "InstanceType",
        "InstanceCount",
        "Spot",
        "TrainS3Uri",
    }
    count = next(c for c in checks if c.key == "instance_count")
    assert (count.low, count.high) == (1, ei.MAX_INSTANCE_COUNT)


@pytest.mark.parametrize(
    ("glob", "value", "matches"),
    [
        (ei.INSTANCE_TYPE_GLOB, "ml.p4d.24xlarge", True),
        (ei.INSTANCE_TYPE_GLOB, "ml.p4d", False),
        (ei.INSTANCE_TYPE_GLOB, "ml..", True),  # StringMatches' `*` matches nothing, too
        (ei.S3_PREFIX_GLOB, "s3://bucket/", True),
        (ei.S3_PREFIX_GLOB, "s3:///x/", False),
        (ei.S3_PREFIX_GLOB, "s3://bucket", False),
        (Glob("a*b", exclude=("a.*",)), "a.xb", False),
        (Glob("a*b", exclude=("a.*",)), "axb", True),
    ],
)
def test_glob_reads_as_step_functions_string_matches(glob, value, matches):
    assert glob.matches(value) is matches
