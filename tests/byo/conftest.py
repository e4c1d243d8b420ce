"""User projects outside this repo: copies of tests/fixtures/user_projects/* in a temp folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "user_projects"
#: lightning.pytorch imports, an extra pure-Python requirement (humanize), lr at learning_rate,
#: metrics `train/nll` and `valid/accuracy`, an `export` hook writing labels.json.
SEQCLF = "seqclf_project"
SEQCLF_CONFIG = "seqclf/configs/train.yaml"
#: pytorch_lightning imports, no requirements of its own, metrics `mse` and `val_rmse`.
REGRESS = "regress_project"
REGRESS_CONFIG = "config.yaml"


def copy_project(name: str, into: Path) -> Path:
    """The fixture project copied to `into/<name>` (outside the repo, as a user's would be)."""
    target = into / name
    shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def seqclf(tmp_path: Path) -> Path:
    return copy_project(SEQCLF, tmp_path)


@pytest.fixture
def regress(tmp_path: Path) -> Path:
    return copy_project(REGRESS, tmp_path)
