"""The production loop in the template: registry, new-data rule, outcome rule, their policies.

One synth with retrain_on_new_data=true (the default synth has it off): cdk-nag and cfn-lint
clean, and the pieces wired as the README says.
"""

from __future__ import annotations

import json

import pytest

from core.config import ConfigError, TrainingConfig
from infra.outcomes import NOTIFIED_BY_THE_STATE_MACHINE, STATUS_CHANGE
from tests.infra.conftest import Synth, synthesize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def new_data_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(
        tmp_path_factory.mktemp("cdk-new-data"), {"training.retrain_on_new_data": "true"}
    )


def _ref(synth: Synth, type_: str) -> str:
    (logical_id,) = synth.resources(type_)
    return logical_id


def test_new_data_stack_is_nag_and_cfn_lint_clean(new_data_synth: Synth) -> None:
    from cfnlint.api import lint

    assert new_data_synth.findings == [] and new_data_synth.error is None
    text = (new_data_synth.outdir / f"{new_data_synth.stack.stack_name}.template.json").read_text()
    assert [str(m) for m in lint(text, regions=["us-east-1", "eu-west-1"])] == []


def test_the_marker_upload_starts_a_new_data_run_with_a_dlq(new_data_synth: Synth) -> None:
    config = new_data_synth.stack.config
    rules = new_data_synth.resources("AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if r["Properties"]["EventPattern"]["source"] == ["aws.s3"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [config.retrain_marker_key]}
    (target,) = rule["Properties"]["Targets"]
    assert json.loads(target["Input"]) == {"trigger": "new-data"}
    assert target["Arn"] == {"Ref": _ref(new_data_synth, "AWS::StepFunctions::StateMachine")}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # The bucket sends events itself (no notification Lambda custom resource).
    enabled = [
        b
        for b in new_data_synth.resources("AWS::S3::Bucket").values()
        if b["Properties"].get("NotificationConfiguration")
        == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    ]
    assert len(enabled) == 1
    assert not new_data_synth.resources("Custom::S3BucketNotifications")
    alarms = new_data_synth.resources("AWS::CloudWatch::Alarm").values()
    assert any(a["Properties"]["AlarmName"].endswith("-new-data-dead-letters") for a in alarms)


def test_outcome_rule_notifies_what_the_state_machine_cannot(new_data_synth: Synth) -> None:
    rules = new_data_synth.resources("AWS::Events::Rule").values()
    (rule,) = [r for r in rules if r["Properties"]["EventPattern"]["source"] == ["aws.states"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == [STATUS_CHANGE]
    assert pattern["detail"]["$or"] == [
        {"status": ["ABORTED", "TIMED_OUT"]},
        {"status": ["FAILED"], "error": [{"anything-but": list(NOTIFIED_BY_THE_STATE_MACHINE)}]},
    ]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": _ref(new_data_synth, "AWS::SNS::Topic")}
    # EventBridge may publish to the topic (this rule only) and use its key (no wildcard action).
    policies = new_data_synth.resources("AWS::SNS::TopicPolicy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (allow,) = [s for s in statements if s.get("Sid") == "AllowOutcomeRule"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceArn" in allow["Condition"]["ArnEquals"]
    (key,) = new_data_synth.resources("AWS::KMS::Key").values()
    (events_key,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert sorted(events_key["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_registry_group_is_retained_and_its_versions_are_the_only_writable_packages(
    new_data_synth: Synth,
) -> None:
    (group,) = new_data_synth.resources("AWS::SageMaker::ModelPackageGroup").values()
    assert group["DeletionPolicy"] == "Retain"
    name = group["Properties"]["ModelPackageGroupName"]
    policies = new_data_synth.resources("AWS::IAM::Policy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (register,) = [s for s in statements if s.get("Sid") == "RegisterModelVersions"]
    assert sorted(register["Action"]) == ["sagemaker:AddTags", "sagemaker:CreateModelPackage"]
    resources = json.dumps(register["Resource"])
    assert f"model-package/{name}/*" in resources and f"model-package-group/{name}" in resources


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_approval_status": "Yes"}, "model_approval_status='Yes': expected one of"),
        ({"retrain_marker": "a/b"}, "retrain_marker='a/b': expected a file name"),
        ({"stack_name": "S" * 60}, "the model package group"),
    ],
)
def test_bad_production_loop_settings_fail_at_synth(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TrainingConfig(**overrides)
    assert message in str(raised.value) and "\n" not in str(raised.value)
