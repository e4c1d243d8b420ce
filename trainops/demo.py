"""`trainops demo`: the whole workflow offline — the README's main command.

Synthesizes the CDK app with the CDK CLI (CPU instances, torchrun: what this machine can run),
deploys the template to the embedded AWS, uploads the default dataset to the data bucket,
starts an execution with the input the retraining schedule sends, shows progress, and ends with
the outcome. Exit code 0 only if the execution succeeded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainops import curves, progress, registry, runs
from trainops.aws import Aws, StackOutputs, stack_outputs

REPO = Path(__file__).resolve().parent.parent
#: What this machine can run: CPU instances, torchrun over gloo, File input.
DEMO_CONTEXT = {
    "training.instance_type": "ml.m5.xlarge",
    "training.instance_count": "2",
    "training.backend": "torchrun",
    "training.input_mode": "File",
}


@dataclass(frozen=True)
class DemoResult:
    run: runs.RunStatus
    timings: dict[str, float]
    #: The model version the run registered (None without a registry or on failure).
    model_version: registry.ModelVersion | None = None
    #: The run's learning curves (`trainops curves`), written when it succeeded.
    curves_png: Path | None = None


def synth(out_dir: Path, context: dict[str, str], stack_name: str) -> Path:
    """`cdk synth` through the pinned CLI into out_dir; returns the cloud assembly folder."""
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise SystemExit("the CDK CLI is missing: run `make setup` (npm ci) first")
    cmd = [str(cdk), "synth", "--quiet", "--output", str(out_dir)]
    for key, value in context.items():
        cmd += ["-c", f"{key}={value}"]
    cmd.append(stack_name)
    env = {
        **os.environ,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    }
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"cdk synth failed:\n{done.stderr.strip() or done.stdout.strip()}")
    return out_dir


def upload_folder(aws: Aws, folder: Path, train_uri: str) -> list[str]:
    """Every file of a channel folder, under the train prefix at the same relative path."""
    from localaws.job_s3 import parse_s3_uri

    bucket, prefix = parse_s3_uri(train_uri)
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
        aws.client("s3").upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def upload_default_dataset(aws: Aws, train_uri: str, work: Path) -> list[str]:
    """Write the built-in dataset as a channel folder and upload it under the train prefix."""
    # torch + scikit-learn: only when needed
    from training.tasks.digits.data import write_default_dataset

    folder = work / "dataset"
    write_default_dataset(folder)
    return upload_folder(aws, folder, train_uri)


def deploy_with_data(
    emulator: Any,
    assembly: Path,
    stack_name: str,
    work: Path,
    echo: Callable[[str], None] = print,
    lap: Callable[[str], None] = lambda _: None,
    step: str = "",
    data: Path | None = None,
) -> tuple[Aws, StackOutputs]:
    """Deploy the assembly to the running emulator and upload the train channel's data: the
    `data` folder, else the default dataset."""
    from localaws.deploy import deploy

    deployed = deploy(emulator, assembly, stack_name)
    if deployed.skipped_types:
        echo(f"    (not emulated, checked in the template: {', '.join(deployed.skipped_types)})")
    lap("deploy")
    aws = Aws(region=emulator.region, endpoint_url=emulator.endpoint_url)
    outputs = stack_outputs(aws, stack_name)
    if data is None:
        echo(f"{step}uploading the default dataset to {outputs.train_data_uri}")
        upload_default_dataset(aws, outputs.train_data_uri, work)
    else:
        keys = upload_folder(aws, data, outputs.train_data_uri)
        echo(f"{step}uploaded {len(keys)} files of {data} to {outputs.train_data_uri}")
    lap("upload")
    return aws, outputs


def run_demo(
    *,
    work: Path,
    stack_name: str = "SageMakerTraining",
    extra_input: dict | None = None,
    echo=print,
    verbose: bool = False,
    interval_s: float = 1.0,
) -> DemoResult:
    # The emulator (moto) takes seconds to load: only the demo pays for it, not `trainops list`.
    from core.execution_input import SCHEDULED_INPUT
    from localaws.server import EmbeddedAws

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 2)
        clock = now

    echo("1/5 synthesizing the CDK app (CPU demo configuration)")
    assembly = synth(work / "cdk.out", DEMO_CONTEXT, stack_name)
    lap("synth")
    log = (lambda line: echo(f"    {line}")) if verbose else None
    with EmbeddedAws(work / "aws", echo=log) as emulator:
        echo(f"2/5 deploying {stack_name} to the embedded AWS at {emulator.endpoint_url}")
        aws, outputs = deploy_with_data(
            emulator, assembly, stack_name, work, echo, lap, step="3/5 "
        )
        execution_input = {**SCHEDULED_INPUT, **(extra_input or {})}
        echo(f"4/5 starting an execution with the scheduled input {execution_input}")
        arn = runs.start_run(aws, outputs.state_machine_arn, execution_input)
        printer = progress.Printer()
        final = runs.wait_for(aws, arn, printer, interval_s=interval_s)
        lap("workflow")
        version = (
            registry.describe(aws, final.model_package_arn) if final.model_package_arn else None
        )
        curves_png = work / "curves.png" if final.status == "SUCCEEDED" and final.job_name else None
        if curves_png is not None:
            curves.write_curves(aws, final.job_name, curves_png)
    echo("5/5 outcome")
    echo(progress.outcome(final))
    if version is not None:
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items()))
        echo(f"registry   version {version.version} ({version.approval}): {metrics}")
        echo("           (on AWS: trainops models; trainops approve VERSION)")
    if curves_png is not None:
        echo(f"curves     {curves_png} (on AWS: trainops curves)")
    return DemoResult(final, timings, version, curves_png)


def _handle(args: argparse.Namespace) -> int:
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="trainops-demo-"))
    if work.exists() and args.work:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    result = run_demo(work=work, verbose=args.verbose)
    print(f"timings (s): {result.timings}; work folder: {work}")
    if result.run.status != "SUCCEEDED":
        print(f"demo failed: {result.run.failure or result.run.status}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole workflow offline on the embedded AWS (the README's main command)",
        description=__doc__,
    )
    p.add_argument("--work", help="work folder (default: a new temp dir); emptied first")
    p.add_argument("-v", "--verbose", action="store_true", help="stream the training job logs")
    p.set_defaults(handler=_handle)
