"""The training quotas a run needs, looked up BY NAME with ListServiceQuotas: quota codes differ
between regions and accounts; no per-type quota = the type is not offered for training there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trainops.aws import Aws
from trainops.preflight.findings import Finding, Target, _error, _number, _plural

QUOTA_SERVICE = "sagemaker"
TOTAL_INSTANCES = "Number of instances across all training jobs"


def on_demand_quota_name(instance_type: str) -> str:
    return f"{instance_type} for training job usage"


def spot_quota_name(instance_type: str) -> str:
    return f"{instance_type} for spot training job usage"


def type_quota_name(target: Target) -> str:
    return (spot_quota_name if target.spot else on_demand_quota_name)(target.instance_type)


def _increase(code: str, count: int, region: str) -> str:
    return (
        "request an increase in the Service Quotas console or `aws service-quotas "
        f"request-service-quota-increase --service-code {QUOTA_SERVICE} --quota-code {code} "
        f"--desired-value {count} --region {region}`"
    )


def quota_finding(
    check: str, name: str, quota: Mapping[str, Any] | None, target: Target, region: str
) -> Finding:
    """Compare one quota (a ServiceQuota structure, None when absent) with the instance count."""
    if quota is None:
        if name == TOTAL_INSTANCES:
            return Finding(
                check,
                False,
                f"no {QUOTA_SERVICE} quota named {name!r} in {region}",
                "check the region and the Service Quotas console (service SageMaker)",
            )
        return Finding(
            check,
            False,
            f"{target.instance_type} is not offered for {target.market} training in {region}"
            f" (no quota named {name!r})",
            "choose an instance type offered there (Service Quotas console, service SageMaker,"
            " 'for training job usage') or another region",
        )
    value, code = float(quota["Value"]), quota["QuotaCode"]
    shown = f"{name} ({code}) = {_number(value)}"
    if value >= target.instance_count:
        return Finding(check, True, f"{shown} >= {target.instance_count}")
    return Finding(
        check,
        False,
        f"{shown} < {_plural(target.instance_count, 'instance')}",
        _increase(code, target.instance_count, region),
    )


def _quotas_by_name(client: Any, operation: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """ServiceQuota structures of `wanted` names, every page read (stops once all are found)."""
    found: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator(operation).paginate(ServiceCode=QUOTA_SERVICE):
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") in wanted:
                found[quota["QuotaName"]] = quota
        if wanted <= set(found):
            break
    return found


def quota_checks(aws: Aws, target: Target) -> list[Finding]:
    """The per-type and total training quotas, by name: applied values (ListServiceQuotas),
    then AWS defaults for names that have no applied value (ListAWSDefaultServiceQuotas)."""
    checks = {"instance-quota": type_quota_name(target), "total-quota": TOTAL_INSTANCES}
    wanted = set(checks.values())
    client = aws.client("service-quotas")
    try:
        found = _quotas_by_name(client, "list_service_quotas", wanted)
        if not wanted <= set(found):
            defaults = _quotas_by_name(client, "list_aws_default_service_quotas", wanted)
            found = {**defaults, **found}
    except (ClientError, BotoCoreError) as exc:
        return [
            Finding(
                check,
                False,
                f"could not read the {QUOTA_SERVICE} quotas: {_error(exc)}",
                "allow servicequotas:ListServiceQuotas and ListAWSDefaultServiceQuotas",
            )
            for check in checks
        ]
    return [
        quota_finding(check, name, found.get(name), target, aws.region)
        for check, name in checks.items()
    ]
