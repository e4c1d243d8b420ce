"""The training image URI for any region, from the SageMaker SDK's published DLC data.

`sagemaker.core.image_uris.retrieve("pytorch", region, version, py_version, instance_type,
image_scope="training")` composes `<account>.dkr.ecr.<region>.<domain>/pytorch-training:`
`<version>-<cpu|gpu>-<py>` (no CUDA/OS part for PyTorch). This module builds the same URI
inside the template: a CfnMapping region -> registry account (from the same JSON), then
Fn::FindInMap + AWS::Region + AWS::URLSuffix, so one environment-agnostic template works in
every region (aws and aws-cn partitions alike).

For the SMDDP-era GPU images the tag is pinned to AWS's full SageMaker tag (CUDA, OS,
`-sagemaker`), e.g. `2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker` as AWS's SMDDP docs name it;
the SDK's short tag points at the same image line.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import Construct

from core.config import TrainingConfig, pytorch_training_images

#: Full tags for the SMDDP-capable GPU DLCs (AWS deep-learning-containers available_images).
FULL_GPU_TAG_SUFFIX = {
    ("2.3.0", "py311"): "cu121-ubuntu20.04-sagemaker",
    ("2.2.0", "py310"): "cu121-ubuntu20.04-sagemaker",
    ("2.1.0", "py310"): "cu121-ubuntu20.04-sagemaker",
    ("2.0.1", "py310"): "cu118-ubuntu20.04-sagemaker",
}


@dataclass(frozen=True)
class ImageSpec:
    repository: str
    tag: str
    registries: dict[str, str]  # region -> account


def image_spec(config: TrainingConfig) -> ImageSpec:
    """Repository, tag and region -> registry account of the config's training image."""
    version = pytorch_training_images()["versions"][config.framework_version]
    tag = f"{config.framework_version}-{config.processor}-{config.py_version}"
    suffix = FULL_GPU_TAG_SUFFIX.get((config.framework_version, config.py_version))
    if config.processor == "gpu" and suffix:
        tag = f"{tag}-{suffix}"
    return ImageSpec(version["repository"], tag, dict(version["registries"]))


def image_uri_for_region(config: TrainingConfig, region: str, domain: str) -> str:
    """The URI as a plain string (operator side, tests)."""
    spec = image_spec(config)
    account = spec.registries[region]
    return f"{account}.dkr.ecr.{region}.{domain}/{spec.repository}:{spec.tag}"


class TrainingImage(Construct):
    """Region-independent image URI: `self.image_uri`, plus `self.repository_arn` for ECR IAM."""

    MAPPING_KEY = "account"

    def __init__(self, scope: Construct, construct_id: str, *, config: TrainingConfig) -> None:
        super().__init__(scope, construct_id)
        self.spec = image_spec(config)
        mapping = cdk.CfnMapping(
            self,
            "RegistryAccounts",
            mapping={
                region: {self.MAPPING_KEY: account}
                for region, account in sorted(self.spec.registries.items())
            },
        )
        self.registry_account = mapping.find_in_map(cdk.Aws.REGION, self.MAPPING_KEY)
        self.image_uri = cdk.Fn.join(
            "",
            [
                self.registry_account,
                ".dkr.ecr.",
                cdk.Aws.REGION,
                ".",
                cdk.Aws.URL_SUFFIX,
                f"/{self.spec.repository}:{self.spec.tag}",
            ],
        )
        self.repository_arn = cdk.Fn.join(
            "",
            [
                "arn:",
                cdk.Aws.PARTITION,
                ":ecr:",
                cdk.Aws.REGION,
                ":",
                self.registry_account,
                f":repository/{self.spec.repository}",
            ],
        )
