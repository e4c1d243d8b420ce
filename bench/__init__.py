"""Benchmarks: `python -m bench <name>` (see bench/__main__.py for the list)."""

from __future__ import annotations

import argparse


def parser(name: str, doc: str | None, *, reps: int | None = None) -> argparse.ArgumentParser:
    """The options of `python -m bench <name>`; `reps`: how many times each side is measured
    by default (`--reps`; the medians are compared)."""
    out = argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc)
    if reps is not None:
        out.add_argument("--reps", type=int, default=reps)
    return out
