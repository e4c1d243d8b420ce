"""`trainops curves [EXECUTION] [--out FILE.png]`: a run's learning curves as one PNG.

One panel per metric, against the training step: training and validation values of the same
quantity (`train_loss` and `val_loss`) share a panel and its axes. The points are the job's
metric lines (trainops.metric_history). Drawn with matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from training import contract
from trainops.aws import Aws
from trainops.cli_args import add_command, guarded, job_of_command
from trainops.metric_history import MetricNotLogged, Point, read_history

#: Stage prefixes stripped to find a metric's panel (`val_loss` and `train_loss` -> `loss`).
_STAGE = re.compile(r"^(train|training|val|valid|validation)[_/]")
#: Not drawn unless asked for: the epoch counter is an axis, not a curve.
_NOT_CURVES = ("epoch",)
#: Each panel is this many inches tall (at DPI), so the image's height says how many there are.
PANEL_INCHES = (8.0, 2.5)
DPI = 100


def panel_of(metric: str) -> str:
    """`val_loss` -> `loss`, `train/acc` -> `acc`, `lr` -> `lr`."""
    return _STAGE.sub("", metric) or metric


def panels(series: dict[str, list[Point]]) -> dict[str, dict[str, list[Point]]]:
    """Metrics grouped by panel, in order of their first metric (sorted by name)."""
    grouped: dict[str, dict[str, list[Point]]] = {}
    # The task's metrics first, the runner's throughput last.
    for name in sorted(series, key=lambda n: (n in contract.RUNNER_METRICS, n)):
        grouped.setdefault(panel_of(name), {})[name] = series[name]
    return grouped


def draw(series: dict[str, list[Point]], out: Path, title: str) -> list[str]:
    """Write the PNG; returns the panel names, top to bottom."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    grouped = panels(series)
    width, height = PANEL_INCHES
    fig, axes = plt.subplots(
        len(grouped), 1, figsize=(width, height * len(grouped)), dpi=DPI, squeeze=False
    )
    try:
        for ax, (panel, members) in zip(axes[:, 0], grouped.items(), strict=True):
            for name, points in members.items():
                ax.plot(
                    [p.step for p in points],
                    [p.value for p in points],
                    marker="o",
                    ms=3,
                    label=name,
                )
            ax.set_title(panel, fontsize=10, loc="left")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=DPI)
    finally:
        plt.close(fig)
    return list(grouped)


def write_curves(aws: Aws, job_name: str, out: Path, metrics: list[str] | None = None) -> list[str]:
    """The job's curves (all metrics but the epoch counter, or `metrics`) into `out`."""
    history = read_history(aws, job_name)
    chosen = history.select(metrics)
    if not metrics:
        chosen = {k: v for k, v in chosen.items() if k not in _NOT_CURVES}
    return draw(chosen, out, title=job_name)


def cmd_curves(args: argparse.Namespace) -> int:
    aws, job = job_of_command(args)
    out = args.out or Path(f"{job}-curves.png")
    names = write_curves(aws, job, out, args.metric)
    print(f"wrote {out} ({len(names)} panels: {', '.join(names)})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "curves", "a run's learning curves as a PNG, one panel per metric", execution=True
    )
    p.add_argument("--out", type=Path, help="PNG to write (default: <job name>-curves.png)")
    p.add_argument(
        "--metric", action="append", default=[], metavar="NAME", help="only these (repeatable)"
    )
    p.set_defaults(handler=guarded(cmd_curves, MetricNotLogged))
