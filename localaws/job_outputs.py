"""What SageMaker ships while a job runs, emulated: each host's log lines to CloudWatch Logs
(one stream per host and restart), the MetricDefinitions matches as CloudWatch points and the
job's latest values, and the TensorBoard event files to S3."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

from localaws.metric_publisher import MetricPublisher
from localaws.tensorboard_upload import TensorBoardUploader
from localjob.job import LocalTrainingJob

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: PutLogEvents takes at most this many events per call.
_LOG_BATCH = 1000


class JobOutputs:
    """The shipping of one job (all its restarts): call `ship` on the log cadence and once at
    the end; `metrics` holds each metric's latest value."""

    def __init__(self, request: dict[str, Any], clients: Any, first_root: Path) -> None:
        self.job_name = request["TrainingJobName"]
        self.logs = clients("logs")
        #: The first attempt's folder: a restart's streams are named after their own folder.
        self.first_root = first_root
        definitions = request["AlgorithmSpecification"].get("MetricDefinitions", [])
        self._patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        self.metrics: dict[str, float] = {}
        self._publisher = MetricPublisher(clients("cloudwatch"), self.job_name)
        tensorboard = request.get("TensorBoardOutputConfig")
        self._tensorboard = (
            TensorBoardUploader(clients("s3"), tensorboard, self.job_name) if tensorboard else None
        )
        self._log_offsets: dict[str, int] = {}

    def ship(self, job: LocalTrainingJob, stamp: dt.datetime) -> bool:
        """Ship what is new since the last call; True when a metric got a new value."""
        changed = False
        for line in self._push_logs(job):
            for name, pattern in self._patterns:
                match = pattern.search(line)
                if match:
                    with contextlib.suppress(IndexError, ValueError):
                        self.metrics[name] = float(match.group(1))
                        self._publisher.add(name, self.metrics[name], stamp)
                        changed = True
        self._publisher.flush()
        if self._tensorboard is not None:
            self._tensorboard.sync(host.base_dir for host in job.hosts)
        return changed

    def _push_logs(self, job: LocalTrainingJob) -> list[str]:
        """The complete lines each host appended since the last call, put to its stream."""
        if not self._log_offsets:
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=LOG_GROUP)
        new_lines: list[str] = []
        restart = "" if job.root == self.first_root else f"-{job.root.name}"
        for host in job.hosts:
            if host.log_path is None or not host.log_path.exists():
                continue
            key = str(host.log_path)
            stream = f"{self.job_name}/{host.base_dir.name}{restart}"
            if key not in self._log_offsets:
                self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
                self._log_offsets[key] = 0
            with host.log_path.open("rb") as f:
                f.seek(self._log_offsets[key])
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._log_offsets[key] += len(complete)
            lines = [line for line in complete.decode(errors="replace").splitlines() if line]
            stamp = int(time.time() * 1000)
            for start in range(0, len(lines), _LOG_BATCH):
                events = [{"timestamp": stamp, "message": m} for m in lines[start:][:_LOG_BATCH]]
                self.logs.put_log_events(
                    logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events
                )
            new_lines += lines
        return new_lines
