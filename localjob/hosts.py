"""The simulated instances of a local job and their SageMaker folders.

Each host is a folder standing for its /opt/ml (`SAGEMAKER_BASE_DIR`): input/config/*.json as
SageMaker writes them, input/data/<channel> (every channel FullyReplicated), model, output,
checkpoints. Hosts are named 127.0.0.1, 127.0.0.2, ...: distinct names that resolve to loopback
without touching /etc/hosts, sorted as SageMaker sorts hosts (so at most 9 hosts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from training import contract

MAX_LOCAL_HOSTS = 9
#: Where SageMaker mounts a host's folder; locally each host's SAGEMAKER_BASE_DIR.
SAGEMAKER_ROOT = contract.SAGEMAKER_ROOT
_GROUP = "homogeneousCluster"


def host_names(count: int) -> list[str]:
    """Loopback host names for `count` simulated instances, in SageMaker's sorted order."""
    if not 1 <= count <= MAX_LOCAL_HOSTS:
        raise ValueError(
            f"instance_count={count} cannot run locally: allowed 1..{MAX_LOCAL_HOSTS} hosts"
        )
    return [f"127.0.0.{i}" for i in range(1, count + 1)]


@dataclass
class HostRun:
    """One simulated instance: its folder, its `train` process and its log."""

    name: str
    base_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def checkpoint_dir(self) -> Path:
        return self.base_dir / "checkpoints"

    @property
    def failure_file(self) -> Path:
        return self.base_dir / "output" / "failure"

    def failure_reason(self) -> str | None:
        """The toolkit's own failure message (output/failure), first line kept short."""
        if not self.failure_file.exists():
            return None
        text = self.failure_file.read_text(errors="replace").strip()
        return text[-16384:] if text else None


def lay_out(
    host: HostRun,
    names: list[str],
    *,
    instance_type: str,
    input_mode: str,
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, str],
) -> None:
    """Write the host's folder: its config files and a copy of every channel's data."""
    config = host.base_dir / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    for sub in ("model", "output/data", "checkpoints", "code"):
        (host.base_dir / sub).mkdir(parents=True, exist_ok=True)
    _write_json(
        config / "hyperparameters.json",
        {k: host_path(v, host.base_dir) for k, v in hyperparameters.items()},
    )
    _write_json(config / "resourceconfig.json", _resource_config(host.name, names, instance_type))
    _write_json(
        config / "inputdataconfig.json",
        {
            name: {
                "TrainingInputMode": input_mode,
                "S3DistributionType": "FullyReplicated",
                "RecordWrapperType": "None",
            }
            for name in channels
        },
    )
    for name, source in channels.items():
        target = host.base_dir / "input" / "data" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)


def _resource_config(current: str, names: list[str], instance_type: str) -> dict[str, object]:
    return {
        "current_host": current,
        "current_instance_type": instance_type,
        "current_group_name": _GROUP,
        "hosts": names,
        "instance_groups": [
            {"instance_group_name": _GROUP, "instance_type": instance_type, "hosts": names}
        ],
        "network_interface_name": "lo",
    }


def host_path(value: str, base_dir: Path) -> str:
    """A hyperparameter naming a path under /opt/ml, as this host's folder; also when it is
    JSON-encoded (SDK 2.x sends `"\"/opt/ml/..."`; the toolkit json-decodes every value)."""
    try:
        decoded = json.loads(value)
    except ValueError:
        decoded = None
    if isinstance(decoded, str) and decoded != value:
        mapped = host_path(decoded, base_dir)
        return value if mapped == decoded else json.dumps(mapped)
    return contract.moved_path(value, str(base_dir))


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
