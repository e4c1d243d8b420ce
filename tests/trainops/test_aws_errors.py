"""First contact with AWS: each common failure, produced for real, answered in one exact line.

No mock stands in for AWS here: the conditions are a port nobody listens on, an environment with
no credentials, an AWS config without the named profile, an SSO profile whose cached session has
expired, and the embedded AWS (moto on 127.0.0.1) with a stack that is not there, throttling
injected in front of it, and moto's IAM enforcement on.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from core import outputs
from localaws.server import EmbeddedAws
from tests import timing
from trainops import cli

REPO = Path(__file__).resolve().parents[2]
STACK = "FirstContact"
ACCOUNT = "123456789012"
_FIX_CREDENTIALS = (
    "configure them with `aws configure` or `aws configure sso` (or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY), name another with --profile, or use the emulator with "
    "--endpoint-url (`python -m trainops emulator`)"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    """The command's only stderr line that is not its `trainops <command>:` header."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("trainops ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with no ~/.aws: only what the test writes there exists."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".aws").mkdir()
    return tmp_path / ".aws"


# --- without any server ------------------------------------------------------------------------
def test_unreachable_port_names_the_url_and_the_emulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    url = f"http://127.0.0.1:{port}"
    for command in ("list", "watch", "stop", "models", "preflight", "cost"):
        code, _, err = run(capsys, command, "--endpoint-url", url)
        assert code == 1
        assert one_error(err) == (
            f"error: cannot reach {url}/ (EndpointConnectionError): no emulator answers there; "
            "start one with `python -m trainops emulator` (it prints its URL) or fix "
            "--endpoint-url / TRAINOPS_ENDPOINT_URL"
        ), command
    code, _, err = run(capsys, "list", "--endpoint-url", url, "-v")
    assert code == 1 and "Traceback" in err and "EndpointConnectionError" in err


def test_no_credentials_says_how_to_configure_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_aws_config: Path
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    code, _, err = run(capsys, "list")
    assert code == 1
    assert one_error(err) == (
        "error: no AWS credentials found for profile default (Unable to locate credentials): "
        + _FIX_CREDENTIALS
    )


def test_profile_that_does_not_exist(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_aws_config: Path
) -> None:
    (no_aws_config / "config").write_text("[profile dev]\nregion = eu-west-1\n")
    code, _, err = run(capsys, "list", "--profile", "prod")
    assert code == 1
    assert one_error(err) == (
        "error: AWS profile 'prod' (from --profile) is not in ~/.aws/config or the credentials "
        "file (profiles there: dev): create it with `aws configure --profile prod`, or name "
        "another with --profile"
    )
    monkeypatch.setenv("AWS_PROFILE", "prod")
    code, _, err = run(capsys, "watch")
    assert code == 1
    assert "'prod' (from AWS_PROFILE) is not in" in one_error(err)


def test_expired_sso_session_names_the_login_command(no_aws_config: Path) -> None:
    start_url = "https://example.awsapps.com/start"
    (no_aws_config / "config").write_text(
        f"[profile dev]\nsso_start_url = {start_url}\nsso_region = us-east-1\n"
        f"sso_account_id = {ACCOUNT}\nsso_role_name = Admin\nregion = eu-west-1\n"
    )
    cache = no_aws_config / "sso" / "cache"  # where `aws sso login` leaves the session
    cache.mkdir(parents=True)
    token = {"startUrl": start_url, "accessToken": "t", "expiresAt": "2020-01-01T00:00:00Z"}
    (cache / f"{hashlib.sha1(start_url.encode()).hexdigest()}.json").write_text(json.dumps(token))
    # A process of its own: botocore reads the SSO cache folder from HOME at import.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(no_aws_config.parent), AWS_EC2_METADATA_DISABLED="true")
    done = subprocess.run(
        [sys.executable, "-m", "trainops", "watch", "--profile", "dev"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timing.bound(60),
        cwd=REPO,
    )
    assert done.returncode == 1
    # The first line says which profile and region the command uses (the profile's region).
    assert done.stderr.splitlines()[0] == (
        "trainops watch: stack SageMakerTraining, profile dev, region eu-west-1"
    )
    assert one_error(done.stderr) == (
        "error: AWS did not accept the credentials of profile dev (UnauthorizedSSOTokenError: "
        "The SSO session associated with this profile has expired or is otherwise invalid. To "
        "refresh this SSO session run aws sso login with the corresponding profile.): sign in "
        "again with `aws sso login --profile dev`"
    )


# --- against the embedded AWS ------------------------------------------------------------------
@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    """The embedded AWS with a small stack whose StateMachineArn output names a state machine
    that waits an hour (runs stay RUNNING until stopped)."""
    with EmbeddedAws(tmp_path_factory.mktemp("aws")) as aws:
        requests.post(f"{aws.endpoint_url}/moto-api/reset", timeout=timing.bound(10))
        definition = {
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}},
        }
        machine = aws.client("stepfunctions").create_state_machine(
            name="waits",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/waits",
        )["stateMachineArn"]
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {outputs.STATE_MACHINE_ARN: {"Value": machine}},
        }
        aws.client("cloudformation").create_stack(
            StackName=STACK, TemplateBody=json.dumps(template)
        )
        try:
            yield aws
        finally:
            requests.post(f"{aws.endpoint_url}/moto-api/reset", timeout=timing.bound(10))


