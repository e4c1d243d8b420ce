"""Sharded data parallel: the strategy, how the model is sharded, what each rank holds, and the
one consolidated model at the end.

Two ways to shard, by what the task's Lightning has:
  ModelParallelStrategy (Lightning >= 2.4, the current family): FSDP2's `fully_shard`, applied
      in the module's `configure_model` (the user's runs first; if it already sharded, the runner
      shards nothing). Every `shard_layers` layer is one shard group, then each top-level child.
      Works on GPU (NCCL) and on CPU (gloo), so the rehearsal shards for real.
  FSDPStrategy (Lightning 2.2.5, the SMDDP family): FSDP1 with an auto-wrap policy of the
      `shard_layers` classes. It needs GPUs; on CPU the job stops in its first seconds.
fsdp shards over every process; hybrid shards within a node and replicates across nodes.
"""

from __future__ import annotations

import logging
import resource
import sys
from datetime import timedelta
from typing import Any

from training.errors import ConfigError
from training.sharded_checkpoints import FOLDER_PREFIX
from training.sharding_rules import ShardingSettings

log = logging.getLogger("training")
#: Methods a task calls on a sharded child instead of forward (Hugging Face `generate`).
FORWARD_METHODS = ("generate",)


def find_layer_classes(module: Any, names: tuple[str, ...]) -> tuple[type, ...]:
    """The classes named by `shard_layers`: a class name or dotted path among the module's
    submodules, else an importable dotted path; ConfigError naming the first one not found."""
    import importlib

    present: dict[str, type] = {}
    for sub in module.modules():
        cls = type(sub)
        present.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
        present.setdefault(cls.__name__, cls)
    found = []
    for name in names:
        cls = present.get(name)
        if cls is None and "." in name:
            path, _, attr = name.rpartition(".")
            try:
                cls = getattr(importlib.import_module(path), attr, None)
            except ImportError:
                cls = None
        if not isinstance(cls, type):
            kinds = sorted({c.__name__ for c in present.values()} - {type(module).__name__})
            raise ConfigError(
                f"hyperparameter shard_layers={','.join(names)!r} is invalid: "
                f"{type(module).__name__} has no {name} layer; its layer classes: "
                f"{', '.join(kinds) or 'none yet (give dotted paths)'}"
            )
        found.append(cls)
    return tuple(dict.fromkeys(found))


def strategy(cluster: Any, s: ShardingSettings, timeout_s: int, pl: Any, module: Any) -> Any:
    """The Lightning strategy that shards `module` over `cluster`, checkpointing in step folders
    (training/sharded_checkpoints.py); ConfigError when this Lightning cannot shard here."""
    from training.cluster import cluster_environment
    from training.lightning_flavour import submodule
    from training.sharded_checkpoints import with_step_folders

    strategies = submodule(pl, "strategies")
    timeout = timedelta(seconds=timeout_s)
    if hasattr(strategies, "ModelParallelStrategy"):
        install(module, s, cluster)
        out = with_step_folders(strategies.ModelParallelStrategy)(
            data_parallel_size=cluster.world_size,
            tensor_parallel_size=1,
            save_distributed_checkpoint=True,
            process_group_backend=cluster.backend,
            timeout=timeout,
        )
        out.cluster_environment = cluster_environment(cluster, pl)
        return out
    if cluster.accelerator != "gpu":
        raise ConfigError(
            f"hyperparameter sharding={s.mode!r} is invalid here: Lightning {pl.__version__} "
            "(the smddp image family) shards with FSDPStrategy, which needs GPUs; rehearse "
            "sharding on CPU with the current image family, or run it on GPU instances"
        )
    layers = find_layer_classes(module, s.layers) if s.layers else ()
    module._runner_total_params = sum(p.numel() for p in module.parameters())  # before wrapping
    return with_step_folders(strategies.FSDPStrategy)(
        cluster_environment=cluster_environment(cluster, pl),
        process_group_backend=cluster.backend,
        timeout=timeout,
        sharding_strategy="HYBRID_SHARD" if s.mode == "hybrid" else "FULL_SHARD",
        auto_wrap_policy=set(layers) or None,
        activation_checkpointing_policy=set(layers) if s.activation_checkpointing else None,
        cpu_offload=s.cpu_offload,
        state_dict_type="sharded",
    )


def install(module: Any, s: ShardingSettings, cluster: Any) -> None:
    """Make `module.configure_model` shard it with FSDP2 after the user's own hook ran."""
    user_hook = module.configure_model  # the user's, or LightningModule's no-op

    def configure_model() -> None:
        user_hook()
        if _is_sharded(module):
            return
        module._runner_total_params = sum(p.numel() for p in module.parameters())
        shard(module, s, cluster)

    module.configure_model = configure_model


def _is_sharded(module: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in module.modules())


def _mesh(module: Any, s: ShardingSettings, cluster: Any) -> Any:
    """fsdp: the strategy's data-parallel mesh (every process). hybrid: a (node, process) mesh,
    replicated over nodes and sharded within each."""
    if s.mode != "hybrid":
        return module.device_mesh["data_parallel"]
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(
        "cuda" if cluster.accelerator == "gpu" else "cpu",
        (cluster.num_nodes, cluster.devices_per_node),
        mesh_dim_names=("replicate", "shard"),
    )


