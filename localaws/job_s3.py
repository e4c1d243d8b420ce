"""A local training job's S3 traffic, as SageMaker moves it: the input channels down before
training, the checkpoints both ways while it runs, model.tar.gz up at the end."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/prefix` -> ("bucket", "key/prefix"); anything else is an error."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match:
        raise ValueError(f"{uri!r} is not an s3:// URI")
    return match.group(1), match.group(2)


def list_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


@dataclass(frozen=True)
class S3CheckpointStore:
    """CheckpointConfig.S3Uri: restored into each host at start, uploaded while training."""

    s3: Any  # boto3 S3 client bound to the emulator
    uri: str

    def restore(self, into: Path) -> None:
        bucket, prefix = parse_s3_uri(self.uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        for obj in list_objects(self.s3, bucket, prefix):
            target = into / obj["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, obj["Key"], str(target))

    def save(self, relative: str, path: Path) -> None:
        bucket, prefix = parse_s3_uri(self.uri)
        key = f"{prefix.rstrip('/')}/{relative}" if prefix else relative
        self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


class ChannelEmpty(RuntimeError):
    """An input channel's S3 prefix holds no objects: SageMaker fails the job before training."""


def download_channels(s3: Any, channels: list[dict[str, Any]], into: Path) -> dict[str, Path]:
    """Each InputDataConfig channel's objects under `into/<channel>`, keyed as SageMaker lays
    them out (relative to the prefix's folder); a channel with no objects is ChannelEmpty."""
    out = {}
    for channel in channels:
        name = channel["ChannelName"]
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        bucket, prefix = parse_s3_uri(uri)
        target = into / name
        target.mkdir(parents=True, exist_ok=True)
        objects = [o for o in list_objects(s3, bucket, prefix) if not o["Key"].endswith("/")]
        if not objects:
            raise ChannelEmpty(
                f"ClientError: Data download failed: No S3 objects found under S3 URL "
                f'"{uri}" given in input data source (channel {name})'
            )
        base = prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/"
        for obj in objects:
            rel = obj["Key"][len(base) :] if obj["Key"].startswith(base) else obj["Key"]
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(path))
        out[name] = target
    return out


def upload_model(s3: Any, output_path: str, job_name: str, model_dirs: Iterable[Path]) -> str:
    """Every host's model dir as one `<S3OutputPath>/<job>/output/model.tar.gz`; its URI."""
    bucket, prefix = parse_s3_uri(output_path)
    key = "/".join(p for p in (prefix.rstrip("/"), job_name) if p) + "/output/model.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for model_dir in model_dirs:
            for path in sorted(model_dir.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(model_dir).as_posix())
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"
