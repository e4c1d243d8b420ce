"""Fault 4, a corrupt checkpoint: a truncated last.ckpt makes the run fall back to
previous.ckpt (kept by an atomic rotation at every save); when no checkpoint is readable the run
fails with one clear line. It never silently starts over from step 0."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from training import contract, train
from training.checkpoints import checkpoint_step, rotate_checkpoint

pytestmark = [pytest.mark.timeout(180)]

ARGS = ["--batch_size", "64", "--checkpoint_every_n_steps", "5"]  # 26 steps an epoch


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith(("SM_", "TRAINING_")) or key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            monkeypatch.delenv(key)
    monkeypatch.setenv(contract.LOCAL_ROOT_ENV, str(tmp_path / "root"))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "root"
    torch.set_num_threads(threads)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_last_checkpoint_falls_back_to_previous(root, capsys):
    assert train.main(["--epochs", "1", *ARGS]) == 0
    ckpts = root / "checkpoints"
    last, previous = ckpts / contract.CHECKPOINT_FILE, ckpts / contract.PREVIOUS_CHECKPOINT_FILE
    assert checkpoint_step(last) == 26 and checkpoint_step(previous) == 25
    _truncate(last)
    capsys.readouterr()
    (root / "model" / contract.MODEL_FILE).unlink()

    assert train.main(["--epochs", "2", *ARGS]) == 0
    err = capsys.readouterr().err
    assert f"falling back to {previous} at global step 25 (last.ckpt is unreadable)" in err
    assert f"resuming from {previous} at global step 25" in err
    info = json.loads((root / "model" / contract.MODEL_INFO_FILE).read_text())
    assert info["resumed_from"] == str(previous)
    # Resumed mid-epoch 1 at step 25: one step of epoch 1 redone, then epoch 2 (26 steps).
    assert info["global_step"] == 52
    # The unreadable file is set aside (a dot-file: never synced, never rotated over previous).
    assert (ckpts / f".{contract.CHECKPOINT_FILE}.corrupt").exists()
    assert checkpoint_step(last) == 52


def test_no_readable_checkpoint_fails_clearly_instead_of_starting_over(root, capsys):
    assert train.main(["--epochs", "1", *ARGS]) == 0
    ckpts = root / "checkpoints"
    for name in (contract.CHECKPOINT_FILE, contract.PREVIOUS_CHECKPOINT_FILE):
        _truncate(ckpts / name)
    for path in (root / "model").iterdir():
        path.unlink()
    capsys.readouterr()

    assert train.main(["--epochs", "2", *ARGS]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(
        rf"error: no usable checkpoint in {re.escape(str(ckpts))}: "
        r"last.ckpt: unreadable checkpoint \(RuntimeError: PytorchStreamReader failed reading "
        r"zip archive: failed finding central directory\); "
        r"previous.ckpt: unreadable checkpoint \(RuntimeError: PytorchStreamReader failed "
        r"reading zip archive: failed finding central directory\); "
        r"refusing to start over from step 0: delete last.ckpt and previous.ckpt to train "
        r"from scratch",
        lines[-1],
    ), lines[-1]
    assert list((root / "model").iterdir()) == []


def test_rotation_keeps_previous_whole(tmp_path):
    last = tmp_path / contract.CHECKPOINT_FILE
    last.write_bytes(b"one")
    rotate_checkpoint(last)
    assert (tmp_path / contract.PREVIOUS_CHECKPOINT_FILE).read_bytes() == b"one"
    assert last.read_bytes() == b"one"  # still there until the new one replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "previous.ckpt"]
