"""`trainops start | watch | list | stop`: operate runs of the deployed training workflow.

Every command finds the state machine through the stack's outputs (by stack name) and works
against real AWS or, with `--endpoint-url` / TRAINOPS_ENDPOINT_URL, the embedded emulator.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.config import ConfigError, TrainingConfig
from core.execution_input import DEFAULT_TRIGGER, ExecutionInputError
from trainops import cost, preflight, progress, runs, watch_curves
from trainops.aws import Aws, stack_outputs
from trainops.cli_args import add_common, aws_of, guarded
from trainops.run_input import RunDefaults, check_with_synth_rules, local_config
from trainops.task_check import check_task


def build_input(
    args: argparse.Namespace, config: TrainingConfig | RunDefaults | None
) -> dict[str, Any]:
    """Execution input from CLI overrides, checked with the same rules as synth.

    Checks that need no stack run first, so a typo fails before any AWS call; with `config`
    (the deployed stack's defaults) the rules that depend on it (SMDDP instance types, spot
    limits) run too.
    """
    data: dict[str, Any] = {"trigger": DEFAULT_TRIGGER}
    if args.hp:
        data["hyperparameters"] = {}
        for item in args.hp:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ExecutionInputError(f"--hp {item!r}: expected KEY=VALUE, e.g. --hp epochs=5")
            data["hyperparameters"][key] = value
    if args.instance_type:
        data["instance_type"] = args.instance_type
    if args.instance_count is not None:
        data["instance_count"] = args.instance_count
    if args.spot is not None:
        data["spot"] = args.spot
    if args.train_s3_uri:
        data["train_s3_uri"] = args.train_s3_uri
    check_with_synth_rules(data, config)
    return data


def _state_machine(args: argparse.Namespace, aws: Aws) -> str:
    return stack_outputs(aws, args.stack_name).state_machine_arn


def _say_where(args: argparse.Namespace, aws: Aws) -> None:
    """The first line (stderr: stdout stays machine-readable): which account view is in use."""
    print(f"trainops {args.command}: stack {args.stack_name}, {aws.where}", file=sys.stderr)


def _watch(aws: Aws, execution_arn: str, args: argparse.Namespace) -> int:
    printer = progress.Printer(as_json=args.json)
    if getattr(args, "curves", False):
        printer = watch_curves.with_curves(aws, printer)
    final = runs.wait_for(aws, execution_arn, printer, interval_s=args.interval)
    if args.json:
        print(json.dumps(final.to_json(), sort_keys=True))
    else:
        print(progress.outcome(final))
    return 0 if final.status == "SUCCEEDED" else 1


def check_task_locally(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """The job's task check on this machine (cdk.json's task + the --hp overrides), before any
    AWS call; skipped with a note when cdk.json or the project is not here."""
    try:
        config = local_config()
    except (OSError, ConfigError, ValueError) as exc:
        print(f"note: task not checked here ({exc})", file=sys.stderr)
        return
    source_dir = args.source_dir or (Path(config.source_dir) if config.source_dir else None)
    hps = {"config": config.config, **config.hyperparameters, **data.get("hyperparameters", {})}
    count = data.get("instance_count", config.instance_count)
    world = count * max(1, config.gpus_per_instance)
    for note in check_task(source_dir, hps, world_size=world, image_family=config.image_family):
        print(f"note: {note}", file=sys.stderr)


def cmd_start(args: argparse.Namespace) -> int:
    data = build_input(args, None)  # fail on typos before any AWS call
    check_task_locally(args, data)
    aws = aws_of(args)
    _say_where(args, aws)
    outputs = stack_outputs(aws, args.stack_name)
    config = RunDefaults.of_stack(outputs)
    data = build_input(args, config)
    if not args.skip_preflight and preflight.start_refused(aws, outputs, config, data):
        return 2
    # What this run may cost, before it costs anything (stderr: stdout stays machine-readable).
    print(cost.cost_line(aws, config, data), file=sys.stderr)
    arn = runs.start_run(
        aws,
        outputs.state_machine_arn,
        data,
        name=args.name,
        defaults=config.hyperparameters,
        backend=config.backend,
        default_instance_type=config.instance_type,
    )
    print(json.dumps({"executionArn": arn}) if args.json else f"started {arn}")
    return _watch(aws, arn, args) if args.watch else 0


def cmd_watch(args: argparse.Namespace) -> int:
    aws = aws_of(args)
    _say_where(args, aws)
    arn = runs.resolve_execution(aws, _state_machine(args, aws), args.execution)
    return _watch(aws, arn, args)


def cmd_list(args: argparse.Namespace) -> int:
    aws = aws_of(args)
    found = runs.list_runs(aws, _state_machine(args, aws), limit=args.limit)
    if args.json:
        print(json.dumps([r.to_json() for r in found], sort_keys=True))
        return 0
    print(f"{'NAME':<40} {'STATUS':<10} {'SECONDS':>8} {'ATTEMPTS':>8}  RESULT")
    for run in found:
        result = (
            f"val_acc={run.metrics['val_acc']:.4f}"
            if "val_acc" in run.metrics
            else run.failure or ""
        )
        seconds = f"{run.seconds:.0f}" if run.seconds is not None else "-"
        print(f"{run.name[:40]:<40} {run.status:<10} {seconds:>8} {run.attempt:>8}  {result[:80]}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    aws = aws_of(args)
    arn = runs.resolve_execution(aws, _state_machine(args, aws), args.execution)
    run = runs.stop_run(aws, arn, cause=args.cause)
    print(json.dumps(run.to_json(), sort_keys=True) if args.json else progress.outcome(run))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("start", help="start a training run (validated before anything is sent)")
    add_common(p)
    p.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--instance-type")
    p.add_argument("--instance-count", type=int)
    p.add_argument("--spot", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--train-s3-uri", help="s3://bucket/prefix/ of the train channel")
    p.add_argument(
        "--source-dir",
        type=Path,
        help="your project, to check the overrides here (default: cdk.json training.source_dir)",
    )
    p.add_argument("--name", help="execution name (default: generated)")
    p.add_argument(
        "--skip-preflight", action="store_true", help="start without `trainops preflight`'s checks"
    )
    p.add_argument("--watch", action="store_true", help="follow it until it ends")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    p.set_defaults(handler=guarded(cmd_start))

    p = sub.add_parser("watch", help="follow a run: state, job status, metrics, then the outcome")
    add_common(p)
    p.add_argument("execution", nargs="?", help="execution ARN or name (default: the latest)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    p.add_argument("--curves", action="store_true", help="draw the metrics in the terminal")
    p.set_defaults(handler=guarded(cmd_watch))

    p = sub.add_parser("list", help="recent runs with status, duration and result")
    add_common(p)
    p.add_argument("--limit", type=int, default=10)
    p.set_defaults(handler=guarded(cmd_list))

    p = sub.add_parser("stop", help="stop a run: its training job and its execution")
    add_common(p)
    p.add_argument("execution", nargs="?", help="execution ARN or name (default: the latest)")
    p.add_argument("--cause", default="stopped by operator")
    p.set_defaults(handler=guarded(cmd_stop))
