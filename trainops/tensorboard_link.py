"""`trainops tensorboard [EXECUTION]`: where a run's TensorBoard event files are, and the command
that opens them.

SageMaker uploads the runner's event files during the job to the request's
TensorBoardOutputConfig (`<S3OutputPath>/<job>/tensorboard-output/`). TensorBoard reads s3://
logdirs itself (boto3, standard credentials; `S3_ENDPOINT` points it at the emulator).
"""

from __future__ import annotations

import argparse
import json
import shlex

from training import contract
from trainops.aws import Aws
from trainops.cli_args import add_command, guarded, job_of_command


def logdir(aws: Aws, job_name: str) -> str:
    """The job's TensorBoard S3 prefix, from its DescribeTrainingJob."""
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    config = job.get("TensorBoardOutputConfig")
    if not config:
        raise LookupError(
            f"job {job_name} was started without TensorBoardOutputConfig: redeploy the stack "
            "with this version and start a new run"
        )
    return contract.tensorboard_s3_uri(config["S3OutputPath"], job_name)


def open_command(aws: Aws, uri: str) -> str:
    """The shell line that serves the logdir on this machine."""
    env = {"AWS_REGION": aws.region}
    if aws.endpoint_url:
        env["S3_ENDPOINT"] = aws.endpoint_url
    prefix = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
    return f"{prefix} tensorboard --logdir {shlex.quote(uri)}"


def event_files(aws: Aws, uri: str) -> int:
    """How many event files are there now (a job uploads them as it runs)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(1 for page in pages for o in page.get("Contents", []) if "tfevents" in o["Key"])


def cmd_tensorboard(args: argparse.Namespace) -> int:
    aws, job = job_of_command(args)
    uri = logdir(aws, job)
    command = open_command(aws, uri)
    count = event_files(aws, uri)
    if args.json:
        print(json.dumps({"job": job, "logdir": uri, "event_files": count, "command": command}))
    else:
        print(f"logdir   {uri} ({count} event files, job {job})")
        print(f"open it  {command}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "tensorboard", "a run's TensorBoard logdir on S3 and how to open it", execution=True
    )
    p.set_defaults(handler=guarded(cmd_tensorboard))
