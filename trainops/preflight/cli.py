"""`trainops preflight` on the command line: one line per finding (or --json), exit 1 on any
failure.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from core import config as rules
from trainops.aws import stack_outputs
from trainops.cli_args import add_command, add_target_options, aws_of, guarded
from trainops.preflight.checks import all_checks
from trainops.preflight.findings import Target
from trainops.run_input import RunDefaults


def cmd_preflight(args: argparse.Namespace) -> int:
    if args.instance_type is not None:
        rules.validate_instance_type(args.instance_type)
    if args.instance_count is not None:
        rules.validate_instance_count(args.instance_count)
    aws = aws_of(args)
    outputs = stack_outputs(aws, args.stack_name)
    defaults = RunDefaults.of_stack(outputs)
    target = Target(
        args.instance_type or defaults.instance_type,
        args.instance_count if args.instance_count is not None else defaults.instance_count,
        defaults.spot if args.spot is None else args.spot,
    )
    findings = all_checks(aws, outputs, defaults, target)
    failed = sum(not f.ok for f in findings)
    if args.json:
        summary = {
            "stack_name": args.stack_name,
            "region": aws.region,
            **asdict(target),
            "ok": not failed,
            "findings": [f.to_json() for f in findings],
        }
        print(json.dumps(summary, sort_keys=True))
    else:
        for finding in findings:
            print(finding.line())
        run = f"{target.instance_count} x {target.instance_type} {target.market}"
        verdict = f"{failed} of {len(findings)} checks failed" if failed else "all checks passed"
        print(f"preflight {args.stack_name} ({aws.region}, {run}): {verdict}")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "preflight", "check quotas, network and compatibility before a run costs anything"
    )
    add_target_options(p)
    p.set_defaults(handler=guarded(cmd_preflight))
