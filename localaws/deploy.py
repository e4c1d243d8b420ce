"""Deploy a synthesized CDK stack to the embedded AWS, as `cdk deploy` would to an account.

The cloud assembly's asset manifest says which files go to which bucket and key (CDK's
bootstrap layout); they are uploaded there, the bootstrap version parameter the template checks
is published, and the template itself goes through CloudFormation's CreateStack unchanged.
What moto's CloudFormation does not create (it skips unsupported types silently) is reported,
so tests can check those resources in the template instead.
"""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localaws.server import ACCOUNT_ID, EmbeddedAws

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"


@dataclass(frozen=True)
class DeployedStack:
    """A stack on the emulator: its outputs and which template resources moto skipped."""

    name: str
    outputs: dict[str, str]
    skipped_types: tuple[str, ...]


def _substitute(text: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", ACCOUNT_ID)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def upload_assets(aws: EmbeddedAws, assembly: Path, stack_name: str) -> list[str]:
    """Upload every file asset of the stack to its bootstrap destination; returns s3:// URIs."""
    manifest = json.loads((assembly / f"{stack_name}.assets.json").read_text())
    s3 = aws.client("s3")
    uploaded = []
    for asset in manifest.get("files", {}).values():
        source = assembly / asset["source"]["path"]
        if asset["source"].get("packaging") == "zip" or source.is_dir():
            body = _zip_dir(source)
        else:
            body = source.read_bytes()
        for dest in asset["destinations"].values():
            bucket = _substitute(dest["bucketName"], aws.region)
            key = _substitute(dest["objectKey"], aws.region)
            _ensure_bucket(s3, bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


def deploy(
    aws: EmbeddedAws, assembly: Path, stack_name: str, timeout_s: float = 120
) -> DeployedStack:
    """Upload assets, create the stack from the synthesized template, wait, reconcile."""
    template = json.loads((assembly / f"{stack_name}.template.json").read_text())
    upload_assets(aws, assembly, stack_name)
    aws.client("ssm").put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )
    cfn = aws.client("cloudformation")
    _quiet_moto()
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") or status.endswith("_FAILED"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack_name} still {status} after {timeout_s:.0f}s")
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        reason = stack.get("StackStatusReason", "")
        raise RuntimeError(f"stack {stack_name} ended {status}: {reason}")
    reconcile_state_machines(aws.region)
    created = {r["ResourceType"] for r in _stack_resources(cfn, stack_name)}
    skipped = sorted({r["Type"] for r in template["Resources"].values()} - created)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return DeployedStack(stack_name, outputs, tuple(skipped))


def reconcile_state_machines(region: str) -> None:
    """Make state machines that CloudFormation created visible to the interpreting backend.

    moto's CloudFormation writes to the plain Step Functions store; with execution enabled the
    API reads the interpreter's store. Re-creating them there (same name, definition, role)
    gives the same ARN and puts the definition through the interpreter's parser.
    """
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    plain = stepfunctions_backends[ACCOUNT_ID][region]
    parser = stepfunctions_parser_backends[ACCOUNT_ID][region]
    known = {sm.arn for sm in parser.state_machines}
    for sm in plain.state_machines:
        if sm.arn not in known:
            parser.create_state_machine(
                name=sm.name,
                definition=sm.definition,
                roleArn=sm.roleArn,
                tags=plain.get_tags_list_for_state_machine(sm.arn),
            )


def _quiet_moto() -> None:
    """moto logs and warns once per resource type it skips; we report them in one line."""
    warnings.filterwarnings(
        "ignore", message="Tried to parse .* not supported", category=UserWarning
    )
    for name in ("moto.cloudformation.parsing", "moto.awslambda", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _stack_resources(cfn: Any, stack_name: str) -> list[dict[str, Any]]:
    resources = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        resources += page["StackResourceSummaries"]
    return resources


def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def _zip_dir(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()
