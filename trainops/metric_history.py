"""Every metric line of a training job, as per-metric series: what curves, watch and MLflow use.

The source is the job's log streams in CloudWatch Logs (/aws/sagemaker/TrainingJobs, one stream
per host and restart), on AWS and in the emulator alike. The CloudWatch metrics that
MetricDefinitions feed hold the same values, but without the step, only for the defined names,
and at one-minute resolution on AWS: the log lines carry every value with its step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training import contract
from trainops.aws import Aws
from trainops.runs import resolve_execution, training_jobs_of

LOG_GROUP = contract.METRICS_NAMESPACE  # SageMaker's log group has the namespace's name
#: Metric-line keys that are axes, not series.
AXES = ("step",)


class MetricNotLogged(ValueError):
    """A metric asked for by name that the job never logged (bad input)."""


@dataclass(frozen=True)
class Point:
    step: int
    value: float
    #: Milliseconds since the epoch: when the line reached the log.
    timestamp: int


@dataclass
class MetricHistory:
    """One job's metric lines, read incrementally (`update()` fetches only new events)."""

    aws: Aws
    job_name: str
    series: dict[str, list[Point]] = field(default_factory=dict)
    lines: int = 0
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def update(self) -> bool:
        """Read what the streams got since the last call; True when new metric lines came."""
        logs = self.aws.client("logs")
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job_name}/"
            ).get("logStreams", [])
        except logs.exceptions.ResourceNotFoundException:
            return False
        before = self.lines
        for stream in sorted(streams, key=lambda s: (s.get("creationTime", 0), s["logStreamName"])):
            self._read(logs, stream["logStreamName"])
        return self.lines > before

    def _read(self, logs: Any, stream: str) -> None:
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": LOG_GROUP,
                "logStreamName": stream,
                "startFromHead": True,
            }
            if stream in self._tokens:
                kwargs["nextToken"] = self._tokens[stream]
            page = logs.get_log_events(**kwargs)
            for event in page.get("events", []):
                self._add(event["message"], int(event.get("timestamp", 0)))
            token = page.get("nextForwardToken")
            if not token or token == self._tokens.get(stream):
                return
            self._tokens[stream] = token
            if not page.get("events"):
                return

    def _add(self, message: str, timestamp: int) -> None:
        values = contract.parse_metric_line(message)
        if not values:
            return
        self.lines += 1
        step = int(values.get("step", self.lines))
        for name, value in values.items():
            if name in AXES:
                continue
            points = self.series.setdefault(name, [])
            # Lines shipped together share a timestamp, and the final validation repeats the last
            # epoch's step and value: strictly increasing times keep every point distinct (an
            # MLflow store drops exact duplicates).
            at = max(timestamp, points[-1].timestamp + 1) if points else timestamp
            points.append(Point(step, value, at))

    def select(self, names: list[str] | None) -> dict[str, list[Point]]:
        """The series named (all when `names` is empty); a name never logged is bad input."""
        if not names:
            return dict(sorted(self.series.items()))
        missing = [n for n in names if n not in self.series]
        if missing:
            logged = ", ".join(sorted(self.series)) or "none yet"
            raise MetricNotLogged(
                f"--metric {missing[0]}: job {self.job_name} never logged it (logged: {logged})"
            )
        return {n: self.series[n] for n in names}


def job_of(aws: Aws, state_machine_arn: str, execution: str | None) -> str:
    """The training job of an execution (ARN, name, or None = the newest): its latest attempt."""
    arn = resolve_execution(aws, state_machine_arn, execution)
    jobs = training_jobs_of(aws, arn)
    if not jobs:
        raise LookupError(f"execution {arn.rsplit(':', 1)[-1]} has started no training job")
    return jobs[-1]


def read_history(aws: Aws, job_name: str) -> MetricHistory:
    """All metric lines of a job; a job that printed none is an error (nothing to show)."""
    history = MetricHistory(aws, job_name)
    history.update()
    if not history.series:
        raise LookupError(f"job {job_name} has logged no metric lines (yet) in {LOG_GROUP}")
    return history
