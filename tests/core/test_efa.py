"""EFA settings per image family and instance type (core/efa.py), checked against the real
toolkit's lists, carried in the job request and reported by preflight."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import sagemaker_training

from core import efa
from core.config import TrainingConfig, load_cdk_json_context
from core.instance_types import training_instance_types
from core.job_request import training_request
from core.workflow_settings import WorkflowSettings
from tests.infra.test_workflow_definition import SETTINGS
from trainops import preflight as pf
from trainops.run_input import CDK_JSON

RDMA = {**efa.EFA_SETTINGS, **efa.RDMA_SETTINGS}
SMDDP_IMAGE = SETTINGS.image_uri
CURRENT_IMAGE = SMDDP_IMAGE.replace("2.3.0-gpu-py311", "2.10.0-gpu-py313")


def test_the_current_images_lists_are_the_installed_toolkits() -> None:
    """The toolkit this repo pins is the one the current image ships (5.1.4)."""
    version, nccl, rdma = efa.TOOLKIT_LISTS["current"]
    assert importlib.metadata.version("sagemaker-training") == version
    assert set(nccl) == set(sagemaker_training.SM_EFA_NCCL_INSTANCES)
    assert set(rdma) == set(sagemaker_training.SM_EFA_RDMA_INSTANCES)


@pytest.mark.parametrize("family", sorted(efa.TOOLKIT_LISTS))
def test_the_table_covers_every_type_the_toolkits_list(family: str) -> None:
    _, nccl, rdma = efa.TOOLKIT_LISTS[family]
    assert set(nccl) <= efa.EFA_INSTANCES and set(rdma) <= efa.RDMA_INSTANCES
    assert efa.RDMA_INSTANCES <= efa.EFA_INSTANCES <= training_instance_types()
    # An older image's toolkit lists no more than the newest one.
    assert set(nccl) <= set(efa.TOOLKIT_LISTS["current"][1])


@pytest.mark.parametrize(
    ("family", "instance_type", "environment"),
    [
        ("smddp", "ml.p4d.24xlarge", {}),  # the 2.3.0 image's toolkit (4.7.4) lists it
        ("smddp", "ml.p5.48xlarge", RDMA),  # torchrun on the 2.3.0 image: 4.7.4 predates p5
        ("current", "ml.p5.48xlarge", {}),
        ("current", "ml.p5en.48xlarge", RDMA),  # EFA + RDMA, missing from 5.1.4's lists
        ("current", "ml.p6-b200.48xlarge", RDMA),
        ("current", "ml.g5.48xlarge", {}),
        ("current", "ml.g5.12xlarge", {}),  # no EFA
        ("current", "ml.m5.xlarge", {}),
    ],
)
def test_what_each_image_misses(family: str, instance_type: str, environment: dict) -> None:
    assert efa.plan(family, instance_type).environment == environment


def _settings(**context: str) -> WorkflowSettings:
    ctx = load_cdk_json_context(CDK_JSON)
    config = TrainingConfig.from_context({**ctx, **context})
    resources = {
        k: getattr(SETTINGS, k)
        for k in (
            "region",
            "role_arn",
            "code_s3_uri",
            "topic_arn",
            "data_bucket_name",
            "artifacts_bucket_name",
            "kms_key_arn",
            "security_group_ids",
            "subnet_ids",
        )
    }
    image = SMDDP_IMAGE if config.image_family == "smddp" else CURRENT_IMAGE
    return WorkflowSettings.from_config(config, image_uri=image, **resources)


def test_the_job_request_carries_what_the_image_misses() -> None:
    p5en = _settings(**{"training.instance_type": "ml.p5en.48xlarge"})
    env = training_request(p5en)["Environment"]
    assert {k: env[k] for k in RDMA} == RDMA
    default = training_request(_settings())["Environment"]  # p4d + SMDDP: the toolkit has it
    assert not set(RDMA) & set(default)
    assert WorkflowSettings.from_json(json.loads(json.dumps(p5en.to_json()))) == p5en


def test_preflight_says_which_settings_and_why() -> None:
    deployed = {"image_uri": CURRENT_IMAGE, "efa_environment": RDMA}
    finding = pf.efa_finding(deployed, pf.Target("ml.p5en.48xlarge", 2, False))
    assert finding.ok and finding.line() == (
        "efa             ok    ml.p5en.48xlarge has EFA but is not in the current image's toolkit "
        "(5.1.4)'s lists: the job sets them (FI_EFA_USE_DEVICE_RDMA=1 FI_PROVIDER=efa "
        "RDMAV_FORK_SAFE=1)"
    )
    listed = pf.efa_finding(deployed, pf.Target("ml.p5.48xlarge", 2, False))
    assert listed.ok and "toolkit (5.1.4) sets EFA for ml.p5.48xlarge itself" in listed.detail
    # A run on an EFA type the deployment did not plan for would fall back to TCP.
    bare = {"image_uri": CURRENT_IMAGE, "efa_environment": {}}
    missing = pf.efa_finding(bare, pf.Target("ml.p6-b200.48xlarge", 2, False))
    assert not missing.ok
    assert missing.fix == "redeploy with -c training.instance_type=ml.p6-b200.48xlarge"
