"""A task's config and overrides are checked against the user's class signatures.

The same parse runs on this machine (`trainops start` / `local-train`, before anything is sent)
and in the job's first seconds (training/task.py); every bad input is one line naming the key,
the value and what is expected.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.byo.conftest import REGRESS_CONFIG, SEQCLF_CONFIG
from training.sm_env import ConfigError
from training.task import check
from trainops.task_check import TaskCheckError, check_task


def _check(project: Path, config: str = SEQCLF_CONFIG, world: int = 1, **hps: str):
    return check_task(project, {"config": config, **hps}, world_size=world)


def _error(project: Path, config: str = SEQCLF_CONFIG, **hps: str) -> str:
    with pytest.raises(TaskCheckError) as info:
        _check(project, config, **hps)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_valid_project_checks_and_notes_the_runner_owned_trainer_keys(seqclf):
    config = seqclf / SEQCLF_CONFIG
    assert _check(seqclf) == []  # num_nodes: 1 is Trainer's default: nothing to say
    config.write_text(config.read_text().replace("num_nodes: 1", "num_nodes: 4"))
    notes = _check(seqclf, **{"model.init_args.d_model": "64", "trainer.max_epochs": "2"})
    assert notes == [
        "trainer.num_nodes=4 in train.yaml is ignored: the runner sets it for the cluster"
    ]


@pytest.mark.parametrize(
    ("hps", "expected"),
    [
        pytest.param(
            {"model.init_args.d_modl": "64"},
            "hyperparameter model.init_args.d_modl='64' is invalid: seqclf.model.SequenceClassifier"
            " takes no argument 'd_modl'; it takes: features, d_model, n_classes, learning_rate",
            id="typo_in_a_model_argument",
        ),
        pytest.param(
            {"model.init_args.d_model": "wide"},
            "hyperparameter model.init_args.d_model='wide' is invalid: expected int "
            "(seqclf.model.SequenceClassifier)",
            id="wrong_type_for_a_model_argument",
        ),
        pytest.param(
            {"data.init_args.batch_size": "4.5"},
            "hyperparameter data.init_args.batch_size='4.5' is invalid: expected int "
            "(seqclf.data.SequenceData)",
            id="wrong_type_for_a_data_argument",
        ),
        pytest.param(
            {"trainer.max_epoch": "3"},
            "hyperparameter trainer.max_epoch='3' is invalid: Trainer has no argument 'max_epoch'",
            id="typo_in_a_trainer_argument",
        ),
        pytest.param(
            {"trainer.max_epochs": "many"},
            "hyperparameter trainer.max_epochs='many' is invalid: expected int",
            id="wrong_type_for_a_trainer_argument",
        ),
        pytest.param(
            {"epochs": "0"},
            "hyperparameter epochs='0' is invalid: expected an integer >= 1",
            id="runner_shortcut_with_a_bad_value",
        ),
        pytest.param(
            {"model.init_args.d_model": '{"a": 1}'},
            "hyperparameter model.init_args.d_model='{\"a\": 1}' is invalid: a JSON object, which "
            "the SageMaker toolkit rewrites to k=v pairs; set one key per entry "
            "(model.init_args.d_model.<key>=<value>)",
            id="a_json_object_value_is_refused",
        ),
    ],
)
def test_a_bad_hyperparameter_is_one_line(seqclf, hps, expected):
    assert _error(seqclf, **hps) == expected


def test_unknown_runner_key(seqclf):
    assert _error(seqclf, epoch="3").startswith(
        "unknown hyperparameter epoch='3': expected one of config, epochs,"
    )


def test_a_list_value_is_parsed_for_a_list_argument(tmp_path):
    """Lists travel as strings ("[64, 64]") and the signature types them."""
    task = check("digits", {"model.init_args.hidden": "[64, 32]"}, code_root=_runner_root())
    assert "- 64\n    - 32" in task.resolved_config


def test_class_that_is_not_a_lightning_module(seqclf):
    assert _error(seqclf, **{"model.class_path": "torch.nn.Linear"}) == (
        "model.class_path='torch.nn.Linear' is not a LightningModule (from lightning.pytorch "
        "or pytorch_lightning)"
    )


def test_unknown_class_path(seqclf):
    assert _error(seqclf, **{"model.class_path": "seqclf.modle.SequenceClassifier"}) == (
        "model.class_path='seqclf.modle.SequenceClassifier' cannot be imported: No module named "
        "'seqclf.modle'; the module must be in the source dir (training.source_dir) or a package "
        "its requirements.txt installs"
    )


def test_class_missing_from_its_module(seqclf):
    assert _error(seqclf, **{"data.class_path": "seqclf.data.Sequences"}) == (
        "data.class_path='seqclf.data.Sequences' is invalid: seqclf.data has no class Sequences"
    )


def test_model_and_data_from_different_lightning_packages(seqclf, regress):
    (seqclf / "regress").symlink_to(regress / "regress")
    assert _error(seqclf, **{"data.class_path": "regress.model.WaveData"}) == (
        "data.class_path='regress.model.WaveData' derives from pytorch_lightning but "
        "model.class_path='seqclf.model.SequenceClassifier' from lightning.pytorch: use one "
        "Lightning package for both"
    )


def test_config_file_missing_from_the_source_dir(seqclf):
    message = _error(seqclf, config="seqclf/configs/tune.yaml")
    assert message == (
        f"hyperparameter config='seqclf/configs/tune.yaml': no such file "
        f"{seqclf / 'seqclf/configs/tune.yaml'}; expected a built-in task (digits, donut) or a "
        "YAML file inside the source dir"
    )


def test_a_config_value_of_the_wrong_type_names_the_file(seqclf):
    config = seqclf / SEQCLF_CONFIG
    config.write_text(config.read_text().replace("d_model: 32", "d_model: big"))
    assert _error(seqclf) == (
        "model.init_args.d_model='big' in train.yaml is invalid: expected int "
        "(seqclf.model.SequenceClassifier)"
    )


def test_a_config_without_data_section(seqclf):
    (seqclf / "bare.yaml").write_text(
        textwrap.dedent("""
        model:
          class_path: seqclf.model.SequenceClassifier
        """)
    )
    assert _error(seqclf, config="bare.yaml") == (
        f"{seqclf / 'bare.yaml'}: no data: section; expected data: class_path + init_args"
    )


def test_learning_rate_found_at_learning_rate_and_scaled(seqclf):
    task = check(SEQCLF_CONFIG, {}, code_root=seqclf, world_size=8)
    assert (task.lr_key, task.base_lr, task.lr) == ("model.init_args.learning_rate", 0.005, 0.04)
    sqrt = check(SEQCLF_CONFIG, {}, code_root=seqclf, world_size=4, lr_scaling="sqrt")
    assert sqrt.lr == pytest.approx(0.01)


def test_lr_shortcut_sets_the_base_learning_rate(regress):
    task = check(REGRESS_CONFIG, {"model.init_args.lr": "0.2"}, code_root=regress, world_size=2)
    assert (task.lr_key, task.base_lr, task.lr) == ("model.init_args.lr", 0.2, 0.4)
    assert "lr: 0.2" in task.resolved_config  # the config records the base rate


def test_lr_key_that_holds_no_number(regress):
    with pytest.raises(ConfigError) as info:
        check(REGRESS_CONFIG, {}, code_root=regress, lr_key="optimizer.init_args.lr")
    assert str(info.value) == (
        "hyperparameter lr_key='optimizer.init_args.lr' is invalid: the config holds no number "
        "there (got None); expected the key of the learning rate to scale "
        "(model.init_args.lr, optimizer.init_args.lr, ...) or lr_scaling=none"
    )
    unscaled = check(REGRESS_CONFIG, {}, code_root=regress, lr_scaling="none", world_size=4)
    assert unscaled.lr == unscaled.base_lr == 0.01


def test_a_dependency_the_job_lacks_fails_here_not_in_the_job(seqclf):
    model = seqclf / "seqclf" / "model.py"
    model.write_text(model.read_text() + "\nimport not_installed_here  # noqa: E402, F401\n")
    assert _error(seqclf).startswith(
        f"seqclf/model.py:{len(model.read_text().splitlines())} imports 'not_installed_here', "
        "which the job will not have"
    )


def _runner_root() -> Path:
    return Path(__file__).resolve().parents[2]
