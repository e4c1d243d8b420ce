"""The SageMaker container contract, read once into one typed, frozen object.

Inside a training job the toolkit sets SM_* variables (hosts, GPUs, channels, folders, framework
parameters) and passes the user hyperparameters as `--key value` arguments, where each value may
still be a JSON-encoded string (`"\\"linear\\""`). Outside SageMaker every field has a local
default: one host `algo-1`, folders under `.runs/local` (or `$TRAINING_LOCAL_ROOT`).

This module imports no torch at import time; `read()` asks torch for the GPU count only when
SM_NUM_GPUS is absent (local runs).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType

from training import contract


class ConfigError(ValueError):
    """A bad setting (hyperparameter, environment, cluster shape); the message is one line."""


@dataclass(frozen=True)
class Hyperparameters:
    """The user hyperparameters of contract.HYPERPARAMETERS, typed and validated."""

    epochs: int
    batch_size: int
    lr: float
    lr_scaling: str
    precision: str
    seed: int
    num_workers: int
    checkpoint_every_n_steps: int
    dist_timeout_s: int
    process_group_backend: str
    max_steps: int

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Hyperparameters:
        """Defaults from the contract, overridden by `values`; raises ConfigError (one line)."""
        merged = {name: spec.default for name, spec in contract.HYPERPARAMETERS.items()}
        merged.update(values)
        typed = {}
        for name, raw in merged.items():
            try:
                typed[name] = contract.parse_hyperparameter(name, raw)
            except contract.HyperparameterError as err:
                raise ConfigError(str(err)) from None
        return cls(**typed)

    def as_dict(self) -> dict[str, int | float | str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def decode_value(raw: str) -> str:
    """The toolkit convention: a value may be JSON-encoded (`"\\"linear\\""`, `"10"`); decode
    JSON strings, keep anything else as written."""
    try:
        decoded = json.loads(raw)
    except (ValueError, TypeError):
        return raw
    return decoded if isinstance(decoded, str) else raw


def parse_argv(argv: Sequence[str]) -> dict[str, str]:
    """`--key value` / `--key=value` pairs (the toolkit's form of hyperparameters) to a dict."""
    out: dict[str, str] = {}
    i = 0
    args = list(argv)
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected argument {token!r}: expected --key value pairs")
        key, sep, value = token[2:].partition("=")
        if not sep:
            if i + 1 >= len(args):
                raise ConfigError(f"argument --{key} has no value: expected --{key} VALUE")
            value = args[i + 1]
            i += 1
        key = key.replace("-", "_")
        if key in out:
            raise ConfigError(f"hyperparameter {key} given twice ({out[key]!r}, {value!r})")
        out[key] = decode_value(value)
        i += 1
    return out


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _json_env(env: Mapping[str, str], key: str, default: object) -> object:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not valid JSON") from None


def _int_env(env: Mapping[str, str], key: str) -> int | None:
    raw = env.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is invalid: expected an integer >= 0") from None
    if value < 0:
        raise ConfigError(f"{key}={raw!r} is invalid: expected an integer >= 0")
    return value


@dataclass(frozen=True)
class SageMakerEnv:
    """Everything the script needs from the container contract, captured once."""

    on_sagemaker: bool
    hosts: tuple[str, ...]
    current_host: str
    num_gpus: int
    num_cpus: int
    channels: Mapping[str, Path]
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    cache_dir: Path
    hyperparameters: Hyperparameters
    framework_params: Mapping[str, object]

    @property
    def smddp_launcher(self) -> bool:
        """True when the job was started with the SMDDP launcher flag (mpirun + smddprun)."""
        return _truthy(self.framework_params.get(contract.LAUNCHER_FLAGS["smddp"], False))

    @property
    def torchrun_launcher(self) -> bool:
        return _truthy(self.framework_params.get(contract.LAUNCHER_FLAGS["torchrun"], False))

    @property
    def host_rank(self) -> int:
        return self.hosts.index(self.current_host)


def _local_gpu_count() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is always there in the images
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def read(
    argv: Sequence[str], env: Mapping[str, str] | None = None, *, gpu_count: int | None = None
) -> SageMakerEnv:
    """Parse the SM_* environment and the hyperparameter arguments; raises ConfigError."""
    env = os.environ if env is None else env
    hps = Hyperparameters.from_mapping(parse_argv(argv))
    on_sagemaker = "SM_TRAINING_ENV" in env or "SM_MODEL_DIR" in env
    local_root = Path(env.get(contract.LOCAL_ROOT_ENV) or ".runs/local").absolute()

    hosts_value = _json_env(env, "SM_HOSTS", ["algo-1"])
    if (
        not isinstance(hosts_value, list)
        or not hosts_value
        or not all(isinstance(h, str) and h for h in hosts_value)
    ):
        raise ConfigError(f"SM_HOSTS={env.get('SM_HOSTS')!r} is invalid: expected a JSON list")
    hosts = tuple(hosts_value)
    if len(set(hosts)) != len(hosts):
        raise ConfigError(f"SM_HOSTS={env.get('SM_HOSTS')!r} lists a host twice")
    current = env.get("SM_CURRENT_HOST") or hosts[0]
    if current not in hosts:
        raise ConfigError(f"SM_CURRENT_HOST={current!r} is not in SM_HOSTS {list(hosts)}")

    num_gpus = _int_env(env, "SM_NUM_GPUS")
    if num_gpus is None:
        num_gpus = _local_gpu_count() if gpu_count is None else gpu_count
    num_cpus = _int_env(env, "SM_NUM_CPUS")
    if num_cpus is None:
        num_cpus = os.cpu_count() or 1

    names = _json_env(env, "SM_CHANNELS", None)
    if names is None:
        names = sorted(k[len("SM_CHANNEL_") :].lower() for k in env if k.startswith("SM_CHANNEL_"))
    if not isinstance(names, list):
        raise ConfigError(f"SM_CHANNELS={env.get('SM_CHANNELS')!r} is invalid: expected a list")
    channels: dict[str, Path] = {}
    for name in names:
        path = env.get(f"SM_CHANNEL_{str(name).upper()}")
        if path:
            channels[str(name)] = Path(path)

    def folder(key: str, local: str) -> Path:
        return Path(env[key]) if env.get(key) else local_root / local

    if env.get(contract.CHECKPOINT_DIR_ENV):
        checkpoint_dir = Path(env[contract.CHECKPOINT_DIR_ENV])
    elif on_sagemaker and env.get("SAGEMAKER_BASE_DIR"):
        checkpoint_dir = Path(env["SAGEMAKER_BASE_DIR"]) / "checkpoints"
    elif on_sagemaker:
        checkpoint_dir = Path(contract.CHECKPOINT_DIR)
    else:
        checkpoint_dir = local_root / "checkpoints"

    if env.get(contract.CACHE_DIR_ENV):
        cache_dir = Path(env[contract.CACHE_DIR_ENV])
    elif on_sagemaker:
        # Per host, so simulated hosts sharing one /tmp each prepare their own copy.
        cache_dir = Path(tempfile.gettempdir()) / "training-cache" / current
    else:
        cache_dir = local_root / "cache"

    framework = _json_env(env, "SM_FRAMEWORK_PARAMS", {})
    if not isinstance(framework, dict):
        raise ConfigError(f"SM_FRAMEWORK_PARAMS={env.get('SM_FRAMEWORK_PARAMS')!r}: not a dict")

    return SageMakerEnv(
        on_sagemaker=on_sagemaker,
        hosts=hosts,
        current_host=current,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        channels=MappingProxyType(channels),
        model_dir=folder("SM_MODEL_DIR", "model"),
        output_data_dir=folder("SM_OUTPUT_DATA_DIR", "output/data"),
        checkpoint_dir=checkpoint_dir,
        cache_dir=cache_dir,
        hyperparameters=hps,
        framework_params=MappingProxyType(dict(framework)),
    )
