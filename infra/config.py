"""The one typed configuration object of the stack, and all of its validation.

Config flows one way: cdk.json context (and `-c` overrides) -> `TrainingConfig.from_context`
-> constructs. This module must not import aws_cdk, so the operator CLI can apply the same rules
to its overrides before it sends anything. Every error is one line naming key, value and what
is allowed.

SKELETON: field names are the interface other modules code against; validation is being filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A bad configuration value; the message is one line: key, value, what is allowed."""


@dataclass(frozen=True)
class TrainingConfig:
    """Validated stack configuration (see cdk.json `context.training` for the defaults)."""

    stack_name: str = "SageMakerTraining"
    job_name_prefix: str = "lightning"  # training-job names: <prefix>-<execution>-<attempt>
    instance_type: str = "ml.p4d.24xlarge"
    instance_count: int = 2
    backend: str = "smddp"  # resolved: smddp | torchrun | none ("auto" resolved at load time)
    framework_version: str = "2.3.0"  # PyTorch DLC version
    py_version: str = "py311"
    volume_size_gb: int = 100
    max_runtime_s: int = 86400
    spot: bool = False
    max_wait_s: int = 0  # > max_runtime_s when spot
    checkpointing: bool = True
    keep_alive_s: int = 0  # warm pool; only without spot
    input_mode: str = "FastFile"  # File | FastFile | Pipe
    hyperparameters: dict[str, str] = field(default_factory=dict)
    schedule_cron: str | None = "cron(0 3 ? * SUN *)"  # None = no schedule
    schedule_timezone: str = "UTC"
    schedule_flexible_window_min: int = 0
    notification_email: str | None = None
    vpc_cidr: str = "10.42.0.0/16"
    max_azs: int = 2
    removal_policy: str = "retain"  # retain | destroy
    encrypt_inter_container_traffic: bool = False
    max_capacity_retries: int = 3
    tags: dict[str, str] = field(default_factory=dict)
