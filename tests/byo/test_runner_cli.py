"""The runner owns the Trainer through LightningCLI's public hooks (training/runner_cli.py).

Each image family's own Lightning and jsonargparse wheels (read from the family's lock, never
installed) must have every hook the runner uses; and with this venv's Lightning, in both
flavours, the Trainer the CLI builds has the runner's arguments over the config's and the
runner's callbacks after the config's.
"""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from core import wheelhouse
from core.image_contents import family
from tests.byo.conftest import REGRESS_CONFIG, SEQCLF_CONFIG
from training.config_check import OWNED_TRAINER_KEYS
from training.runner_cli import RunnerTrainer
from training.task import parse

#: Wheel (distribution) -> its LightningCLI module inside the wheel.
CLI_MODULES = {
    "lightning": "lightning/pytorch/cli.py",
    "pytorch-lightning": "pytorch_lightning/cli.py",
}
#: LightningCLI's constructor arguments the runner passes (training/runner_cli.py).
CLI_ARGUMENTS = {
    "model_class",
    "datamodule_class",
    "save_config_callback",
    "trainer_defaults",
    "seed_everything_default",
    "parser_kwargs",
    "subclass_mode_model",
    "subclass_mode_data",
    "args",
    "run",
}


def _wheel_text(fam_name: str, dist: str, member: str) -> str:
    fam = family(fam_name)
    (wheel,) = [w for w in wheelhouse.read_lock(fam) if w.name == dist]
    (path,) = wheelhouse.fetch([wheel], fam)
    with zipfile.ZipFile(path) as archive:
        return archive.read(member).decode()


def _cli_class(source: str) -> ast.ClassDef:
    tree = ast.parse(source)
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LightningCLI")


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def _self_calls(fn: ast.FunctionDef) -> set[str]:
    return {
        n.func.attr
        for n in ast.walk(fn)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "self"
    }


def _self_stores(fn: ast.FunctionDef) -> set[str]:
    return {
        n.attr
        for n in ast.walk(fn)
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
        if isinstance(n.value, ast.Name) and n.value.id == "self"
    }


@pytest.mark.parametrize("dist", sorted(CLI_MODULES))
@pytest.mark.parametrize("fam_name", ["current", "smddp"])
def test_each_familys_lightning_has_the_hooks_the_runner_uses(fam_name, dist):
    cls = _cli_class(_wheel_text(fam_name, dist, CLI_MODULES[dist]))
    methods = _methods(cls)
    init = methods["__init__"]
    assert {a.arg for a in init.args.args} >= CLI_ARGUMENTS
    # the hooks, called by __init__ in this order
    calls = [c for c in ast.walk(init) if isinstance(c, ast.Call)]
    order = [getattr(c.func, "attr", None) for c in calls]
    hooks = ["before_instantiate_classes", "instantiate_classes"]
    assert [name for name in order if name in hooks] == hooks
    assert methods["before_instantiate_classes"].args.args[0].arg == "self"
    # Lightning's own instantiate_classes builds model, data module and then the Trainer
    assert {"config_init", "model", "datamodule", "trainer"} <= _self_stores(
        methods["instantiate_classes"]
    )
    assert "instantiate_trainer" in _self_calls(methods["instantiate_classes"])
    # instantiate_trainer(**kwargs): the caller's arguments win over the config's
    assert methods["instantiate_trainer"].args.kwarg is not None
    # trainer_defaults' callbacks are added to the config's when the Trainer is built
    building = [f for f in methods.values() if "trainer_defaults" in ast.unparse(f)]
    assert any("callbacks" in ast.unparse(f) for f in building if f.name != "__init__")


@pytest.mark.parametrize("fam_name", ["current", "smddp"])
def test_each_familys_jsonargparse_raises_a_public_argument_error(fam_name):
    source = _wheel_text(fam_name, "jsonargparse", "jsonargparse/__init__.py")
    assert "ArgumentError" in source
    core = _wheel_text(fam_name, "jsonargparse", "jsonargparse/_core.py")
    assert "exit_on_error" in core


class _Marker:
    """A runner callback (the flavour's Callback base is mixed in by the test)."""


@pytest.mark.parametrize(
    ("project", "config"), [("seqclf", SEQCLF_CONFIG), ("regress", REGRESS_CONFIG)]
)
def test_the_trainer_has_the_runners_arguments_and_callbacks_after_the_configs(
    request, project, config
):
    root: Path = request.getfixturevalue(project)
    path = root / config
    text = path.read_text().replace("num_nodes: 1", "num_nodes: 4")
    if "num_nodes" not in text:
        text = text.replace("trainer:\n", "trainer:\n  num_nodes: 4\n")
    text = text.replace(
        "trainer:\n",
        "trainer:\n  enable_progress_bar: true\n  callbacks:\n"
        "    - class_path: {pl}.callbacks.LearningRateMonitor\n",
    )
    flavour = "lightning.pytorch" if "lightning.pytorch" in _imports(root) else "pytorch_lightning"
    path.write_text(text.format(pl=flavour))
    given = {}

    def runner_part(task, trainer_config):
        given.update(trainer_config)
        marker = type("Marker", (_Marker, task.pl.Callback), {})()
        arguments = {
            "accelerator": "cpu",
            "devices": 1,
            "num_nodes": 1,
            "strategy": "auto",
            "precision": "32-true",
            "plugins": [],
            "enable_checkpointing": False,
            "default_root_dir": str(root / "out"),
            "enable_progress_bar": False,
            "logger": False,
        }
        assert set(OWNED_TRAINER_KEYS) <= set(arguments)
        return RunnerTrainer(arguments=arguments, callbacks=[marker])

    task = parse(config, {}, code_root=root, build=True, trainer=runner_part, seed=1)
    trainer = task.trainer
    assert isinstance(trainer, task.pl.Trainer)
    assert task.model is not None and task.datamodule is not None
    assert trainer.num_nodes == 1 and trainer.max_epochs == _max_epochs(text)  # owned, passed
    assert given["num_nodes"] == 4 and given["enable_progress_bar"] is True  # the config's
    names = [type(cb).__name__ for cb in trainer.callbacks]
    assert names.index("LearningRateMonitor") < names.index("Marker")


def _imports(root: Path) -> str:
    return "\n".join(p.read_text() for p in root.rglob("*.py"))


def _max_epochs(text: str) -> int:
    return next(int(line.split(":")[1]) for line in text.splitlines() if "max_epochs" in line)
