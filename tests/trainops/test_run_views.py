"""The pieces behind `trainops curves`, `watch --curves` and `mlflow` that need no AWS: panel
grouping, the terminal sparkline, metric selection and the config flattening for MLflow."""

from __future__ import annotations

import pytest

from trainops.curves import draw, panel_of, panels
from trainops.metric_history import MetricHistory, MetricNotLogged, Point
from trainops.mlflow_export import TrackingUriInvalid, check_tracking_uri, flatten
from trainops.watch_curves import render, sparkline


def _history(lines: list[str]) -> MetricHistory:
    history = MetricHistory(aws=None, job_name="job-1")  # type: ignore[arg-type]
    for i, line in enumerate(lines):
        history._add(line, timestamp=1000 + i)
    return history


def test_metric_lines_become_series_by_step() -> None:
    history = _history(
        [
            "INFO something else",
            "[metrics] step=10 train_loss=0.9 val_acc=0.5 val_loss=1.1 epoch=0 samples_per_sec=99",
            "[metrics] step=20 train_loss=0.5 val_acc=0.8 val_loss=0.7 epoch=1 samples_per_sec=98",
            "[metrics] step=20 val_acc=0.81 val_loss=0.69",
        ]
    )
    assert history.lines == 3
    assert [(p.step, p.value) for p in history.series["val_acc"]] == [
        (10, 0.5),
        (20, 0.8),
        (20, 0.81),
    ]
    assert "step" not in history.series
    assert [p.step for p in history.series["train_loss"]] == [10, 20]


def test_select_names_a_metric_never_logged_and_what_was() -> None:
    history = _history(["[metrics] step=1 val_acc=0.5 train_loss=0.2"])
    assert list(history.select(["val_acc"])) == ["val_acc"]
    with pytest.raises(MetricNotLogged) as err:
        history.select(["val_acc", "val_f1"])
    assert str(err.value) == (
        "--metric val_f1: job job-1 never logged it (logged: train_loss, val_acc)"
    )


def test_training_and_validation_share_a_panel() -> None:
    assert [panel_of(n) for n in ("train_loss", "val_loss", "val/acc", "lr", "validation_f1")] == [
        "loss",
        "loss",
        "acc",
        "lr",
        "f1",
    ]
    series = {n: [Point(1, 1.0, 0)] for n in ("val_loss", "train_loss", "val_acc", "lr")}
    grouped = panels(series)
    assert {k: sorted(v) for k, v in grouped.items()} == {
        "lr": ["lr"],
        "loss": ["train_loss", "val_loss"],
        "acc": ["val_acc"],
    }


def test_draw_writes_one_panel_height_per_panel(tmp_path) -> None:
    from matplotlib import image

    from trainops.curves import DPI, PANEL_INCHES

    series = {
        "train_loss": [Point(s, 1 / s, 0) for s in range(1, 6)],
        "val_loss": [Point(s, 1.2 / s, 0) for s in range(1, 6)],
        "val_acc": [Point(s, 1 - 1 / s, 0) for s in range(1, 6)],
    }
    names = draw(series, tmp_path / "c.png", title="job-1")
    assert names == ["loss", "acc"]
    height, width = image.imread(tmp_path / "c.png").shape[:2]
    assert (width, height) == (PANEL_INCHES[0] * DPI, 2 * PANEL_INCHES[1] * DPI)


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([2.0, 2.0]) == "▁▁"
    assert len(sparkline([float(i) for i in range(100)], width=10)) == 10
    (line,) = render({"val_acc": [Point(10, 0.5, 0), Point(20, 0.9, 0)]})
    assert line.split() == ["val_acc", "▁█", "[0.5,", "0.9]", "0.9", "at", "step", "20"]


def test_config_flattens_to_dotted_params() -> None:
    config = {"model": {"class_path": "m.M", "init_args": {"hidden": [64, 64], "lr": 0.001}}}
    assert flatten(config, "config") == {
        "config.model.class_path": "m.M",
        "config.model.init_args.hidden": "[64, 64]",
        "config.model.init_args.lr": "0.001",
    }


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (None, "--tracking-uri is required"),
        ("ftp://x", "--tracking-uri 'ftp://x': expected http(s)://"),
        ("arn:aws:sagemaker:us-east-1:123:mlflow-tracking-server/x", "not a SageMaker MLflow ARN"),
    ],
)
def test_tracking_uri_is_checked(uri: str | None, message: str) -> None:
    with pytest.raises(TrackingUriInvalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_tracking_uri(uri)


def test_tracking_server_arn_is_accepted() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team-a"
    assert check_tracking_uri(arn) == arn
