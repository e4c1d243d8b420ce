"""What the AWS side answered, as one line that says what happened and what to do.

Every operator command (and `trainops.sdk.Stack`) meets AWS through `trainops.aws.Aws`; when a
call fails there (no credentials, an expired session, an endpoint that does not answer, a denied
action, throttling that outlasted the retries), `explain` turns botocore's exception into the
line the user reads instead of a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse

import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

#: What botocore raises: its own errors (no credentials, no connection, ...) and AWS's answers.
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
#: Network failures a long-running poll (watch) may outlast.
NETWORK_ERRORS: tuple[type[Exception], ...] = (
    EndpointConnectionError,
    ConnectionClosedError,
    HTTPClientError,
)
#: Error codes of credentials AWS does not accept (expired, unknown, badly signed).
REJECTED_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "AuthFailure",
    "RequestExpired",
}
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_NOT_AUTHORIZED = re.compile(r"User: (\S+) is not authorized to perform: ([\w-]+:[\w*-]+)")
#: `Context.command` of `trainops.sdk.Stack` (a notebook, not a subcommand).
SDK_COMMAND = "sdk"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


@dataclass(frozen=True)
class Context:
    """What the failing command was doing, for the line: `trainops <command>`, its stack and the
    profile it was given (None: AWS_PROFILE or the default)."""

    command: str
    stack_name: str | None = None
    profile: str | None = None

    @property
    def profile_name(self) -> str:
        return self.profile or os.environ.get("AWS_PROFILE") or "default"

    @property
    def profile_source(self) -> str:
        if self.profile:
            return "profile=" if self.command == SDK_COMMAND else "--profile"
        return "AWS_PROFILE" if os.environ.get("AWS_PROFILE") else "the default"


def explain(exc: BaseException, ctx: Context) -> str:
    """One line for an exception from botocore (AWS_ERRORS); the exception's own text otherwise."""
    if isinstance(exc, ClientError):
        return _client_error(exc, ctx)
    if isinstance(exc, ProfileNotFound):
        return _profile_not_found(ctx)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            f"no AWS credentials found for profile {ctx.profile_name} ({exc}): configure them "
            "with `aws configure` or `aws configure sso` (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY), name another with --profile, or use the emulator with "
            "--endpoint-url (`python -m trainops emulator`)"
        )
    if isinstance(exc, SSOError | TokenRetrievalError | CredentialRetrievalError):
        return _credentials_rejected(ctx, type(exc).__name__, str(exc))
    if isinstance(exc, NETWORK_ERRORS):
        return unreachable(exc)
    if isinstance(exc, NoRegionError):
        return "no AWS region set: pass --region, or set AWS_REGION or the profile's region"
    return f"AWS client error during `trainops {ctx.command}`: {exc}"


def unreachable(exc: BaseException) -> str:
    """The URL that did not answer and what to do about it."""
    url = getattr(exc, "kwargs", {}).get("endpoint_url") or "the AWS endpoint"
    what = f"cannot reach {url} ({type(exc).__name__})"
    if urlparse(url).hostname in _LOCAL_HOSTS:
        return (
            f"{what}: no emulator answers there; start one with `python -m trainops emulator` "
            "(it prints its URL) or fix --endpoint-url / TRAINOPS_ENDPOINT_URL"
        )
    return f"{what}: check the network (proxy, VPN, firewall) and the region, then run it again"


def is_throttling(exc: ClientError) -> bool:
    """AWS's throttling codes, as the SDK's standard retry mode recognises them."""
    context = RetryContext(attempt_number=1, parsed_response=exc.response)
    return ThrottledRetryableChecker().is_retryable(context)


def _client_error(exc: ClientError, ctx: Context) -> str:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    operation = exc.operation_name
    if code in REJECTED_CREDENTIALS:
        return _credentials_rejected(ctx, code, message)
    if code in ACCESS_DENIED:
        return _access_denied(ctx, code, message, operation)
    if is_throttling(exc):
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        return (
            f"AWS throttled {operation} ({code}) during `trainops {ctx.command}` and "
            f"{attempts} attempts did not get through: wait a minute and run it again "
            "(more attempts: AWS_MAX_ATTEMPTS; a higher rate: Service Quotas)"
        )
    return f"AWS refused {operation} during `trainops {ctx.command}`: {code}: {message}"


def _credentials_rejected(ctx: Context, code: str, message: str) -> str:
    profile = ctx.profile_name
    if _uses_sso(profile):
        fix = f"sign in again with `aws sso login --profile {profile}`"
    else:
        fix = (
            f"replace the expired or wrong keys (`aws configure --profile {profile}`), or sign "
            f"in with `aws sso login --profile {profile}` if it is an SSO profile"
        )
    return f"AWS did not accept the credentials of profile {profile} ({code}: {message}): {fix}"


def _uses_sso(profile: str) -> bool:
    try:
        config = botocore.session.Session(profile=profile).get_scoped_config()
    except ProfileNotFound:
        return False
    return "sso_start_url" in config or "sso_session" in config


def _access_denied(ctx: Context, code: str, message: str, operation: str) -> str:
    found = _NOT_AUTHORIZED.search(message)
    principal, action = found.groups() if found else ("your principal", operation)
    line = f"{principal} may not call {action} ({code})"
    if "explicit deny" in message:
        return f"{line}: an explicit deny blocks it ({message}); ask whoever manages that policy"
    role = principal.split(":assumed-role/", 1)[-1].split("/", 1)[0]
    if ":assumed-role/" in principal and ctx.stack_name and role.startswith(ctx.stack_name):
        return f"{line}: the stack's role {role} must allow it; redeploy with `npx cdk deploy`"
    return (
        f"{line}: an IAM policy of {principal} (your own user or role, not one of the stack's) "
        f"must allow {action}; the README lists what trainops calls"
    )


def _profile_not_found(ctx: Context) -> str:
    known = botocore.session.Session(profile=None).available_profiles
    config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    return (
        f"AWS profile {ctx.profile_name!r} (from {ctx.profile_source}) is not in {config} or "
        f"the credentials file (profiles there: {', '.join(sorted(known)) or 'none'}): create "
        f"it with `aws configure --profile {ctx.profile_name}`, or name another with --profile"
    )
