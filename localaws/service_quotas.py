"""Service Quotas for SageMaker training in the emulator (moto 5.2.5 knows only `vpc`).

`trainops preflight` looks the training quotas up by name with ListServiceQuotas, as it must on
AWS where the codes differ between regions and accounts. moto has no ListServiceQuotas at all
and no `sagemaker` table, so this module adds both:

- ListServiceQuotas (applied values, paginated, QuotaCode filter) for every service code;
  `sagemaker` answers from the table below, other codes from moto's defaults (`vpc`).
- ListAWSDefaultServiceQuotas and GetServiceQuota also answer for `sagemaker` (defaults and
  applied values respectively).

The table: one on-demand and one spot quota per instance type botocore's SageMaker model
accepts for training, plus "Number of instances across all training jobs" (L-00C91CB5, the
published code). Every other code is an EMULATOR VALUE: `L-` + 8 hex digits of the name's
MD5, shaped like AWS's but not AWS's. Default values are emulator values too, chosen like a
fresh account's: CPU types 4, G-family GPU types 2, P-family GPU and Trainium/Inferentia types
0 (those need an increase on AWS as well), 4 instances across all training jobs; the demo stack
(2 x ml.m5.xlarge) passes. Tests change a value with `set_quota(name, value)` (None: the
quota does not exist, i.e. the instance type is not offered in the region); a moto reset
(`/moto-api/reset`) restores the defaults.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import Any

import botocore.session
from moto.core.exceptions import JsonRESTError
from moto.servicequotas.exceptions import NoSuchResource
from moto.servicequotas.models import ServiceQuotasBackend, servicequotas_backends
from moto.servicequotas.responses import ServiceQuotasResponse

from localaws.api_model import request_problems

SERVICE_CODE = "sagemaker"
SERVICE_NAME = "Amazon SageMaker"
#: Published name and code (docs/facts.md, "Service Quotas for SageMaker training").
TOTAL_INSTANCES = "Number of instances across all training jobs"
TOTAL_INSTANCES_CODE = "L-00C91CB5"
TOTAL_INSTANCES_DEFAULT = 4.0
#: ListServiceQuotas' MaxResults ceiling (botocore model), used when the request names none.
PAGE_SIZE = 100
_DEFAULT_ACCOUNT = "123456789012"  # moto's default account (localaws.server.ACCOUNT_ID)


def on_demand_name(instance_type: str) -> str:
    return f"{instance_type} for training job usage"


def spot_name(instance_type: str) -> str:
    return f"{instance_type} for spot training job usage"


def emulator_code(name: str) -> str:
    """A stable made-up code shaped like AWS's (`L-` + 8 upper-case hex digits)."""
    if name == TOTAL_INSTANCES:
        return TOTAL_INSTANCES_CODE
    return "L-" + hashlib.md5(name.encode()).hexdigest()[:8].upper()


def _default_value(instance_type: str) -> float:
    family = instance_type.split(".")[1]
    if family.startswith(("p", "trn", "inf")):
        return 0.0
    if family.startswith("g"):
        return 2.0
    return 4.0


@cache
def default_values() -> dict[str, float]:
    """Quota name -> default value, in ListServiceQuotas order."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    values = {TOTAL_INSTANCES: TOTAL_INSTANCES_DEFAULT}
    for instance_type in model.shape_for("TrainingInstanceType").enum:
        values[on_demand_name(instance_type)] = _default_value(instance_type)
        values[spot_name(instance_type)] = _default_value(instance_type)
    return values


def _applied(backend: ServiceQuotasBackend) -> dict[str, float]:
    """The backend's applied values (a moto reset recreates the backend: back to defaults)."""
    if not hasattr(backend, "_training_quotas"):
        backend._training_quotas = dict(default_values())  # type: ignore[attr-defined]
    return backend._training_quotas  # type: ignore[attr-defined]


