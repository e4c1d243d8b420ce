"""Who am I in the job, and how should Lightning talk to the others?

`detect()` looks at the launcher's environment exactly once, at start, and returns a frozen
`Cluster`: world size, ranks, nodes, devices, backend. Lightning later deletes WORLD_SIZE in its
teardown, so nothing downstream reads those variables again.

Launchers:
  none       plain `python train.py`, one host, one device: not distributed.
  lightning  plain `python train.py` with several devices on a host and/or several hosts:
             Lightning's own launcher starts one process per device (its children carry
             LOCAL_RANK; the parent is local rank 0). Multi-host: NODE_RANK = index of this host
             in SM_HOSTS, MASTER_ADDR = the first host.
  torchrun   RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and GROUP_RANK set by torchrun (the
             toolkit's `sagemaker_torch_distributed_enabled`); Lightning's TorchElasticEnvironment.
  mpirun     OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE,NODE_RANK} set by Open MPI (the
             SMDDP launcher); RANK/LOCAL_RANK/WORLD_SIZE/NODE_RANK/MASTER_* are derived from them
             and Lightning runs with its LightningEnvironment.

The job is distributed when the world size (nodes x processes per node) is above 1, never merely
because a host has several GPUs. Windows never runs DDP.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from training.errors import ConfigError
from training.sharding_rules import ShardingSettings
from training.sm_env import SageMakerEnv

log = logging.getLogger(__name__)

DEFAULT_MASTER_PORT = 29500
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK")
SMDDP_MODULE = "smdistributed.dataparallel.torch.torch_smddp"
SMDDP_MISSING = (
    "process_group_backend smddp needs SMDDP ({module}), which is not installed: run on the SMDDP "
    "image pytorch-training:2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker on ml.p4d.24xlarge, "
    "ml.p4de.24xlarge or ml.p3dn.24xlarge, or choose backend torchrun (NCCL)"
)


@dataclass(frozen=True)
class Cluster:
    """This process's place in the job; captured once, never re-read from the environment."""

    launcher: str  # none | lightning | torchrun | mpirun
    accelerator: str  # gpu | cpu
    world_size: int
    num_nodes: int
    devices_per_node: int  # processes per node
    node_rank: int
    local_rank: int
    global_rank: int
    backend: str | None  # smddp | nccl | gloo when distributed, else None
    master_addr: str | None = None
    master_port: int | None = None
    #: Variables to export before Lightning starts (mpirun and multi-host Lightning launches).
    env: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def is_local_zero(self) -> bool:
        return self.local_rank == 0

    def describe(self) -> str:
        return (
            f"launcher={self.launcher} world_size={self.world_size} nodes={self.num_nodes} "
            f"devices_per_node={self.devices_per_node} node_rank={self.node_rank} "
            f"local_rank={self.local_rank} global_rank={self.global_rank} "
            f"accelerator={self.accelerator} backend={self.backend or 'none'}"
        )


def _int(env: Mapping[str, str], key: str, minimum: int = 0) -> int:
    raw = env.get(key, "")
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is invalid: expected an integer >= {minimum}") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r} is invalid: expected an integer >= {minimum}")
    return value


def _check_layout(world: int, per_node: int, node: int, local: int, rank: int, what: str) -> int:
    if world % per_node:
        raise ConfigError(
            f"{what}: world size {world} is not divisible by {per_node} processes per node"
        )
    nodes = world // per_node
    if not (0 <= local < per_node and 0 <= node < nodes):
        raise ConfigError(
            f"{what}: local rank {local} / node rank {node} outside {nodes} nodes x {per_node}"
        )
    if rank != node * per_node + local:
        raise ConfigError(
            f"{what}: rank {rank} != node_rank {node} x {per_node} + local_rank {local}; "
            "launch processes in node-major order (Lightning assumes it)"
        )
    return nodes


