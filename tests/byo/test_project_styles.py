"""Three styles of Lightning project written elsewhere train unchanged on 2 simulated hosts
(torchrun, 2 nodes x 1 process, each host its own copy of the bundle's code folder), all three
jobs side by side in one test: LightningCLI's docs example without a validation step, a
course-style MLP with ModelCheckpoint(monitor=val_acc), a lightning-hydra-template-style repo.

Each epoch's metric line carries that epoch's training and validation values; the model dir
records what ran (2 nodes, the learning rate's key as found)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.byo.conftest import COURSE, HYDRA, PLAIN, STYLE_CONFIGS, code_folder, start_in
from tests.training.conftest import communicate_all, free_port, subprocess_env
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
EPOCHS = 2
#: project -> (metrics every epoch line carries, the learning rate's key, final metric)
EXPECTED = {
    PLAIN: (("train_loss",), "model.init_args.learning_rate", "train_loss"),
    COURSE: (
        ("train_acc", "val_acc", "val_loss", "lr_now"),
        "model.init_args.learning_rate",
        "val_acc",
    ),
    HYDRA: (
        ("train/acc", "train/loss", "val/acc", "val/loss", "val/acc_best"),
        "model.init_args.optimizer.init_args.lr",
        "val/acc",
    ),
}


def _launch(project: str, tmp: Path) -> list[subprocess.Popen[str]]:
    port = free_port()
    procs = []
    for node in (0, 1):
        host = tmp / project / f"algo-{node + 1}"
        code = code_folder(project, host / "code")
        env = subprocess_env({"TRAINING_LOCAL_ROOT": str(host), "PYTHONPATH": ""})
        args = ["-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node)]
        args += ["--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port)]
        args += ["training/train.py", "--config", STYLE_CONFIGS[project], "--epochs", str(EPOCHS)]
        procs.append(start_in(code, args, env))
    return procs


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("styles")
    launched = {name: _launch(name, tmp) for name in EXPECTED}
    outputs = {name: communicate_all(procs, 400) for name, procs in launched.items()}
    codes = {name: [p.returncode for p in procs] for name, procs in launched.items()}
    return tmp, outputs, codes


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_trains_unchanged_on_two_hosts_with_one_line_per_epoch(jobs, project):
    tmp, outputs, codes = jobs
    assert codes[project] == [0, 0], outputs[project][0][-4000:] + outputs[project][1][-2000:]
    metrics, lr_key, final = EXPECTED[project]
    lines = [
        contract.parse_metric_line(line)
        for line in outputs[project][0].splitlines()
        if line.startswith(contract.METRIC_LINE_PREFIX)
    ]
    assert [line["epoch"] for line in lines] == list(range(EPOCHS))  # in step, none late
    for line in lines:
        assert set(metrics) <= set(line), line
    assert contract.METRIC_LINE_PREFIX not in outputs[project][1]  # rank 0 prints

    model_dir = tmp / project / "algo-1" / "model"
    assert {p.name for p in model_dir.iterdir()} == set(
        (contract.MODEL_FILE, contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE)
    )
    assert not (tmp / project / "algo-2" / "model").exists()
    info = json.loads((model_dir / contract.MODEL_INFO_FILE).read_text())
    assert info["cluster"]["num_nodes"] == 2 and info["cluster"]["world_size"] == 2
    assert info["lr_key"] == info["hyperparameters"]["lr_key"] == lr_key
    assert info["effective_lr"] == pytest.approx(2 * info["base_lr"])
    assert info["metrics"][final] == pytest.approx(lines[-1][final])
    recorded = yaml.safe_load((model_dir / contract.MODEL_CONFIG_FILE).read_text())
    assert recorded["trainer"]["num_nodes"] == 2 and recorded["trainer"]["devices"] == 1
    node = recorded
    for part in lr_key.split("."):
        node = node[part]
    assert node == info["base_lr"]  # the config records the base rate, at the key found


def test_the_course_projects_checkpoint_callback_kept_its_best_epoch(jobs):
    tmp, _, codes = jobs
    assert codes[COURSE] == [0, 0]
    saved = list((tmp / COURSE / "algo-1").rglob("epoch=*.ckpt"))
    assert len(saved) == 1, saved  # save_top_k=1 on val_acc, written by rank 0