def test_stack_that_does_not_exist(
    emulator: EmbeddedAws, capsys: pytest.CaptureFixture[str]
) -> None:
    url = emulator.endpoint_url
    code, out, err = run(capsys, "list", "--endpoint-url", url, "--stack-name", "Nope")
    assert code == 1 and out == ""
    assert one_error(err) == (
        f"error: stack 'Nope' not found (emulator {url}, region us-east-1): deploy it with "
        "`npx cdk deploy`, or name the deployed one with --stack-name NAME / --region REGION"
    )
    code, out, err = run(capsys, "list", "--endpoint-url", url, "--stack-name", STACK)
    assert (code, err) == (0, ""), err
    assert out.split() == ["NAME", "STATUS", "SECONDS", "ATTEMPTS", "RESULT"]


def test_throttling_is_retried_then_named_when_it_outlasts_the_retries(
    emulator: EmbeddedAws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    args = ("list", "--endpoint-url", emulator.endpoint_url, "--stack-name", STACK)
    emulator.throttle("DescribeStacks", 1)  # within the retries: nobody notices
    code, _, err = run(capsys, *args)
    assert (code, err) == (0, "")
    assert emulator.throttling.refused["DescribeStacks"] == 1
    for operation, code_name in (
        ("DescribeStacks", "Throttling"),
        ("ListExecutions", "ThrottlingException"),
    ):
        emulator.throttle(operation, 2)
        code, _, err = run(capsys, *args)
        assert code == 1
        assert one_error(err) == (
            f"error: AWS throttled {operation} ({code_name}) during `trainops list` and 2 "
            "attempts did not get through: wait a minute and run it again (more attempts: "
            "AWS_MAX_ATTEMPTS; a higher rate: Service Quotas)"
        )


@pytest.fixture
def iam_enforced(emulator: EmbeddedAws) -> Iterator[dict[str, str]]:
    """moto's IAM enforcement on, with a user `alice` who may only DescribeStacks (and assume
    the stack's role `FirstContact-OperatorRole`, which may do the same): her keys."""
    iam = emulator.client("iam")
    iam.create_user(UserName="alice")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": "*"},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
        ],
    }
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName=f"{STACK}-OperatorRole", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=f"{STACK}-OperatorRole",
        PolicyName="read-stacks",
        PolicyDocument=json.dumps(policy),
    )
    iam.put_user_policy(
        UserName="alice", PolicyName="read-stacks", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    auth = f"{emulator.endpoint_url}/moto-api/reset-auth"
    requests.post(auth, data=b"0", timeout=timing.bound(10))  # every later call is checked
    try:
        yield {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
    finally:
        requests.post(auth, data=b"inf", timeout=timing.bound(10))
        iam.delete_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"])
        iam.delete_user_policy(UserName="alice", PolicyName="read-stacks")
        iam.delete_user(UserName="alice")
        iam.delete_role_policy(RoleName=f"{STACK}-OperatorRole", PolicyName="read-stacks")
        iam.delete_role(RoleName=f"{STACK}-OperatorRole")


def test_access_denied_names_the_action_and_the_principal(
    emulator: EmbeddedAws,
    iam_enforced: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ("list", "--endpoint-url", emulator.endpoint_url, "--stack-name", STACK)
    # Keys AWS does not know: rejected credentials.
    code, _, err = run(capsys, *args)
    assert code == 1
    assert one_error(err) == (
        "error: AWS did not accept the credentials of profile default (InvalidClientTokenId: The "
        "security token included in the request is invalid.): replace the expired or wrong keys "
        "(`aws configure --profile default`), or sign in with `aws sso login --profile default` "
        "if it is an SSO profile"
    )
    # alice's keys: DescribeStacks passes, ListExecutions is denied.
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    for key, value in iam_enforced.items():
        monkeypatch.setenv(key, value)
    code, _, err = run(capsys, *args)
    user = f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert code == 1
    assert one_error(err) == (
        f"error: {user} may not call states:ListExecutions (AccessDeniedException): an IAM policy "
        f"of {user} (your own user or role, not one of the stack's) must allow "
        "states:ListExecutions; the README lists what trainops calls"
    )
    # As the stack's role (assumed by alice): the line names that role.
    sts = boto3.client(
        "sts",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=iam_enforced["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=iam_enforced["AWS_SECRET_ACCESS_KEY"],
    )
    role = f"{STACK}-OperatorRole"
    assumed = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="op")
    credentials = assumed["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    code, _, err = run(capsys, *args)
    assert code == 1
    assert one_error(err) == (
        f"error: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/op may not call "
        f"states:ListExecutions (AccessDeniedException): the stack's role {role} must allow "
        "it; redeploy with `npx cdk deploy`"
    )


class Lines:
    """A stream of a child process, read line by line on a thread; waits are bounded."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, seconds: float, seen: Callable[[], object]) -> str:
        return timing.wait_until(
            lambda: next((line for line in self.lines if text in line), None),
            seconds,
            f"a line with {text!r}",
            seen=seen,
        )


@pytest.mark.timeout(120)
def test_watch_outlasts_a_network_outage_and_says_so(emulator: EmbeddedAws) -> None:
    sfn = emulator.client("stepfunctions")
    (stack,) = emulator.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    arn = sfn.start_execution(stateMachineArn=stack["Outputs"][0]["OutputValue"])["executionArn"]
    env = {**os.environ, "AWS_MAX_ATTEMPTS": "1"}  # each poll fails at once while it is down
    url = emulator.endpoint_url
    argv = ["watch", arn, "--endpoint-url", url, "--stack-name", STACK, "--interval", "0.2"]
    child = subprocess.Popen(
        [sys.executable, "-m", "trainops", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = Lines(child.stdout), Lines(child.stderr)

        def seen() -> str:
            return "\n".join(["stdout:", *out.lines, "stderr:", *err.lines])

        out.wait_for(": RUNNING", 30, seen)
        with emulator.unreachable():
            lost = err.wait_for("lost contact", 30, seen)
        err.wait_for("contact with AWS restored after", 30, seen)
        sfn.stop_execution(executionArn=arn)
        assert child.wait(timing.bound(30)) == 1  # the run ended ABORTED, not SUCCEEDED
    finally:
        child.kill()
    # Refused, or cut off mid-request when the server went away: either names the endpoint.
    assert lost in (
        f'lost contact with AWS (Could not connect to the endpoint URL: "{url}/"); still '
        "watching, for up to 600 s",
        "lost contact with AWS (Connection was closed before we received a valid response from "
        f'endpoint URL: "{url}/".); still watching, for up to 600 s',
    )
    assert sum("lost contact" in line for line in err.lines) == 1, seen()
    assert not any("Traceback" in line for line in err.lines), seen()
    assert f"execution  {arn.rsplit(':', 1)[-1]}: ABORTED" in out.lines, seen()


def test_sdk_stack_says_the_same_lines(
    emulator: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, no_aws_config: Path
) -> None:
    from trainops.sdk import SdkError, Stack

    # Stack(endpoint_url=) sets AWS_ENDPOINT_URL for the process: unset again after the test.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    url = emulator.endpoint_url
    with pytest.raises(SdkError) as raised:
        Stack("Nope", endpoint_url=url)
    assert str(raised.value) == (
        f"stack 'Nope' not found (emulator {url}, region us-east-1): deploy it with "
        "`npx cdk deploy`, or name the deployed one with --stack-name NAME / --region REGION"
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(SdkError) as raised:
        Stack(profile="prod")
    assert str(raised.value).startswith("AWS profile 'prod' (from profile=) is not in")