def select_backend(requested: str, sm: SageMakerEnv, accelerator: str) -> str:
    """auto: smddp under the SMDDP launcher, nccl on GPU, gloo on CPU."""
    if requested == "auto":
        if sm.smddp_launcher:
            return "smddp"
        return "nccl" if accelerator == "gpu" else "gloo"
    if requested == "nccl" and accelerator != "gpu":
        raise ConfigError(
            "hyperparameter process_group_backend='nccl' is invalid here: nccl needs GPUs; "
            "use gloo or auto on CPU"
        )
    return requested


def detect(
    sm: SageMakerEnv,
    env: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
) -> Cluster:
    """Work out launcher, world size and ranks from the environment; raises ConfigError."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    accelerator = "gpu" if sm.num_gpus > 0 else "cpu"
    hosts = sm.hosts
    notes: list[str] = []
    exports: dict[str, str] = {}
    master_addr: str | None = None
    master_port: int | None = None

    if "OMPI_COMM_WORLD_RANK" in env:
        launcher = "mpirun"
        rank = _int(env, "OMPI_COMM_WORLD_RANK")
        world = _int(env, "OMPI_COMM_WORLD_SIZE", 1)
        local = _int(env, "OMPI_COMM_WORLD_LOCAL_RANK")
        per_node = _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1)
        node = (
            _int(env, "OMPI_COMM_WORLD_NODE_RANK")
            if "OMPI_COMM_WORLD_NODE_RANK" in env
            else (rank // per_node)
        )
        if "RANK" in env and _int(env, "RANK") != rank:
            raise ConfigError(
                f"mpirun: RANK={env['RANK']} disagrees with OMPI_COMM_WORLD_RANK={rank}"
            )
        nodes = _check_layout(world, per_node, node, local, rank, "mpirun")
        master_addr = env.get("MASTER_ADDR") or hosts[0]
        master_port = (
            _int(env, "MASTER_PORT", 1) if env.get("MASTER_PORT") else (DEFAULT_MASTER_PORT)
        )
        exports = {
            "RANK": str(rank),
            "LOCAL_RANK": str(local),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(per_node),
            "NODE_RANK": str(node),
            "MASTER_ADDR": master_addr,
            "MASTER_PORT": str(master_port),
        }
    elif all(k in env for k in TORCHRUN_VARS):
        launcher = "torchrun"
        rank = _int(env, "RANK")
        world = _int(env, "WORLD_SIZE", 1)
        local = _int(env, "LOCAL_RANK")
        per_node = _int(env, "LOCAL_WORLD_SIZE", 1)
        node = _int(env, "GROUP_RANK")
        nodes = _check_layout(world, per_node, node, local, rank, "torchrun")
        master_addr = env.get("MASTER_ADDR")
        master_port = _int(env, "MASTER_PORT", 1) if env.get("MASTER_PORT") else None
    elif "RANK" in env:
        missing = [k for k in TORCHRUN_VARS if k not in env]
        raise ConfigError(
            f"RANK is set but {', '.join(missing)} not: launch with torchrun, mpirun or plain "
            "python (Lightning starts the processes)"
        )
    else:
        per_node = max(sm.num_gpus, 1)
        nodes = len(hosts)
        world = nodes * per_node
        # Lightning's launcher: the parent is local rank 0, its children carry LOCAL_RANK.
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
        node = sm.host_rank
        launcher = "none" if world == 1 else "lightning"
        rank = node * per_node + local
        if local >= per_node:
            raise ConfigError(f"LOCAL_RANK={local} but this host has {per_node} device(s)")
        if nodes > 1:
            master_addr = env.get("MASTER_ADDR") or hosts[0]
            master_port = (
                _int(env, "MASTER_PORT", 1) if env.get("MASTER_PORT") else (DEFAULT_MASTER_PORT)
            )
            exports = {
                "NODE_RANK": str(node),
                "MASTER_ADDR": master_addr,
                "MASTER_PORT": str(master_port),
            }

    if sm.on_sagemaker and launcher in ("torchrun", "mpirun") and nodes != len(hosts):
        raise ConfigError(
            f"{launcher} reports {nodes} node(s) but SM_HOSTS lists {len(hosts)}: {list(hosts)}"
        )

    if platform.startswith("win") and world > 1:
        if launcher in ("torchrun", "mpirun"):
            raise ConfigError(
                f"{launcher} started {world} processes on Windows, where DDP is not supported: "
                "run one process"
            )
        notes.append(
            f"Windows: DDP is not supported; training on a single device instead of {world}"
        )
        launcher, world, nodes, per_node, node, local, rank = "none", 1, 1, 1, 0, 0, 0
        exports, master_addr, master_port = {}, None, None

    backend = None
    if world > 1:
        backend = select_backend(sm.hyperparameters.process_group_backend, sm, accelerator)
        if backend == "smddp" and launcher == "lightning":
            notes.append("smddp normally runs under the SMDDP launcher (mpirun + smddprun)")
    return Cluster(
        launcher=launcher,
        accelerator=accelerator,
        world_size=world,
        num_nodes=nodes,
        devices_per_node=per_node,
        node_rank=node,
        local_rank=local,
        global_rank=rank,
        backend=backend,
        master_addr=master_addr,
        master_port=master_port,
        env=dict(exports),
        notes=tuple(notes),
    )


def export_env(cluster: Cluster, environ: MutableMapping[str, str] | None = None) -> None:
    """Set the variables Lightning and torch.distributed read (mpirun, multi-host launches)."""
    environ = os.environ if environ is None else environ
    for key, value in cluster.env.items():
        environ[key] = value


def import_backend(cluster: Cluster) -> None:
    """Register the smddp process-group backend; only when smddp was selected."""
    if cluster.backend != "smddp":
        return
    import importlib

    try:
        importlib.import_module(SMDDP_MODULE)
    except ImportError:
        raise ConfigError(SMDDP_MISSING.format(module=SMDDP_MODULE)) from None


def scaled_lr(base_lr: float, scaling: str, world_size: int) -> float:
    """linear: lr x world size; sqrt: lr x sqrt(world size); none: lr."""
    if scaling == "linear":
        return base_lr * world_size
    if scaling == "sqrt":
        return base_lr * math.sqrt(world_size)
    return base_lr


def resolve_precision(requested: str, accelerator: str, bf16_supported: bool) -> str:
    """auto: bf16-mixed on bf16 GPUs, 16-mixed on older GPUs, 32 on CPU."""
    if requested == "auto":
        if accelerator == "gpu":
            return "bf16-mixed" if bf16_supported else "16-mixed"
        return "32"
    if requested == "16-mixed" and accelerator != "gpu":
        raise ConfigError(
            "hyperparameter precision='16-mixed' is invalid here: float16 mixed precision "
            "needs a GPU; on CPU use 32 or bf16-mixed"
        )
    return requested


def lightning_kwargs(
    cluster: Cluster,
    timeout_s: int,
    pl: Any,
    sharding: ShardingSettings | None = None,
    module: Any = None,
) -> dict[str, Any]:
    """Trainer arguments for the cluster, from the task's Lightning package `pl`: accelerator,
    devices, num_nodes and the strategy (DDP, or with `sharding` enabled the sharded strategy
    for `module`: training/sharding.py)."""
    kwargs: dict[str, Any] = {
        "accelerator": cluster.accelerator,
        "devices": cluster.devices_per_node,
        "num_nodes": cluster.num_nodes,
    }
    if not cluster.distributed:
        kwargs["strategy"] = "auto"
        return kwargs
    if sharding is not None and sharding.enabled:
        from training import sharding as sharding_mod

        kwargs["strategy"] = sharding_mod.strategy(cluster, sharding, timeout_s, pl, module)
        return kwargs
    from training.lightning_flavour import submodule

    kwargs["strategy"] = submodule(pl, "strategies").DDPStrategy(
        cluster_environment=cluster_environment(cluster, pl),
        process_group_backend=cluster.backend,
        timeout=timedelta(seconds=timeout_s),
    )
    return kwargs


def cluster_environment(cluster: Cluster, pl: Any) -> Any:
    """Lightning's view of the cluster, matching the launcher."""
    from training.lightning_flavour import submodule

    environments = submodule(pl, "plugins.environments")
    if cluster.launcher == "torchrun":
        return environments.TorchElasticEnvironment()
    return environments.LightningEnvironment()
