"""Seeing a run: TensorBoard, CloudWatch metrics, curves and MLflow, all from ONE emulated run.

The module starts one execution of the deployed stack (1 host, 3 epochs) and, while it trains,
a real MLflow tracking server on 127.0.0.1 (`mlflow server`, its own sqlite store and artifact
folder). Every test then reads that run back through a real reader: TensorBoard's
EventAccumulator on the S3 prefix the emulator uploaded to, CloudWatch GetMetricData, the PNG
that `trainops curves` wrote, and MlflowClient on what `trainops mlflow` put into the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests import timing
from trainops import runs
from trainops.curves import DPI, PANEL_INCHES, panel_of
from trainops.metric_history import MetricHistory
from trainops.mlflow_export import JOB_TAG

from .conftest import E2eStack, run_cli

pytestmark = [pytest.mark.slow]
EPOCHS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ObservedRun:
    stack: E2eStack
    name: str
    job: str
    history: MetricHistory
    mlflow_uri: str


def _start_mlflow(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = (work / "mlflow.log").open("wb")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}"),
            *("--artifacts-destination", str(work / "mlflow-artifacts")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    return server, f"http://127.0.0.1:{port}"


def _answers(uri: str) -> bool:
    try:
        return requests.get(f"{uri}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def observed(deployed: E2eStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedRun]:
    """One completed run and a running MLflow server (started first: both take a while)."""
    work = tmp_path_factory.mktemp("observed")
    server, uri = _start_mlflow(work)
    try:
        deployed.emulator.sagemaker.injected_failures.clear()
        arn = deployed.start(
            {"trigger": "operator", "instance_count": 1, "hyperparameters": {"epochs": str(EPOCHS)}}
        )
        assert deployed.wait(arn, timeout_s=150)["status"] == "SUCCEEDED", deployed.seen(arn)
        job = runs.training_jobs_of(deployed.aws, arn)[-1]
        history = MetricHistory(deployed.aws, job)
        history.update()
        timing.wait_until(
            lambda: _answers(uri) or server.poll() is not None,
            90,
            "the MLflow server answering /health",
            seen=lambda: (work / "mlflow.log").read_text(errors="replace")[-2000:],
        )
        assert server.poll() is None, (work / "mlflow.log").read_text(errors="replace")[-2000:]
        yield ObservedRun(deployed, arn.rsplit(":", 1)[-1], job, history, uri)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # uvicorn and its workers: a throwaway store
        server.wait()


def test_tensorboard_reader_loads_the_runs_series_from_the_s3_prefix(
    observed: ObservedRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(observed.stack, capsys, "tensorboard", observed.name, "--json")
    assert code == 0, err
    shown = json.loads(out)
    artifacts = observed.stack.outputs.artifacts_bucket
    assert shown["logdir"] == f"s3://{artifacts}/models/{observed.job}/tensorboard-output/"
    assert shown["event_files"] >= 1
    endpoint = observed.stack.emulator.endpoint_url
    assert f"S3_ENDPOINT={endpoint}" in shown["command"]
    assert shown["command"].endswith(f"tensorboard --logdir {shown['logdir']}")

    # TensorBoard's own reader, on the S3 prefix itself: its boto3 file system reads
    # S3_ENDPOINT when it is made (at import), so it is made again here, pointed at the emulator.
    monkeypatch.setenv("S3_ENDPOINT", endpoint)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.tensorflow_stub.io import gfile

    gfile.register_filesystem("s3", gfile.S3FileSystem())
    reader = EventAccumulator(shown["logdir"])
    reader.Reload()
    scalars = set(reader.Tags()["scalars"])
    logged = set(observed.history.series) - {"epoch", "samples_per_sec"}
    assert logged <= scalars, (logged, scalars)
    # The values TensorBoard shows are those of the metric lines (6 significant digits there).
    tensorboard = {(e.step, round(e.value, 4)) for e in reader.Scalars("val_acc")}
    lines = {round(p.value, 4) for p in observed.history.series["val_acc"]}
    assert {value for _, value in tensorboard} <= lines
    assert len({step for step, _ in tensorboard}) >= EPOCHS


def test_cloudwatch_has_one_point_per_metric_line(observed: ObservedRun) -> None:
    cloudwatch = observed.stack.client("cloudwatch")
    now = time.time()

    def query(stat: str) -> list[float]:
        result = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "/aws/sagemaker/TrainingJobs",
                            "MetricName": "val_acc",
                            "Dimensions": [{"Name": "TrainingJobName", "Value": observed.job}],
                        },
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            ],
            StartTime=now - 3600,
            EndTime=now + 60,
        )
        return result["MetricDataResults"][0]["Values"]

    points = observed.history.series["val_acc"]
    assert sum(query("SampleCount")) == len(points)
    assert max(query("Maximum")) == pytest.approx(max(p.value for p in points), 1e-5)


def test_curves_png_has_one_panel_per_metric(
    observed: ObservedRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from matplotlib import image

    out = tmp_path / "curves.png"
    code, stdout, err = run_cli(observed.stack, capsys, "curves", observed.name, "--out", str(out))
    assert code == 0, err
    expected = {panel_of(name) for name in observed.history.series if name != "epoch"}
    assert {"loss", "acc"} <= expected  # train_loss and val_loss share the `loss` panel
    assert stdout.startswith(f"wrote {out} ({len(expected)} panels")
    pixels = image.imread(out)
    height, width = pixels.shape[:2]
    assert (width, height) == (
        PANEL_INCHES[0] * DPI,
        PANEL_INCHES[1] * DPI * len(expected),
    )
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05  # not one flat colour
    assert len({tuple(p) for p in rgb[:: max(1, len(rgb) // 20000)]}) > 20  # lines, text, axes


def test_watch_draws_the_curves_in_the_terminal(
    observed: ObservedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        observed.stack, capsys, "watch", observed.name, "--curves", "--interval", "0.1"
    )
    assert code == 0, err
    block = out.split(f"curves of {observed.job}:\n", 1)[1].splitlines()
    curves = [line for line in block if line.startswith("  ")]
    drawn = {line.split()[0]: line for line in curves}
    assert set(drawn) == set(observed.history.series) - {"epoch"}
    for name, line in drawn.items():
        points = observed.history.series[name]
        assert line.split()[1][-1] in "▁▂▃▄▅▆▇█"  # the sparkline
        assert line.endswith(f"{points[-1].value:.4g} at step {points[-1].step}")


def test_mlflow_gets_params_every_metric_history_and_the_model(
    observed: ObservedRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    argv = ("mlflow", observed.name, "--tracking-uri", observed.mlflow_uri)
    code, out, err = run_cli(observed.stack, capsys, *argv)
    assert code == 0, err
    client = MlflowClient(observed.mlflow_uri)
    experiment = client.get_experiment_by_name(observed.stack.outputs.stack_name)
    (run,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{JOB_TAG}` = '{observed.job}'"
    )
    assert run.info.run_id in out and run.info.status == "FINISHED"
    params, tags = run.data.params, run.data.tags
    assert params["hp.epochs"] == str(EPOCHS)
    assert params["config.model.class_path"] == "training.tasks.digits.module.DigitsClassifier"
    assert "config.trainer.max_epochs" in params
    assert tags["sagemaker.instance_type"] == observed.stack.config.instance_type
    assert tags["sagemaker.instance_count"] == "1"
    assert tags["trainops.trigger"] == "operator"
    for name, points in observed.history.series.items():
        stored = client.get_metric_history(run.info.run_id, name)
        assert [(m.step, m.value) for m in stored] == [(p.step, p.value) for p in points], name
    (artifact,) = client.list_artifacts(run.info.run_id, "model")
    assert artifact.path == "model/model.tar.gz"
    local = client.download_artifacts(run.info.run_id, artifact.path, str(tmp_path))
    with tarfile.open(local) as tar:
        assert {"model.pt", "config.yaml", "model.json"} <= set(tar.getnames())

    # Again: the job is recognised, nothing is written twice.
    code, out, err = run_cli(observed.stack, capsys, *argv)
    assert code == 0 and f"already in MLflow at {observed.mlflow_uri}: run {run.info.run_id}" in out
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_mlflow_failure_mid_write_leaves_no_run(
    observed: ObservedRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    def refuse(*args, **kwargs) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(MlflowClient, "log_artifact", refuse)
    code, _, err = run_cli(
        observed.stack,
        capsys,
        *("mlflow", observed.name, "--tracking-uri", observed.mlflow_uri),
        *("--experiment", "half-written"),
    )
    assert code == 1
    assert err.strip() == (
        f"error: MLflow run for {observed.job} not written (deleted again): "
        "OSError: no space left on device"
    )
    monkeypatch.undo()
    experiment = MlflowClient(observed.mlflow_uri).get_experiment_by_name("half-written")
    assert MlflowClient(observed.mlflow_uri).search_runs([experiment.experiment_id]) == []


def test_bad_input_is_one_line_each(
    observed: ObservedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    code, _, err = run_cli(observed.stack, capsys, "mlflow", observed.name, "--tracking-uri", dead)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: MLflow tracking server {dead} does not answer: ")

    code, _, err = run_cli(observed.stack, capsys, "curves", "no-such-run")
    assert (code, err) == (1, "error: no execution named 'no-such-run'\n")

    code, _, err = run_cli(observed.stack, capsys, "curves", observed.name, "--metric", "val_f1")
    logged = ", ".join(sorted(observed.history.series))
    assert (code, err) == (
        2,
        f"error: --metric val_f1: job {observed.job} never logged it (logged: {logged})\n",
    )

    code, _, err = run_cli(
        observed.stack, capsys, "mlflow", observed.name, "--tracking-uri", "arn:aws:s3:::bucket"
    )
    assert code == 2 and err.startswith("error: --tracking-uri 'arn:aws:s3:::bucket': not a ")
