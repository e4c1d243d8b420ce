"""`trainops emulator`: the embedded AWS as a server, with the stack deployed and data uploaded.

Synthesizes the demo's CPU configuration, starts the emulator on 127.0.0.1, deploys the stack,
uploads the default dataset, prints the endpoint URL, the stack outputs and a line `ready`, and
serves until interrupted. Any client can then be pointed at it: `trainops.sdk.Stack(
endpoint_url=URL)` in a notebook, `aws --endpoint-url URL ...`, boto3, `trainops start
--endpoint-url URL`. Training jobs from every client run on the local executor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from trainops.cli_args import add_context_option, refusing
from trainops.demo import DEMO_CONTEXT, deploy_with_data, synth
from trainops.rehearsal import RehearsalError, context_overrides


def serve(args: argparse.Namespace) -> int:
    """The command: deploy into a fresh emulator, print how to reach it, serve until a signal."""
    from localaws.server import EmbeddedAws

    def note(line: str) -> None:  # progress goes to stderr: stdout is for the URL and outputs
        print(line, file=sys.stderr, flush=True)

    context = context_overrides(args.context)
    if args.data is not None and not args.data.is_dir():
        raise RehearsalError(f"--data {args.data}: not a folder")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="trainops-emulator-"))
    if args.work and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stack_name = args.stack_name
    note("synthesizing the CDK app (CPU demo configuration)")
    assembly = synth(work / "cdk.out", {**DEMO_CONTEXT, **context}, stack_name)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedAws(work / "aws", port=args.port, echo=note if args.verbose else None) as emulator:
        note(f"deploying {stack_name} to {emulator.endpoint_url}")
        _, outputs = deploy_with_data(emulator, assembly, stack_name, work, note, data=args.data)
        _print_endpoint(emulator, stack_name, outputs.values, args.json)
        print("ready", flush=True)
        # A process-directed signal may land on any thread, and a lock wait without a timeout
        # is not interrupted then: wake up to let the main thread run the handler.
        while not stop.wait(0.5):
            pass
        note("stopping: running jobs are stopped, the emulator shuts down")
    return 0


def _print_endpoint(emulator: Any, stack_name: str, outputs: dict[str, str], as_json: bool) -> None:
    if as_json:
        summary = {
            "endpoint_url": emulator.endpoint_url,
            "region": emulator.region,
            "stack_name": stack_name,
            "outputs": outputs,
        }
        print(json.dumps(summary, sort_keys=True), flush=True)
        return
    print(f"endpoint: {emulator.endpoint_url}  (region {emulator.region})")
    for key, value in sorted(outputs.items()):
        shown = value if len(value) < 200 else f"<{len(value)} chars of JSON>"
        print(f"  {key} = {shown}")
    print(
        f"use it: Stack({stack_name!r}, endpoint_url={emulator.endpoint_url!r}) "
        f"or --endpoint-url {emulator.endpoint_url}"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "emulator",
        help="serve the embedded AWS with the stack deployed, for any client (notebook, CLI)",
        description=__doc__,
    )
    p.add_argument("--port", type=_port, default=4566, help="127.0.0.1 port (0: any free one)")
    p.add_argument("--stack-name", default="SageMakerTraining")
    p.add_argument("--json", action="store_true", help="one JSON line: endpoint, outputs")
    p.add_argument("--work", help="work folder (default: a new temp dir); emptied first")
    add_context_option(p, "extra CDK context on top of the demo's (e.g. -c training.backend=smddp)")
    p.add_argument(
        "--data", type=Path, help="train channel folder to upload (default: built-in dataset)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="stream the training job logs")
    p.set_defaults(handler=refusing(serve, RehearsalError))


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 (any free port) to 65535")
    return int(text)
