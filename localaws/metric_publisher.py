"""A training job's MetricDefinitions as CloudWatch metrics, as SageMaker publishes them.

SageMaker applies each MetricDefinitions regex to the job's log lines and puts one data point per
match into namespace /aws/sagemaker/TrainingJobs with dimension TrainingJobName=<job>, stamped
with the log line's time. The emulator does the same with its own CloudWatch, so
`get-metric-data`, the stack's dashboard expressions and `trainops curves`-style clients read
the series there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from training import contract

#: PutMetricData takes at most this many data points per call.
_BATCH = 1000


class MetricPublisher:
    """Buffers matched (name, value) points of one job and puts them in batches."""

    def __init__(self, cloudwatch: Any, job_name: str) -> None:
        self.cloudwatch = cloudwatch
        self.dimensions = [{"Name": contract.METRICS_JOB_DIMENSION, "Value": job_name}]
        self._pending: list[dict[str, Any]] = []

    def add(self, name: str, value: float, at: dt.datetime) -> None:
        self._pending.append(
            {
                "MetricName": name,
                "Dimensions": self.dimensions,
                "Timestamp": at,
                "Value": value,
                "Unit": "None",
            }
        )

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
            self.cloudwatch.put_metric_data(Namespace=contract.METRICS_NAMESPACE, MetricData=batch)
