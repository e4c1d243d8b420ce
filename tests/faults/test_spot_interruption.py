"""Fault 1, spot interruption: SIGKILL every process of a running 2-host job, start it again
with the same checkpoint store (what managed spot does), and it resumes from the last synced
checkpoint, losing at most one checkpoint interval, and writes one valid model."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch

from tests import timing
from tests.faults.conftest import DEBUG_DIR_ENV, make_job, read_progress, wait_dead, wait_for
from training import contract
from training.checkpoints import checkpoint_step
from training.export import load_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EVERY = 10  # checkpoint_every_n_steps
MAX_STEPS = 120
KILL_AT = 30  # kill once the store holds a checkpoint at or beyond this step
HPS = {
    "epochs": "1000",
    "max_steps": str(MAX_STEPS),
    "batch_size": "16",  # 51 steps per epoch on 2 ranks: checkpoints fall mid-epoch
    "checkpoint_every_n_steps": str(EVERY),
}


def _store_step(store: Path) -> int:
    path = store / contract.CHECKPOINT_FILE
    if not path.exists():
        return -1
    try:
        return checkpoint_step(path)
    except Exception:  # being replaced right now
        return -1


def test_spot_kill_resumes_from_last_synced_checkpoint(tmp_path, real_bundle, record_property):
    store = tmp_path / "store"
    debug = tmp_path / "debug-1"
    first = make_job(
        tmp_path / "attempt-1", real_bundle, hps=HPS, store=store, env={DEBUG_DIR_ENV: str(debug)}
    )
    first.start()
    wait_for(lambda: _store_step(store) >= KILL_AT, 180, "a synced checkpoint", first)
    synced_before = _store_step(store)
    killed_at = time.monotonic()
    first.kill()  # SIGKILL, every process group at once: no handler runs
    progress = read_progress(debug, 0)
    assert progress is not None and progress["phase"] == "train"
    trained = progress["global_step"]
    assert wait_dead(progress["pid"]), "a training process survived the kill"
    synced_after = _store_step(store)  # the sync thread's last pass, as SageMaker's upload
    assert synced_after >= synced_before
    assert trained < MAX_STEPS

    second = make_job(tmp_path / "attempt-2", real_bundle, hps=HPS, store=store)
    second.start()
    codes = timing.finish(second, 240, "the resumed job")
    recovered_s = time.monotonic() - killed_at
    log = "\n".join(second.log_lines())
    assert codes == [0, 0], second.failure_reason() or log[-3000:]

    match = re.search(r"resuming from (\S+) at global step (\d+)", log)
    assert match, log[-3000:]
    resumed = int(match.group(2))
    assert Path(match.group(1)).name == contract.CHECKPOINT_FILE
    assert resumed == synced_after  # from the newest checkpoint the store holds
    lost = trained - resumed
    assert 0 <= lost <= EVERY, f"trained to {trained}, resumed at {resumed}"

    # One model, whole and valid; nothing else in any host's model dir.
    files = [p.relative_to(second.root).as_posix() for p in second.model_files()]
    assert files == [
        "hosts/algo-1/model/config.yaml",
        "hosts/algo-1/model/model.json",
        "hosts/algo-1/model/model.pt",
    ]
    model_dir = second.hosts[0].model_dir
    info = json.loads((model_dir / contract.MODEL_INFO_FILE).read_text())
    assert info["global_step"] == MAX_STEPS
    assert info["resumed_from"].endswith(contract.CHECKPOINT_FILE)
    assert info["metrics"]["val_acc"] >= 0.85
    # config.yaml rebuilds the LightningModule and model.pt (its whole state_dict) loads into
    # it strictly: every tensor present, every shape right.
    module = load_model(model_dir)
    assert type(module).__name__ == "DigitsClassifier"
    state = torch.load(model_dir / contract.MODEL_FILE, weights_only=True)
    assert state.keys() == module.state_dict().keys()
    assert all(torch.isfinite(t).all() for t in state.values())

    record_property("steps_trained_before_kill", trained)
    record_property("store_step_before_kill", synced_before)
    record_property("resumed_step", resumed)
    record_property("steps_lost", lost)
    record_property("kill_to_completed_s", round(recovered_s, 1))
    print(
        f"\nspot: trained {trained}, store {synced_before} before kill / {synced_after} after, "
        f"resumed {resumed}, lost {lost} steps (interval {EVERY}), kill -> completed "
        f"{recovered_s:.1f} s"
    )
