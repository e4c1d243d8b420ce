"""`trainops preflight`: what would stop a run, found before it costs a paid second.

Checks the deployed stack and the account for one run (instance type, count, spot):

- quotas: the per-type training quota (on-demand or spot) and "Number of instances across all
  training jobs", looked up BY NAME with ListServiceQuotas (codes differ between regions and
  accounts); no per-type quota = the type is not offered for training in the region;
- the training security group still allows all traffic from and to itself (without it a
  multi-node job hangs at rendezvous, billed until MaxRuntime);
- the stack's subnets have free IPs for the job (EFA instance types take several each);
- the stack's VPC endpoints exist and are available;
- backend and image fit the instance type (SMDDP instance types; CPU vs GPU image).

Each finding is one line: check, ok/FAIL and, for a failure, the fix. `cheap_checks` (everything
but the quota calls) also runs in `trainops start`, before StartExecution.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra import config as rules
from infra import outputs as names
from infra.config import ConfigError
from infra.execution_input import SMDDP_INSTANCE_TYPES
from trainops.aws import Aws, StackOutputs, stack_outputs
from trainops.run_input import RunDefaults

QUOTA_SERVICE = "sagemaker"
TOTAL_INSTANCES = "Number of instances across all training jobs"
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
REDEPLOY = "redeploy the stack (npx cdk deploy)"


@dataclass(frozen=True)
class Target:
    """The run being checked."""

    instance_type: str
    instance_count: int
    spot: bool

    @property
    def market(self) -> str:
        return "spot" if self.spot else "on-demand"


@dataclass(frozen=True)
class Finding:
    """One check's outcome; `fix` says what to do when it failed."""

    check: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.check:<15} {'ok' if self.ok else 'FAIL':<4}  {self.detail}"
        return text if self.ok else f"{text}; fix: {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


# --- quotas -------------------------------------------------------------------------------------
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
        " (training.vpc_cidr in cdk.json, SUBNET_PREFIX in infra/config.py)",
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


# --- backend and image --------------------------------------------------------------------------
def backend_finding(backend: str, target: Target) -> Finding:
    """The stack's backend on this instance type (SMDDP runs on a few types only)."""
    try:
        rules.resolve_backend(backend, target.instance_type, target.instance_count)
    except ConfigError as exc:
        if backend == "smddp":
            fix = (
                f"use one of {', '.join(SMDDP_INSTANCE_TYPES)} or redeploy with"
                " -c training.backend=torchrun"
            )
        else:
            fix = "use --instance-count 1 or redeploy with -c training.backend=torchrun"
        return Finding("backend", False, str(exc), fix)
    detail = f"{backend} runs on {target.instance_type}"
    if backend == "smddp":
        detail += f" (SMDDP: {', '.join(SMDDP_INSTANCE_TYPES)})"
    return Finding("backend", True, detail)


_DLC_PROCESSOR = re.compile(r":[0-9.]+-(cpu|gpu)-")


def image_finding(image_uri: str | None, instance_type: str) -> Finding:
    """The stack's image is built for CPU or GPU instances (picked at synth for its type)."""
    match = _DLC_PROCESSOR.search(image_uri or "")
    if not match:
        return Finding("image", True, f"not a DLC tag, not checked: {image_uri or 'unknown'}")
    processor = match.group(1)
    gpus = rules.gpus_per_instance(instance_type)
    tag = image_uri.rsplit("/", 1)[-1]
    on = f"{instance_type} ({_plural(gpus, 'GPU')})"
    if (processor == "gpu") == (gpus > 0):
        return Finding("image", True, f"{tag} fits {on}")
    why = "its GPUs would sit idle, billed" if gpus else "the GPU image needs a GPU"
    return Finding(
        "image",
        False,
        f"{tag} is a {processor.upper()} image; {on}: {why}",
        f"redeploy with -c training.instance_type={instance_type} (the stack picks the image for"
        f" its instance type) or use a {'GPU' if processor == 'gpu' else 'CPU'} instance type",
    )


# --- against the deployed stack -----------------------------------------------------------------
def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)


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


# --- CLI ----------------------------------------------------------------------------------------
def cmd_preflight(args: argparse.Namespace) -> int:
    if args.instance_type is not None:
        rules.validate_instance_type(args.instance_type)
    if args.instance_count is not None:
        rules.validate_instance_count(args.instance_count)
    aws = Aws(region=args.region, endpoint_url=args.endpoint_url)
    outputs = stack_outputs(aws, args.stack_name)
    defaults = RunDefaults.of_stack(outputs)
    target = Target(
        args.instance_type or defaults.instance_type,
        args.instance_count if args.instance_count is not None else defaults.instance_count,
        defaults.spot if args.spot is None else args.spot,
    )
    findings = all_checks(aws, outputs, defaults, target)
    failed = sum(not f.ok for f in findings)
    if args.json:
        summary = {
            "stack_name": args.stack_name,
            "region": aws.region,
            **asdict(target),
            "ok": not failed,
            "findings": [f.to_json() for f in findings],
        }
        print(json.dumps(summary, sort_keys=True))
    else:
        for finding in findings:
            print(finding.line())
        run = f"{target.instance_count} x {target.instance_type} {target.market}"
        verdict = f"{failed} of {len(findings)} checks failed" if failed else "all checks passed"
        print(f"preflight {args.stack_name} ({aws.region}, {run}): {verdict}")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    # trainops.commands imports this module (start's gate): its helpers are imported here.
    from trainops.commands import _common, _guarded

    p = sub.add_parser(
        "preflight", help="check quotas, network and compatibility before a run costs anything"
    )
    _common(p)
    p.add_argument("--instance-type", help="default: the deployed stack's")
    p.add_argument("--instance-count", type=int, help="default: the deployed stack's")
    p.add_argument(
        "--spot", action=argparse.BooleanOptionalAction, default=None, help="default: the stack's"
    )
    p.set_defaults(handler=_guarded(cmd_preflight))
