"""The sharding settings and the rules between them, free of torch and CDK imports.

Synth (core/schema/task_rules.py) and the job's first seconds (training/train.py) apply the same
rules here, so a setting that cannot work fails with the same reason in both places. What needs
the model (is a `shard_layers` class in it?) is checked in training/sharding.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from training.errors import ConfigError


class ShardingRuleError(ConfigError):
    """A sharding hyperparameter that breaks a rule: its name, its value, what is allowed."""

    def __init__(self, name: str, value: str, allowed: str) -> None:
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"hyperparameter {name}={value!r} is invalid: {allowed}")


@dataclass(frozen=True)
class ShardingSettings:
    """`sharding`, `shard_layers`, `activation_checkpointing`, `cpu_offload`, typed."""

    mode: str = "none"  # one of contract.SHARDING_MODES; none = DDP
    layers: tuple[str, ...] = ()
    activation_checkpointing: bool = False
    cpu_offload: bool = False

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def describe(self) -> str:
        return (
            f"sharding={self.mode} shard_layers={','.join(self.layers) or '-'} "
            f"activation_checkpointing={str(self.activation_checkpointing).lower()} "
            f"cpu_offload={str(self.cpu_offload).lower()}"
        )


def settings(values: Mapping[str, object]) -> ShardingSettings:
    """The settings from hyperparameters (strings as SageMaker sends them, or typed values),
    checked against each other; raises ShardingRuleError."""
    mode = str(values.get("sharding") or "none")
    raw_layers = str(values.get("shard_layers") or "")
    layers = tuple(part.strip() for part in raw_layers.split(",") if part.strip())
    out = ShardingSettings(
        mode=mode,
        layers=layers,
        activation_checkpointing=str(values.get("activation_checkpointing")) == "true",
        cpu_offload=str(values.get("cpu_offload")) == "true",
    )
    if raw_layers and not layers:
        raise ShardingRuleError(
            "shard_layers",
            raw_layers,
            "expected layer class names separated by commas "
            "(Block, torch.nn.TransformerEncoderLayer)",
        )
    if not out.enabled:
        for name, given in (
            ("shard_layers", raw_layers),
            ("activation_checkpointing", "true" if out.activation_checkpointing else ""),
            ("cpu_offload", "true" if out.cpu_offload else ""),
        ):
            if given:
                raise ShardingRuleError(
                    name, given, "needs sharding=fsdp or sharding=hybrid (sharding is none)"
                )
    if out.activation_checkpointing and not layers:
        raise ShardingRuleError(
            "activation_checkpointing",
            "true",
            "needs shard_layers: the layer classes whose activations are recomputed",
        )
    return out


def check_cluster(s: ShardingSettings, num_nodes: int) -> None:
    """Rules that need the cluster's shape: hybrid shards within a node and replicates across
    nodes, so it needs at least two."""
    if s.mode == "hybrid" and num_nodes < 2:
        raise ShardingRuleError(
            "sharding",
            "hybrid",
            f"hybrid shards within a node and replicates across nodes, and this job has "
            f"{num_nodes} node; use fsdp on one node",
        )
