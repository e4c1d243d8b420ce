"""AWS clients for the operator side, for real AWS and the embedded emulator alike.

One switch, `endpoint_url` (or TRAINOPS_ENDPOINT_URL), points every client at the emulator;
without it the standard credential chain and region apply. Stack outputs are looked up by stack
name, so nobody copies ARNs around.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from infra import outputs

ENDPOINT_ENV = "TRAINOPS_ENDPOINT_URL"


class StackNotFound(RuntimeError):
    """The named stack is not deployed where we looked (account, region, endpoint)."""


@dataclass
class Aws:
    """Lazily created clients sharing one session, region and endpoint."""

    region: str | None = None
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.endpoint_url = self.endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        if self.endpoint_url:
            # The emulator takes any credentials; never let boto3 look for real ones.
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        self.region = (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or boto3.session.Session().region_name
            or "us-east-1"
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            extra: dict[str, Any] = {}
            if self.endpoint_url:
                extra = {
                    "endpoint_url": self.endpoint_url,
                    "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                    "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                }
            self._clients[service] = boto3.client(
                service,
                region_name=self.region,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
                **extra,
            )
        return self._clients[service]


@dataclass(frozen=True)
class StackOutputs:
    """What the operator needs from the deployed stack."""

    stack_name: str
    values: dict[str, str]

    @property
    def state_machine_arn(self) -> str:
        return self._get(outputs.STATE_MACHINE_ARN)

    @property
    def data_bucket(self) -> str:
        return self._get(outputs.DATA_BUCKET)

    @property
    def artifacts_bucket(self) -> str:
        return self._get(outputs.ARTIFACTS_BUCKET)

    @property
    def train_data_uri(self) -> str:
        return self._get(outputs.TRAIN_DATA_URI)

    def _get(self, key: str) -> str:
        try:
            return self.values[key]
        except KeyError:
            raise StackNotFound(
                f"stack {self.stack_name} has no output {key!r} (outputs: "
                f"{', '.join(sorted(self.values)) or 'none'}): redeploy it with this version"
            ) from None


def stack_outputs(aws: Aws, stack_name: str) -> StackOutputs:
    """Outputs of a deployed stack, by name."""
    cfn = aws.client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        where = aws.endpoint_url or f"region {aws.region}"
        raise StackNotFound(f"stack {stack_name!r} not found in {where}: {exc}") from None
    values = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackOutputs(stack_name, values)
