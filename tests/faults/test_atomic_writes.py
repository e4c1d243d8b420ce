"""Fault 6, a kill in the middle of a write: each writer is SIGKILLed between writing its temp
file and os.replace(). The target is then absent or the old whole file, never half of one, and
a later run ignores (or removes) the temp file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests import timing
from tests.training.conftest import REPO, subprocess_env
from training import contract
from training.checkpoints import checkpoint_step, select_checkpoint
from training.export import save_model
from training.tasks.digits.data import DigitsDataModule

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]  # a child interpreter per test

#: Runs one writer in a child process whose os.replace() onto TARGET kills the process.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    target = Path(sys.argv[2])
    real_replace = os.replace
    def dying_replace(src, dst, *a, **k):
        if Path(dst).name == target.name:
            os.kill(os.getpid(), signal.SIGKILL)  # temp file written, not yet renamed
        return real_replace(src, dst, *a, **k)
    os.replace = dying_replace
    import pytorch_lightning as pl
    import torch
    from training.checkpoints import atomic_checkpoint_io
    from training.export import save_model
    from training.tasks.digits.data import DigitsDataModule
    what, folder = sys.argv[1], target.parent
    if what == "model":
        save_model(torch.nn.Linear(2, 2), folder, config_yaml="new: true", info={"new": True})
    elif what == "cache":
        dm = DigitsDataModule(batch_size=8, channels={}, cache_dir=folder)
        assert dm.cache_file.name == target.name
        dm.prepare_data()
    elif what in ("checkpoint", "rotation"):
        io = atomic_checkpoint_io(pl)
        io.save_checkpoint({"global_step": 99, "new": True}, folder / "last.ckpt")
    """
)


def _kill_during_write(what: str, target: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(target)],
        env=subprocess_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timing.bound(90),
    )
    assert proc.returncode == -9, proc.stderr[-2000:]


_MODEL_FILES = (contract.MODEL_FILE, contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_kill_while_writing_the_model_keeps_the_old_model(tmp_path):
    model_dir = tmp_path / "model"
    old = torch.nn.Linear(2, 2)
    save_model(old, model_dir, config_yaml="old: true\n", info={"old": True})
    before = {name: (model_dir / name).read_bytes() for name in _MODEL_FILES}
    _kill_during_write("model", model_dir / contract.MODEL_FILE)
    # model.pt is written first: the kill leaves every file of the old model, whole.
    assert {name: (model_dir / name).read_bytes() for name in _MODEL_FILES} == before
    assert _temps(model_dir) and all(t.startswith(".model.pt.") for t in _temps(model_dir))
    # The next save (a later run on the same folder) removes the stale temp file.
    save_model(torch.nn.Linear(2, 2), model_dir, config_yaml="later: true\n", info={"later": 1})
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(_MODEL_FILES)


def test_kill_while_writing_the_model_record_leaves_no_half_file(tmp_path):
    model_dir = tmp_path / "model"
    save_model(torch.nn.Linear(2, 2), model_dir, config_yaml="old: true\n", info={"old": True})
    _kill_during_write("model", model_dir / contract.MODEL_INFO_FILE)
    assert json.loads((model_dir / contract.MODEL_INFO_FILE).read_text()) == {"old": True}
    assert _temps(model_dir) and all(t.startswith(".model.json.") for t in _temps(model_dir))
    save_model(torch.nn.Linear(2, 2), model_dir, config_yaml="later: true\n", info={"later": 1})
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(_MODEL_FILES)


def test_kill_while_writing_the_prepared_cache_leaves_no_cache(tmp_path):
    cache = tmp_path / "cache"
    target = DigitsDataModule(batch_size=8, channels={}, cache_dir=cache).cache_file
    _kill_during_write("cache", target)
    assert not target.exists()
    assert _temps(cache)
    later = DigitsDataModule(batch_size=8, channels={}, cache_dir=cache)
    later.prepare_data()  # prepares again: the temp file is not mistaken for the cache
    later.setup("fit")
    assert len(later.train_set) + len(later.val_set) == 1797


@pytest.mark.parametrize("moment", ["checkpoint", "rotation"])
def test_kill_while_writing_a_checkpoint_keeps_the_last_whole_one(tmp_path, moment):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    torch.save({"global_step": 10}, ckpts / contract.CHECKPOINT_FILE)
    torch.save({"global_step": 5}, ckpts / contract.PREVIOUS_CHECKPOINT_FILE)
    # checkpoint: killed before the new last.ckpt replaces the old one;
    # rotation: killed before the old last.ckpt becomes previous.ckpt.
    name = contract.CHECKPOINT_FILE if moment == "checkpoint" else "previous.ckpt"
    _kill_during_write(moment, ckpts / name)
    assert checkpoint_step(ckpts / contract.CHECKPOINT_FILE) == 10
    assert _temps(ckpts)
    assert select_checkpoint(ckpts) == (ckpts / contract.CHECKPOINT_FILE, 10)
