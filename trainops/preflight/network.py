"""The stack's network as a multi-node job needs it, judged from what EC2 Describe calls return:
the security group lets the nodes reach each other (else the job hangs at rendezvous, billed
until MaxRuntime), every subnet has free IPs for the whole job (EFA types take several each),
and the VPC endpoints that isolated subnets reach S3 and AWS APIs through are there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core import config as rules
from trainops.preflight.findings import REDEPLOY, Finding, Target, _plural

#: IP addresses one training instance takes in its subnet: one per network interface SageMaker
#: attaches. EFA types attach one EFA per network card (p4d/p4de: 4; p5, p5e, p5en: up to 32,
#: counted at 32 to be safe); p3dn has one EFA next to its primary interface. Everything else
#: (and any type not listed) takes 1.
IPS_PER_INSTANCE = {"p4d": 4, "p4de": 4, "p5": 32, "p5e": 32, "p5en": 32, "p3dn": 2}
DEFAULT_IPS_PER_INSTANCE = 1
#: Interface endpoints the stack builds when network_isolation is false: the service part of
#: their names (infra/network.py INTERFACE_ENDPOINTS; a unit test keeps the two equal).
INTERFACE_ENDPOINT_SERVICES = {
    "SageMakerApi": "sagemaker.api",
    "EcrApi": "ecr.api",
    "EcrDocker": "ecr.dkr",
    "Logs": "logs",
    "Monitoring": "monitoring",
    "Sts": "sts",
    "Kms": "kms",
}


# --- security group -----------------------------------------------------------------------------
def _all_traffic_with(permissions: Iterable[Mapping[str, Any]], group_id: str) -> bool:
    return any(
        p.get("IpProtocol") == "-1"
        and any(pair.get("GroupId") == group_id for pair in p.get("UserIdGroupPairs", []))
        for p in permissions
    )


def _all_traffic_anywhere(permissions: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        p.get("IpProtocol") == "-1"
        and any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
        for p in permissions
    )


def security_group_finding(group: Mapping[str, Any]) -> Finding:
    """All traffic (protocol -1: NCCL/EFA need every protocol and port) from and to itself.

    Egress to itself also holds through an all-traffic rule to 0.0.0.0/0: CloudFormation keeps
    that default rule when, as here, every egress rule is its own resource.
    """
    group_id = group["GroupId"]
    missing = []
    if not _all_traffic_with(group.get("IpPermissions", []), group_id):
        missing.append("from")
    egress = group.get("IpPermissionsEgress", [])
    if not (_all_traffic_with(egress, group_id) or _all_traffic_anywhere(egress)):
        missing.append("to")
    if not missing:
        how = "" if _all_traffic_with(egress, group_id) else " (to: its all-traffic 0.0.0.0/0 rule)"
        return Finding(
            "security-group", True, f"{group_id} allows all traffic from and to itself{how}"
        )
    rules_fix = " and ".join(
        f"aws ec2 authorize-security-group-{'ingress' if way == 'from' else 'egress'} --group-id "
        f"{group_id} --ip-permissions IpProtocol=-1,UserIdGroupPairs=[{{GroupId={group_id}}}]"
        for way in missing
    )
    return Finding(
        "security-group",
        False,
        f"{group_id} does not allow all traffic {' or '.join(missing)} itself: the nodes of a"
        " multi-node job cannot reach each other and the job hangs until MaxRuntime",
        f"{REDEPLOY} or re-add the rule: {rules_fix}",
    )


# --- subnets ------------------------------------------------------------------------------------
def ips_per_instance(instance_type: str) -> int:
    return IPS_PER_INSTANCE.get(rules.instance_family(instance_type), DEFAULT_IPS_PER_INSTANCE)


def subnets_finding(subnets: Sequence[Mapping[str, Any]], target: Target) -> Finding:
    """Every subnet must hold the whole job: SageMaker picks the subnet, not the operator."""
    each = ips_per_instance(target.instance_type)
    needed = each * target.instance_count
    job = f"{target.instance_count} x {target.instance_type}, {_plural(each, 'IP')} each"
    free = {s["SubnetId"]: int(s["AvailableIpAddressCount"]) for s in subnets}
    shown = ", ".join(f"{sid} {count} free" for sid, count in free.items())
    short = [sid for sid, count in free.items() if count < needed]
    if not short:
        return Finding("subnets", True, f"{shown}; the job needs {needed} ({job})")
    most = min(free.values()) // each
    return Finding(
        "subnets",
        False,
        f"{shown}; the job needs {needed} ({job}) in whichever subnet SageMaker picks",
        f"free addresses in {', '.join(short)} (other network interfaces hold them), run at most"
        f" {_plural(most, 'instance')} (--instance-count), or redeploy with larger subnets"
        " (training.vpc_cidr in cdk.json, SUBNET_PREFIX in core/config.py)",
    )


# --- VPC endpoints ------------------------------------------------------------------------------
def expected_endpoints(region: str, network_isolation: bool) -> dict[str, str]:
    """Service name -> endpoint type of the endpoints infra/network.py builds."""
    expected = {f"com.amazonaws.{region}.s3": "Gateway"}
    if not network_isolation:
        for service in INTERFACE_ENDPOINT_SERVICES.values():
            expected[f"com.amazonaws.{region}.{service}"] = "Interface"
    return expected


def _label(service_name: str) -> str:
    """`com.amazonaws.<region>.sagemaker.api` -> `sagemaker.api`."""
    return service_name.split(".", 3)[-1]


def endpoints_finding(
    endpoints: Sequence[Mapping[str, Any]], expected: Mapping[str, str], vpc_id: str
) -> Finding:
    states = {
        e["ServiceName"]: str(e.get("State", "")).lower()
        for e in endpoints
        if e.get("VpcEndpointType") == expected.get(e.get("ServiceName"))
    }
    missing = [_label(name) for name in expected if name not in states]
    unavailable = [
        f"{_label(name)} ({states[name]})"
        for name in expected
        if name in states and states[name] != "available"
    ]
    if not missing and not unavailable:
        listed = ", ".join(f"{_label(n)} {expected[n].lower()}" for n in expected)
        return Finding("vpc-endpoints", True, f"{vpc_id}: {listed} available")
    problems = [f"missing {', '.join(missing)}"] if missing else []
    if unavailable:
        problems.append(f"not available: {', '.join(unavailable)}")
    return Finding(
        "vpc-endpoints",
        False,
        f"{vpc_id}: {'; '.join(problems)} (jobs in isolated subnets reach S3 and AWS APIs only"
        " through them)",
        REDEPLOY,
    )
