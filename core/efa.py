"""EFA settings a job gets where the image's toolkit would not set them.

The SageMaker training toolkit inside the image turns EFA on (`FI_PROVIDER=efa`) and GPUDirect
RDMA (`FI_EFA_USE_DEVICE_RDMA=1`, `RDMAV_FORK_SAFE=1`) only for the instance types in its own
lists (`sagemaker_training.SM_EFA_NCCL_INSTANCES` / `SM_EFA_RDMA_INSTANCES`), and each image
carries the toolkit of its build date. A type missing from that list runs NCCL over TCP sockets,
which at scale is slow or hangs (aws/sagemaker-training-toolkit#240). So the job's Environment
carries what the configured image's toolkit would miss for the configured instance type; the
toolkit inherits it and passes it to every training process.

Toolkit lists per image family (aws/sagemaker-training-toolkit src/sagemaker_training/
__init__.py): the 2.3.0 image was built in 2024-05 (its SMDDP wheel is dated 2024-05-23) with
the then newest toolkit, 4.7.4 (4.8.0, which added p5, came 2024-08); the 2.10.0 image (2026-07)
has 5.1.4, the version this repo pins and its tests read.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.image_contents import family_for_image

_V4_7_NCCL = (
    "ml.g4dn.8xlarge",
    "ml.g4dn.12xlarge",
    "ml.g5.48xlarge",
    "ml.p3dn.24xlarge",
    "ml.p4d.24xlarge",
    "ml.p4de.24xlarge",
    "ml.trn1.32xlarge",
)
_V4_7_RDMA = ("ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.trn1.32xlarge")
_V5_1_4_NCCL = (*_V4_7_NCCL, "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.p6e-gb200.36xlarge")
_V5_1_4_RDMA = (*_V4_7_RDMA, "ml.p5.48xlarge", "ml.p5e.48xlarge", "ml.p6e-gb200.36xlarge")

#: Image family -> (toolkit version, its EFA list, its RDMA list).
TOOLKIT_LISTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "smddp": ("4.7.4", _V4_7_NCCL, _V4_7_RDMA),
    "current": ("5.1.4", _V5_1_4_NCCL, _V5_1_4_RDMA),
}
#: Every training instance type with EFA and GPUDirect RDMA (AWS's EFA-supported types): the
#: newest toolkit's lists plus the types it has not caught up with.
RDMA_INSTANCES = frozenset(
    (*_V5_1_4_RDMA, "ml.p5en.48xlarge", "ml.p6-b200.48xlarge", "ml.p6-b300.48xlarge")
)
EFA_INSTANCES = frozenset((*_V5_1_4_NCCL, *RDMA_INSTANCES))
#: What the toolkit sets for a listed type (sagemaker_training/torch_distributed.py, mpi.py).
EFA_SETTINGS = {"FI_PROVIDER": "efa"}
RDMA_SETTINGS = {"FI_EFA_USE_DEVICE_RDMA": "1", "RDMAV_FORK_SAFE": "1"}


@dataclass(frozen=True)
class EfaPlan:
    """What the job's Environment adds for one image and instance type, and why."""

    environment: dict[str, str]
    reason: str


def plan(image_family: str, instance_type: str) -> EfaPlan:
    """The EFA settings the image's toolkit would miss for `instance_type`."""
    version, nccl, rdma = TOOLKIT_LISTS[image_family]
    env: dict[str, str] = {}
    if instance_type in EFA_INSTANCES and instance_type not in nccl:
        env.update(EFA_SETTINGS)
    if instance_type in RDMA_INSTANCES and instance_type not in rdma:
        env.update(RDMA_SETTINGS)
    toolkit = f"the {image_family} image's toolkit ({version})"
    if env:
        reason = f"{instance_type} has EFA but is not in {toolkit}'s lists: the job sets them"
    elif instance_type in EFA_INSTANCES:
        reason = f"{toolkit} sets EFA for {instance_type} itself"
    else:
        reason = f"{instance_type} has no EFA: NCCL uses TCP sockets"
    return EfaPlan(env, reason)


def job_environment(image_uri: str, instance_type: str) -> dict[str, str]:
    """The Environment entries a job on `image_uri` and `instance_type` needs for EFA."""
    return plan(family_for_image(image_uri), instance_type).environment
