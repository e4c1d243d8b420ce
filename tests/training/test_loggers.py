"""The runner's loggers: CSV + TensorBoard by default, the user's own kept, off stays off."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from training import contract
from training.loggers import loggers_for, tensorboard_dir


def test_tensorboard_goes_where_sagemaker_uploads_it() -> None:
    data = Path("/opt/ml/output/data")
    assert tensorboard_dir(data) == Path(contract.TENSORBOARD_DIR)
    assert tensorboard_dir(Path("/tmp/host/output/data")) == Path("/tmp/host/output/tensorboard")


def test_default_is_csv_and_tensorboard(tmp_path: Path) -> None:
    csv, tb = loggers_for(pl, None, tmp_path / "output" / "data")
    assert isinstance(csv, pl.loggers.CSVLogger)
    assert isinstance(tb, pl.loggers.TensorBoardLogger)
    assert Path(tb.log_dir) == tmp_path / "output" / "tensorboard"
    tb.log_metrics({"val_acc": 0.5}, step=3)
    tb.finalize("success")
    assert list((tmp_path / "output" / "tensorboard").glob("events.out.tfevents.*"))


def test_users_logger_is_kept_with_tensorboard_beside_it(tmp_path: Path) -> None:
    mine = pl.loggers.CSVLogger(save_dir=str(tmp_path / "mine"))
    got = loggers_for(pl, mine, tmp_path / "output" / "data")
    assert got[0] is mine and isinstance(got[1], pl.loggers.TensorBoardLogger)
    own_tb = pl.loggers.TensorBoardLogger(save_dir=str(tmp_path / "tb"))
    assert loggers_for(pl, [own_tb], tmp_path / "output" / "data") == [own_tb]
    assert loggers_for(pl, False, tmp_path / "output" / "data") is False
