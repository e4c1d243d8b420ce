"""Template assertions on the default stack: network, storage, IAM, schedule, outputs, lint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import assertions

from core import outputs
from core.config import CHECKPOINT_PREFIX, OUTPUT_PREFIX
from core.execution_input import SCHEDULED_INPUT
from infra import network

Match = assertions.Match


@pytest.fixture(scope="module")
def template(default_synth) -> assertions.Template:
    return assertions.Template.from_json(default_synth.template)


def _ref_id(value: Any) -> str | None:
    """Logical id behind {"Fn::GetAtt": [id, ...]} or {"Ref": id}."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        if "Ref" in value:
            return value["Ref"]
    return None


def _training_sg(synth) -> str:
    sgs = synth.resources("AWS::EC2::SecurityGroup")
    (sg_id,) = [
        k for k, v in sgs.items() if "training nodes" in v["Properties"]["GroupDescription"]
    ]
    return sg_id


def _policy_documents(node: Any, path: str = ""):
    """Every IAM policy document in the template (identity, resource, key, bucket, queue...)."""
    if isinstance(node, dict):
        if "Statement" in node and isinstance(node["Statement"], list):
            yield path, node
        for key, value in node.items():
            yield from _policy_documents(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _policy_documents(value, f"{path}[{i}]")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- network ------------------------------------------------------------------------------------
def test_vpc_isolated_no_internet(default_synth, template):
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    subnets = default_synth.resources("AWS::EC2::Subnet")
    assert len(subnets) == default_synth.stack.config.max_azs >= 2
    for subnet in subnets.values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
        assert subnet["Properties"]["CidrBlock"].endswith("/20")
    azs = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets.values()}
    assert len(azs) == len(subnets)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "s3"}
    )


def check_endpoints(synth, *, interface_count: int) -> None:
    """One S3 gateway endpoint; `interface_count` interface endpoints behind their own SG."""
    endpoints = synth.resources("AWS::EC2::VPCEndpoint")
    gateway = [e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Gateway"]
    interface = [
        e for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Interface"
    ]
    assert len(gateway) == 1 and "s3" in json.dumps(gateway[0]["Properties"]["ServiceName"])
    assert len(interface) == interface_count
    endpoint_sgs = {_ref_id(sg) for e in interface for sg in e["Properties"]["SecurityGroupIds"]}
    assert len(endpoint_sgs) == (1 if interface_count else 0)
    assert _training_sg(synth) not in endpoint_sgs
    for e in interface:
        assert e["Properties"]["PrivateDnsEnabled"] is True


def test_isolated_jobs_get_only_the_s3_gateway_endpoint(default_synth):
    """An isolated container has no network: only SageMaker's own S3 traffic uses the VPC."""
    assert default_synth.stack.config.network_isolation is True
    check_endpoints(default_synth, interface_count=0)
    assert len(default_synth.resources("AWS::EC2::SecurityGroup")) == 1


def test_training_sg_self_referencing_ingress_and_egress(default_synth):
    sg = _training_sg(default_synth)
    ingress = [
        r["Properties"]
        for r in default_synth.resources("AWS::EC2::SecurityGroupIngress").values()
        if _ref_id(r["Properties"]["GroupId"]) == sg
    ]
    egress = [
        r["Properties"]
        for r in default_synth.resources("AWS::EC2::SecurityGroupEgress").values()
        if _ref_id(r["Properties"]["GroupId"]) == sg
    ]
    assert [(r["IpProtocol"], _ref_id(r["SourceSecurityGroupId"])) for r in ingress] == [("-1", sg)]
    self_egress = [r for r in egress if _ref_id(r.get("DestinationSecurityGroupId")) == sg]
    assert len(self_egress) == 1 and self_egress[0]["IpProtocol"] == "-1"
    others = [r for r in egress if r not in self_egress]
    # exactly: HTTPS to the S3 prefix list (isolated jobs need no interface endpoints)
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in others] == [("tcp", 443, 443)]
    assert "DestinationPrefixListId" in others[0]


def test_no_open_cidr_rules_anywhere(default_synth):
    sg = _training_sg(default_synth)
    inline = default_synth.template["Resources"][sg]["Properties"]
    # Inline egress = only the marker that matches nothing: without any inline egress EC2 keeps
    # its default allow-all rule next to the separate rules.
    assert inline["SecurityGroupEgress"] == [network.NO_DEFAULT_EGRESS]
    assert "SecurityGroupIngress" not in inline
    for kind in ("AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress"):
        for rule in default_synth.resources(kind).values():
            assert "CidrIp" not in rule["Properties"] and "CidrIpv6" not in rule["Properties"]
    for group in default_synth.resources("AWS::EC2::SecurityGroup").values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0"
        for rule in group["Properties"].get("SecurityGroupEgress", []):
            assert rule.get("CidrIp") in (None, "255.255.255.255/32")  # CDK's "no egress" marker


