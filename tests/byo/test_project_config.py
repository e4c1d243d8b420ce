"""Bad project configuration fails at synth, one line each: cdk.json's source_dir / config /
metrics / hyperparameters, and a project bundle that cannot be built offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import config as cfg
from core.sourcedir import bundle_files
from core.wheelhouse import BundleError
from tests.byo.conftest import SEQCLF_CONFIG
from training import contract


def _config(**training):
    return cfg.TrainingConfig.from_context(
        {"training": {"instance_type": "ml.m5.xlarge", **training}}
    )


def _error(**training) -> str:
    with pytest.raises(cfg.ConfigError) as info:
        _config(**training)
    assert "\n" not in str(info.value)
    return str(info.value)


def _bundle_error(project: Path) -> str:
    with pytest.raises(BundleError) as info:
        bundle_files(image_family="current", project=project)
    return str(info.value)


def test_a_valid_project_config(seqclf):
    config = _config(source_dir=str(seqclf), config=SEQCLF_CONFIG, metrics=["valid/accuracy"])
    assert (config.source_dir, config.config, config.metrics) == (
        str(seqclf.resolve()),
        SEQCLF_CONFIG,
        ("valid/accuracy",),
    )


def test_relative_source_dir_starts_at_the_cdk_json_folder(seqclf, monkeypatch):
    monkeypatch.chdir(seqclf.parent)
    assert _config(source_dir=seqclf.name, config=SEQCLF_CONFIG).source_dir == str(seqclf)


def test_source_dir_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope"
    message = _error(source_dir=str(missing))
    assert message.startswith("source_dir='")
    assert message.endswith(f": no such folder {missing} (relative paths start at cdk.json)")


def test_a_project_package_named_like_the_runner(seqclf):
    (seqclf / "training").mkdir()
    assert _error(source_dir=str(seqclf), config=SEQCLF_CONFIG).endswith(
        "its top-level 'training' clashes with the bundle's own training/: rename the package "
        "(the runner is imported as `training`)"
    )


def test_config_file_missing_from_the_project(seqclf):
    assert _error(source_dir=str(seqclf), config="configs/nope.yaml") == (
        f"config='configs/nope.yaml': no YAML file {seqclf.resolve() / 'configs/nope.yaml'}"
    )


def test_config_outside_the_project(seqclf):
    assert _error(source_dir=str(seqclf), config="../elsewhere.yaml") == (
        "config='../elsewhere.yaml': expected a path relative to training.source_dir, inside it"
    )


def test_a_config_path_without_a_project():
    assert _error(config="configs/train.yaml") == (
        "config='configs/train.yaml': expected a built-in task (digits, donut), or set "
        "training.source_dir to the project holding this file"
    )


def test_a_config_without_class_paths(seqclf):
    (seqclf / "bad.yaml").write_text("model:\n  init_args: {}\ndata:\n  class_path: x.Y\n")
    assert _error(source_dir=str(seqclf), config="bad.yaml") == (
        "config='bad.yaml': model: in bad.yaml names no class (a config for LightningCLI(MyModel, "
        "MyData)) and no LightningCLI(...) call in the project names one: write model: "
        "{class_path: mypkg.module.MyClass, init_args: {...}}"
    )


def test_a_fit_subcommand_config_whose_classes_the_projects_cli_names(seqclf):
    (seqclf / "cli.py").write_text(
        "from lightning.pytorch.cli import LightningCLI\n"
        "from seqclf.data import SequenceData\nfrom seqclf.model import SequenceClassifier\n\n"
        "LightningCLI(SequenceClassifier, SequenceData)\n"
    )
    (seqclf / "fit.yaml").write_text("fit:\n  model:\n    d_model: 16\n  ckpt_path: null\n")
    assert _config(source_dir=str(seqclf), config="fit.yaml").config == "fit.yaml"


def test_too_many_metrics():
    names = [f"m{i}" for i in range(contract.MAX_METRIC_DEFINITIONS)]
    assert _error(metrics=names) == (
        "metrics='40 names': expected at most 38 (SageMaker takes 40 metric definitions; the "
        "runner adds epoch, samples_per_sec)"
    )


def test_metrics_as_a_json_list_in_a_context_string():
    # `-c 'training.metrics=["val_f1","train_loss"]'` (README's Donut step) arrives as text
    assert _config(metrics='["val_f1", "train_loss"]').metrics == ("val_f1", "train_loss")
    assert _config(metrics="val_f1, train_loss").metrics == ("val_f1", "train_loss")
    assert _error(metrics='["val_f1"') == (
        "metrics='[\"val_f1\"': expected a JSON list of metric names"
    )


def test_a_metric_name_with_a_space():
    assert _error(metrics=["val loss"]) == (
        "metrics='val loss': expected a metric name without spaces or '='"
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [([64, 64], '"[64, 64]"'), ({"a": 1}, '"{\\"a\\": 1}"'), (3, '"3"')],
)
def test_a_non_string_hyperparameter(value, written):
    assert _error(hyperparameters={"model.init_args.hidden": value}).endswith(
        f"expected a string (SageMaker sends hyperparameters as strings): write it as {written}"
    )


def test_a_json_object_hyperparameter_string():
    assert _error(hyperparameters={"model.init_args.opts": '{"a": 1}'}).endswith(
        "a JSON object, which the SageMaker toolkit rewrites to k=v pairs; set one key per "
        "entry (model.init_args.opts.<key>=<value>)"
    )


def test_an_unknown_bare_hyperparameter():
    assert _error(hyperparameters={"epoch": "3"}).startswith(
        "hyperparameters.epoch='3': expected a runner key (config, epochs,"
    )


def test_the_config_hyperparameter_is_set_by_training_config():
    assert _error(hyperparameters={"config": "digits"}) == (
        "hyperparameters.config='digits': set training.config instead (the task config)"
    )


def test_project_requirements_without_a_lock(seqclf):
    (seqclf / "requirements.current.lock").unlink()
    assert _bundle_error(seqclf) == (
        f"{seqclf / 'requirements.current.lock'} is missing: run `make lock PROJECT={seqclf}` "
        "(needs PyPI)"
    )


def test_project_requirements_edited_after_the_lock(seqclf):
    requirements = seqclf / "requirements.txt"
    requirements.write_text(requirements.read_text() + "tabulate==0.9.0\n")
    assert _bundle_error(seqclf) == (
        f"{seqclf / 'requirements.current.lock'} is out of date with requirements.txt: run "
        f"`make lock PROJECT={seqclf}` (needs PyPI)"
    )


def test_a_project_holding_data_is_refused(regress):
    big = regress / "data" / "train.npy"
    big.parent.mkdir()
    with open(big, "wb") as handle:  # sparse: no real disk use
        handle.truncate(65 * 2**20)
    assert _bundle_error(regress) == (
        f"{regress}: 65 MiB of files (largest data/train.npy), above the 64 MiB code limit: "
        "data belongs in the train channel"
    )


def test_the_bundle_leaves_out_caches_locks_and_the_requirements_file(seqclf):
    (seqclf / "seqclf" / "__pycache__").mkdir()
    (seqclf / "seqclf" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    (seqclf / ".git").mkdir()
    (seqclf / ".git" / "HEAD").write_text("ref: main\n")
    names = [name for name, _ in bundle_files(image_family="current", project=seqclf)]
    assert SEQCLF_CONFIG in names and "seqclf/model.py" in names
    assert not [
        n for n in names if "__pycache__" in n or n.startswith(".git") or n.endswith(".lock")
    ]
    assert names.count("requirements.txt") == 1  # the wheelhouse's, not the project's
    assert names == sorted(names)
