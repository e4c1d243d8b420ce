"""`trainops mlflow [EXECUTION] --tracking-uri URI`: a finished run into an MLflow tracking server.

A network-isolated job cannot reach MLflow, so the run is imported from outside once it has
completed: params (the resolved config from model.tar.gz, the job's hyperparameters), every
metric line as per-step metrics, tags (job, trigger, instance type and count, execution) and
model.tar.gz as an artifact. The URI is any MLflow tracking URI, or a SageMaker managed MLflow
tracking server ARN (the `sagemaker-mlflow` plugin signs those requests).

Everything is read and checked first; the server is probed with no retries; then one MLflow run
is written. If any write fails the run is deleted again, so MLflow never shows a half-written
run. A job already exported (tag `trainops.job`) is not written twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.job_request import EXECUTION_ARN_ENV
from training import contract
from trainops.aws import Aws
from trainops.cli_args import add_command, guarded, job_of_command
from trainops.metric_history import Point, read_history

JOB_TAG = "trainops.job"
_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-[a-z-]+/[A-Za-z0-9-]+")
_PROBE_TIMEOUT_S = 10


class MlflowExportError(LookupError):
    """The tracking server did not answer or refused the run (one line, exit 1)."""


class TrackingUriInvalid(ValueError):
    """--tracking-uri is not a URI MLflow can use (bad input, exit 2)."""


@dataclass(frozen=True)
class RunRecord:
    """Everything one MLflow run gets, read from AWS before anything is written."""

    job_name: str
    params: dict[str, str]
    tags: dict[str, str]
    series: dict[str, list[Point]]
    model_archive: Path


def check_tracking_uri(uri: str | None) -> str:
    if not uri:
        raise TrackingUriInvalid(
            "--tracking-uri is required (or MLFLOW_TRACKING_URI): an http(s) URI of an MLflow "
            "server or a SageMaker MLflow tracking server ARN"
        )
    if uri.startswith("arn:") and not _ARN.fullmatch(uri):
        raise TrackingUriInvalid(
            f"--tracking-uri {uri!r}: not a SageMaker MLflow ARN (expected "
            "arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
        )
    if not uri.startswith(("arn:", "http://", "https://", "file:", "sqlite:", "databricks")):
        raise TrackingUriInvalid(
            f"--tracking-uri {uri!r}: expected http(s)://..., a SageMaker MLflow tracking "
            "server ARN, file: or sqlite:"
        )
    return uri


def flatten(data: Any, prefix: str) -> dict[str, str]:
    """Nested config -> `prefix.a.b` = JSON-ish text (lists and scalars as written)."""
    if isinstance(data, dict) and data:
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}"))
        return out
    text = data if isinstance(data, str) else json.dumps(data)
    return {prefix: text}


def gather(aws: Aws, job_name: str, work: Path) -> RunRecord:
    """Read the completed job, its metric lines and its model archive."""
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    if job.get("TrainingJobStatus") != "Completed":
        raise LookupError(
            f"job {job_name} is {job.get('TrainingJobStatus')}: only a completed run goes to MLflow"
        )
    history = read_history(aws, job_name)
    model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, _, key = model_uri.removeprefix("s3://").partition("/")
    archive = work / "model.tar.gz"
    aws.client("s3").download_file(bucket, key, str(archive))
    with tarfile.open(archive) as tar:
        member = tar.extractfile(contract.MODEL_CONFIG_FILE)
        config = yaml.safe_load(member.read()) if member else {}
    params = {
        **flatten(config or {}, "config"),
        **{f"hp.{k}": v for k, v in sorted(job.get("HyperParameters", {}).items())},
    }
    resources, env = job.get("ResourceConfig", {}), job.get("Environment", {})
    tags = {
        JOB_TAG: job_name,
        "trainops.trigger": env.get("TRAINOPS_TRIGGER", "unknown"),
        "trainops.execution": env.get(EXECUTION_ARN_ENV, ""),
        "sagemaker.instance_type": str(resources.get("InstanceType", "")),
        "sagemaker.instance_count": str(resources.get("InstanceCount", "")),
        "sagemaker.training_job_arn": job.get("TrainingJobArn", ""),
        "sagemaker.model_artifacts": model_uri,
        "mlflow.runName": job_name,
    }
    return RunRecord(
        job_name, params, {k: v for k, v in tags.items() if v}, history.series, archive
    )


@contextmanager
def _no_retries() -> Iterator[None]:
    """For the probe: an unreachable server fails in seconds, not after minutes of retries."""
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(_PROBE_TIMEOUT_S)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _pointed_at(tracking_uri: str) -> Iterator[None]:
    """Point MLflow at the server for one export: sagemaker-mlflow signs requests and routes them
    by the *global* tracking URI (mlflow.get_tracking_uri()), not the client's. MLflow writes
    that URI into MLFLOW_TRACKING_URI too, which every later subprocess would inherit (SDK 2.x
    then waits for each job it starts, to import it into MLflow): both are put back after. For
    any non-ARN URI the plugin's header provider fails to parse an ARN and MLflow logs a warning
    per request: silenced."""
    import mlflow

    saved = os.environ.get("MLFLOW_TRACKING_URI")  # MLflow keeps it equal to the global URI
    mlflow.set_tracking_uri(tracking_uri)
    if not tracking_uri.startswith("arn:"):
        logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved)  # None unsets both


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def export(record: RunRecord, tracking_uri: str, experiment: str) -> tuple[str, bool]:
    """Write the run; returns (run id, created). Deletes the run again if any write fails."""
    with _pointed_at(tracking_uri):
        return _export(record, tracking_uri, experiment)


def _export(record: RunRecord, tracking_uri: str, experiment: str) -> tuple[str, bool]:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from mlflow.utils.validation import (
        MAX_METRICS_PER_BATCH,
        MAX_PARAM_VAL_LENGTH,
        MAX_PARAMS_TAGS_PER_BATCH,
    )

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        with _no_retries():
            found = client.get_experiment_by_name(experiment)
    except Exception as exc:
        raise MlflowExportError(
            f"MLflow tracking server {tracking_uri} does not answer: {_one_line(exc)}"
        ) from None
    try:
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        done = client.search_runs(
            [experiment_id], filter_string=f"tags.`{JOB_TAG}` = '{record.job_name}'"
        )
    except Exception as exc:
        raise MlflowExportError(f"MLflow at {tracking_uri}: {_one_line(exc)}") from None
    if done:
        return done[0].info.run_id, False
    run = client.create_run(experiment_id, tags=record.tags, run_name=record.job_name)
    run_id = run.info.run_id
    try:
        params = [Param(k, v[:MAX_PARAM_VAL_LENGTH]) for k, v in record.params.items()]
        for start in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(run_id, params=params[start : start + MAX_PARAMS_TAGS_PER_BATCH])
        metrics = [
            Metric(name, p.value, p.timestamp, p.step)
            for name, points in record.series.items()
            for p in points
        ]
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])
        client.log_artifact(run_id, str(record.model_archive), artifact_path="model")
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        try:
            client.delete_run(run_id)
        except Exception:  # the server is gone: the run stays unfinished, say so
            raise MlflowExportError(
                f"MLflow run {run_id} for {record.job_name} failed and could not be deleted: "
                f"{_one_line(exc)}"
            ) from None
        raise MlflowExportError(
            f"MLflow run for {record.job_name} not written (deleted again): {_one_line(exc)}"
        ) from None
    return run_id, True


def cmd_mlflow(args: argparse.Namespace) -> int:
    uri = check_tracking_uri(args.tracking_uri)
    # MLflow's client reports usage to its makers unless told not to; this command talks to
    # the tracking server alone.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    aws, job = job_of_command(args)
    with tempfile.TemporaryDirectory(prefix="trainops-mlflow-") as tmp:
        record = gather(aws, job, Path(tmp))
        run_id, created = export(record, uri, args.experiment or args.stack_name)
    points = sum(len(v) for v in record.series.values())
    if args.json:
        print(json.dumps({"job": job, "run_id": run_id, "created": created}))
    elif created:
        print(
            f"job {job} -> MLflow run {run_id} at {uri}: {len(record.params)} params, "
            f"{len(record.series)} metrics ({points} points), model.tar.gz"
        )
    else:
        print(f"job {job} is already in MLflow at {uri}: run {run_id}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "mlflow", "put a completed run into an MLflow tracking server", execution=True
    )
    p.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="an MLflow tracking URI or a SageMaker MLflow tracking server ARN "
        "(env MLFLOW_TRACKING_URI)",
    )
    p.add_argument("--experiment", help="MLflow experiment (default: the stack name)")
    p.set_defaults(handler=guarded(cmd_mlflow, TrackingUriInvalid))
