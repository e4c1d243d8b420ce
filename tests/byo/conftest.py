"""User projects outside this repo: copies of tests/fixtures/user_projects/* in a temp folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "user_projects"
#: lightning.pytorch imports, an extra pure-Python requirement (humanize), lr at learning_rate,
#: metrics `train/nll` and `valid/accuracy`, an `export` hook writing labels.json, the runner's
#: DataError (training.errors) for a channel file that is not a (sequences, labels) pair.
SEQCLF = "seqclf_project"
SEQCLF_CONFIG = "seqclf/configs/train.yaml"
#: pytorch_lightning imports, no requirements of its own, metrics `mse` and `val_rmse`.
REGRESS = "regress_project"
REGRESS_CONFIG = "config.yaml"
#: Three styles of outside projects, each trained unchanged (tests/byo/test_project_styles.py):
#: LightningCLI's docs example (no validation step, a test step); a course-style MLP
#: (torchmetrics, ModelCheckpoint(monitor=val_acc), a value logged in on_train_epoch_end, a
#: persistent loader worker); a lightning-hydra-template-style repo (src/ layout, injected net,
#: OptimizerCallable + LRSchedulerCallable, `val/` names, a full --print_config dump with a
#: logger, 2 loader workers).
PLAIN, COURSE, HYDRA = "plain_project", "course_project", "hydra_project"
#: A project written for SageMaker's PyTorch estimator (tests/byo/test_estimator_project.py):
#: flat modules star-imported, a LightningCLI subclass fixing AdamW + ReduceLROnPlateau, a
#: class-less config naming /opt/ml paths (the channel root, a logger's save_dir).
ESTIMATOR, ESTIMATOR_CONFIG = "estimator_project", "configs/train.yaml"
STYLE_CONFIGS = {PLAIN: "config.yaml", COURSE: "config.yaml", HYDRA: "configs/train.yaml"}


def code_folder(project: str, into: Path) -> Path:
    """What a host unpacks: the project at the code root and the runner package beside it."""
    shutil.copytree(FIXTURES / project, into, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        FIXTURES.parents[2] / "training",
        into / "training",
        ignore=shutil.ignore_patterns("__pycache__", "requirements", "donut"),
    )
    return into


def start_in(code: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """This interpreter running `args` in a host's code folder, output (both streams) piped."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        cwd=code,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def copy_project(name: str, into: Path) -> Path:
    """The fixture project copied to `into/<name>` (outside the repo, as a user's would be)."""
    target = into / name
    shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _project_fixture(name: str):
    """A fixture that gives each test its own copy of the fixture project `name`."""

    @pytest.fixture
    def project(tmp_path: Path) -> Path:
        return copy_project(name, tmp_path)

    return project


seqclf = _project_fixture(SEQCLF)
regress = _project_fixture(REGRESS)
course = _project_fixture(COURSE)
hydra = _project_fixture(HYDRA)
plain = _project_fixture(PLAIN)
estimator = _project_fixture(ESTIMATOR)
