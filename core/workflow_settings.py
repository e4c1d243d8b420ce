"""What one deployment fixes about every run: the resources and the configured defaults.

`WorkflowSettings` feeds the state machine definition (infra/workflow_definition.py) and the
CreateTrainingJob request (core/job_request.py). The stack publishes it as the `JobSettings`
output, so the notebook path (trainops.sdk) builds its requests from the very same values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from core import efa
from core.schema.limits import JOB_NAME_MAX_LEN, MAX_USER_HYPERPARAMETERS
from core.schema.stack import DEFAULTS as _D
from training import contract

# --- Job names ---------------------------------------------------------------------------------
JOB_NAME_MAX = JOB_NAME_MAX_LEN  # the name the workflow's callers know it by
RUN_ID_LENGTH = 32  # MD5 hex


def run_id(execution_arn: str) -> str:
    """What RUN_ID_EXPRESSION computes: lowercase MD5 hex of the execution ARN."""
    return hashlib.md5(execution_arn.encode("utf-8")).hexdigest()


def job_name(prefix: str, execution_arn: str, attempt: int) -> str:
    """What MintJobName computes: `<prefix>-<md5(execution ARN)>-<attempt>`."""
    return f"{prefix}-{run_id(execution_arn)}-{attempt}"


def max_prefix_length(max_capacity_retries: int) -> int:
    return JOB_NAME_MAX - 1 - RUN_ID_LENGTH - 1 - len(str(max(0, max_capacity_retries)))


@dataclass(frozen=True)
class WorkflowSettings:
    """Everything the definition needs. String fields may be CDK tokens (rendered later)."""

    region: str
    role_arn: str
    image_uri: str
    code_s3_uri: str
    topic_arn: str
    data_bucket_name: str
    artifacts_bucket_name: str
    kms_key_arn: str
    security_group_ids: tuple[str, ...]
    subnet_ids: tuple[str, ...]
    job_name_prefix: str = _D["job_name_prefix"]
    instance_type: str = _D["instance_type"]
    instance_count: int = _D["instance_count"]
    spot: bool = _D["spot"]
    backend: str = "smddp"
    input_mode: str = _D["input_mode"]
    volume_size_gb: int = _D["volume_size_gb"]
    max_runtime_s: int = _D["max_runtime_s"]
    max_wait_s: int = _D["max_wait_s"]
    checkpointing: bool = _D["checkpointing"]
    keep_alive_s: int = _D["keep_alive_s"]
    encrypt_inter_container_traffic: bool = _D["encrypt_inter_container_traffic"]
    network_isolation: bool = _D["network_isolation"]
    #: Name of the bundle object inside the code channel (the asset key's last part).
    code_file_name: str = "sourcedir.tar.gz"
    max_capacity_retries: int = _D["max_capacity_retries"]
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    #: The task config (hyperparameter `config`) and the task metrics with MetricDefinitions.
    config: str = _D["config"]
    metrics: tuple[str, ...] = ()
    #: Extra input channels: name -> key prefix in the data bucket.
    channels: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The model package group a successful run registers its model in ("" = no registry).
    model_package_group: str = ""
    model_approval_status: str = _D["model_approval_status"]
    backoff_base_s: int = 300
    backoff_max_s: int = 3600
    #: EFA settings the image's toolkit would miss for instance_type (core/efa.py).
    efa_environment: Mapping[str, str] = field(default_factory=dict)
    #: "sync" for AWS; "request-response" only for tests in moto (no .sync there).
    integration: Literal["sync", "request-response"] = "sync"

    @classmethod
    def from_config(cls, config: Any, **resources: Any) -> WorkflowSettings:
        """Settings from a TrainingConfig plus the resource identifiers (tokens allowed)."""
        # Every field that is also a stack setting comes from the config.
        values = {f.name: getattr(config, f.name) for f in fields(cls) if f.name in _D}
        values["efa_environment"] = efa.plan(config.image_family, config.instance_type).environment
        return cls(**values, **resources)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON (tokens stay strings for CDK to resolve): the JobSettings output.

        `integration` and the backoff table belong to the state machine, not to a job request.
        """
        data = asdict(self)
        for name in _STATE_MACHINE_ONLY:
            data.pop(name)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkflowSettings:
        """Back from `to_json` (the deployed stack's output); unknown keys are refused."""
        known = {f.name for f in fields(cls)} - set(_STATE_MACHINE_ONLY)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"JobSettings has unknown keys {unknown}: upgrade this client")
        values = dict(data)
        for name in ("security_group_ids", "subnet_ids", "metrics"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    @property
    def default_hyperparameters(self) -> dict[str, str]:
        """The runner's defaults and the task config, then the configured ones on top."""
        merged = {**contract.runner_defaults(), "config": self.config}
        merged.update({str(k): str(v) for k, v in self.hyperparameters.items()})
        return merged

    @property
    def spot_max_wait_s(self) -> int:
        """MaxWaitTimeInSeconds for a spot run: the configured one, else twice the runtime."""
        if self.max_wait_s > self.max_runtime_s:
            return self.max_wait_s
        return 2 * self.max_runtime_s

    def check(self) -> None:
        """Synth-time checks of what the definition itself depends on."""
        limit = max_prefix_length(self.max_capacity_retries)
        prefix = self.job_name_prefix
        if not prefix or len(prefix) > limit or not all(c.isalnum() or c == "-" for c in prefix):
            raise ValueError(
                f"job_name_prefix {prefix!r} must be 1-{limit} characters of [a-zA-Z0-9-] "
                f"(job names are <prefix>-<32-char run id>-<attempt>, at most {JOB_NAME_MAX})"
            )
        if not prefix[0].isalnum() or not prefix[-1].isalnum() or not prefix.isascii():
            raise ValueError(f"job_name_prefix {prefix!r} must start and end with [a-zA-Z0-9]")
        if self.backend not in contract.BACKENDS:
            raise ValueError(f"backend {self.backend!r} must be one of {contract.BACKENDS}")
        if self.max_capacity_retries < 0:
            raise ValueError("max_capacity_retries must be >= 0")
        if not self.code_s3_uri.startswith("s3://") and "${Token" not in self.code_s3_uri:
            raise ValueError(f"code_s3_uri must be an s3:// URI, got {self.code_s3_uri!r}")
        if len(self.default_hyperparameters) > MAX_USER_HYPERPARAMETERS:
            raise ValueError(f"at most {MAX_USER_HYPERPARAMETERS} default hyperparameters")


#: Fields of WorkflowSettings that shape the state machine only, never a job request.
_STATE_MACHINE_ONLY = ("integration", "backoff_base_s", "backoff_max_s")
