"""`trainops preflight` and `start`'s gate against the deployed stack on the embedded AWS.

The stack passes as deployed. Each broken precondition is set up the way it happens in an
account (a rule revoked through the EC2 API, a network interface holding the subnet's addresses,
a quota lowered in the emulator's Service Quotas table), fails with exactly one line, and is
undone afterwards: every e2e test shares this stack and moto's process-wide backends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from core import outputs as names
from localaws import service_quotas
from trainops import preflight, runs

from .conftest import E2eStack, run_cli, valid_operations

pytestmark = [pytest.mark.slow]

CHECKS = [
    "instance-quota",
    "total-quota",
    "security-group",
    "subnets",
    "vpc-endpoints",
    "backend",
    "image",
    "efa",
]
M5 = "ml.m5.xlarge"


def _findings(out: str) -> dict[str, str]:
    """check -> its line, for the finding lines of `preflight`'s text output."""
    lines = out.splitlines()
    assert lines[-1].startswith("preflight "), out
    found = {line.split()[0]: line for line in lines[:-1]}
    assert list(found) == CHECKS, out
    return found


def _failed(out: str) -> dict[str, str]:
    return {check: line for check, line in _findings(out).items() if line.split()[1] == "FAIL"}


# --- how each precondition breaks, and is restored ----------------------------------------------
def _group(stack: E2eStack) -> dict[str, Any]:
    group_id = stack.outputs.values[names.SECURITY_GROUP_ID]
    (group,) = stack.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return group


def _rules(group: dict[str, Any]) -> list[str]:
    return sorted(
        json.dumps([key, p], sort_keys=True)
        for key in ("IpPermissions", "IpPermissionsEgress")
        for p in group[key]
    )


@contextmanager
def without_all_traffic(stack: E2eStack, direction: str) -> Iterator[None]:
    """The group's all-traffic rules of one direction revoked (as a hand edit in the console
    would), then authorized again exactly as they were."""
    ec2 = stack.client("ec2")
    before = _group(stack)
    key = "IpPermissions" if direction == "ingress" else "IpPermissionsEgress"
    permissions = [p for p in before[key] if p["IpProtocol"] == "-1"]
    assert permissions, f"the deployed group has no all-traffic {direction} rule"
    revoke = getattr(ec2, f"revoke_security_group_{direction}")
    authorize = getattr(ec2, f"authorize_security_group_{direction}")
    revoke(GroupId=before["GroupId"], IpPermissions=permissions)
    try:
        assert _rules(_group(stack)) != _rules(before)
        yield
    finally:
        authorize(GroupId=before["GroupId"], IpPermissions=permissions)
        assert _rules(_group(stack)) == _rules(before)


def _free_ips(stack: E2eStack, subnet_id: str) -> int:
    (subnet,) = stack.client("ec2").describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    return subnet["AvailableIpAddressCount"]


@contextmanager
def subnet_with_free_ips(stack: E2eStack, free: int) -> Iterator[str]:
    """The stack's first subnet with `free` addresses left: one network interface holds the
    rest (another workload in the VPC); deleted afterwards."""
    ec2 = stack.client("ec2")
    subnet_id = stack.outputs.values[names.SUBNET_IDS].split(",")[0]
    before = _free_ips(stack, subnet_id)
    eni = ec2.create_network_interface(
        SubnetId=subnet_id,
        SecondaryPrivateIpAddressCount=before - free - 1,
        Description="preflight e2e: holds the subnet's addresses",
    )["NetworkInterface"]["NetworkInterfaceId"]
    try:
        assert _free_ips(stack, subnet_id) == free
        yield subnet_id
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
        assert _free_ips(stack, subnet_id) == before


@contextmanager
def quota(stack: E2eStack, name: str, value: float | None) -> Iterator[None]:
    """One SageMaker quota's applied value in the emulator (None: no such quota)."""
    previous = service_quotas.set_quota(name, value, region=stack.emulator.region)
    try:
        yield
    finally:
        service_quotas.set_quota(name, previous, region=stack.emulator.region)


