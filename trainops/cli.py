"""One entry point, one subcommand per operator task; each module registers its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from trainops import (
    commands,
    cost,
    curves,
    demo,
    emulator,
    local_train,
    mlflow_export,
    preflight,
    registry,
    tensorboard_link,
)

#: Modules that contribute a subcommand: each has `register(subparsers)`.
COMMANDS = (
    demo,
    emulator,
    commands,
    preflight,
    cost,
    local_train,
    registry,
    curves,
    tensorboard_link,
    mlflow_export,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainops",
        description="Start, watch and stop SageMaker training runs; run them offline.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Never let boto3 or the toolkit probe the EC2 metadata address from this machine.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
