"""The checks against the deployed stack: reads its outputs, makes the Describe and quota calls
and turns each answer (or failed call) into a finding. `cheap_checks` (everything but the quota
calls) is also `trainops start`'s gate, before StartExecution.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core import outputs as names
from trainops.aws import Aws, StackOutputs
from trainops.preflight.compatibility import backend_finding, image_finding
from trainops.preflight.efa_settings import efa_finding
from trainops.preflight.findings import REDEPLOY, Finding, Target, _error, _plural
from trainops.preflight.network import (
    endpoints_finding,
    expected_endpoints,
    security_group_finding,
    subnets_finding,
)
from trainops.preflight.quotas import quota_checks
from trainops.run_input import RunDefaults


def _unread(check: str, subject: str, exc: Exception, permission: str) -> Finding:
    """A Describe call that failed: missing permission, or a resource that is gone."""
    error = _error(exc)
    denied = "AccessDenied" in error or "Unauthorized" in error
    fix = f"allow {permission} for this identity" if denied else REDEPLOY
    return Finding(check, False, f"{subject}: {error}", fix)


def _missing_output(check: str, key: str, outputs: StackOutputs) -> Finding:
    return Finding(
        check,
        False,
        f"stack {outputs.stack_name} has no output {key!r}",
        f"{REDEPLOY} with this version",
    )


def _job_settings(outputs: StackOutputs) -> dict[str, Any]:
    raw = outputs.values.get(names.JOB_SETTINGS)
    return json.loads(raw) if raw else {}


def _network_checks(aws: Aws, outputs: StackOutputs, target: Target) -> list[Finding]:
    ec2 = aws.client("ec2")
    found: list[Finding] = []
    group_id = outputs.values.get(names.SECURITY_GROUP_ID)
    if not group_id:
        found.append(_missing_output("security-group", names.SECURITY_GROUP_ID, outputs))
    else:
        try:
            (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
            found.append(security_group_finding(group))
        except (ClientError, BotoCoreError) as exc:
            found.append(_unread("security-group", group_id, exc, "ec2:DescribeSecurityGroups"))
    subnet_ids = [s for s in outputs.values.get(names.SUBNET_IDS, "").split(",") if s]
    if not subnet_ids:
        found.append(_missing_output("subnets", names.SUBNET_IDS, outputs))
        found.append(_missing_output("vpc-endpoints", names.SUBNET_IDS, outputs))
        return found
    try:
        subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    except (ClientError, BotoCoreError) as exc:
        failed = _unread("subnets", ", ".join(subnet_ids), exc, "ec2:DescribeSubnets")
        return [*found, failed, Finding("vpc-endpoints", False, "not checked", "fix subnets first")]
    found.append(subnets_finding(subnets, target))
    vpc_id = subnets[0]["VpcId"]
    isolated = bool(_job_settings(outputs).get("network_isolation", True))
    try:
        endpoints = [
            endpoint
            for page in ec2.get_paginator("describe_vpc_endpoints").paginate(
                Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
            )
            for endpoint in page["VpcEndpoints"]
        ]
        found.append(endpoints_finding(endpoints, expected_endpoints(aws.region, isolated), vpc_id))
    except (ClientError, BotoCoreError) as exc:
        found.append(_unread("vpc-endpoints", vpc_id, exc, "ec2:DescribeVpcEndpoints"))
    return found


def cheap_checks(
    aws: Aws, outputs: StackOutputs, defaults: RunDefaults, target: Target
) -> list[Finding]:
    """Every check but the quotas: three EC2 Describe calls and local rules (`trainops start`
    runs these)."""
    return [
        *_network_checks(aws, outputs, target),
        backend_finding(defaults.backend, target),
        image_finding(_job_settings(outputs).get("image_uri"), target.instance_type),
        efa_finding(_job_settings(outputs), target),
    ]


def all_checks(
    aws: Aws, outputs: StackOutputs, defaults: RunDefaults, target: Target
) -> list[Finding]:
    return [*quota_checks(aws, target), *cheap_checks(aws, outputs, defaults, target)]


def start_refused(
    aws: Aws, outputs: StackOutputs, defaults: RunDefaults, execution_input: Mapping[str, Any]
) -> bool:
    """`trainops start`'s gate: the cheap checks for this run; failures go to stderr, one line
    each, and refuse the start."""
    target = Target(
        execution_input.get("instance_type", defaults.instance_type),
        execution_input.get("instance_count", defaults.instance_count),
        execution_input.get("spot", defaults.spot),
    )
    failed = [f for f in cheap_checks(aws, outputs, defaults, target) if not f.ok]
    for finding in failed:
        print(finding.line(), file=sys.stderr)
    if failed:
        print(
            f"error: preflight: {_plural(len(failed), 'check')} failed, nothing started;"
            " fix it or pass --skip-preflight",
            file=sys.stderr,
        )
    return bool(failed)