# --- storage ------------------------------------------------------------------------------------
def test_buckets_encrypted_private_versioned_retained(default_synth):
    buckets = default_synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    kms_buckets = 0
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algo = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        if algo == "aws:kms":
            kms_buckets += 1
            assert rule["BucketKeyEnabled"] is True
            assert "LoggingConfiguration" in props
        else:
            assert algo == "AES256" and "AccessLogs" in logical_id  # S3 log delivery needs SSE-S3
        assert props["LifecycleConfiguration"]["Rules"]
    assert kms_buckets == 2
    policies = default_synth.resources("AWS::S3::BucketPolicy")
    ssl_denied = {
        _ref_id(p["Properties"]["Bucket"])
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert ssl_denied == set(buckets)


def test_checkpoint_lifecycle(default_synth):
    config = default_synth.stack.config
    rules = [
        r
        for b in default_synth.resources("AWS::S3::Bucket").values()
        for r in b["Properties"]["LifecycleConfiguration"]["Rules"]
    ]
    assert {
        "Id": "expire-old-checkpoints",
        "Prefix": CHECKPOINT_PREFIX,
        "Status": "Enabled",
        "ExpirationInDays": config.checkpoint_retention_days,
    } in rules
    assert any(r.get("NoncurrentVersionExpiration") for r in rules)


def test_key_rotation(template):
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


# --- IAM ------------------------------------------------------------------------------------------
def test_no_wildcard_allow_actions(default_synth):
    """No Allow statement anywhere names a wildcard action. (Deny statements may: the
    enforce-SSL guards deny s3:* / sqs:* without TLS, where broader is stricter.)"""
    documents = list(_policy_documents(default_synth.template["Resources"]))
    assert len(documents) >= 8
    for path, doc in documents:
        for statement in doc["Statement"]:
            actions = _as_list(statement.get("Action", []))
            assert "NotAction" not in statement, path
            if statement["Effect"] == "Allow":
                assert not [a for a in actions if "*" in a], (path, statement)
            else:
                assert statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}, (
                    path
                )


def _execution_statements(default_synth) -> list[dict[str, Any]]:
    role = default_synth.stack.execution.role
    role_id = default_synth.stack.resolve(role.node.default_child.logical_id)
    (policy,) = [
        p
        for p in default_synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_execution_role_scoped(default_synth):
    statements = {s["Sid"]: s for s in _execution_statements(default_synth)}
    star = {sid for sid, s in statements.items() if s["Resource"] == "*"}
    # only actions without resource-level permissions get "*"
    assert star == {"EcrToken", "Metrics", "DescribeNetwork"}
    assert statements["Metrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }
    assert "ec2:Vpc" in json.dumps(statements["CreateEni"]["Condition"])
    assert "ec2:Vpc" in json.dumps(statements["ManageEni"]["Condition"])
    assert "repository/pytorch-training" in json.dumps(statements["PullImage"]["Resource"])
    write = json.dumps(statements["WriteArtifacts"]["Resource"])
    assert f"/{OUTPUT_PREFIX}*" in write and f"/{CHECKPOINT_PREFIX}*" in write
    read_code = json.dumps(statements["ReadCode"]["Resource"])
    assert ".gz" in read_code and "*" not in read_code
    for s in statements.values():
        assert not any(a.startswith("s3:") and a.endswith("*") for a in _as_list(s["Action"]))
    trust = default_synth.template["Resources"][
        default_synth.stack.resolve(
            default_synth.stack.execution.role.node.default_child.logical_id
        )
    ]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}


# --- schedule, code, image, outputs, tags ---------------------------------------------------------
def test_schedule(default_synth, template):
    config = default_synth.stack.config
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": config.schedule_cron,
            "ScheduleExpressionTimezone": config.schedule_timezone,
            "Target": Match.object_like(
                {
                    "Input": json.dumps(SCHEDULED_INPUT, separators=(",", ":")),
                    "RetryPolicy": Match.object_like({"MaximumRetryAttempts": 3}),
                    "DeadLetterConfig": Match.any_value(),
                }
            ),
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()})
    role = default_synth.stack.schedule.role
    role_id = default_synth.stack.resolve(role.node.default_child.logical_id)
    (policy,) = [
        p
        for p in default_synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    actions = {
        a
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        for a in _as_list(s["Action"])
    }
    assert actions == {
        "states:StartExecution",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }


def test_code_uri_is_s3_scheme(default_synth):
    uri = default_synth.stack.resolve(default_synth.stack.code.s3_uri)
    rendered = json.dumps(uri)
    assert rendered.startswith('{"Fn::Join": ["", ["s3://') and ".gz" in rendered
    assert "https" not in rendered


def test_outputs_and_tags(default_synth, template):
    names = set(default_synth.template["Outputs"])
    for name in (
        outputs.STATE_MACHINE_ARN,
        outputs.DATA_BUCKET,
        outputs.ARTIFACTS_BUCKET,
        outputs.TOPIC_ARN,
        outputs.SECURITY_GROUP_ID,
        outputs.SUBNET_IDS,
        outputs.TRAIN_DATA_URI,
    ):
        assert name in names
    for key, value in default_synth.stack.config.tags.items():
        template.has_resource_properties(
            "AWS::S3::Bucket", {"Tags": Match.array_with([{"Key": key, "Value": value}])}
        )


def test_environment_agnostic(default_synth):
    assert default_synth.stack.resolve(default_synth.stack.region) == {"Ref": "AWS::Region"}
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())
    env = manifest["artifacts"][default_synth.stack.artifact_id]["environment"]
    assert env == "aws://unknown-account/unknown-region"


# --- checks ---
def test_cdk_nag_zero_errors(default_synth):
    errors = [f for f in default_synth.findings if f["severity"] == "error"]
    assert errors == []
    assert default_synth.error is None


def test_cfn_lint_clean(default_synth):
    from cfnlint.api import lint

    text = (default_synth.outdir / f"{default_synth.stack.stack_name}.template.json").read_text()
    matches = lint(text, regions=["us-east-1", "eu-west-1", "ap-northeast-1"])
    assert [str(m) for m in matches] == []
