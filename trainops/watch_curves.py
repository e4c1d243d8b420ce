"""`trainops watch --curves`: the run's curves in the terminal, redrawn as metric lines arrive.

One line per metric: a sparkline of its values (oldest to newest, the last WIDTH points), its
range and its latest value at its step. Plain text, so it works in any terminal and log file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from trainops.aws import Aws
from trainops.metric_history import MetricHistory, Point
from trainops.runs import RunStatus

_BARS = "▁▂▃▄▅▆▇█"
WIDTH = 40


def sparkline(values: list[float], width: int = WIDTH) -> str:
    """Values as bar heights scaled between their min and max (flat series: the lowest bar)."""
    shown = values[-width:]
    low, high = min(shown), max(shown)
    span = high - low
    top = len(_BARS) - 1
    return "".join(_BARS[round((v - low) / span * top) if span else 0] for v in shown)


def render(series: dict[str, list[Point]]) -> list[str]:
    """One line per metric: `name  ▁▃▅▇  [min, max]  latest at step N`."""
    if not series:
        return []
    pad = max(len(name) for name in series)
    lines = []
    for name, points in sorted(series.items()):
        values = [p.value for p in points]
        lines.append(
            f"  {name:<{pad}}  {sparkline(values):<{WIDTH}}  [{min(values):.4g}, "
            f"{max(values):.4g}]  {values[-1]:.4g} at step {points[-1].step}"
        )
    return lines


def with_curves(
    aws: Aws, on_update: Callable[[RunStatus], None], stream: TextIO | None = None
) -> Callable[[RunStatus], None]:
    """Wrap a snapshot printer: after each snapshot, redraw the curves when new lines came."""
    out = stream if stream is not None else sys.stdout
    histories: dict[str, MetricHistory] = {}

    def update(run: RunStatus) -> None:
        on_update(run)
        if not run.job_name:
            return
        history = histories.setdefault(run.job_name, MetricHistory(aws, run.job_name))
        if history.update():
            shown = {k: v for k, v in history.series.items() if k != "epoch"}
            # On a terminal the status line is redrawn in place: start the block below it.
            lead = "\n" if out.isatty() and not run.done else ""
            out.write(lead + "\n".join([f"curves of {run.job_name}:", *render(shown)]) + "\n")
            out.flush()

    return update
