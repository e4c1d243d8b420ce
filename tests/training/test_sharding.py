"""Sharding settings, the FSDP2 sharding of a module, and sharded checkpoint selection.

The rules are checked where the user meets them (synth's TrainingConfig, the job's one-line
errors); the sharding and the checkpoints run torch's real FSDP2 and DCP in this process (a
one-process gloo group), so what is asserted is what those libraries do with our layout."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from core.config import ConfigError as SynthError
from core.config import TrainingConfig
from training import contract, sharding, sharding_rules
from training import sharded_checkpoints as sc
from training.checkpoints import select_checkpoint
from training.cluster import Cluster
from training.sm_env import ConfigError, Hyperparameters

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "fixtures/user_projects/shard_project")
)
from shardnet.model import Block, BlockNet

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")


def _hp(**values: str) -> Hyperparameters:
    return Hyperparameters.from_mapping(values)


def _cluster(nodes: int = 2, per_node: int = 2, accelerator: str = "cpu") -> Cluster:
    world = nodes * per_node
    return Cluster("torchrun", accelerator, world, nodes, per_node, 0, 0, 0, "gloo")


# --- Rules: the same line at synth and in the job's first seconds -------------------------------
BAD = [
    (
        {"cpu_offload": "true"},
        "cpu_offload='true'",
        "needs sharding=fsdp or sharding=hybrid (sharding is none)",
    ),
    (
        {"shard_layers": "Block"},
        "shard_layers='Block'",
        "needs sharding=fsdp or sharding=hybrid (sharding is none)",
    ),
    (
        {"sharding": "fsdp", "activation_checkpointing": "true"},
        "activation_checkpointing='true'",
        "needs shard_layers: the layer classes whose activations are recomputed",
    ),
    (
        {"sharding": "fsdp", "shard_layers": ","},
        "shard_layers=','",
        "expected layer class names separated by commas (Block, torch.nn.TransformerEncoderLayer)",
    ),
    (
        {"sharding": "hybrid"},
        "sharding='hybrid'",
        "hybrid shards within a node and replicates across nodes, and this job has 1 node; use "
        "fsdp on one node",
    ),
]


@pytest.mark.parametrize(("hps", "shown", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_sharding_is_one_line_at_synth_and_in_the_job(hps, shown, allowed):
    with pytest.raises(SynthError) as synth:
        TrainingConfig(instance_type="ml.g5.xlarge", instance_count=1, hyperparameters=hps)
    assert str(synth.value) == f"hyperparameters.{shown}: {allowed}"
    with pytest.raises(ConfigError) as job:
        sharding.settings_for(_hp(**hps), _cluster(nodes=1))
    assert str(job.value) == f"hyperparameter {shown} is invalid: {allowed}"


def test_unknown_sharding_mode_names_the_choices():
    with pytest.raises(ConfigError) as info:
        _hp(sharding="zero3")
    assert str(info.value) == (
        "hyperparameter sharding='zero3' is invalid: expected one of none, fsdp, hybrid"
    )


def test_good_settings_and_the_default():
    assert not sharding.settings_for(_hp(), _cluster()).enabled  # DDP stays the default
    s = sharding.settings_for(
        _hp(sharding="hybrid", shard_layers="Block, Linear", activation_checkpointing="true"),
        _cluster(),
    )
    assert (s.mode, s.layers, s.activation_checkpointing) == ("hybrid", ("Block", "Linear"), True)
    cfg = TrainingConfig(
        instance_type="ml.g5.xlarge", instance_count=2, hyperparameters={"sharding": "hybrid"}
    )
    assert cfg.hyperparameters["sharding"] == "hybrid"


def test_sharding_one_process_is_plain_training():
    assert not sharding.settings_for(_hp(sharding="fsdp"), _cluster(1, 1)).enabled


def test_unknown_layer_class_names_the_models_layers():
    with pytest.raises(ConfigError) as info:
        sharding.find_layer_classes(BlockNet(), ("Blok",))
    assert str(info.value) == (
        "hyperparameter shard_layers='Blok' is invalid: BlockNet has no Blok layer; its layer "
        "classes: Block, GELU, LayerNorm, Linear, Sequential"
    )
    assert sharding.find_layer_classes(BlockNet(), ("Block", "torch.nn.modules.linear.Linear")) == (
        Block,
        nn.Linear,
    )


def test_a_lightning_without_model_parallel_cannot_shard_on_cpu(monkeypatch):
    """Lightning 2.2.5 (the SMDDP family) has FSDPStrategy only, which needs GPUs."""
    fake = types.ModuleType("fake_pl_225")
    fake.__version__ = "2.2.5"
    strategies = types.ModuleType("fake_pl_225.strategies")
    strategies.FSDPStrategy = object
    monkeypatch.setitem(sys.modules, "fake_pl_225", fake)
    monkeypatch.setitem(sys.modules, "fake_pl_225.strategies", strategies)
    s = sharding_rules.settings({"sharding": "fsdp"})
    with pytest.raises(ConfigError) as info:
        sharding.strategy(_cluster(), s, 60, fake, BlockNet())
    assert str(info.value) == (
        "hyperparameter sharding='fsdp' is invalid here: Lightning 2.2.5 (the smddp image "
        "family) shards with FSDPStrategy, which needs GPUs; rehearse sharding on CPU with the "
        "current image family, or run it on GPU instances"
    )


# --- FSDP2 on a one-process gloo group ----------------------------------------------------------
@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_shard_with_activation_checkpointing_keeps_the_plain_state_dict(one_process_group):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule

    torch.manual_seed(0)
    module, plain = BlockNet(width=8, depth=2), BlockNet(width=8, depth=2)
    plain.load_state_dict(module.state_dict())
    module._device_mesh = init_device_mesh("cpu", (1, 1), mesh_dim_names=("data_parallel", "tp"))
    s = sharding_rules.settings(
        {"sharding": "fsdp", "shard_layers": "Block", "activation_checkpointing": "true"}
    )
    sharding.install(module, s, _cluster(1, 1))
    module.configure_model()
    module.configure_model()  # Lightning calls it again for validate: nothing changes
    groups = [m for m in module.modules() if isinstance(m, FSDPModule)]
    assert len(groups) == 2 + 3  # each Block (in its checkpoint wrapper), stem, blocks, head
    held, total = sharding.holdings(module)
    assert held == total == sum(p.numel() for p in plain.parameters())

    x = torch.randn(4, 2)
    module(x).sum().backward()  # recomputes the Blocks' activations in backward
    state = sharding.full_state_dict(module)
    assert state.keys() == plain.state_dict().keys()  # no wrapper prefixes in the export
    assert all(torch.equal(state[k], v) for k, v in plain.state_dict().items())
    assert torch.allclose(module(x), plain(x))


# --- Sharded checkpoint folders -----------------------------------------------------------------
def _write(folder_root: Path, step: int) -> Path:
    """One real DCP checkpoint (no process group: DCP's single-process path) + manifest."""
    from torch.distributed.checkpoint import save

    folder = sc.step_folder(folder_root, step)
    folder.mkdir(parents=True)
    save({"state_dict": {"w": torch.full((64,), float(step))}}, checkpoint_id=folder, no_dist=True)
    torch.save({"global_step": step}, folder / sc.LIGHTNING_META_FILE)
    sc.write_manifest(folder, world_size=1, step=step)
    return folder


def test_newest_complete_folder_is_selected_and_its_index_restored(tmp_path):
    _write(tmp_path, 4)
    newest = _write(tmp_path, 8)
    manifest = json.loads((newest / sc.MANIFEST_FILE).read_text())
    assert set(manifest["files"]) == {"__0_0.distcp", "dcp.metadata", "meta.pt"}
    (newest / sc.DCP_METADATA_FILE).unlink()  # an upload that skips dot-files
    (tmp_path / sc.FOLDER_PREFIX / "x").parent.mkdir(exist_ok=True)
    half = sc.step_folder(tmp_path, 12)  # a write killed before its manifest
    half.mkdir()
    (half / "__0_0.distcp").write_bytes(b"partial")
    assert select_checkpoint(tmp_path) == (newest, 8)
    assert (newest / sc.DCP_METADATA_FILE).read_bytes() == (
        newest / sc.METADATA_COPY_FILE
    ).read_bytes()


def test_a_truncated_or_missing_shard_falls_back_then_refuses(tmp_path):
    older, newest = _write(tmp_path, 4), _write(tmp_path, 8)
    shard = newest / "__0_0.distcp"
    whole = shard.stat().st_size
    os.truncate(shard, whole // 2)
    assert sc.select(tmp_path) == (older, 4)
    (older / "__0_0.distcp").unlink()  # a host's upload that never happened
    with pytest.raises(ConfigError) as info:
        select_checkpoint(tmp_path)
    assert str(info.value) == (
        f"no usable sharded checkpoint in {tmp_path}: sharded-step-00000008/__0_0.distcp is "
        f"truncated ({whole // 2} of {whole} bytes); "
        "sharded-step-00000004/__0_0.distcp is missing; refusing to start over from step 0: "
        "delete the sharded-step-* folders to train from scratch"
    )


def test_no_sharded_folder_leaves_last_ckpt_rules_alone(tmp_path):
    assert sc.select(tmp_path) is None
    assert select_checkpoint(tmp_path) == (None, 0)
    assert not (tmp_path / contract.CHECKPOINT_FILE).exists()


def test_a_sharded_checkpoint_does_not_resume_an_unsharded_run(tmp_path):
    folder = _write(tmp_path, 4)
    resume, _ = select_checkpoint(tmp_path)
    sharding.check_resume(resume, sharding_rules.settings({"sharding": "fsdp"}))
    with pytest.raises(ConfigError) as info:
        sharding.check_resume(resume, sharding_rules.settings({}))
    assert str(info.value) == (
        f"{folder} is a sharded checkpoint (written with sharding=fsdp or hybrid) but "
        "hyperparameter sharding='none': resume with sharding=fsdp or hybrid, or delete the "
        f"sharded-step-* folders in {tmp_path} to train from scratch"
    )


def test_prune_keeps_the_newest_two(tmp_path):
    for step in (2, 4, 6):
        _write(tmp_path, step)
    sc.prune(tmp_path)
    assert [step for step, _ in sc.folders(tmp_path)] == [6, 4]


class LazyNet(BlockNet):
    """Creates its Blocks in configure_model (as large models do); `shard_itself` applies
    fully_shard there too, as a user who shards by hand would."""

    def __init__(self, shard_itself: bool = False) -> None:
        super().__init__(width=8, depth=0)
        self.shard_itself = shard_itself

    def configure_model(self) -> None:
        if len(self.blocks):
            return
        self.blocks.extend([Block(8), Block(8)])
        if self.shard_itself:
            from torch.distributed.fsdp import fully_shard

            fully_shard(self.blocks, mesh=self.device_mesh["data_parallel"])


@pytest.mark.parametrize("shard_itself", [False, True])
def test_the_users_configure_model_runs_first(one_process_group, shard_itself):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule

    module = LazyNet(shard_itself)
    module._device_mesh = init_device_mesh("cpu", (1, 1), mesh_dim_names=("data_parallel", "tp"))
    s = sharding_rules.settings({"sharding": "fsdp", "shard_layers": "Block"})
    sharding.install(module, s, _cluster(1, 1))  # no Block yet: looked for after the hook
    module.configure_model()
    sharded = {name for name, m in module.named_modules() if isinstance(m, FSDPModule)}
    if shard_itself:  # the user's sharding is kept as it is
        assert sharded == {"blocks"}
    else:
        assert sharded == {"blocks.0", "blocks.1", "stem", "blocks", "head"}
