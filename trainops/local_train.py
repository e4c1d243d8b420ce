"""`trainops local-train`: the training job exactly as SageMaker runs it, on this machine.

Packs the runner (and a user project: `--source-dir DIR --config FILE`) into the same
sourcedir.tar.gz the stack ships, for the image family the deployment runs (cdk.json, `-c`
overrides, `--instance-type`: trainops/rehearsal.py), checks the task here first (a typo'd
override fails before any process starts), then runs the real toolkit on N simulated hosts x M
processes (torchrun launcher; the smddp process group through its stand-in where the deployment
runs SMDDP, gloo otherwise), or one plain process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.sourcedir import build_sourcedir
from core.wheelhouse import BundleError
from localjob.checkpoint_sync import DirCheckpointStore
from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from training import contract
from trainops.cli_args import add_context_option, refusing
from trainops.local_runs import DEFAULT_KEEP, prune
from trainops.rehearsal import (
    Rehearsal,
    RehearsalError,
    from_deployment,
    refuse_unrehearsable,
)
from trainops.task_check import TaskCheckError, check_task

DEFAULT_ROOT = Path(".runs/local")
#: What a caller that names no deployment rehearses: the current family, torchrun, on CPU.
CPU_REHEARSAL = Rehearsal("current", "torchrun", "ml.m5.xlarge", "the CPU default")


@dataclass(frozen=True)
class LocalResult:
    """Outcome of one local job."""

    job_name: str
    exit_codes: list[int]
    failure: str | None
    model_files: list[Path]
    metrics: dict[str, float]
    seconds: float
    root: Path

    @property
    def ok(self) -> bool:
        return not self.failure and all(code == 0 for code in self.exit_codes)


def run_local_training(
    *,
    source_dir: Path | None = None,
    config: str = "digits",
    hosts: int = 2,
    processes_per_host: int = 1,
    hyperparameters: dict[str, str] | None = None,
    data_dir: Path | None = None,
    root: Path = DEFAULT_ROOT,
    job_name: str | None = None,
    checkpoint_store: Path | None = None,
    timeout_s: float | None = None,
    network_isolation: bool = True,
    keep: int | None = None,
    rehearsal: Rehearsal = CPU_REHEARSAL,
    echo=print,
) -> LocalResult:
    """Build the bundle for the rehearsed image family, lay out the hosts, run them to
    completion and collect the outcome."""
    job_name = job_name or time.strftime("local-%Y%m%d-%H%M%S")
    project = Path(source_dir).resolve() if source_dir else None
    refuse_unrehearsable(project, rehearsal.image_family)
    task_hps = {"config": config, **(hyperparameters or {})}
    for note in check_task(
        project,
        task_hps,
        world_size=hosts * processes_per_host,
        image_family=rehearsal.image_family,
    ):
        echo(f"note: {note}")
    if keep is not None:
        removed, freed = prune(root, keep - 1)  # room for this one
        if removed:
            echo(
                f"note: removed {removed} old run(s) from {root} (keeping the last {keep}, "
                f"--keep): freed {freed / 2**20:.0f} MiB"
            )
    job_root = root / job_name
    job_root.mkdir(parents=True, exist_ok=True)
    bundle = job_root / "sourcedir.tar.gz"
    build_sourcedir(bundle, image_family=rehearsal.image_family, project=project, config=config)
    distributed = hosts * processes_per_host > 1
    backend = (
        "none" if not distributed else ("smddp" if rehearsal.backend == "smddp" else "torchrun")
    )
    params = script_mode_hyperparameters(
        submit_directory=str(bundle.resolve()),
        job_name=job_name,
        instance_type=rehearsal.instance_type,
        backend=backend,
        processes_per_host=processes_per_host,
    )
    params.update(task_hps)
    channels = {contract.TRAIN_CHANNEL: data_dir} if data_dir else {}
    spec = LocalJobSpec(
        job_name=job_name,
        hyperparameters=params,
        instance_type=rehearsal.instance_type,
        instance_count=hosts,
        image_family=rehearsal.image_family,
        channels=channels,
        checkpoint_store=DirCheckpointStore(checkpoint_store or job_root / "checkpoint-store"),
        network_isolation=network_isolation,  # as the stack runs jobs: peers only
    )
    job = LocalTrainingJob(spec, job_root.resolve(), echo=echo)
    started = time.monotonic()
    job.start()
    codes = job.wait(timeout_s)
    return LocalResult(
        job_name=job_name,
        exit_codes=codes,
        failure=job.failure_reason(),
        model_files=job.model_files(),
        metrics=job.metrics(),
        seconds=time.monotonic() - started,
        root=job_root,
    )


def _parse_hp(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--hp {item!r}: expected KEY=VALUE, e.g. --hp epochs=5")
        out[key] = value
    return out


def _handle(args: argparse.Namespace) -> int:
    result = _run(args, print if args.verbose else _metrics_only)
    summary = {
        "job_name": result.job_name,
        "status": "Completed" if result.ok else "Failed",
        "exit_codes": result.exit_codes,
        "failure": result.failure,
        "metrics": result.metrics,
        "model_files": [str(p) for p in result.model_files],
        "seconds": round(result.seconds, 1),
        "logs": str(result.root / "logs"),
    }
    print(json.dumps(summary, indent=2))
    return 0 if result.ok else 1


def _run(args: argparse.Namespace, echo) -> LocalResult:
    rehearsal = from_deployment(args.context, args.instance_type)
    print(rehearsal.describe(), file=sys.stderr, flush=True)
    return run_local_training(
        rehearsal=rehearsal,
        source_dir=args.source_dir,
        config=args.config,
        hosts=args.hosts,
        processes_per_host=args.processes_per_host,
        hyperparameters=_parse_hp(args.hp),
        data_dir=args.data,
        root=args.root,
        timeout_s=args.timeout,
        keep=args.keep,
        echo=echo,
    )


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return int(text)


def _metrics_only(line: str) -> None:
    if (
        contract.METRIC_LINE_PREFIX in line
        or "Error" in line
        or line.startswith("note:")
        or "resuming" in line
    ):
        print(line, flush=True)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "local-train",
        help="run the training job through the real SageMaker toolkit on simulated local hosts",
        description=__doc__,
    )
    p.add_argument("--source-dir", type=Path, help="your project (LightningModule + DataModule)")
    p.add_argument(
        "--config",
        default="digits",
        help="task config: a built-in task (digits) or a YAML path inside --source-dir",
    )
    p.add_argument("--hosts", type=int, default=2, help="simulated instances (1-9)")
    p.add_argument("--processes-per-host", type=int, default=1, help="processes per instance")
    add_context_option(
        p, "CDK context over cdk.json's, as for `cdk deploy` (e.g. -c training.backend=torchrun)"
    )
    p.add_argument("--instance-type", help="as `trainops start --instance-type`")
    p.add_argument("--data", type=Path, help="train channel folder (default: built-in dataset)")
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="override")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where job folders go")
    p.add_argument("--timeout", type=float, help="stop the job after this many seconds")
    p.add_argument(
        "--keep",
        type=_at_least_one,
        default=DEFAULT_KEEP,
        help=f"job folders kept under --root, this one included (default {DEFAULT_KEEP})",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="stream every host's full log")
    p.set_defaults(handler=refusing(_handle, TaskCheckError, BundleError, RehearsalError))
