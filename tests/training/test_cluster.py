"""Cluster detection for every launcher, backend choice, precision and lr scaling."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import pytest

from training import cluster as cl
from training.sm_env import ConfigError, read


def sm_for(hosts=("algo-1",), current="algo-1", gpus=0, argv=(), framework=None, sagemaker=True):
    env = {
        "SM_HOSTS": json.dumps(list(hosts)),
        "SM_CURRENT_HOST": current,
        "SM_NUM_GPUS": str(gpus),
        "SM_FRAMEWORK_PARAMS": json.dumps(framework or {}),
    }
    if sagemaker:
        env["SM_MODEL_DIR"] = "/opt/ml/model"
    return read(list(argv), env)


def torchrun(rank, world, local, local_world, group):
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(local),
        "LOCAL_WORLD_SIZE": str(local_world),
        "GROUP_RANK": str(group),
        "TORCHELASTIC_RUN_ID": "x",
        "MASTER_ADDR": "algo-1",
        "MASTER_PORT": "7777",
    }


def ompi(rank, world, local, local_size, node):
    return {
        "OMPI_COMM_WORLD_RANK": str(rank),
        "OMPI_COMM_WORLD_SIZE": str(world),
        "OMPI_COMM_WORLD_LOCAL_RANK": str(local),
        "OMPI_COMM_WORLD_LOCAL_SIZE": str(local_size),
        "OMPI_COMM_WORLD_NODE_RANK": str(node),
    }


SMDDP = {"sagemaker_distributed_dataparallel_enabled": True}
TWO = ("algo-1", "algo-2")

# (id, sm kwargs, env, platform,
#  expected (launcher, world, nodes, per_node, node_rank, local_rank, rank, accelerator, backend),
#  expected exported env subset)
CASES = [
    ("plain-cpu", {}, {}, "linux", ("none", 1, 1, 1, 0, 0, 0, "cpu", None), {}),
    ("plain-1gpu", {"gpus": 1}, {}, "linux", ("none", 1, 1, 1, 0, 0, 0, "gpu", None), {}),
    # Lightning's launcher, one host, 4 GPUs: the parent is local rank 0 ...
    ("spawn-parent", {"gpus": 4}, {}, "linux", ("lightning", 4, 1, 4, 0, 0, 0, "gpu", "nccl"), {}),
    # ... and each child carries LOCAL_RANK (no RANK): no fake rank 0 for everyone.
    (
        "spawn-child",
        {"gpus": 4},
        {"LOCAL_RANK": "3", "NODE_RANK": "0", "WORLD_SIZE": "4"},
        "linux",
        ("lightning", 4, 1, 4, 0, 3, 3, "gpu", "nccl"),
        {},
    ),
    # 2 hosts x 1 GPU with plain python: distributed (world 2), not two independent jobs.
    (
        "two-hosts-one-gpu",
        {"hosts": TWO, "current": "algo-2", "gpus": 1},
        {},
        "linux",
        ("lightning", 2, 2, 1, 1, 0, 1, "gpu", "nccl"),
        {"NODE_RANK": "1", "MASTER_ADDR": "algo-1", "MASTER_PORT": "29500"},
    ),
    (
        "two-hosts-cpu",
        {"hosts": TWO, "current": "algo-1"},
        {},
        "linux",
        ("lightning", 2, 2, 1, 0, 0, 0, "cpu", "gloo"),
        {"NODE_RANK": "0", "MASTER_ADDR": "algo-1"},
    ),
    (
        "torchrun-2x8",
        {"hosts": TWO, "current": "algo-2", "gpus": 8},
        torchrun(13, 16, 5, 8, 1),
        "linux",
        ("torchrun", 16, 2, 8, 1, 5, 13, "gpu", "nccl"),
        {},
    ),
    (
        "torchrun-cpu-2",
        {"sagemaker": False},
        torchrun(1, 2, 1, 2, 0),
        "linux",
        ("torchrun", 2, 1, 2, 0, 1, 1, "cpu", "gloo"),
        {},
    ),
    (
        "torchrun-1",
        {},
        torchrun(0, 1, 0, 1, 0),
        "linux",
        ("torchrun", 1, 1, 1, 0, 0, 0, "cpu", None),
        {},
    ),
    (
        "mpirun-smddp-2x8",
        {"hosts": TWO, "current": "algo-2", "gpus": 8, "framework": SMDDP},
        ompi(9, 16, 1, 8, 1),
        "linux",
        ("mpirun", 16, 2, 8, 1, 1, 9, "gpu", "smddp"),
        {
            "RANK": "9",
            "LOCAL_RANK": "1",
            "WORLD_SIZE": "16",
            "LOCAL_WORLD_SIZE": "8",
            "NODE_RANK": "1",
            "MASTER_ADDR": "algo-1",
            "MASTER_PORT": "29500",
        },
    ),
    (
        "mpirun-no-node-rank",
        {"gpus": 2},
        {k: v for k, v in ompi(1, 2, 1, 2, 0).items() if "NODE_RANK" not in k},
        "linux",
        ("mpirun", 2, 1, 2, 0, 1, 1, "gpu", "nccl"),
        {"RANK": "1", "NODE_RANK": "0"},
    ),
    (
        "mpirun-backend-hp",
        {"gpus": 2, "argv": ("--process_group_backend", "smddp")},
        ompi(0, 2, 0, 2, 0),
        "linux",
        ("mpirun", 2, 1, 2, 0, 0, 0, "gpu", "smddp"),
        {},
    ),
    (
        "windows-multi-gpu",
        {"gpus": 4},
        {},
        "win32",
        ("none", 1, 1, 1, 0, 0, 0, "gpu", None),
        {},
    ),
]


@pytest.mark.parametrize(
    ("sm_kwargs", "env", "platform", "expected", "exports"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_detect(sm_kwargs, env, platform, expected, exports) -> None:
    c = cl.detect(sm_for(**sm_kwargs), env, platform=platform)
    got = (
        c.launcher,
        c.world_size,
        c.num_nodes,
        c.devices_per_node,
        c.node_rank,
        c.local_rank,
        c.global_rank,
        c.accelerator,
        c.backend,
    )
    assert got == expected
    assert c.distributed == (expected[1] > 1)
    for key, value in exports.items():
        assert c.env[key] == value
    if platform == "win32":
        assert c.notes == (
            "Windows: DDP is not supported; training on a single device instead of 4",
        )


def test_detect_is_captured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    env = torchrun(1, 2, 1, 2, 0)
    c = cl.detect(sm_for(sagemaker=False), env)
    env.pop("WORLD_SIZE")  # what LightningEnvironment.teardown() does
    assert c.world_size == 2 and c.global_rank == 1


def test_export_env() -> None:
    c = cl.detect(sm_for(gpus=2), ompi(1, 2, 1, 2, 0))
    environ: dict[str, str] = {}
    cl.export_env(c, environ)
    assert environ == {
        "RANK": "1",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "NODE_RANK": "0",
        "MASTER_ADDR": "algo-1",
        "MASTER_PORT": "29500",
    }


@pytest.mark.parametrize(
    ("sm_kwargs", "env", "platform", "message"),
    [
        (
            {},
            {"RANK": "0", "WORLD_SIZE": "2"},
            "linux",
            "RANK is set but LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK not: launch with torchrun, "
            "mpirun or plain python (Lightning starts the processes)",
        ),
        (
            {"sagemaker": False},
            torchrun(0, 3, 0, 2, 0),
            "linux",
            "torchrun: world size 3 is not divisible by 2 processes per node",
        ),
        (
            {"gpus": 8},
            ompi(1, 16, 1, 8, 1),
            "linux",
            "mpirun: rank 1 != node_rank 1 x 8 + local_rank 1; launch processes in node-major "
            "order (Lightning assumes it)",
        ),
        (
            {"gpus": 8},
            torchrun(0, 16, 0, 8, 0),
            "linux",
            "torchrun reports 2 node(s) but SM_HOSTS lists 1: ['algo-1']",
        ),
        (
            {},
            torchrun(0, 2, 0, 2, 0),
            "win32",
            "torchrun started 2 processes on Windows, where DDP is not supported: run one process",
        ),
        (
            {"argv": ("--process_group_backend", "nccl")},
            torchrun(0, 2, 0, 2, 0),
            "linux",
            "hyperparameter process_group_backend='nccl' is invalid here: nccl needs GPUs; use "
            "gloo or auto on CPU",
        ),
        ({"gpus": 2}, {"LOCAL_RANK": "2"}, "linux", "LOCAL_RANK=2 but this host has 2 device(s)"),
    ],
)
def test_detect_errors(sm_kwargs, env, platform, message) -> None:
    with pytest.raises(ConfigError) as info:
        cl.detect(sm_for(**sm_kwargs), env, platform=platform)
    assert str(info.value) == message


def test_smddp_missing_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smdistributed", None)  # import fails
    c = cl.detect(sm_for(gpus=8, framework=SMDDP), ompi(0, 8, 0, 8, 0))
    assert c.backend == "smddp"
    with pytest.raises(ConfigError) as info:
        cl.import_backend(c)
    assert str(info.value) == (
        "process_group_backend smddp needs SMDDP (smdistributed.dataparallel.torch.torch_smddp), "
        "which is not installed: run on the SMDDP image "
        "pytorch-training:2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker on ml.p4d.24xlarge, "
        "ml.p4de.24xlarge or ml.p3dn.24xlarge, or choose backend torchrun (NCCL)"
    )


def test_smddp_not_imported_unless_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "smdistributed", None)
    cl.import_backend(cl.detect(sm_for(gpus=2), torchrun(0, 2, 0, 2, 0)))  # nccl: no import


@pytest.mark.parametrize("flavour", ["pytorch_lightning", "lightning.pytorch"])
def test_lightning_kwargs(flavour: str) -> None:
    """The strategy and cluster environment come from the task's own Lightning package."""
    import importlib

    pl = importlib.import_module(flavour)
    environments = importlib.import_module(f"{flavour}.plugins.environments")
    strategies = importlib.import_module(f"{flavour}.strategies")

    single = cl.lightning_kwargs(cl.detect(sm_for(), {}), 600, pl)
    assert single == {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto"}

    tr = cl.lightning_kwargs(cl.detect(sm_for(hosts=TWO, gpus=8), torchrun(3, 16, 3, 8, 0)), 90, pl)
    assert (tr["devices"], tr["num_nodes"]) == (8, 2)
    assert isinstance(tr["strategy"], strategies.DDPStrategy)
    assert isinstance(tr["strategy"].cluster_environment, environments.TorchElasticEnvironment)
    assert tr["strategy"]._process_group_backend == "nccl"
    assert tr["strategy"]._timeout == timedelta(seconds=90)

    mp = cl.lightning_kwargs(
        cl.detect(sm_for(hosts=TWO, gpus=8, framework=SMDDP), ompi(3, 16, 3, 8, 0)), 600, pl
    )
    assert isinstance(mp["strategy"].cluster_environment, environments.LightningEnvironment)
    assert mp["strategy"]._process_group_backend == "smddp"


@pytest.mark.parametrize(
    ("requested", "accelerator", "bf16", "expected"),
    [
        ("auto", "gpu", True, "bf16-mixed"),
        ("auto", "gpu", False, "16-mixed"),
        ("auto", "cpu", False, "32"),
        ("bf16-mixed", "cpu", False, "bf16-mixed"),
        ("32", "gpu", True, "32"),
    ],
)
def test_precision(requested, accelerator, bf16, expected) -> None:
    assert cl.resolve_precision(requested, accelerator, bf16) == expected


def test_precision_fp16_on_cpu_is_refused() -> None:
    with pytest.raises(ConfigError, match="float16 mixed precision needs a GPU"):
        cl.resolve_precision("16-mixed", "cpu", False)


@pytest.mark.parametrize(
    ("scaling", "world", "expected"),
    [("linear", 8, 0.008), ("sqrt", 16, 0.004), ("none", 8, 0.001), ("linear", 1, 0.001)],
)
def test_scaled_lr(scaling, world, expected) -> None:
    assert cl.scaled_lr(0.001, scaling, world) == pytest.approx(expected)
