"""What every operator subcommand shares: the stack/profile/endpoint options and one-line errors.

Bad input (a rule of the input, the config, the task, or a command's own) exits 2 before
anything is sent; something that is not there (a stack, an execution, a model version) exits 1,
and so does whatever AWS answers instead (trainops.aws_errors says it in one line; -v adds the
traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from core.config import ConfigError
from core.execution_input import ExecutionInputError
from trainops.aws import Aws, StackNotFound, stack_outputs
from trainops.aws_errors import AWS_ERRORS, Context, explain
from trainops.metric_history import job_of
from trainops.task_check import TaskCheckError

Handler = Callable[[argparse.Namespace], int]
INPUT_ERRORS: tuple[type[Exception], ...] = (ExecutionInputError, ConfigError, TaskCheckError)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", default="SageMakerTraining", help="deployed stack")
    parser.add_argument("--region", help="AWS region (default: from the environment or profile)")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE, else the default)")
    parser.add_argument(
        "--endpoint-url", help="talk to an emulator here (env TRAINOPS_ENDPOINT_URL)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="on an AWS error, the traceback too"
    )


def add_command(
    sub: argparse._SubParsersAction, name: str, help_text: str, *, execution: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with the common options; `execution`: it acts on one run, named by an
    optional positional (default: the latest), whose job `job_of_command` resolves."""
    parser = sub.add_parser(name, help=help_text)
    add_common(parser)
    if execution:
        parser.add_argument(
            "execution", nargs="?", help="execution ARN or name (default: the latest)"
        )
    return parser


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The run's shape when it is not the deployed stack's: instance type, count, spot."""
    parser.add_argument("--instance-type", help="default: the deployed stack's")
    parser.add_argument("--instance-count", type=int, help="default: the deployed stack's")
    parser.add_argument(
        "--spot", action=argparse.BooleanOptionalAction, default=None, help="default: the stack's"
    )


def add_context_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`-c KEY=VALUE`, repeatable: CDK context as `cdk deploy -c` takes it."""
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def aws_of(args: argparse.Namespace) -> Aws:
    """The clients of a command, from its --region, --endpoint-url and --profile."""
    return Aws(region=args.region, endpoint_url=args.endpoint_url, profile=args.profile)


def job_of_command(args: argparse.Namespace) -> tuple[Aws, str]:
    """The clients of a command and the training job of the run its `execution` names."""
    aws = aws_of(args)
    return aws, job_of(aws, stack_outputs(aws, args.stack_name).state_machine_arn, args.execution)


def refusing(handler: Handler, *input_errors: type[Exception]) -> Handler:
    """`error: <one line>` and exit 2 for bad input (`input_errors`): the local commands',
    which talk to no deployed stack."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except input_errors as exc:
            return _error(exc, 2)

    return run


def guarded(handler: Handler, *input_errors: type[Exception]) -> Handler:
    """`error: <one line>` and exit 2 for bad input (INPUT_ERRORS + `input_errors`), exit 1
    for what is not there (StackNotFound, any LookupError) and for what AWS answered."""
    bad_input = INPUT_ERRORS + input_errors

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except bad_input as exc:
            return _error(exc, 2)
        except (StackNotFound, LookupError) as exc:
            return _error(exc, 1)
        except AWS_ERRORS as exc:
            if args.verbose:
                traceback.print_exc()
            return _error(explain(exc, Context(args.command, args.stack_name, args.profile)), 1)

    return run


def _error(what: object, code: int) -> int:
    print(f"error: {what}", file=sys.stderr)
    return code
