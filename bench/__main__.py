"""Run one named benchmark: `python -m bench <name> [args...]`; `python -m bench` lists them.

Each entry maps a name to a module with `main(argv) -> int`; modules are imported lazily so one
benchmark's heavy imports (torch, aws_cdk, ...) never slow down another.
"""

from __future__ import annotations

import importlib
import os
import sys

BENCHMARKS = {
    "synth": "bench.synth",
    "training": "bench.training_loop",
    "demo": "bench.demo",
    "wheelhouse": "bench.wheelhouse",
    "donut": "bench.donut",
    "sharding": "bench.sharding",
}


def main(argv: list[str]) -> int:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m bench {" + ",".join(BENCHMARKS) + "} [args...]", file=sys.stderr)
        return 0 if not argv else 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
