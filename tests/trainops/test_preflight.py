"""`trainops preflight`'s rules without AWS: each finding from the structures AWS returns."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from core.execution_input import SMDDP_INSTANCE_TYPES
from trainops import preflight as pf
from trainops.aws import Aws, StackOutputs
from trainops.run_input import RunDefaults

SG = "sg-0123456789abcdef0"
DEMO = pf.Target("ml.m5.xlarge", 2, spot=False)
SELF_ALL = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": SG, "UserId": "123456789012"}]}
ANYWHERE_ALL = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
HTTPS_S3 = {
    "IpProtocol": "tcp",
    "FromPort": 443,
    "ToPort": 443,
    "PrefixListIds": [{"PrefixListId": "pl-63a5400a"}],
}


def _one_line(finding: pf.Finding) -> str:
    line = finding.line()
    assert "\n" not in line
    assert line.split()[:2] == [finding.check, "ok" if finding.ok else "FAIL"]
    assert ("; fix: " in line) is (not finding.ok)
    return line


# --- IPs per instance and subnets ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("instance_type", "ips"),
    [
        ("ml.p4d.24xlarge", 4),
        ("ml.p4de.24xlarge", 4),
        ("ml.p5.48xlarge", 32),
        ("ml.p5en.48xlarge", 32),
        ("ml.p3dn.24xlarge", 2),
        ("ml.m5.xlarge", 1),
        ("ml.g5.12xlarge", 1),
    ],
)
def test_ips_per_instance(instance_type: str, ips: int) -> None:
    assert pf.ips_per_instance(instance_type) == ips


def _subnets(*free: int) -> list[dict]:
    return [{"SubnetId": f"subnet-{i}", "AvailableIpAddressCount": n} for i, n in enumerate(free)]


def test_subnets_with_room_pass() -> None:
    finding = pf.subnets_finding(_subnets(4091, 4091), DEMO)
    assert finding.ok and "needs 2" in _one_line(finding)


def test_every_subnet_must_hold_the_job() -> None:
    finding = pf.subnets_finding(_subnets(4091, 1), DEMO)
    line = _one_line(finding)
    assert not finding.ok
    assert "subnet-1 1 free" in line and "needs 2" in line
    assert "free addresses in subnet-1" in finding.fix and "at most 1 instance " in finding.fix


def test_efa_instances_take_several_addresses_each() -> None:
    target = pf.Target("ml.p5.48xlarge", 4, spot=False)
    finding = pf.subnets_finding(_subnets(100, 100), target)
    assert not finding.ok
    assert "needs 128 (4 x ml.p5.48xlarge, 32 IPs each)" in finding.detail
    assert "at most 3 instances" in finding.fix
    assert pf.subnets_finding(_subnets(128, 200), target).ok


# --- security group -----------------------------------------------------------------------------
def _group(ingress: list[dict], egress: list[dict]) -> dict:
    return {"GroupId": SG, "IpPermissions": ingress, "IpPermissionsEgress": egress}


def test_self_referencing_rules_both_ways_pass() -> None:
    finding = pf.security_group_finding(_group([SELF_ALL], [SELF_ALL, HTTPS_S3]))
    assert finding.ok and "(to:" not in _one_line(finding)


def test_egress_to_anywhere_covers_the_group() -> None:
    """What CloudFormation leaves when every egress rule is its own resource (and moto too)."""
    finding = pf.security_group_finding(_group([SELF_ALL], [ANYWHERE_ALL]))
    assert finding.ok and "0.0.0.0/0" in finding.detail


def test_missing_self_ingress_is_the_hang_trap() -> None:
    finding = pf.security_group_finding(_group([], [SELF_ALL]))
    line = _one_line(finding)
    assert not finding.ok and "from itself" in line and "hangs" in line
    assert "authorize-security-group-ingress" in finding.fix and "egress" not in finding.fix
    assert "cdk deploy" in finding.fix


def test_only_all_protocols_count() -> None:
    """NCCL over EFA needs every protocol: a TCP-only self rule is not enough."""
    tcp_only = {**SELF_ALL, "IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535}
    finding = pf.security_group_finding(_group([tcp_only], [HTTPS_S3]))
    assert not finding.ok and "from or to itself" in finding.detail
    assert "ingress" in finding.fix and "egress" in finding.fix


# --- VPC endpoints ------------------------------------------------------------------------------
def test_interface_endpoint_names_match_the_stack() -> None:
    from infra.network import INTERFACE_ENDPOINTS

    assert {k: v.short_name for k, v in INTERFACE_ENDPOINTS.items()} == (
        pf.INTERFACE_ENDPOINT_SERVICES
    )


def _endpoint(service: str, kind: str, state: str = "available") -> dict:
    return {
        "ServiceName": f"com.amazonaws.us-east-1.{service}",
        "VpcEndpointType": kind,
        "State": state,
    }


def test_isolated_stack_needs_the_s3_gateway_only() -> None:
    expected = pf.expected_endpoints("us-east-1", network_isolation=True)
    assert expected == {"com.amazonaws.us-east-1.s3": "Gateway"}
    assert pf.endpoints_finding([_endpoint("s3", "Gateway")], expected, "vpc-1").ok
    finding = pf.endpoints_finding([_endpoint("s3", "Interface")], expected, "vpc-1")
    assert not finding.ok and "missing s3" in _one_line(finding)


def test_interface_endpoints_missing_or_pending_fail() -> None:
    expected = pf.expected_endpoints("us-east-1", network_isolation=False)
    assert len(expected) == 1 + len(pf.INTERFACE_ENDPOINT_SERVICES)
    present = [_endpoint("s3", "Gateway")] + [
        _endpoint(s, "Interface") for s in pf.INTERFACE_ENDPOINT_SERVICES.values() if s != "sts"
    ]
    present[-1] = {**present[-1], "State": "pending"}
    finding = pf.endpoints_finding(present, expected, "vpc-1")
    line = _one_line(finding)
    assert not finding.ok and "missing sts" in line and "not available: kms (pending)" in line


# --- quotas -------------------------------------------------------------------------------------
def _quota(name: str, value: float, code: str = "L-12345678") -> dict:
    return {"QuotaName": name, "QuotaCode": code, "Value": value}


def test_quota_names() -> None:
    assert pf.type_quota_name(DEMO) == "ml.m5.xlarge for training job usage"
    spot = pf.Target("ml.m5.xlarge", 2, spot=True)
    assert pf.type_quota_name(spot) == "ml.m5.xlarge for spot training job usage"


def test_quota_at_or_above_the_count_passes_below_fails_with_the_request() -> None:
    name = pf.type_quota_name(DEMO)
    assert pf.quota_finding("instance-quota", name, _quota(name, 2.0), DEMO, "us-east-1").ok
    finding = pf.quota_finding("instance-quota", name, _quota(name, 1.0), DEMO, "eu-west-1")
    line = _one_line(finding)
    assert not finding.ok and "(L-12345678) = 1 < 2 instances" in line
    assert (
        "request-service-quota-increase --service-code sagemaker --quota-code L-12345678"
        " --desired-value 2 --region eu-west-1" in finding.fix
    )


def test_missing_type_quota_means_not_offered() -> None:
    name = pf.type_quota_name(DEMO)
    finding = pf.quota_finding("instance-quota", name, None, DEMO, "ap-south-2")
    assert not finding.ok
    assert "ml.m5.xlarge is not offered for on-demand training in ap-south-2" in finding.detail


def _stubbed(aws: Aws) -> Stubber:
    client = boto3.client("service-quotas", region_name="us-east-1")
    aws._clients["service-quotas"] = client
    return Stubber(client)


def test_quotas_are_found_by_name_across_pages_then_in_the_defaults() -> None:
    aws = Aws(region="us-east-1")
    name = pf.type_quota_name(DEMO)
    with _stubbed(aws) as stub:
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [_quota("something else", 9, "L-00000001")], "NextToken": "page2"},
            {"ServiceCode": "sagemaker"},
        )
        stub.add_response(
            "list_service_quotas",
            {"Quotas": [_quota(pf.TOTAL_INSTANCES, 3, "L-00C91CB5")]},
            {"ServiceCode": "sagemaker", "NextToken": "page2"},
        )
        stub.add_response(  # no applied value for the type: its AWS default
            "list_aws_default_service_quotas",
            {"Quotas": [_quota(name, 1, "L-ABCDEF12")]},
            {"ServiceCode": "sagemaker"},
        )
        per_type, total = pf.quota_checks(aws, DEMO)
        stub.assert_no_pending_responses()
    assert not per_type.ok and "L-ABCDEF12" in per_type.detail
    assert total.ok and "(L-00C91CB5) = 3 >= 2" in total.detail


def test_unreadable_quotas_fail_with_the_permission_to_add() -> None:
    aws = Aws(region="us-east-1")
    with _stubbed(aws) as stub:
        stub.add_client_error("list_service_quotas", "AccessDeniedException", "not allowed")
        findings = pf.quota_checks(aws, DEMO)
    assert [f.ok for f in findings] == [False, False]
    assert all("AccessDeniedException" in _one_line(f) for f in findings)
    assert "servicequotas:ListServiceQuotas" in findings[0].fix


def test_cheap_checks_read_the_stack_and_name_a_missing_permission() -> None:
    aws = Aws(region="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    aws._clients["ec2"] = ec2
    outputs = StackOutputs(
        "S",
        {
            "TrainingSecurityGroupId": SG,
            "PrivateSubnetIds": "subnet-0,subnet-1",
            "JobSettings": json.dumps({"network_isolation": True, "image_uri": CPU_IMAGE}),
        },
    )
    defaults = RunDefaults("torchrun", "ml.m5.xlarge", 2, False, 3600, 0, {})
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_security_groups", "UnauthorizedOperation", "no")
        stub.add_response(
            "describe_subnets",
            {"Subnets": [{**s, "VpcId": "vpc-1"} for s in _subnets(4091, 4091)]},
            {"SubnetIds": ["subnet-0", "subnet-1"]},
        )
        stub.add_response(
            "describe_vpc_endpoints",
            {"VpcEndpoints": [_endpoint("s3", "Gateway")]},
            {"Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]},
        )
        findings = pf.cheap_checks(aws, outputs, defaults, DEMO)
        stub.assert_no_pending_responses()
    assert [(f.check, f.ok) for f in findings] == [
        ("security-group", False),
        ("subnets", True),
        ("vpc-endpoints", True),
        ("backend", True),
        ("image", True),
        ("efa", True),
    ]
    assert "UnauthorizedOperation" in findings[0].detail
    assert findings[0].fix == "allow ec2:DescribeSecurityGroups for this identity"


# --- backend and image --------------------------------------------------------------------------
def test_smddp_only_on_its_instance_types() -> None:
    assert pf.backend_finding("smddp", pf.Target("ml.p4d.24xlarge", 2, False)).ok
    finding = pf.backend_finding("smddp", pf.Target("ml.p5.48xlarge", 2, False))
    line = _one_line(finding)
    assert not finding.ok and "not ml.p5.48xlarge" in line
    assert all(t in finding.fix for t in SMDDP_INSTANCE_TYPES)
    assert "training.backend=torchrun" in finding.fix


def test_other_backends() -> None:
    assert pf.backend_finding("torchrun", DEMO).ok
    finding = pf.backend_finding("none", DEMO)
    assert not finding.ok and "--instance-count 1" in finding.fix


CPU_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-cpu-py313"
GPU_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311"


@pytest.mark.parametrize(
    ("image", "instance_type", "ok"),
    [
        (CPU_IMAGE, "ml.m5.xlarge", True),
        (GPU_IMAGE, "ml.p4d.24xlarge", True),
        (CPU_IMAGE, "ml.g5.xlarge", False),
        (GPU_IMAGE, "ml.c5.2xlarge", False),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:latest", "ml.g5.xlarge", True),
    ],
)
def test_image_flavour_fits_the_instance(image: str, instance_type: str, ok: bool) -> None:
    finding = pf.image_finding(image, instance_type)
    _one_line(finding)
    assert finding.ok is ok
    if not ok:
        assert f"training.instance_type={instance_type}" in finding.fix