# --- tests --------------------------------------------------------------------------------------
@pytest.mark.timeout(300)  # the first test of the package also synthesizes and deploys
def test_preflight_passes_on_the_deployed_demo_stack(
    stack: E2eStack,
    operator_calls: list[tuple[str, str, dict]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(stack, capsys, "preflight")
    assert code == 0, out + err
    found = _findings(out)
    assert _failed(out) == {}
    assert stack.outputs.values[names.SECURITY_GROUP_ID] in found["security-group"]
    for subnet_id in stack.outputs.values[names.SUBNET_IDS].split(","):
        assert subnet_id in found["subnets"]
    assert "needs 2 (2 x ml.m5.xlarge" in found["subnets"]  # the stack's defaults
    assert "ml.m5.xlarge has no EFA: NCCL uses TCP sockets" in found["efa"]
    assert "L-00C91CB5" in found["total-quota"]
    assert out.splitlines()[-1].endswith("all checks passed")

    code, out, _ = run_cli(stack, capsys, "preflight", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["ok"] is True
    assert (summary["instance_type"], summary["instance_count"]) == (M5, 2)
    assert [f["check"] for f in summary["findings"]] == CHECKS

    sent = valid_operations(operator_calls)
    assert {
        ("service-quotas", "ListServiceQuotas"),
        ("ec2", "DescribeSecurityGroups"),
        ("ec2", "DescribeSubnets"),
        ("ec2", "DescribeVpcEndpoints"),
    } <= sent, sorted(sent)


def _case_ingress(stack: E2eStack) -> AbstractContextManager[Any]:
    return without_all_traffic(stack, "ingress")


def _case_egress(stack: E2eStack) -> AbstractContextManager[Any]:
    return without_all_traffic(stack, "egress")


def _case_quota(stack: E2eStack) -> AbstractContextManager[Any]:
    return quota(stack, preflight.on_demand_quota_name(M5), 1)


def _case_spot_quota(stack: E2eStack) -> AbstractContextManager[Any]:
    return quota(stack, preflight.spot_quota_name(M5), 1)


def _case_total_quota(stack: E2eStack) -> AbstractContextManager[Any]:
    return quota(stack, preflight.TOTAL_INSTANCES, 1)


def _case_not_offered(stack: E2eStack) -> AbstractContextManager[Any]:
    return quota(stack, preflight.on_demand_quota_name(M5), None)


def _case_small_subnet(stack: E2eStack) -> AbstractContextManager[Any]:
    return subnet_with_free_ips(stack, 1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("case", "argv", "check", "says"),
    [
        (_case_ingress, [], "security-group", "does not allow all traffic from itself"),
        (_case_egress, [], "security-group", "does not allow all traffic to itself"),
        (_case_quota, [], "instance-quota", "ml.m5.xlarge for training job usage"),
        (_case_spot_quota, ["--spot"], "instance-quota", "for spot training job usage"),
        (_case_total_quota, [], "total-quota", "= 1 < 2 instances"),
        (_case_not_offered, [], "instance-quota", "is not offered for on-demand training"),
        (_case_small_subnet, [], "subnets", " 1 free"),
    ],
    ids=["ingress", "egress", "quota", "spot-quota", "total-quota", "not-offered", "subnet"],
)
def test_a_broken_precondition_fails_with_one_line(
    stack: E2eStack,
    capsys: pytest.CaptureFixture[str],
    case: Callable[[E2eStack], AbstractContextManager[Any]],
    argv: list[str],
    check: str,
    says: str,
) -> None:
    with case(stack):
        code, out, _ = run_cli(stack, capsys, "preflight", *argv)
    failed = _failed(out)
    assert code == 1, out
    assert list(failed) == [check], out
    assert says in failed[check] and "; fix: " in failed[check]
    assert out.splitlines()[-1].endswith(f"1 of {len(CHECKS)} checks failed")
    # and the stack is as it was
    code, out, _ = run_cli(stack, capsys, "preflight", *argv)
    assert code == 0 and _failed(out) == {}, out


@pytest.mark.timeout(60)
def test_efa_instances_need_more_free_addresses(
    stack: E2eStack, capsys: pytest.CaptureFixture[str]
) -> None:
    with subnet_with_free_ips(stack, 6) as subnet_id:
        _, out, _ = run_cli(stack, capsys, "preflight")
        assert "subnets" not in _failed(out), out  # 2 x ml.m5.xlarge: 2 addresses
        p4d = ["--instance-type", "ml.p4d.24xlarge", "--instance-count", "2"]
        code, out, _ = run_cli(stack, capsys, "preflight", *p4d)
    line = _failed(out)["subnets"]
    assert code == 1
    assert f"{subnet_id} 6 free" in line and "needs 8 (2 x ml.p4d.24xlarge, 4 IPs each)" in line
    assert "at most 1 instance " in line


@pytest.mark.timeout(60)
def test_start_refuses_when_a_cheap_check_fails(
    stack: E2eStack,
    operator_calls: list[tuple[str, str, dict]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sfn = stack.client("stepfunctions")

    def executions() -> int:
        return len(sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"])

    before, requests = executions(), len(stack.emulator.sagemaker.requests)
    started: list[dict[str, Any]] = []

    def start_run(aws, state_machine_arn, data, **kwargs) -> str:  # --skip-preflight's proof
        started.append(data)
        return f"{state_machine_arn}:not-started".replace(":stateMachine:", ":execution:")

    with without_all_traffic(stack, "ingress"):
        code, out, err = run_cli(stack, capsys, "start", "--hp", "epochs=1")
        sent = [operation for _, operation, _ in operator_calls]
        del operator_calls[:]
        monkeypatch.setattr(runs, "start_run", start_run)
        skipped = run_cli(stack, capsys, "start", "--hp", "epochs=1", "--skip-preflight")

    assert code == 2 and out == ""
    *lines, last = err.splitlines()
    (line,) = [line for line in lines if " FAIL " in line]
    assert line.startswith("security-group ") and "; fix: " in line
    assert last.startswith("error: preflight: 1 check failed, nothing started")
    assert "DescribeSecurityGroups" in sent
    assert "StartExecution" not in sent and "ListServiceQuotas" not in sent  # quotas: not cheap
    assert executions() == before and len(stack.emulator.sagemaker.requests) == requests

    code, out, err = skipped
    assert code == 0 and out.startswith("started "), err
    assert started == [{"trigger": "operator", "hyperparameters": {"epochs": "1"}}]
    assert not any(service == "ec2" for service, _, _ in operator_calls)
    assert executions() == before
