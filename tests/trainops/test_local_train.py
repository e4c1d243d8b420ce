"""The real training script, packed as the stack ships it, through the real toolkit on 2 hosts."""

from __future__ import annotations

import json

import pytest

from tests import timing
from trainops.local_train import run_local_training

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_two_simulated_hosts_train_to_target_accuracy_and_write_one_model(tmp_path):
    result = run_local_training(
        hosts=2,
        processes_per_host=1,
        hyperparameters={"epochs": "5"},
        root=tmp_path,
        job_name="two-hosts",
        echo=lambda line: None,
        timeout_s=timing.bound(240),
    )
    assert result.exit_codes == [0, 0], result.failure
    assert result.failure is None
    names = sorted(p.relative_to(tmp_path / "two-hosts").as_posix() for p in result.model_files)
    assert names == [
        "hosts/algo-1/model/config.yaml",
        "hosts/algo-1/model/model.json",
        "hosts/algo-1/model/model.pt",
    ]
    (model_json,) = (p for p in result.model_files if p.name == "model.json")
    info = json.loads(model_json.read_text())
    assert info["cluster"]["world_size"] == 2 and info["cluster"]["num_nodes"] == 2
    assert info["metrics"]["val_acc"] >= 0.95
    assert result.metrics["val_acc"] >= 0.95
    assert (tmp_path / "two-hosts" / "checkpoint-store" / "last.ckpt").is_file()
