"""Render run snapshots: one refreshing line on a terminal, plain lines otherwise, or JSON."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from trainops.runs import RunStatus

_SHOWN_METRICS = ("epoch", "train_loss", "val_loss", "val_acc")


def describe(run: RunStatus) -> str:
    """One human line: execution, job and its secondary status, metrics, elapsed time."""
    parts = [f"{run.name}: {run.status}"]
    if run.job_name:
        job = f"job {run.job_name}"
        if run.attempt > 1:
            job += f" (attempt {run.attempt})"
        if run.job_status:
            job += f" {run.job_status}/{run.secondary_status}"
        parts.append(job)
    metrics = [f"{k}={run.metrics[k]:.4g}" for k in _SHOWN_METRICS if k in run.metrics]
    if metrics:
        parts.append(" ".join(metrics))
    if run.seconds is not None:
        parts.append(f"{run.seconds:.0f}s")
    return " | ".join(parts)


def outcome(run: RunStatus) -> str:
    """The final summary, several lines."""
    lines = [
        f"execution  {run.name}: {run.status}",
        f"job        {run.job_name or '-'} "
        f"({run.job_status or 'not started'}, attempts: {run.attempt})",
    ]
    if "val_acc" in run.metrics:
        lines.append(f"val_acc    {run.metrics['val_acc']:.4f}")
    if run.model_artifacts and run.status == "SUCCEEDED":
        lines.append(f"model      {run.model_artifacts}")
    if run.model_package_arn:
        version = run.model_package_arn.rsplit("/", 1)[-1]
        lines.append(f"registered version {version}: {run.model_package_arn}")
    if run.note:
        lines.append(f"note       {run.note}")
    if run.failure:
        lines.append(f"failure    {run.failure}")
    if run.seconds is not None:
        lines.append(f"duration   {run.seconds:.1f}s")
    return "\n".join(lines)


class Printer:
    """Prints each snapshot once it changes: in place on a TTY, as new lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, as_json: bool = False):
        # sys.stdout as it is now, not at import (redirect_stdout, pytest's capture).
        self.stream = stream if stream is not None else sys.stdout
        self.as_json = as_json
        self.tty = self.stream.isatty() and not as_json
        self._last = ""

    def __call__(self, run: RunStatus) -> None:
        if self.as_json:
            text = json.dumps(run.to_json(), sort_keys=True)
            key = json.dumps({k: v for k, v in run.to_json().items() if k != "seconds"})
        else:
            text = describe(run)
            key = text.rsplit(" | ", 1)[0] if run.seconds is not None else text
        if key == self._last and not self.tty:
            return
        self._last = key
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            if run.done:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
