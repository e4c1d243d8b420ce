"""What the stack knows about SageMaker instance types and the PyTorch training images.

GPUs per instance (the launcher's process count, the CPU/GPU image flavour), the families SMDDP
runs on, and the SDK's published image and instance-type data (read as files from sagemaker-core:
importing `sagemaker` probes the network). No aws_cdk: the operator CLI uses it too.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.image_contents import LAST_SMDDP_FRAMEWORK

# --- Instance knowledge ---
#: Instances SMDDP supports (AWS docs; P3 is no longer optimized, P5 is not supported).
SMDDP_INSTANCE_TYPES = ("ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p3dn.24xlarge")
#: PyTorch DLC versions that ship SMDDP.
SMDDP_FRAMEWORK_RANGE = ("2.0.1", LAST_SMDDP_FRAMEWORK)
#: Oldest DLC the training code supports (Lightning 2.x).
MIN_FRAMEWORK_VERSION = "2.0.1"
#: GPUs per instance for sizes that are not 1 GPU per `xlarge`-class rule below.
_GPUS_BY_SIZE = {
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p2": {"xlarge": 1, "8xlarge": 8, "16xlarge": 16},
    "g4dn": {"12xlarge": 4},
    "g5": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6e": {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g7e": {"12xlarge": 2, "24xlarge": 4, "48xlarge": 8},
    "g7": {"12xlarge": 2, "24xlarge": 4, "48xlarge": 8},
    "p5": {"4xlarge": 1, "48xlarge": 8},
    "p6e-gb200": {"36xlarge": 4},
}
#: Families with 8 GPUs at their one size, and single-GPU families below their multi-GPU sizes.
_EIGHT_GPU_FAMILIES = ("p3dn", "p4d", "p4de", "p5e", "p5en", "p6-b200", "p6-b300")
_ONE_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "g7", "g7e")
_NEURON_FAMILIES = ("trn1", "trn1n", "trn2", "inf1", "inf2")


# --- Data from the SageMaker SDK (read as files: importing `sagemaker` probes the network) -------
def _sagemaker_core_dir() -> Path:
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("sagemaker-core is not installed (it carries the DLC image data)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "core" / "image_uri_config"
        if candidate.is_dir():
            return candidate
    raise RuntimeError("sagemaker-core's image_uri_config folder was not found")


@lru_cache(maxsize=1)
def pytorch_training_images() -> dict[str, Any]:
    """sagemaker-core's PyTorch *training* image data (versions, py_versions, registries)."""
    data = json.loads((_sagemaker_core_dir() / "pytorch.json").read_text())
    return data["training"]


@lru_cache(maxsize=1)
def training_instance_types() -> frozenset[str]:
    """Every TrainingInstanceType the SageMaker API model (botocore) accepts."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TrainingInstanceType").enum)


def instance_family(instance_type: str) -> str:
    return instance_type.split(".")[1]


def gpus_per_instance(instance_type: str) -> int:
    """GPUs on one instance of `instance_type` (0 for CPU instances)."""
    _, family, size = instance_type.split(".", 2)
    if family in _GPUS_BY_SIZE and size in _GPUS_BY_SIZE[family]:
        return _GPUS_BY_SIZE[family][size]
    if family in _EIGHT_GPU_FAMILIES:
        return 8
    if family in _ONE_GPU_FAMILIES or family in _GPUS_BY_SIZE:
        return 1
    return 0
