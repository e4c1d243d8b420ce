"""TensorBoardOutputConfig, emulated: the job's event files reach S3 while it runs.

SageMaker uploads what the container writes under `LocalPath` (default /opt/ml/output/tensorboard)
to `<S3OutputPath>/<job name>/tensorboard-output/<same relative path>` during the run and once
more at the end. Here every simulated host's folder is scanned on the emulator's log cadence; a
file is (re)uploaded when its size or mtime changed, so TensorBoard pointed at the prefix sees
the curves grow.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from localaws.job_s3 import parse_s3_uri
from localjob.hosts import SAGEMAKER_ROOT
from training import contract

DEFAULT_LOCAL_PATH = contract.TENSORBOARD_DIR


class TensorBoardUploader:
    """Syncs each host's TensorBoard folder to the job's TensorBoard S3 prefix."""

    def __init__(self, s3: Any, config: dict[str, str], job_name: str) -> None:
        self.s3 = s3
        self.bucket, key = parse_s3_uri(
            contract.tensorboard_s3_uri(config["S3OutputPath"], job_name)
        )
        self.key_prefix = key
        self.local_path = config.get("LocalPath") or DEFAULT_LOCAL_PATH
        self._sent: dict[Path, tuple[int, int]] = {}

    def folder(self, host_base_dir: Path) -> Path:
        """LocalPath inside one simulated host (its folder stands for /opt/ml)."""
        relative = Path(self.local_path).relative_to(SAGEMAKER_ROOT)
        return host_base_dir / relative

    def sync(self, host_base_dirs: Iterable[Path]) -> int:
        """Upload new or changed files; returns how many were sent."""
        sent = 0
        for base in host_base_dirs:
            root = self.folder(base)
            if not root.is_dir():
                continue
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                stat = path.stat()
                mark = (stat.st_size, stat.st_mtime_ns)
                if self._sent.get(path) == mark:
                    continue
                key = self.key_prefix + path.relative_to(root).as_posix()
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
                self._sent[path] = mark
                sent += 1
        return sent
