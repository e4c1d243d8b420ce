"""A second configuration: p5 + torchrun, spot, destroy, no schedule, three AZs, network
isolation off (so the interface endpoints for in-container calls are built)."""

from __future__ import annotations

import json

import pytest

from infra.network import INTERFACE_ENDPOINTS
from tests.infra.conftest import synthesize
from tests.infra.test_stack import check_endpoints


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    return synthesize(
        tmp_path_factory.mktemp("cdk-variant"),
        {
            "training.instance_type": "ml.p5.48xlarge",
            "training.instance_count": "4",
            "training.spot": "true",
            "training.max_wait_s": "172800",
            "training.removal_policy": "destroy",
            "training.schedule_cron": "off",
            "training.max_azs": "3",
            "training.notification_email": "ml-team@example.com",
            "training.network_isolation": "false",
        },
    )


def test_variant_nag_clean(variant):
    assert [f for f in variant.findings if f["severity"] == "error"] == []
    assert variant.error is None


def test_variant_shape(variant):
    assert variant.stack.config.backend == "torchrun"
    assert variant.resources("AWS::Scheduler::Schedule") == {}
    assert len(variant.resources("AWS::EC2::Subnet")) == 3
    for bucket in variant.resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert variant.resources("Custom::S3AutoDeleteObjects")


def test_variant_without_isolation_gets_the_interface_endpoints(variant):
    check_endpoints(variant, interface_count=len(INTERFACE_ENDPOINTS))
    params = json.dumps(variant.template)
    assert '\\"EnableNetworkIsolation\\": false' in params
