"""A user's own project trains on 2 simulated hosts through the real toolkit, from a stack
synthesized with `training.source_dir` pointing at it (outside this repo).

The synthesized code asset (runner + project + wheelhouse) runs in image stand-ins that lack
Lightning, jsonargparse and the project's own requirements, with no network (isolated job); the
hyperparameters are the ones the state machine sends. Exactly one model comes out (algo-1), it
reloads with the user's classes, and the metric lines carry the user's metric names.
"""

from __future__ import annotations

import io
import json
import re
import tarfile

import pytest
import torch

from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from tests import timing
from tests.byo.conftest import REGRESS, REGRESS_CONFIG, SEQCLF, SEQCLF_CONFIG, copy_project
from tests.infra.conftest import synthesize
from training import contract
from training.export import load_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CASES = {
    # project, config, its metrics, its own dependency, file its export hook writes
    SEQCLF: (SEQCLF_CONFIG, ("train/nll", "valid/accuracy"), "humanize", "labels.json"),
    REGRESS: (REGRESS_CONFIG, ("mse", "val_rmse"), None, None),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def synthesized(request, tmp_path_factory):
    name = request.param
    config, metrics, _, _ = CASES[name]
    project = copy_project(name, tmp_path_factory.mktemp("user"))
    synth = synthesize(
        tmp_path_factory.mktemp("cdk-byo"),
        {
            "training.source_dir": str(project),
            "training.config": config,
            "training.metrics": list(metrics),
            "training.instance_type": "ml.m5.xlarge",
            "training.instance_count": "2",
        },
    )
    assert synth.error is None, synth.error
    return name, project, synth


def _metric_definitions(node):
    """Every MetricDefinitions list in the state machine definition."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "MetricDefinitions":
                yield value
            else:
                yield from _metric_definitions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _metric_definitions(item)


def test_synthesized_request_names_the_task_and_its_metrics(synthesized):
    name, _, synth = synthesized
    config, metrics, _, _ = CASES[name]
    workflow = synth.stack.workflow
    assert workflow.settings.default_hyperparameters["config"] == config
    found = list(_metric_definitions(workflow.definition))
    assert found and all(
        [d["Name"] for d in defs] == [*metrics, *contract.RUNNER_METRICS] for defs in found
    )


def _bundle(synth) -> bytes:
    archive = synth.outdir / ".sourcedir" / synth.stack.config.image_family / "sourcedir.tar.gz"
    return archive.read_bytes()


def test_bundle_carries_the_project_and_its_requirements(synthesized):
    name, _, synth = synthesized
    config, _, dependency, _ = CASES[name]
    with tarfile.open(fileobj=io.BytesIO(_bundle(synth)), mode="r:gz") as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert config in names and "training/train.py" in names
    assert "requirements.txt" in names and not any(n.endswith(".lock") for n in names)
    if dependency:
        assert f"\n{dependency}==" in requirements
        assert any(n.startswith(f"wheels/{dependency}-") for n in names)


def test_trains_on_two_hosts_and_writes_one_model_that_reloads(synthesized, tmp_path):
    name, project, synth = synthesized
    config, metrics, _, exported = CASES[name]
    bundle = tmp_path / "sourcedir.tar.gz"
    bundle.write_bytes(_bundle(synth))
    settings = synth.stack.workflow.settings
    hps = dict(settings.default_hyperparameters)
    hps.update(
        script_mode_hyperparameters(
            submit_directory=str(bundle),
            job_name=f"byo-{name}",
            instance_type=settings.instance_type,
            backend=settings.backend,
        )
    )
    spec = LocalJobSpec(
        job_name=f"byo-{name}".replace("_", "-"),
        hyperparameters=hps,
        instance_type=settings.instance_type,
        instance_count=2,
        image_family=synth.stack.config.image_family,
        network_isolation=settings.network_isolation,
    )
    job = LocalTrainingJob(spec, tmp_path / "job")
    job.start()
    codes = job.wait(timing.bound(600))
    assert codes == [0, 0], job.failure_reason()

    hosts = tmp_path / "job" / "hosts"
    model_dir = hosts / "algo-1" / "model"
    expected = {contract.MODEL_FILE, contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE}
    assert {p.name for p in model_dir.iterdir()} == expected | ({exported} if exported else set())
    assert not any((hosts / "algo-2" / "model").iterdir())  # only global rank 0 writes

    lines = [contract.parse_metric_line(line.partition("] ")[2]) for line in job.log_lines()]
    epochs = [line for line in lines if "epoch" in line]
    assert epochs and all(metric in epochs[-1] for metric in metrics)
    for definition in next(_metric_definitions(synth.stack.workflow.definition)):
        # SageMaker's regexes find the user's metric values in the log lines
        line = [x for x in job.log_lines() if contract.METRIC_LINE_PREFIX in x and "epoch=" in x][
            -1
        ]
        assert re.search(definition["Regex"], line), (definition, line)
    info = json.loads((model_dir / contract.MODEL_INFO_FILE).read_text())
    assert info["cluster"]["world_size"] == 2 and info["config"] == config

    module = load_model(model_dir, code_root=project)
    saved = torch.load(model_dir / contract.MODEL_FILE, weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in module.state_dict().items())
    if name == SEQCLF:
        assert info["effective_lr"] == pytest.approx(2 * info["base_lr"])
        x = torch.randn(64, 6, 8, generator=torch.Generator().manual_seed(5))
        accuracy = (module(x).argmax(1) == x[:, :, :3].mean(1).argmax(1)).float().mean()
        assert accuracy > 0.6  # chance is 1/3
    else:
        assert epochs[-1]["val_rmse"] < epochs[0]["val_rmse"]
