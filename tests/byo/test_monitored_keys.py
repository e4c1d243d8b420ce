"""A ModelCheckpoint or EarlyStopping monitoring a metric the module never logs is one line
naming the callback, its config key, the missing name and the names logged: at the first
epoch's end where Lightning would fail (its error rewritten), at the second epoch's start where
Lightning would only warn (no validation loop: ModelCheckpoint never saves)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.byo.conftest import COURSE, PLAIN, STYLE_CONFIGS, code_folder, start_in
from tests.training.conftest import communicate_all, subprocess_env
from training.monitored_keys import Monitor, missing_line, monitors


def test_monitors_are_named_by_their_config_key() -> None:
    import lightning.pytorch as pl
    from lightning.pytorch import callbacks as cb

    found = monitors(
        [
            cb.LearningRateMonitor(),
            cb.ModelCheckpoint(monitor="val_acc"),
            cb.EarlyStopping(monitor="val_los", strict=False),  # asks for a miss to be tolerated
            cb.EarlyStopping(monitor="val_loss"),
            cb.ModelCheckpoint(),  # no monitor: last/periodic checkpoints
        ],
        pl,
    )
    assert found == [
        Monitor(
            "trainer.callbacks[1].init_args.monitor",
            "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint",
            "val_acc",
            True,
        ),
        Monitor(
            "trainer.callbacks[3].init_args.monitor",
            "lightning.pytorch.callbacks.early_stopping.EarlyStopping",
            "val_loss",
            False,
        ),
    ]
    assert missing_line(found, ["val_acc", "val_loss"], "train.yaml") is None
    assert missing_line(found, ["val_acc", "val/loss"], "train.yaml") == (
        "trainer.callbacks[3].init_args.monitor='val_loss' in train.yaml "
        "(lightning.pytorch.callbacks.early_stopping.EarlyStopping) monitors a metric the module "
        "never logs; it logs: val/loss, val_acc: monitor one of those, or log 'val_loss' with "
        "self.log"
    )
    # ModelCheckpoint may monitor its own counters; EarlyStopping may not.
    step = [Monitor("k", "c", "step", True)]
    assert missing_line(step, [], "c.yaml") is None
    assert missing_line([Monitor("k", "c", "step", False)], [], "c.yaml") is not None


def _job(project: str, tmp: Path, callback: dict) -> subprocess.Popen[str]:
    """One process training `project` (copied with the runner) with `callback` as its only one."""
    code = code_folder(project, tmp / project / "code")
    config = code / STYLE_CONFIGS[project]
    data = yaml.safe_load(config.read_text())
    data["trainer"]["callbacks"] = [callback]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    env = subprocess_env({"TRAINING_LOCAL_ROOT": str(tmp / project / "root"), "PYTHONPATH": ""})
    args = ["training/train.py", "--config", STYLE_CONFIGS[project], "--epochs", "2"]
    return start_in(code, args, env)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_monitor_the_module_never_logs_is_one_line(tmp_path: Path) -> None:
    course = _job(
        COURSE,
        tmp_path,
        {
            "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
            "init_args": {"monitor": "val_accuracy", "mode": "max"},
        },
    )
    # No validation loop: Lightning warns and never saves; the runner fails it at epoch 2.
    plain = _job(
        PLAIN,
        tmp_path,
        {
            "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
            "init_args": {"monitor": "val_loss"},
        },
    )
    procs = [course, plain]
    outputs = communicate_all(procs, 300)
    lasts = [out.strip().splitlines()[-1] for out in outputs]
    assert [p.returncode for p in procs] == [2, 2], [out[-3000:] for out in outputs]
    assert lasts == [
        "error: trainer.callbacks[0].init_args.monitor='val_accuracy' in config.yaml "
        "(pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint) monitors a metric the "
        "module never logs; it logs: lr_now, train_acc, train_loss, val_acc, val_loss: monitor "
        "one of those, or log 'val_accuracy' with self.log",
        "error: trainer.callbacks[0].init_args.monitor='val_loss' in config.yaml "
        "(pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint) monitors a metric the "
        "module never logs; it logs: train_loss: monitor one of those, or log 'val_loss' with "
        "self.log",
    ]
    # Each failed as soon as it could be known: at epoch 0's end (course, where Lightning checks)
    # or right after it (plain: its epoch 0 line printed), never training epoch 1.
    assert ["epoch=0" in out for out in outputs] == [False, True]
    assert ["epoch=1" in out for out in outputs] == [False, False]
