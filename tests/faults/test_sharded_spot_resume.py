"""Sharded data parallel through the real toolkit: a user's model (tests/fixtures shard_project)
trains with `sharding=fsdp` on 2 simulated hosts x 2 processes (gloo, CPU, no network), every
process of the job is SIGKILLed once the store holds a sharded checkpoint, and the restarted
job resumes from it on every host and exports one plain model.

One job pair proves: each rank holds about a quarter of the parameters; every rank's shard lands
in the one checkpoint store under a name unique across hosts (each host's disk holds only its
own ranks' shards); the restart resumes at the stored step on both hosts; the exported model.pt
loads into the plain module (no FSDP, no process group) and equals the weights of the last
sharded checkpoint."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from core.sourcedir import build_sourcedir
from tests import timing
from tests.faults.conftest import DEBUG_DIR_ENV, make_job, read_progress, wait_dead, wait_for
from training import contract
from training import sharded_checkpoints as sc
from training.export import load_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

PROJECT = Path(__file__).resolve().parent.parent / "fixtures" / "user_projects" / "shard_project"
WORLD = 4
EVERY = 4
MAX_STEPS = 18  # 6 steps per epoch at 4 ranks x 32
KILL_AT = EVERY
HPS = {
    "config": "config.yaml",
    "sharding": "fsdp",
    "shard_layers": "Block",
    "epochs": "100",
    "max_steps": str(MAX_STEPS),
    "checkpoint_every_n_steps": str(EVERY),
}
SHARDS = [f"__{rank}_0.distcp" for rank in range(WORLD)]


def _complete_step(store: Path) -> int:
    """The newest step folder in the store with every file its manifest lists, else -1."""
    for step, folder in sc.folders(store):
        if sc.problem(folder) is None:
            return step
    return -1


def test_fsdp_two_hosts_kill_and_resume_exports_one_plain_model(tmp_path, record_property):
    project = tmp_path / "shard_project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    bundle = tmp_path / "sourcedir.tar.gz"
    build_sourcedir(bundle, image_family="current", project=project, config="config.yaml")
    store, debug = tmp_path / "store", tmp_path / "debug"

    first = make_job(
        tmp_path / "attempt-1",
        bundle,
        procs=2,
        hps=HPS,
        store=store,
        env={DEBUG_DIR_ENV: str(debug)},
    )
    first.start()
    wait_for(lambda: _complete_step(store) >= KILL_AT, 240, "a stored sharded checkpoint", first)
    first.kill()
    for rank in range(WORLD):
        progress = read_progress(debug, rank)
        assert progress is not None and wait_dead(progress["pid"]), f"rank {rank} survived"
    stored = _complete_step(store)
    assert stored < MAX_STEPS

    # Each host's disk holds its own ranks' shards only (the host may already have pruned the
    # stored step for newer ones the upload had not finished); the store holds every rank's.
    folder_name = sc.step_folder(Path("."), stored).name
    for host, ranks in zip(first.hosts, ((0, 1), (2, 3)), strict=True):
        mine = [SHARDS[r] for r in ranks]
        local = [
            sorted(p.name for p in f.glob("*.distcp")) for _, f in sc.folders(host.checkpoint_dir)
        ]
        assert mine in local, (host.name, local)
        assert all(set(names) <= set(mine) for names in local), (host.name, local)
    assert sorted(p.name for p in (store / folder_name).glob("*.distcp")) == SHARDS
    log1 = "\n".join(first.log_lines())
    held = [int(n) for n in re.findall(r"sharding: rank \d holds (\d+) of (?:\d+)", log1)]
    total = int(re.search(r"holds \d+ of (\d+) parameters", log1).group(1))
    assert len(held) == WORLD and sum(held) >= total, log1[-3000:]
    assert all(0.2 * total <= n <= 0.3 * total for n in held), held

    second = make_job(tmp_path / "attempt-2", bundle, procs=2, hps=HPS, store=store)
    second.start()
    codes = timing.finish(second, 300, "the resumed sharded job")
    log2 = "\n".join(second.log_lines())
    assert codes == [0, 0], second.failure_reason() or log2[-3000:]

    resumed = re.findall(r"\[(algo-\d)\].*resuming from (\S+) at global step (\d+)", log2)
    assert sorted(host for host, _, _ in resumed) == ["algo-1", "algo-2"], log2[-3000:]
    assert {(Path(path).name, int(step)) for _, path, step in resumed} == {(folder_name, stored)}
    assert len(re.findall(r"sharding: rank \d peak memory [0-9.]+ MiB", log2)) == WORLD

    model_dir = second.hosts[0].model_dir
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "blocknet.json",  # the module's export hook
        contract.MODEL_CONFIG_FILE,
        contract.MODEL_INFO_FILE,
        contract.MODEL_FILE,
    ]
    assert not any(second.hosts[1].model_dir.iterdir())
    info = json.loads((model_dir / contract.MODEL_INFO_FILE).read_text())
    assert info["global_step"] == MAX_STEPS
    module = load_model(model_dir, code_root=project)  # plain BlockNet, strict load
    assert type(module).__name__ == "BlockNet"

    # The trained weights: the last sharded checkpoint, merged from the store by DCP itself.
    last = sc.step_folder(store, MAX_STEPS)
    assert sc.problem(last) is None
    shutil.copyfile(last / sc.METADATA_COPY_FILE, last / sc.DCP_METADATA_FILE)
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(last, tmp_path / "merged.pt")
    trained = torch.load(tmp_path / "merged.pt", weights_only=False)["state_dict"]
    exported = module.state_dict()
    assert trained.keys() == exported.keys()
    assert all(torch.equal(trained[k], exported[k]) for k in exported)
    record_property("resumed_step", stored)
    record_property("params_per_rank", held)
