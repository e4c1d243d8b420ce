"""TrainingWorkflow in a minimal test stack (and once in the full stack): template assertions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from core.config import TrainingConfig
from infra import workflow_definition as wd
from infra.workflow import LOG_DELIVERY_ACTIONS, SYNC_EVENTS_RULE, XRAY_ACTIONS, TrainingWorkflow


class Built:
    def __init__(self, outdir: Path) -> None:
        app = cdk.App(outdir=str(outdir))
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        stack = cdk.Stack(app, "WorkflowTest")
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        subnet_ids = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
        vpc = ec2.Vpc.from_vpc_attributes(
            stack,
            "Vpc",
            vpc_id="vpc-0123456789abcdef0",
            availability_zones=["us-east-1a", "us-east-1b"],
            isolated_subnet_ids=subnet_ids,
        )
        self.sg = ec2.SecurityGroup(stack, "TrainingSg", vpc=vpc, allow_all_outbound=False)
        self.exec_role = iam.Role(
            stack, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")
        )
        data = s3.Bucket.from_bucket_name(stack, "Data", "data-bucket")
        artifacts = s3.Bucket.from_bucket_name(stack, "Artifacts", "artifacts-bucket")
        self.config = TrainingConfig(notification_email="ops@example.com")
        self.workflow = TrainingWorkflow(
            stack,
            "Workflow",
            config=self.config,
            execution_role=self.exec_role,
            data_bucket=data,
            artifacts_bucket=artifacts,
            key=key,
            security_group=self.sg,
            subnet_ids=subnet_ids,
            image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0",
            code_s3_uri="s3://artifacts-bucket/code/sourcedir.tar.gz",
            code_file_name="sourcedir.tar.gz",
        )
        self.stack = stack
        self.error = None
        try:
            app.synth()
        except Exception as exc:
            self.error = str(exc)
        self.template = json.loads((outdir / "WorkflowTest.template.json").read_text())
        report = outdir / "validation-report.json"
        self.findings = []
        if report.exists():
            for plugin in json.loads(report.read_text())["pluginReports"]:
                for violation in plugin["violations"]:
                    for construct in violation["violatingConstructs"]:
                        self.findings.append((violation["ruleName"], construct["constructPath"]))

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def logical_id(self, construct) -> str:
        return self.stack.resolve(self.stack.get_logical_id(construct.node.default_child))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return Built(tmp_path_factory.mktemp("workflow"))


def _statements(built: Built) -> list[dict]:
    role_id = built.logical_id(built.workflow.role)
    out = []
    for policy in built.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _definition(built: Built) -> str:
    (machine,) = built.resources("AWS::StepFunctions::StateMachine").values()
    return json.dumps(machine["Properties"]["DefinitionString"])


def test_synth_has_no_cdk_nag_errors(built):
    assert built.error is None, built.error
    assert [f for f in built.findings if "/Workflow/" in f[1]] == []


def test_task_vpc_config_lists_only_the_given_security_group(built):
    request = built.workflow.definition["States"]["TrainModel"]["Parameters"]
    sg_token = built.sg.security_group_id
    assert request["VpcConfig"]["SecurityGroupIds"] == [sg_token]
    assert request["VpcConfig"]["Subnets"] == [
        "subnet-0aaaaaaaaaaaaaaaa",
        "subnet-0bbbbbbbbbbbbbbbb",
    ]
    # In the template: exactly one security group reference, ours, in the whole definition.
    rendered = _definition(built)
    sg_id = built.logical_id(built.sg)
    assert rendered.count(f'"Fn::GetAtt": ["{sg_id}", "GroupId"]') == 1
    assert len(built.resources("AWS::EC2::SecurityGroup")) == 1
    assert "0.0.0.0/0" not in json.dumps(built.template)


def test_definition_uses_sync_and_keeps_null_result_paths(built):
    rendered = _definition(built)
    assert wd.CREATE_TRAINING_JOB_SYNC in rendered
    assert wd.DESCRIBE_TRAINING_JOB_SDK not in rendered
    assert '\\"ResultPath\\": null' in rendered


def test_state_machine_role_policies(built):
    statements = _statements(built)
    actions = [a for s in statements for a in _as_list(s["Action"])]
    assert not [a for a in actions if "*" in a]
    assert set(actions) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
        "iam:PassRole",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "sagemaker:ListTrainingJobs",
        *LOG_DELIVERY_ACTIONS,
        *XRAY_ACTIONS,
    }
    by_sid = {s.get("Sid"): s for s in statements}
    # The new-data guard only reads: ListTrainingJobs has no resource-level permission.
    assert by_sid["FindRunningTrainingJobs"]["Action"] == "sagemaker:ListTrainingJobs"
    passrole = by_sid["PassExecutionRoleToSageMaker"]
    assert passrole["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert passrole["Resource"] == {"Fn::GetAtt": [built.logical_id(built.exec_role), "Arn"]}
    create = by_sid["CreateTrainingJobsInTheVpcOnly"]
    assert json.dumps(create["Resource"]).endswith(':training-job/lightning-*"]]}')
    assert create["Condition"]["ForAllValues:StringEquals"]["sagemaker:VpcSubnets"] == [
        "subnet-0aaaaaaaaaaaaaaaa",
        "subnet-0bbbbbbbbbbbbbbbb",
    ]
    assert SYNC_EVENTS_RULE in json.dumps(by_sid["SyncEventsRule"]["Resource"])
    star = [s for s in statements if s["Resource"] == "*"]
    assert {a for s in star for a in _as_list(s["Action"])} == {
        *LOG_DELIVERY_ACTIONS,
        *XRAY_ACTIONS,
        "sagemaker:ListTrainingJobs",
    }


def test_topic_log_group_tracing(built):
    key_id = built.logical_id(built.stack.node.find_child("Key"))
    (topic,) = built.resources("AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (sub,) = built.resources("AWS::SNS::Subscription").values()
    assert sub["Properties"]["Protocol"] == "email"
    (group,) = built.resources("AWS::Logs::LogGroup").values()
    assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert group["Properties"]["RetentionInDays"] == 90
    assert group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")
    (machine,) = built.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    key_policy = json.dumps(built.resources("AWS::KMS::Key"))
    assert "logs.${Token" not in key_policy and "AllowStepFunctionsLogGroupEncryption" in key_policy


def test_full_stack_wires_the_workflow(default_synth):
    """Once on the real stack (infra/stack.py): our state machine, our SG only, no nag errors."""
    machines = default_synth.resources("AWS::StepFunctions::StateMachine")
    assert len(machines) == 1
    rendered = json.dumps(next(iter(machines.values()))["Properties"]["DefinitionString"])
    assert wd.CREATE_TRAINING_JOB_SYNC in rendered
    sg_refs = set(
        re.findall(r'\{\\"SecurityGroupIds\\": \[\\"", \{"Fn::GetAtt": \["(\w+)"', rendered)
    )
    assert len(sg_refs) == 1
    assert [f for f in default_synth.findings if "/Workflow/" in f["path"]] == []


def test_state_machine_depends_only_on_its_policy(built):
    (machine,) = built.resources("AWS::StepFunctions::StateMachine").values()
    policy = built.workflow.role.node.find_child("DefaultPolicy")
    assert machine["DependsOn"] == [built.logical_id(policy)]
