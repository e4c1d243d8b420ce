"""`trainops preflight`: what would stop a run, found before it costs a paid second.

Checks the deployed stack and the account for one run (instance type, count, spot); each finding
is one line: check, ok/FAIL and, for a failure, the fix. What is where:

- findings: Target (the run), Finding (one check's outcome and its line), REDEPLOY;
- quotas: the per-type and total training quotas, by name (ListServiceQuotas);
- network: security group to itself, free subnet IPs (EFA types take several), VPC endpoints;
- compatibility: backend (SMDDP instance types) and image (CPU vs GPU) for the instance type;
- efa_settings: the EFA settings the job carries where the image's toolkit misses the type;
- checks: all of these against the deployed stack; `cheap_checks` (no quota calls) is also
  `trainops start`'s gate (`start_refused`);
- cli: the `preflight` command.
"""

from trainops.preflight.checks import all_checks, cheap_checks, start_refused
from trainops.preflight.cli import cmd_preflight, register
from trainops.preflight.compatibility import backend_finding, image_finding
from trainops.preflight.efa_settings import efa_finding
from trainops.preflight.findings import REDEPLOY, Finding, Target
from trainops.preflight.network import (
    DEFAULT_IPS_PER_INSTANCE,
    INTERFACE_ENDPOINT_SERVICES,
    IPS_PER_INSTANCE,
    endpoints_finding,
    expected_endpoints,
    ips_per_instance,
    security_group_finding,
    subnets_finding,
)
from trainops.preflight.quotas import (
    QUOTA_SERVICE,
    TOTAL_INSTANCES,
    on_demand_quota_name,
    quota_checks,
    quota_finding,
    spot_quota_name,
    type_quota_name,
)

__all__ = [
    "DEFAULT_IPS_PER_INSTANCE",
    "INTERFACE_ENDPOINT_SERVICES",
    "IPS_PER_INSTANCE",
    "QUOTA_SERVICE",
    "REDEPLOY",
    "TOTAL_INSTANCES",
    "Finding",
    "Target",
    "all_checks",
    "backend_finding",
    "cheap_checks",
    "cmd_preflight",
    "efa_finding",
    "endpoints_finding",
    "expected_endpoints",
    "image_finding",
    "ips_per_instance",
    "on_demand_quota_name",
    "quota_checks",
    "quota_finding",
    "register",
    "security_group_finding",
    "spot_quota_name",
    "start_refused",
    "subnets_finding",
    "type_quota_name",
]
