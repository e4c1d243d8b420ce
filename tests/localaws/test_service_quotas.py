"""The emulator's SageMaker training quotas, read through boto3 as `trainops preflight` reads
them on AWS: by name, every page, each response valid for botocore's output model."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localaws import service_quotas as sq
from localaws.api_model import response_problems
from localaws.server import EmbeddedAws

M5 = "ml.m5.xlarge"


def _all_pages(client, operation: str, **params) -> list[dict]:
    pages = list(client.get_paginator(operation).paginate(ServiceCode="sagemaker", **params))
    api = {"list_service_quotas": "ListServiceQuotas"}.get(operation, "ListAWSDefaultServiceQuotas")
    for page in pages:
        assert response_problems("service-quotas", api, page) == []
    return [quota for page in pages for quota in page["Quotas"]]


def test_training_quotas_are_listed_by_name_on_several_pages(emulator: EmbeddedAws) -> None:
    client = emulator.client("service-quotas")
    first = client.list_service_quotas(ServiceCode="sagemaker")
    assert len(first["Quotas"]) == sq.PAGE_SIZE and first["NextToken"]
    quotas = _all_pages(client, "list_service_quotas")
    by_name = {q["QuotaName"]: q for q in quotas}
    assert len(by_name) == len(quotas) == len(sq.default_values())
    total = by_name["Number of instances across all training jobs"]
    assert total["QuotaCode"] == "L-00C91CB5" and total["Value"] >= 2
    demo = by_name[f"{M5} for training job usage"]
    assert demo["Value"] >= 2 and by_name[f"{M5} for spot training job usage"]["Value"] >= 2
    arn_tail = f":{emulator.region}:123456789012:sagemaker/{demo['QuotaCode']}"
    assert demo["QuotaArn"].startswith("arn:aws:servicequotas:") and demo["QuotaArn"].endswith(
        arn_tail
    )
    assert by_name["ml.p4d.24xlarge for training job usage"]["Value"] == 0  # like a new account
    codes = [q["QuotaCode"] for q in quotas]
    assert len(set(codes)) == len(codes)


def test_set_quota_changes_the_applied_value_not_the_default(emulator: EmbeddedAws) -> None:
    client = emulator.client("service-quotas")
    name = f"{M5} for training job usage"
    code = sq.emulator_code(name)
    previous = sq.set_quota(name, 1, region=emulator.region)
    try:
        got = client.get_service_quota(ServiceCode="sagemaker", QuotaCode=code)
        assert response_problems("service-quotas", "GetServiceQuota", got) == []
        assert got["Quota"]["Value"] == 1
        (listed,) = client.list_service_quotas(ServiceCode="sagemaker", QuotaCode=code)["Quotas"]
        assert listed["Value"] == 1
        defaults = _all_pages(client, "list_aws_default_service_quotas")
        assert {q["QuotaName"]: q["Value"] for q in defaults}[name] == previous
        sq.set_quota(name, None, region=emulator.region)  # not offered in this region
        assert client.list_service_quotas(ServiceCode="sagemaker", QuotaCode=code)["Quotas"] == []
        defaults = _all_pages(client, "list_aws_default_service_quotas")
        assert name not in {q["QuotaName"] for q in defaults}
    finally:
        sq.set_quota(name, previous, region=emulator.region)
    assert client.get_service_quota(ServiceCode="sagemaker", QuotaCode=code)["Quota"]["Value"] == (
        previous
    )


def test_other_services_and_bad_requests_answer_like_aws(emulator: EmbeddedAws) -> None:
    client = emulator.client("service-quotas")
    vpc = client.list_service_quotas(ServiceCode="vpc")
    assert vpc["Quotas"] and response_problems("service-quotas", "ListServiceQuotas", vpc) == []
    with pytest.raises(ClientError) as info:
        client.list_service_quotas(ServiceCode="no-such-service")
    assert info.value.response["Error"]["Code"] == "NoSuchResourceException"
    with pytest.raises(ClientError) as info:
        client.list_service_quotas(ServiceCode="sagemaker", NextToken="bm90LWEtbnVtYmVy")
    assert info.value.response["Error"]["Code"] == "InvalidPaginationTokenException"
