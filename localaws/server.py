"""Start and stop the embedded AWS: moto's server on 127.0.0.1, in this process, extended.

In-process so the extensions (SageMaker jobs that run, the `.sync` integration, reconciling
state machines that CloudFormation created) act on moto's live backends; a real HTTP server so
the toolkit's own processes can download from S3 with `S3_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from localaws import cfn_compat, event_delivery, sagemaker_api, service_quotas, sfn_sagemaker
from localaws.training_jobs import LocalSageMaker

ACCOUNT_ID = "123456789012"  # moto's default account
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class EmbeddedAws:
    """`with EmbeddedAws(work_dir) as aws: aws.client("s3")...` — everything on 127.0.0.1."""

    def __init__(
        self,
        work_dir: Path,
        *,
        region: str = "us-east-1",
        port: int = 0,
        echo: Callable[[str], None] | None = None,
    ):
        self.work_dir = work_dir
        self.region = region
        self._port = port
        self.echo = echo
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""
        self.sagemaker: LocalSageMaker | None = None

    def start(self) -> EmbeddedAws:
        for key, value in _FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
        # The interpreter logs every IsPresent miss as an exception; outcomes are read from
        # the execution instead.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto's ASL interpreter calls services on http://localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        self.sagemaker = LocalSageMaker(
            self.work_dir / "jobs",
            self.client,
            environment={"S3_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region},
            echo=self.echo,
        )
        sagemaker_api.install(self.sagemaker)
        sfn_sagemaker.install()
        cfn_compat.install()
        event_delivery.install()
        service_quotas.install()
        return self

    def stop(self) -> None:
        if self.sagemaker is not None:
            for name in list(self.sagemaker.runs):
                self.sagemaker.stop(name)
            self.sagemaker.wait_all(timeout_s=30)
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client bound to the emulator (never to AWS)."""
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )
