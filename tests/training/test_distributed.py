"""Two CPU processes: torchrun (one host x 2, two hosts x 1) and the smddp path under an
mpirun-style environment, with the rehearsal's SMDDP stand-in (localjob/smddp_standin: gloo with
SMDDP's limits) on the path only inside these tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localjob.image_standin import STAND_INS
from tests.training.conftest import REPO, communicate_all, free_port, run_python, subprocess_env
from training import contract


def _ranks(debug: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(debug.glob("rank-*.json"))]


def _assert_one_model(root: Path, outputs: str) -> dict:
    model_dir = root / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [contract.MODEL_FILE, contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE]
    )
    assert outputs.count("model written to") == 1
    return json.loads((model_dir / contract.MODEL_INFO_FILE).read_text())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_torchrun_one_host_two_processes(tmp_path: Path) -> None:
    debug = tmp_path / "debug"
    env = subprocess_env(
        {"TRAINING_LOCAL_ROOT": str(tmp_path / "root"), "TRAINING_DEBUG_DIR": str(debug)}
    )
    proc = run_python(
        [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            "training/train.py",
            "--epochs",
            "2",
        ],
        env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = _ranks(debug)
    assert [r["global_rank"] for r in ranks] == [0, 1]
    assert len({r["param_sha256"] for r in ranks}) == 1  # identical parameters on all ranks
    assert {r["global_step"] for r in ranks} == {8}  # 1617 rows / (2 x 256) -> 4 steps/epoch
    calls = (debug / "prepare_data.log").read_text().split()
    assert len(calls) == 2 and len(set(calls)) == 1  # once per node (fit, validate), one process
    info = _assert_one_model(tmp_path / "root", proc.stdout + proc.stderr)
    assert info["cluster"]["launcher"] == "torchrun" and info["cluster"]["world_size"] == 2
    assert info["effective_lr"] == pytest.approx(0.002)  # linear scaling x world size


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_torchrun_two_hosts_one_process_each(tmp_path: Path) -> None:
    debug = tmp_path / "debug"
    port = free_port()
    procs = []
    for node in (0, 1):
        env = subprocess_env(
            {
                "TRAINING_LOCAL_ROOT": str(tmp_path / f"host{node}"),
                "TRAINING_CACHE_DIR": str(tmp_path / f"host{node}" / "cache"),
                "TRAINING_DEBUG_DIR": str(debug / f"host{node}"),
            }
        )
        args = [
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--node_rank",
            str(node),
            "--nproc_per_node",
            "1",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "training/train.py",
            "--epochs",
            "1",
        ]
        procs.append(
            subprocess.Popen(
                [sys.executable, *args],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = communicate_all(procs)
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    ranks = _ranks(debug / "host0") + _ranks(debug / "host1")
    assert [r["global_rank"] for r in ranks] == [0, 1]
    assert "nodes=2" in ranks[0]["cluster"] and "node_rank=1" in ranks[1]["cluster"]
    assert len({r["param_sha256"] for r in ranks}) == 1
    # Each node prepared its own cache (fit + validate each call prepare_data once per node).
    for node in (0, 1):
        calls = (debug / f"host{node}" / "prepare_data.log").read_text().split()
        assert len(calls) == 2 and len(set(calls)) == 1
        assert list((tmp_path / f"host{node}" / "cache").glob("prepared-*.npz"))
    _assert_one_model(tmp_path / "host0", "".join(outputs))
    assert not (tmp_path / "host1" / "model").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_smddp_under_mpirun_env(tmp_path: Path) -> None:
    standin = STAND_INS["smddp"][0].parent
    debug = tmp_path / "debug"
    port = free_port()
    procs = []
    for rank in (0, 1):
        env = subprocess_env(
            {
                "PYTHONPATH": f"{standin}:{REPO}",
                "TRAINING_LOCAL_ROOT": str(tmp_path / "root"),
                "TRAINING_DEBUG_DIR": str(debug),
                "SM_HOSTS": '["localhost"]',  # MASTER_ADDR is derived from the first host
                "SM_CURRENT_HOST": "localhost",
                "SM_FRAMEWORK_PARAMS": json.dumps({contract.LAUNCHER_FLAGS["smddp"]: True}),
                "MASTER_PORT": str(port),
                "OMPI_COMM_WORLD_RANK": str(rank),
                "OMPI_COMM_WORLD_SIZE": "2",
                "OMPI_COMM_WORLD_LOCAL_RANK": str(rank),
                "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
                "OMPI_COMM_WORLD_NODE_RANK": "0",
            }
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "training/train.py", "--epochs", "2"],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = communicate_all(procs)
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "distributed_backend=smddp" in outputs[0]
    ranks = _ranks(debug)
    assert [r["global_rank"] for r in ranks] == [0, 1]
    assert all("launcher=mpirun" in r["cluster"] and "backend=smddp" in r["cluster"] for r in ranks)
    assert len({r["param_sha256"] for r in ranks}) == 1
    # prepare_data ran once on the node (training/node_prepare.py: local rank 0, before fit),
    # and fit/validate did not run it again: the hook was disarmed, so Lightning entered no
    # prepare_data barrier and opened no extra (gloo) process group, which smddp cannot (the
    # stand-in refuses new_group: the job would have failed).
    calls = (debug / "prepare_data.log").read_text().split()
    assert len(calls) == 1
    assert (tmp_path / "root" / "cache" / ".prepared-local.done").exists()
    info = _assert_one_model(tmp_path / "root", "".join(outputs))
    assert info["cluster"]["backend"] == "smddp"
    assert info["metrics"]["val_acc"] > 0.8


def test_smddp_stand_in_is_not_registered_outside_the_rehearsal() -> None:
    proc = run_python(
        ["-c", "import torch.distributed as d; print('smddp' in d.Backend.backend_list)"],
        subprocess_env(),
    )
    assert proc.stdout.strip() == "False"