def shard(module: Any, s: ShardingSettings, cluster: Any) -> None:
    """FSDP2: activation checkpointing on the `shard_layers` layers, each of them its own shard
    group, then every top-level child with parameters, then the module itself if it holds
    parameters of its own (so none is left unsynchronised)."""
    from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

    kwargs: dict[str, Any] = {"mesh": _mesh(module, s, cluster)}
    if s.cpu_offload:
        if cluster.accelerator == "gpu":
            kwargs["offload_policy"] = CPUOffloadPolicy()
        else:
            log.warning("cpu_offload=true has no effect on CPU: parameters already live there")
    layers = find_layer_classes(module, s.layers) if s.layers else ()
    if layers and s.activation_checkpointing:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
            apply_activation_checkpointing,
        )

        apply_activation_checkpointing(module, check_fn=lambda m: isinstance(m, layers))
    wrapped = {id(m._checkpoint_wrapped_module) for m in module.modules() if _is_wrapper(m)}
    for sub in reversed(list(module.modules())):  # descendants before their ancestors
        inner = sub._checkpoint_wrapped_module if _is_wrapper(sub) else sub
        if layers and isinstance(inner, layers) and id(sub) not in wrapped:
            fully_shard(sub, **kwargs)  # a checkpoint wrapper is sharded with what it wraps
    from torch.distributed.fsdp import FSDPModule, register_fsdp_forward_method

    for _, child in module.named_children():
        if not isinstance(child, FSDPModule) and any(True for _ in child.parameters()):
            fully_shard(child, **kwargs)
        for method in FORWARD_METHODS:  # called instead of forward: gather the shards too
            if isinstance(child, FSDPModule) and callable(getattr(child, method, None)):
                register_fsdp_forward_method(child, method)
    if any(True for _ in module.parameters(recurse=False)):
        fully_shard(module, **kwargs)


def _is_wrapper(module: Any) -> bool:
    return hasattr(module, "_checkpoint_wrapped_module")


def holdings(module: Any) -> tuple[int, int]:
    """(parameters this rank holds, parameters of the whole model)."""
    local = total = 0
    for p in module.parameters():
        total += p.numel()
        local += p.to_local().numel() if hasattr(p, "to_local") else p.numel()
    return local, max(total, getattr(module, "_runner_total_params", 0))


def peak_memory_mib(accelerator: str) -> tuple[float, str]:
    """This process's peak memory: GPU memory allocated by torch on GPU, the resident set on CPU."""
    if accelerator == "gpu":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20, "GPU memory allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "max resident set"


class _ShardingReport:
    """Each rank logs what it holds once the model is sharded, and its peak memory at the end."""

    def __init__(self, rank: int, accelerator: str) -> None:
        self.rank, self.accelerator = rank, accelerator

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        held, total = holdings(pl_module)
        log.info("sharding: rank %d holds %d of %d parameters", self.rank, held, total)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        mib, what = peak_memory_mib(self.accelerator)
        log.info("sharding: rank %d peak memory %.1f MiB (%s)", self.rank, mib, what)


def callbacks(s: ShardingSettings, pl: Any, cluster: Any) -> list[Any]:
    """With sharding: _ShardingReport as a Callback of the task's Lightning package."""
    if not s.enabled:
        return []
    cls = type("ShardingReport", (_ShardingReport, pl.Callback), {})
    return [cls(cluster.global_rank, cluster.accelerator)]


def full_state_dict(module: Any) -> dict[str, Any]:
    """The whole model's weights on CPU, on global rank 0 ({} elsewhere); every rank must call
    it (it gathers the shards)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(module, options=options)


def settings_for(hp: Any, cluster: Any) -> ShardingSettings:
    """The job's sharding settings, checked against each other and the cluster (one line on a
    bad one); sharding on a single process is a note and plain training."""
    from training import sharding_rules

    out = sharding_rules.settings(hp.as_dict())  # a ShardingRuleError is a ConfigError
    sharding_rules.check_cluster(out, cluster.num_nodes)
    if out.enabled and not cluster.distributed:
        log.warning("sharding=%s on one process shards nothing: training unsharded", out.mode)
        return ShardingSettings()
    return out


def save_consolidated(
    state: dict[str, Any], model_dir: Any, *, config_yaml: str, info: dict[str, Any], trainer: Any
) -> None:
    """Global rank 0: the gathered weights loaded strictly into a plain module rebuilt from the
    config (no FSDP, no process group), which is then saved as any model is (its `export` hook
    included): what the model dir holds is what a user's notebook loads. A module that builds
    its layers in `setup` from the data (Donut) gets that hook run with the job's trainer."""
    from training.export import build_module, save_model

    plain = build_module(config_yaml)
    if set(state) - set(plain.state_dict()):
        plain.trainer = trainer  # setup reads trainer.datamodule
        try:
            plain.setup("fit")
            plain.configure_model()
        finally:
            plain.trainer = None
    plain.load_state_dict(state, strict=True)
    save_model(plain.eval(), model_dir, config_yaml=config_yaml, info=info)


def check_resume(resume: Any, s: ShardingSettings) -> None:
    """A sharded checkpoint folder resumes only a sharded run (DDP loads one file)."""
    if resume is not None and not s.enabled and resume.is_dir():
        raise ConfigError(
            f"{resume} is a sharded checkpoint (written with sharding=fsdp or hybrid) but "
            "hyperparameter sharding='none': resume with sharding=fsdp or hybrid, or delete the "
            f"{FOLDER_PREFIX}* folders in {resume.parent} to train from scratch"
        )
