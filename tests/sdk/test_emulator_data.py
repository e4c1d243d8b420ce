"""`trainops emulator --data DIR`: a user's own train channel, in place of the default dataset
(which once landed beside it under train/, read by any data module that globs its channel)."""

from __future__ import annotations

import boto3
import pytest

from tests import timing
from tests.sdk.test_notebook_e2e import Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(timing.bound(600))]


def test_the_data_folder_is_the_train_channel_and_nothing_else(tmp_path):
    data = tmp_path / "train"
    for rel in ("clean/clean_fileid_0.wav", "noisy/book_00000_fileid_0.wav"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(b"RIFF")
    server = Server(tmp_path, "--data", str(data))
    try:
        bucket = server.outputs["DataBucketName"]
        prefix = server.outputs["TrainPrefix"]
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        assert sorted(o["Key"] for o in listed) == [
            f"{prefix}clean/clean_fileid_0.wav",
            f"{prefix}noisy/book_00000_fileid_0.wav",
        ]
    finally:
        assert server.stop() == 0
