"""Start and stop the embedded AWS: moto's server on 127.0.0.1, in this process, extended.

In-process so the extensions (SageMaker jobs that run, the `.sync` integration, reconciling
state machines that CloudFormation created) act on moto's live backends; a real HTTP server so
the toolkit's own processes can download from S3 with `S3_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from localaws import (
    cfn_compat,
    event_delivery,
    json_errors,
    sagemaker_api,
    service_quotas,
    sfn_sagemaker,
)
from localaws.throttling import Throttle, Wsgi
from localaws.training_jobs import LocalSageMaker

ACCOUNT_ID = "123456789012"  # moto's default account
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class _MotoServer(ThreadedMotoServer):
    """moto's threaded server with a WSGI layer in front of its app (injected faults)."""

    def __init__(self, wrap: Callable[[Wsgi], Wsgi], *, port: int) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._wrap = wrap

    def _server_entry(self) -> None:  # ThreadedMotoServer's, with the app wrapped
        app = self._wrap(json_errors.wrap(DomainDispatcherApplication(create_backend_app)))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


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
        self.throttling = Throttle()
        self.sagemaker: LocalSageMaker | None = None

    def start(self) -> EmbeddedAws:
        for key, value in _FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
        # The interpreter logs every IsPresent miss as an exception; outcomes are read from
        # the execution instead.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        self._server = _MotoServer(self.throttling.wrap, port=self._port)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._port = port
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

    def throttle(self, operation: str, times: int) -> None:
        """The next `times` calls of `operation` (e.g. "DescribeStacks") are throttled."""
        self.throttling.arm(operation, times)

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """A network outage: nothing listens on the endpoint's port until the block ends; every
        resource and running job is kept."""
        assert self._server is not None, "start() first"
        self._server.stop()
        try:
            yield
        finally:
            self._server = _MotoServer(self.throttling.wrap, port=self._port)
            self._server.start()

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
