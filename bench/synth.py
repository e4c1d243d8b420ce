"""Synth wall time of this CDK app vs an empty CDK app (one Stack, one trivial resource).

Both run as fresh `python` subprocesses with the same environment, alternating, several times;
prints the medians and the ratio (target <= 1.5). `python -m bench synth [--reps N]
[--validation on|off]` (CDK's built-in template validation: off by default, as in the
app; cfn-lint covers it).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import parser as bench_parser

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App()
stack = cdk.Stack(app, "Empty")
cdk.CfnWaitConditionHandle(stack, "Nothing")
app.synth()
"""


def _env(outdir: str, validation: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
            "CDK_VALIDATION": "true" if validation else "false",
            "CDK_OUTDIR": outdir,
        }
    )
    return env


def _time(args: list[str], validation: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        start = time.perf_counter()
        run = subprocess.run(
            args, cwd=REPO, env=_env(outdir, validation), capture_output=True, text=True
        )
        elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"synth failed: {' '.join(args)}\n{run.stderr[-2000:]}")
    return elapsed


def measure(reps: int = 3, validation: bool = True) -> dict[str, float]:
    ours: list[float] = []
    empty: list[float] = []
    for _ in range(reps):  # alternate so drift on a shared machine hits both alike
        empty.append(_time([sys.executable, "-c", EMPTY_APP], validation))
        ours.append(_time([sys.executable, "app.py"], validation))
    result = {"app_s": statistics.median(ours), "empty_s": statistics.median(empty)}
    result["ratio"] = result["app_s"] / result["empty_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("synth", __doc__, reps=3)
    parser.add_argument("--validation", choices=("on", "off"), default="off")
    args = parser.parse_args(argv)
    result = measure(args.reps, args.validation == "on")
    print(
        f"synth (median of {args.reps}, CDK validation {args.validation}): "
        f"app {result['app_s']:.2f} s, empty app {result['empty_s']:.2f} s, "
        f"ratio {result['ratio']:.2f} (target <= {TARGET_RATIO})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
