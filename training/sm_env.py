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
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from training import contract
from training.errors import ConfigError


@dataclass(frozen=True)
class Hyperparameters:
    """The runner's hyperparameters (contract.HYPERPARAMETERS) typed and validated, plus the
    dotted overrides of the task config (`model.init_args.lr` -> "3e-5"), still strings: the
    task's class signatures check those (training/task.py)."""

    config: str
    epochs: int | None
    max_steps: int | None
    batch_size: int | None
    num_workers: int | None
    lr: float | None
    lr_key: str
    lr_scaling: str
    precision: str
    seed: int
    checkpoint_every_n_steps: int
    checkpoint_every_minutes: float
    startup_timeout_s: int
    stall_timeout_s: int
    dist_timeout_s: int
    process_group_backend: str
    sharding: str
    shard_layers: str | None
    activation_checkpointing: str
    cpu_offload: str
    overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Hyperparameters:
        """Defaults from the contract, overridden by `values`; raises ConfigError (one line)."""
        merged: dict[str, str | None] = {k: s.default for k, s in contract.HYPERPARAMETERS.items()}
        overrides: dict[str, str] = {}
        for name, raw in values.items():
            if contract.is_override_key(name):
                overrides[name] = str(_parsed(name, raw))
            else:
                merged[name] = raw  # an unknown key fails in _parsed below
        typed_values = {n: None if raw is None else _parsed(n, raw) for n, raw in merged.items()}
        out = cls(**typed_values, overrides=MappingProxyType(overrides))  # type: ignore[arg-type]
        out.config_overrides()  # a shortcut and its target both given: fail now
        return out

    def config_overrides(self, *, with_lr: bool = True) -> dict[str, str]:
        """Every override of the task config: the dotted keys, then the shortcuts' targets.
        `with_lr=False` leaves out the `lr` shortcut (training/task.py sets it at the learning
        rate's key, which only the parsed config tells)."""
        out = dict(self.overrides)
        for name, spec in contract.HYPERPARAMETERS.items():
            value = getattr(self, name)
            if spec.target is None or value is None or (name == "lr" and not with_lr):
                continue
            target = self.lr_key if spec.target == "<lr_key>" else spec.target
            if target in out:
                raise ConfigError(
                    f"hyperparameters {name}={value!r} and {target}={out[target]!r} set the same "
                    f"config key: keep one"
                )
            out[target] = str(value)
        return out

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "overrides"
        }
        out = {k: v for k, v in out.items() if v is not None}
        out.update(self.overrides)
        return out


def _parsed(name: str, raw: str) -> int | float | str:
    try:
        return contract.parse_hyperparameter(name, raw)
    except contract.HyperparameterError as err:
        raise ConfigError(str(err)) from None


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
    job_name: str = "local"

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


def read_channels(env: Mapping[str, str]) -> dict[str, Path]:
    """Channel name -> folder, from SM_CHANNELS / SM_CHANNEL_<NAME> (tasks read these too)."""
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
    return channels


def node_cache_dir(env: Mapping[str, str]) -> Path:
    """A folder local to this host for prepared data (hosts share no file system)."""
    if env.get(contract.CACHE_DIR_ENV):
        return Path(env[contract.CACHE_DIR_ENV])
    if "SM_TRAINING_ENV" in env or "SM_MODEL_DIR" in env:
        # Per host, so simulated hosts sharing one /tmp each prepare their own copy.
        current = env.get("SM_CURRENT_HOST") or "algo-1"
        return Path(tempfile.gettempdir()) / "training-cache" / current
    local_root = Path(env.get(contract.LOCAL_ROOT_ENV) or ".runs/local").absolute()
    return local_root / "cache"


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

    channels = read_channels(env)

    def folder(key: str, local: str) -> Path:
        return Path(env[key]) if env.get(key) else local_root / local

    if env.get(contract.CHECKPOINT_DIR_ENV):
        checkpoint_dir = Path(env[contract.CHECKPOINT_DIR_ENV])
    elif on_sagemaker and env.get(contract.BASE_DIR_ENV):
        checkpoint_dir = Path(env[contract.BASE_DIR_ENV]) / "checkpoints"
    elif on_sagemaker:
        checkpoint_dir = Path(contract.CHECKPOINT_DIR)
    else:
        checkpoint_dir = local_root / "checkpoints"

    cache_dir = node_cache_dir(env)

    framework = _json_env(env, "SM_FRAMEWORK_PARAMS", {})
    if not isinstance(framework, dict):
        raise ConfigError(f"SM_FRAMEWORK_PARAMS={env.get('SM_FRAMEWORK_PARAMS')!r}: not a dict")

    training_env = _json_env(env, "SM_TRAINING_ENV", {})
    job_name = (
        str(training_env.get("job_name") or "local") if isinstance(training_env, dict) else "local"
    )

    return SageMakerEnv(
        job_name=job_name,
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