def set_quota(
    name: str, value: float | None, *, region: str = "us-east-1", account_id: str = _DEFAULT_ACCOUNT
) -> float | None:
    """Set a SageMaker quota's applied value; returns the previous one. None removes the quota
    (applied value and default: the instance type is not offered in the region).

    A test restores what it changed with the returned value: `set_quota(name, previous)`.
    """
    applied = _applied(servicequotas_backends[account_id][region])
    previous = applied.get(name)
    if value is None:
        applied.pop(name, None)
    else:
        applied[name] = float(value)
    return previous


def _quota(backend: ServiceQuotasBackend, name: str, value: float) -> dict[str, Any]:
    """One ServiceQuota structure as AWS returns it for SageMaker."""
    code = emulator_code(name)
    return {
        "ServiceCode": SERVICE_CODE,
        "ServiceName": SERVICE_NAME,
        "QuotaArn": (
            f"arn:aws:servicequotas:{backend.region_name}:{backend.account_id}:"
            f"{SERVICE_CODE}/{code}"
        ),
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }


def _training_quotas(backend: ServiceQuotasBackend, *, defaults: bool) -> list[dict[str, Any]]:
    """Applied values, or the defaults of the quotas that exist (a removed one has neither)."""
    applied = _applied(backend)
    if defaults:
        values = {name: value for name, value in default_values().items() if name in applied}
    else:
        values = applied
    return [_quota(backend, name, value) for name, value in values.items()]


def _page(quotas: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """A page of `quotas` and the token of the next one (base64 of the offset)."""
    token = params.get("NextToken")
    try:
        start = int(base64.b64decode(token).decode()) if token else 0
    except ValueError:
        raise JsonRESTError("InvalidPaginationTokenException", f"Invalid token {token!r}") from None
    size = int(params.get("MaxResults") or PAGE_SIZE)
    body: dict[str, Any] = {"Quotas": quotas[start : start + size]}
    if start + size < len(quotas):
        body["NextToken"] = base64.b64encode(str(start + size).encode()).decode()
    return body


def _checked_params(response: ServiceQuotasResponse, operation: str) -> dict[str, Any]:
    """The JSON body, refused like AWS does when it breaks the API model."""
    params = json.loads(response.body or "{}")
    problems = request_problems("service-quotas", operation, params)
    if problems:
        raise JsonRESTError("IllegalArgumentException", "; ".join(problems))
    return params


def _list_service_quotas(self: ServiceQuotasResponse) -> str:
    params = _checked_params(self, "ListServiceQuotas")
    code = params["ServiceCode"]
    if code == SERVICE_CODE:
        quotas = _training_quotas(self.backend, defaults=False)
    else:  # moto's own tables (vpc); NoSuchResource for the rest
        quotas = self.backend.list_aws_default_service_quotas(code)
    if params.get("QuotaCode"):
        quotas = [q for q in quotas if q["QuotaCode"] == params["QuotaCode"]]
    return json.dumps(_page(quotas, params))


def _list_aws_default_service_quotas(self: ServiceQuotasResponse) -> str:
    params = _checked_params(self, "ListAWSDefaultServiceQuotas")
    code = params["ServiceCode"]
    if code == SERVICE_CODE:
        quotas = _training_quotas(self.backend, defaults=True)
    else:
        quotas = self.backend.list_aws_default_service_quotas(code)
    return json.dumps(_page(quotas, params))


def _get_service_quota(self: ServiceQuotasResponse) -> str:
    params = _checked_params(self, "GetServiceQuota")
    if params["ServiceCode"] != SERVICE_CODE:
        return _original_get_service_quota(self)
    for quota in _training_quotas(self.backend, defaults=False):
        if quota["QuotaCode"] == params["QuotaCode"]:
            return json.dumps({"Quota": quota})
    raise NoSuchResource


_original_get_service_quota = ServiceQuotasResponse.get_service_quota


def install() -> None:
    """Add the SageMaker training quotas and ListServiceQuotas to moto's Service Quotas."""
    ServiceQuotasResponse.list_service_quotas = _list_service_quotas  # type: ignore[attr-defined]
    ServiceQuotasResponse.list_aws_default_service_quotas = _list_aws_default_service_quotas  # type: ignore[method-assign]
    ServiceQuotasResponse.get_service_quota = _get_service_quota  # type: ignore[method-assign]
