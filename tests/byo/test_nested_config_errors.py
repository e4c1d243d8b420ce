"""Bad values deep in a real project's config: one line naming the full dotted key as written,
the class that rejects it and what it takes, before anything starts; what only the job can
build fails there in its first seconds with the same kind of line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.byo.conftest import COURSE, HYDRA, STYLE_CONFIGS
from training.sm_env import ConfigError
from training.task import parse
from trainops.task_check import TaskCheckError, check_task

NET = "hydra_style.models.components.dense_net.SimpleDenseNet"
MODULE = "hydra_style.models.blob_module.BlobLitModule"
DATA = "hydra_style.data.blobs.BlobDataModule"


def _error(project: Path, config: str = STYLE_CONFIGS[HYDRA], **hps: str) -> str:
    with pytest.raises(TaskCheckError) as info:
        check_task(project, {"config": config, **hps}, world_size=2)
    assert "\n" not in str(info.value)
    return str(info.value)


CASES = [
    (
        {"model.init_args.net.init_args.lin1_sise": "32"},
        "hyperparameter model.init_args.net.init_args.lin1_sise='32' is invalid: "
        f"{NET} takes no argument 'lin1_sise'; it takes: input_size, lin1_size, lin2_size, "
        "output_size",
    ),
    (
        {"model.init_args.optimizer.init_args.lr": "fast"},
        "hyperparameter model.init_args.optimizer.init_args.lr='fast' is invalid: expected "
        "float | torch.Tensor (torch.optim.Adam)",
    ),
    (
        {"data.init_args.train_val_test_split": "[800, 100]"},
        "hyperparameter data.init_args.train_val_test_split='[800, 100]' is invalid: expected "
        f"tuple[int, int, int] ({DATA})",
    ),
    (
        {"model.init_args.scheduler.init_args.mode": "sideways"},
        "hyperparameter model.init_args.scheduler.init_args.mode='sideways' is invalid: expected "
        "Literal['min', 'max'] (torch.optim.lr_scheduler.ReduceLROnPlateau)",
    ),
    (
        {"model.init_args.net.class_path": "hydra_style.models.components.dense_net.Nope"},
        "model.init_args.net.class_path='hydra_style.models.components.dense_net.Nope' is "
        "invalid: hydra_style.models.components.dense_net has no class Nope",
    ),
    (
        {"model.init_args.net.init_args.lin1_size": "wide"},
        "hyperparameter model.init_args.net.init_args.lin1_size='wide' is invalid: expected int "
        f"({NET})",
    ),
]


@pytest.mark.parametrize(("hps", "line"), CASES, ids=[next(iter(c[0])) for c in CASES])
def test_a_bad_nested_override(hydra, hps, line):
    assert _error(hydra, **hps) == line


def test_a_required_argument_left_out(hydra):
    config = hydra / STYLE_CONFIGS[HYDRA]
    config.write_text(config.read_text().replace("    compile: false\n", ""))
    assert _error(hydra) == (
        f"model.init_args.compile is required: {MODULE} takes compile without a default, and "
        "neither train.yaml nor a hyperparameter sets it"
    )


def test_a_checkpoint_to_start_from_in_a_print_config_dump(hydra):
    config = hydra / STYLE_CONFIGS[HYDRA]
    config.write_text(config.read_text().replace("ckpt_path: null", "ckpt_path: last.ckpt"))
    assert _error(hydra) == (
        "ckpt_path='last.ckpt' in train.yaml is not used: the runner resumes from its own "
        "checkpoints (last.ckpt in the checkpoint folder); set it to null"
    )


def test_an_optimizer_typed_as_an_instance_is_refused_with_the_lightningcli_form(hydra):
    """lightning-hydra-template types `optimizer: torch.optim.Optimizer` and calls it as a
    partial; no LightningCLI config can give that."""
    module = hydra / "src" / "hydra_style" / "models" / "blob_module.py"
    module.write_text(
        module.read_text().replace(
            "optimizer: OptimizerCallable", "optimizer: torch.optim.Optimizer"
        )
    )
    assert _error(hydra) == (
        f"model.init_args.optimizer: {MODULE} takes an instantiated Optimizer, which no config "
        "can build (it needs the model's parameters; Hydra passes a partial): type it "
        "`optimizer: OptimizerCallable` (from pytorch_lightning.cli import OptimizerCallable) and "
        "call self.hparams.optimizer(self.parameters()) in configure_optimizers"
    )


def test_untyped_arguments_are_noted_here_and_refused_by_the_job_in_one_line(course):
    mlp = course / "course" / "mlp.py"
    mlp.write_text(
        mlp.read_text().replace("hidden_units: list[int], learning", "hidden_units, learning")
    )
    bad = {"model.init_args.hidden_units": "[64, oops]"}
    config = STYLE_CONFIGS[COURSE]
    assert check_task(course, {"config": config, **bad}, world_size=2) == [
        "hyperparameter model.init_args.hidden_units='[64, oops]' is not checked here: "
        "course.mlp.LightningModel leaves hidden_units untyped (the job checks it when it builds "
        "the class)"
    ]
    with pytest.raises(ConfigError) as info:  # the job's parse, which builds the classes
        parse(config, bad, code_root=course, build=True, seed=False)
    assert str(info.value) == (
        "model.class_path='course.mlp.LightningModel' could not be built from config.yaml: "
        "empty(): argument 'size' (position 1) must be tuple of ints, but found element of type "
        "str at pos 0; its untyped arguments (model.init_args.hidden_units) are checked only here"
    )
