"""What every operator subcommand shares: the stack/endpoint options and one-line errors.

Bad input (a rule of the input, the config, the task, or a command's own) exits 2 before
anything is sent; something that is not there (a stack, an execution, a model version) exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from infra.config import ConfigError
from infra.execution_input import ExecutionInputError
from trainops.aws import StackNotFound
from trainops.task_check import TaskCheckError

Handler = Callable[[argparse.Namespace], int]
INPUT_ERRORS: tuple[type[Exception], ...] = (ExecutionInputError, ConfigError, TaskCheckError)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", default="SageMakerTraining", help="deployed stack")
    parser.add_argument("--region", help="AWS region (default: from the environment)")
    parser.add_argument(
        "--endpoint-url", help="talk to an emulator here (env TRAINOPS_ENDPOINT_URL)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def guarded(handler: Handler, *input_errors: type[Exception]) -> Handler:
    """`error: <one line>` and exit 2 for bad input (INPUT_ERRORS + `input_errors`), exit 1
    for what is not there (StackNotFound, any LookupError)."""
    bad_input = INPUT_ERRORS + input_errors

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except bad_input as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (StackNotFound, LookupError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run
