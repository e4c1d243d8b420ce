"""Training image URIs: the template's Fn::FindInMap form equals sagemaker-core's retrieve()."""

from __future__ import annotations

import pytest

from core.config import TrainingConfig
from infra.images import FULL_GPU_TAG_SUFFIX, image_spec, image_uri_for_region

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-3", "cn-north-1", "us-gov-west-1", "me-south-1"]
CONFIGS = {
    "smddp-p4d": TrainingConfig(),
    "torchrun-p5": TrainingConfig(instance_type="ml.p5.48xlarge"),
    "cpu-m5": TrainingConfig(instance_type="ml.m5.xlarge", instance_count=1),
}


def _domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("region", REGIONS)
def test_equals_sagemaker_core_retrieve(name, region):
    from sagemaker.core import image_uris

    config = CONFIGS[name]
    expected = image_uris.retrieve(
        "pytorch",
        region,
        version=config.framework_version,
        py_version=config.py_version,
        instance_type=config.instance_type,
        image_scope="training",
    )
    ours = image_uri_for_region(config, region, _domain(region))
    suffix = FULL_GPU_TAG_SUFFIX.get((config.framework_version, config.py_version))
    if config.processor == "gpu" and suffix:
        assert ours == f"{expected}-{suffix}"  # the SDK's short tag + AWS's full SageMaker tag
    else:
        assert ours == expected


def test_smddp_image_tag():
    assert image_spec(CONFIGS["smddp-p4d"]).tag == "2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker"
    assert image_spec(CONFIGS["torchrun-p5"]).tag == "2.10.0-gpu-py313"


def test_template_mapping_resolves_per_region(default_synth):
    """Evaluate the template's URI (FindInMap + Region + URLSuffix) like CloudFormation would."""
    template = default_synth.template
    uri = default_synth.stack.resolve(default_synth.stack.image.image_uri)
    (mapping_name,) = template["Mappings"]
    for region in REGIONS:
        parts = []
        for part in uri["Fn::Join"][1]:
            if isinstance(part, str):
                parts.append(part)
            elif part == {"Ref": "AWS::Region"}:
                parts.append(region)
            elif part == {"Ref": "AWS::URLSuffix"}:
                parts.append(_domain(region))
            else:
                name, key, attr = part["Fn::FindInMap"]
                assert name == mapping_name and key == {"Ref": "AWS::Region"}
                parts.append(template["Mappings"][name][region][attr])
        assert "".join(parts) == image_uri_for_region(
            default_synth.stack.config, region, _domain(region)
        )
