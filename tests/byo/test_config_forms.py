"""Configs as LightningCLI projects write them: `fit:` subcommand configs, sections without a
class (the classes given to the project's `LightningCLI(...)` call), LightningCLI's own
optimizer; and where the learning rate is found in each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.byo.conftest import HYDRA, SEQCLF_CONFIG, STYLE_CONFIGS
from training.sm_env import ConfigError
from training.task import check
from trainops.task_check import TaskCheckError, check_task

CLI = """\
from pytorch_lightning.cli import LightningCLI

from plain.boring import BoringDataModule, DemoModel

if __name__ == "__main__":
    LightningCLI(DemoModel, BoringDataModule)
"""


def _subcommand_config(project: Path, model: str) -> str:
    """A `fit:` config as `LightningCLI(DemoModel, BoringDataModule)` writes it: no classes."""
    (project / "fit.yaml").write_text(
        "fit:\n  seed_everything: 4\n  trainer:\n    max_epochs: 2\n  model:\n"
        + "".join(f"    {line}\n" for line in model.splitlines())
        + "  ckpt_path: null\n"
    )
    return "fit.yaml"


def test_a_fit_config_without_classes_takes_them_from_the_projects_cli_call(plain):
    (plain / "cli.py").write_text(CLI)
    config = _subcommand_config(plain, "out_dim: 8\nlearning_rate: 0.05")
    task = check(config, {}, code_root=plain, world_size=2)
    assert "class_path: plain.boring.DemoModel" in task.resolved_config
    assert "class_path: plain.boring.BoringDataModule" in task.resolved_config
    assert "out_dim: 8" in task.resolved_config
    assert (task.lr_key, task.base_lr, task.lr) == ("model.init_args.learning_rate", 0.05, 0.1)


def test_a_config_without_classes_and_no_cli_call_names_the_fix(plain):
    config = _subcommand_config(plain, "out_dim: 8")
    with pytest.raises(TaskCheckError) as info:
        check_task(plain, {"config": config})
    assert str(info.value) == (
        "model: in fit.yaml names no class (a config for LightningCLI(MyModel, MyData)) and no "
        "LightningCLI(...) call in the project names one: write model: {class_path: "
        "mypkg.module.MyClass, init_args: {...}}"
    )


def test_a_module_without_configure_optimizers_needs_the_configs_optimizer(plain):
    boring = plain / "plain" / "boring.py"
    text = boring.read_text()
    start = text.index("    def configure_optimizers")
    boring.write_text(text[:start] + text[text.index("class BoringDataModule") - 2 :])
    with pytest.raises(TaskCheckError) as info:
        check_task(plain, {"config": "config.yaml"})
    assert str(info.value) == (
        "model.class_path='plain.boring.DemoModel' has no configure_optimizers() and config.yaml "
        "sets no optimizer: add `optimizer: {class_path: torch.optim.Adam, init_args: {lr: "
        "0.001}}` to the config (LightningCLI builds it), or the method to the module"
    )
    config = plain / "config.yaml"
    config.write_text(
        config.read_text() + "optimizer:\n  class_path: torch.optim.SGD\n  init_args:\n"
        "    lr: 0.3\n"
    )
    task = check("config.yaml", {}, code_root=plain, world_size=4)
    # the module's own learning_rate argument is unused: the CLI's optimizer is the one scaled
    assert (task.lr_key, task.base_lr, task.lr) == ("optimizer.init_args.lr", 0.3, 1.2)


def test_the_lr_shortcut_sets_the_nested_optimizer_rate_found(hydra):
    task = check(STYLE_CONFIGS[HYDRA], {}, code_root=hydra, world_size=2, lr=0.05)
    assert (task.lr_key, task.base_lr, task.lr) == (
        "model.init_args.optimizer.init_args.lr",
        0.05,
        0.1,
    )
    assert "lr: 0.05" in task.resolved_config  # the base rate, where it was found


def test_no_learning_rate_anywhere_names_the_default_key(plain):
    for path in (plain / "plain" / "boring.py", plain / "config.yaml"):
        path.write_text(path.read_text().replace("learning_rate", "step_size"))
    with pytest.raises(ConfigError) as info:
        check("config.yaml", {}, code_root=plain, world_size=2)
    assert str(info.value) == (
        "no learning rate to scale: the config holds no number at model.init_args.lr (the "
        "default lr_key) nor at any other model/optimizer *.lr or *.learning_rate key; set "
        "hyperparameter lr_key to its key, or lr_scaling=none"
    )
    task = check(
        "config.yaml", {}, code_root=plain, lr_key="model.init_args.step_size", world_size=2
    )
    assert (task.lr_key, task.base_lr, task.lr) == ("model.init_args.step_size", 0.02, 0.04)


def test_a_typo_deep_in_the_config_file_names_its_full_key_and_class(hydra):
    config = hydra / STYLE_CONFIGS[HYDRA]
    config.write_text(config.read_text().replace("        amsgrad: false", "        amsgrd: false"))
    with pytest.raises(TaskCheckError) as info:
        check_task(hydra, {"config": STYLE_CONFIGS[HYDRA]})
    assert str(info.value) == (
        "model.init_args.optimizer.init_args.amsgrd in train.yaml is invalid: torch.optim.Adam "
        "takes no argument 'amsgrd'; it takes: params, lr, betas, eps, weight_decay, amsgrad, "
        "foreach, maximize, capturable, differentiable, fused, decoupled_weight_decay"
    )


def test_the_lr_shortcut_follows_the_key_found_at_the_top_level_too(seqclf):
    """`--hp lr=...` once answered "takes no argument 'lr'" for a module whose rate is
    `learning_rate`."""
    assert check_task(seqclf, {"config": SEQCLF_CONFIG, "lr": "0.05"}, world_size=2) == []
    task = check(SEQCLF_CONFIG, {}, code_root=seqclf, world_size=2, lr=0.05)
    assert (task.lr_key, task.base_lr, task.lr) == ("model.init_args.learning_rate", 0.05, 0.1)
