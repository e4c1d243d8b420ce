"""AWS clients for the operator side, for real AWS and the embedded emulator alike.

One switch, `endpoint_url` (or TRAINOPS_ENDPOINT_URL), points every client at the emulator;
without it the standard credential chain applies, for `profile` (or AWS_PROFILE) and its region.
Every client retries the same way (RETRY_MODE, MAX_ATTEMPTS) unless the user's AWS config says
otherwise. Stack outputs are looked up by stack name, so nobody copies ARNs around. What the AWS
side answers when something is wrong becomes one line in trainops.aws_errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from core import outputs

ENDPOINT_ENV = "TRAINOPS_ENDPOINT_URL"
#: How every operator client retries throttling and transient network errors (the AWS SDKs'
#: "standard" mode: exponential backoff with jitter), and how many calls one request may make in
#: all, the first included. AWS_RETRY_MODE / AWS_MAX_ATTEMPTS (or retry_mode / max_attempts in
#: the profile) override both.
RETRY_MODE = "standard"
MAX_ATTEMPTS = 5
#: One loader for every session: each service model is read from disk once per process.
_LOADER = botocore.loaders.create_loader()


class StackNotFound(RuntimeError):
    """The named stack is not deployed where we looked (account, region, endpoint)."""


@dataclass
class Aws:
    """Lazily created clients sharing one session (profile), region and endpoint."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.endpoint_url = self.endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        if self.endpoint_url:
            # The emulator takes any credentials; never let boto3 look for real ones.
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        self.profile = self.profile or os.environ.get("AWS_PROFILE") or None
        self.core = botocore.session.Session(profile=self.profile)
        self.core.register_component("data_loader", _LOADER)
        self.session = boto3.session.Session(botocore_session=self.core)
        self.region = (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or self.session.region_name  # the profile's region; ProfileNotFound for a typo
            or "us-east-1"
        )

    @property
    def where(self) -> str:
        """Where requests go, for the first line of a command: profile and region, or the
        emulator's URL."""
        if self.endpoint_url:
            return f"emulator {self.endpoint_url}, region {self.region}"
        return f"profile {self.profile or 'default'}, region {self.region}"

    def retries(self) -> dict[str, Any]:
        """RETRY_MODE and MAX_ATTEMPTS unless the environment or the profile sets its own."""
        scoped = self.core.get_scoped_config()
        mode = os.environ.get("AWS_RETRY_MODE") or scoped.get("retry_mode") or RETRY_MODE
        attempts = self.core.get_config_variable("max_attempts") or MAX_ATTEMPTS
        return {"mode": mode, "total_max_attempts": int(attempts)}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            extra: dict[str, Any] = {}
            if self.endpoint_url:
                extra = {
                    "endpoint_url": self.endpoint_url,
                    "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                    "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                    "aws_session_token": os.environ.get("AWS_SESSION_TOKEN"),
                }
            self._clients[service] = self.session.client(
                service,
                region_name=self.region,
                config=Config(retries=self.retries()),
                **extra,
            )
        return self._clients[service]


class _Output:
    """A stack output the operator cannot do without, read as an attribute (on the class:
    its output key)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __get__(self, stack: StackOutputs | None, owner: type) -> str:
        return self.key if stack is None else stack._get(self.key)


@dataclass(frozen=True)
class StackOutputs:
    """What the operator needs from the deployed stack."""

    stack_name: str
    values: dict[str, str]

    state_machine_arn = _Output(outputs.STATE_MACHINE_ARN)
    data_bucket = _Output(outputs.DATA_BUCKET)
    artifacts_bucket = _Output(outputs.ARTIFACTS_BUCKET)
    train_data_uri = _Output(outputs.TRAIN_DATA_URI)

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
        error = exc.response.get("Error", {})
        if error.get("Code") != "ValidationError" or "does not exist" not in error.get(
            "Message", ""
        ):
            raise  # denied, throttled, ...: trainops.aws_errors says what
        raise StackNotFound(
            f"stack {stack_name!r} not found ({aws.where}): deploy it with `npx cdk deploy`, "
            "or name the deployed one with --stack-name NAME / --region REGION"
        ) from None
    values = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackOutputs(stack_name, values)
