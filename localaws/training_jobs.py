"""SageMaker training jobs run on this machine: what the emulator runs for CreateTrainingJob.

A request accepted by the emulated API becomes a `LocalJobRun`: a background thread that walks
the job through SageMaker's secondary statuses (Starting, Downloading, Training, Uploading,
Completed / Failed / Stopped), moves the job's data through the emulated S3 (job_s3: the
channels, the CheckpointConfig prefix, model.tar.gz), runs the real toolkit on one folder per
simulated host (localjob.job), and ships its logs, metrics and TensorBoard files while it runs
(job_outputs). The mutable fields it updates are those of moto's own training-job record, so
DescribeTrainingJob and ListTrainingJobs report them.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.image_contents import family_for_image
from localaws.job_outputs import JobOutputs
from localaws.job_s3 import ChannelEmpty, S3CheckpointStore, download_channels, upload_model
from localjob.job import (
    FAILED_PEER_GRACE_S,
    SAGEMAKER_STOP_GRACE_S,
    STOP_GRACE_ENV,
    LocalJobSpec,
    LocalTrainingJob,
)

#: What SageMaker reports when it cannot get instances (the state machine retries on it).
CAPACITY_FAILURE = (
    "CapacityError: Unable to provision requested ML compute capacity. "
    "Please retry using a different ML instance type."
)
_POLL_S = 0.5
#: Log shipping and metric parsing cadence: often enough to watch, rare enough to leave the
#: CPU to training (the emulator shares the machine with the simulated hosts).
_LOGS_EVERY_S = 2.0


class LocalJobRun(threading.Thread):
    """One CreateTrainingJob request, executed; `record` is moto's describe-able job object."""

    def __init__(
        self,
        request: dict[str, Any],
        record: Any,
        *,
        clients: Callable[[str], Any],
        work_dir: Path,
        environment: dict[str, str],
        injected_failure: str | None = None,
        echo: Callable[[str], None] | None = None,
        stop_grace_s: float = SAGEMAKER_STOP_GRACE_S,
    ):
        super().__init__(daemon=True, name=f"job-{request['TrainingJobName']}")
        self.stop_grace_s = stop_grace_s
        self.request, self.record = request, record
        self.s3 = clients("s3")
        self.work_dir = work_dir / request["TrainingJobName"]
        self._outputs = JobOutputs(request, clients, self.work_dir)
        self.environment = environment
        self.injected_failure = injected_failure
        self.echo = echo
        self.job: LocalTrainingJob | None = None
        self._stop_requested = threading.Event()
        self._reclaimed = threading.Event()
        self._created = time.monotonic()
        self._lock = threading.Lock()
        self._init_record()

    # --- moto record ---------------------------------------------------------------------
    def _init_record(self) -> None:
        now = _now()
        r = self.record
        r.algorithm_specification = self.request["AlgorithmSpecification"]  # moto overwrites it
        r.training_job_status = "InProgress"
        r.secondary_status = "Starting"
        r.secondary_status_transitions = []
        r.final_metric_data_list = []
        r.training_start_time = None
        r.training_end_time = None
        r.last_modified_time = now
        r.environment = self.request.get("Environment", {})
        r.retry_strategy = self.request.get("RetryStrategy")
        self._transition("Starting", "Preparing the instances for training")

    def _transition(self, status: str, message: str) -> None:
        with self._lock:
            now = _now()
            transitions = self.record.secondary_status_transitions
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = now
            transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
            self.record.secondary_status = status
            self.record.last_modified_time = now
        if self.echo:
            self.echo(f"[{self.request['TrainingJobName']}] {status}: {message}")

    def _end(self, status: str, secondary: str, message: str, reason: str | None = None) -> None:
        self._transition(secondary, message)
        with self._lock:
            now = _now()
            self.record.secondary_status_transitions[-1]["EndTime"] = now
            self.record.training_job_status = status
            self.record.training_end_time = now
            if reason:
                self.record.failure_reason = reason[:1024]
            if self.record.training_start_time:
                seconds = int((now - self.record.training_start_time).total_seconds())
                self.record.training_time_in_seconds = max(seconds, 1)
                self.record.billable_time_in_seconds = max(seconds, 1)

    # --- control -------------------------------------------------------------------------
    def request_stop(self) -> None:
        """StopTrainingJob: Stopping now, Stopped once the processes are gone."""
        with self._lock:
            if self.record.training_job_status != "InProgress":
                return
            self.record.training_job_status = "Stopping"
        self._transition("Stopping", "Stopping the training job")
        self._stop_requested.set()

    def kill_processes(self) -> None:
        """SIGKILL every host process, as if the script crashed (fault injection): the job
        fails with an AlgorithmError, as SageMaker reports a container that died."""
        if self.job is not None:
            self.job.kill()

    def reclaim(self) -> None:
        """The instances are taken away mid-training (fault injection): with managed spot,
        SageMaker reports Interrupted and restarts the same job on new instances with the
        checkpoints restored (until MaxWaitTimeInSeconds); without spot, RetryStrategy's
        attempts restart it after an InternalServerError."""
        self._reclaimed.set()
        if self.job is not None:
            self.job.kill()

    # --- the job ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the platform itself failed: report, never hang InProgress
            self._end("Failed", "Failed", "Training job failed", f"InternalServerError: {exc}")

    def _run(self) -> None:
        try:
            self._run_stages()
        except ChannelEmpty as exc:
            self._end("Failed", "Failed", "Training job failed", str(exc))

    def _run_stages(self) -> None:
        if self.injected_failure:
            self._end("Failed", "Failed", "Training job failed", self.injected_failure)
            return
        self._transition("Downloading", "Downloading input data")
        channels = download_channels(
            self.s3, self.request.get("InputDataConfig", []), self.work_dir / "channels"
        )
        if self._stop_requested.is_set():
            self._end("Stopped", "Stopped", "Training job stopped before training")
            return
        self._transition("Training", "Training image download completed. Training in progress.")
        with self._lock:
            self.record.training_start_time = _now()
        restarts_left = int(self.request.get("RetryStrategy", {}).get("MaximumRetryAttempts", 0))
        spot = bool(self.request.get("EnableManagedSpotTraining"))
        attempt = 0
        while True:
            root = self.work_dir if attempt == 0 else self.work_dir / f"restart-{attempt}"
            self.job = LocalTrainingJob(self._spec(channels), root, echo=self.echo)
            self.job.start()
            outcome = self._supervise()
            if not self._reclaimed.is_set():
                break
            self._reclaimed.clear()
            if not spot and restarts_left <= 0:
                self._end(
                    "Failed",
                    "Failed",
                    "Training job failed",
                    "InternalServerError: We encountered an internal error. Please try again.",
                )
                return
            if not spot:
                restarts_left -= 1
            elif self._max_wait_exceeded():
                self._end(
                    "Failed",
                    "MaxWaitTimeExceeded",
                    "Spot capacity did not come back in time",
                    "MaxWaitTimeExceeded: Training job exceeded MaxWaitTimeInSeconds",
                )
                return
            attempt += 1
            message = "spot instances reclaimed" if spot else "internal error on an instance"
            self._transition("Interrupted", f"Training job interrupted: {message}")
            self._transition("Starting", "Restarting the training job on new instances")
            self._transition("Training", "Training resumed from the synced checkpoints")
        if outcome == "stopped":
            self.job.stop_like_sagemaker(reason="StopTrainingJob", grace_s=self.stop_grace_s)
            self.job.wait()
            self._end("Stopped", "Stopped", "Training job stopped")
            return
        if outcome == "timeout":
            self.job.stop_like_sagemaker(
                reason="MaxRuntimeInSeconds reached", grace_s=self.stop_grace_s
            )
            self.job.wait()
            self._end(
                "Failed",
                "MaxRuntimeExceeded",
                "Training job exceeded MaxRuntimeInSeconds",
                "MaxRuntimeExceeded: Training job reached its MaxRuntimeInSeconds limit",
            )
            return
        reason = self.job.failure_reason()
        if reason:
            self._end("Failed", "Failed", "Training job failed", f"AlgorithmError: {reason}")
            return
        self._transition("Uploading", "Uploading generated training model")
        uri = upload_model(
            self.s3,
            self.request["OutputDataConfig"]["S3OutputPath"],
            self.request["TrainingJobName"],
            (host.model_dir for host in self.job.hosts),
        )
        with self._lock:
            self.record.model_artifacts = {"S3ModelArtifacts": uri}
        self._end("Completed", "Completed", "Training job completed")

    def _max_wait_exceeded(self) -> bool:
        limit = self.request.get("StoppingCondition", {}).get("MaxWaitTimeInSeconds")
        return bool(limit) and time.monotonic() - self._created > limit

    def _spec(self, channels: dict[str, Path]) -> LocalJobSpec:
        req = self.request
        checkpoint = req.get("CheckpointConfig")
        return LocalJobSpec(
            job_name=req["TrainingJobName"],
            hyperparameters=req.get("HyperParameters", {}),
            instance_type=req["ResourceConfig"]["InstanceType"],
            instance_count=int(req["ResourceConfig"]["InstanceCount"]),
            channels=channels,
            environment={**self.environment, **req.get("Environment", {})},
            checkpoint_store=S3CheckpointStore(self.s3, checkpoint["S3Uri"])
            if checkpoint
            else None,
            input_mode=req["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            image_family=family_for_image(req["AlgorithmSpecification"]["TrainingImage"]),
            network_isolation=bool(req.get("EnableNetworkIsolation", False)),
        )

    def _supervise(self) -> str:
        assert self.job is not None
        limit = self.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        started = time.monotonic()
        next_logs = started + _LOGS_EVERY_S
        while self.job.running:
            if self._stop_requested.is_set():
                return "stopped"
            codes = self.job.poll()
            if any(c not in (None, 0) for c in codes):
                self.job.stop(reason="a host failed", grace_s=FAILED_PEER_GRACE_S)
                break
            if limit and time.monotonic() - started > limit:
                return "timeout"
            if time.monotonic() >= next_logs:
                self._ship_outputs()
                next_logs = time.monotonic() + _LOGS_EVERY_S
            time.sleep(_POLL_S)
        self.job.wait()
        self._ship_outputs()
        return "stopped" if self._stop_requested.is_set() else "done"

    def _ship_outputs(self) -> None:
        """Logs, metrics and TensorBoard files so far; the record's FinalMetricDataList."""
        if self.job is None or not self._outputs.ship(self.job, _now()):
            return
        now = _now()
        with self._lock:
            self.record.final_metric_data_list = [
                {"MetricName": name, "Value": value, "Timestamp": now}
                for name, value in self._outputs.metrics.items()
            ]


class LocalSageMaker:
    """The emulator's training-job service: accepts requests, runs them, answers for them."""

    def __init__(
        self,
        work_dir: Path,
        clients: Callable[[str], Any],
        *,
        environment: dict[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ):
        self.work_dir = work_dir
        self.clients = clients
        self.environment = environment or {}
        self.echo = echo
        self.runs: dict[str, LocalJobRun] = {}
        #: Failure reasons handed to the next jobs instead of running them (fault injection).
        self.injected_failures: collections.deque[str] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        #: Seconds from StopTrainingJob to the SIGKILL (SageMaker: 120; env TRAINOPS_STOP_GRACE_S).
        self.stop_grace_s = float(os.environ.get(STOP_GRACE_ENV) or SAGEMAKER_STOP_GRACE_S)

    def start(self, request: dict[str, Any], record: Any) -> None:
        self.requests.append(request)
        injected = self.injected_failures.popleft() if self.injected_failures else None
        run = LocalJobRun(
            request,
            record,
            clients=self.clients,
            work_dir=self.work_dir,
            environment=self.environment,
            injected_failure=injected,
            echo=self.echo,
            stop_grace_s=self.stop_grace_s,
        )
        self.runs[request["TrainingJobName"]] = run
        run.start()

    def stop(self, name: str) -> None:
        run = self.runs.get(name)
        if run is not None:
            run.request_stop()

    def wait_all(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        for run in list(self.runs.values()):
            run.join(max(0.0, deadline - time.monotonic()))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
