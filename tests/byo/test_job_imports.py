"""The local check asks what the job will have (image, bundle wheels, project folder), never
this machine's venv: a module the job cannot import is one line before any host starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.byo.conftest import COURSE, HYDRA, STYLE_CONFIGS
from trainops.task_check import TaskCheckError, check_task


def _error(project: Path, config: str, **hps: str) -> str:
    with pytest.raises(TaskCheckError) as info:
        check_task(project, {"config": config, **hps}, world_size=2)
    assert "\n" not in str(info.value)
    return str(info.value)


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _fix(project: Path, top: str) -> str:
    return (
        f"put the {top} folder inside {project} (or its src/) if it is your code, else add its "
        f"distribution to requirements.txt there and run `make lock PROJECT={project}`"
    )


def test_a_package_the_project_does_not_bring(course):
    _append(course / "course" / "mlp.py", "import watermark  # noqa: E402\n")
    line = len((course / "course" / "mlp.py").read_text().splitlines())
    assert _error(course, STYLE_CONFIGS[COURSE]) == (
        f"course/mlp.py:{line} imports 'watermark', which the job will not have (not in the source "
        "dir, the image or the bundle's wheels; needed by "
        "model.class_path='course.mlp.LightningModel'): " + _fix(course, "watermark")
    )


@pytest.mark.parametrize("package", ["matplotlib", "humanize"])
def test_a_package_installed_here_but_not_in_the_job_is_refused(course, package):
    """Both import on this machine (the dev venv); neither is in the image or the bundle."""
    _append(course / "course" / "mlp.py", f"import {package}  # noqa: E402\n")
    assert f"imports {package!r}, which the job will not have" in _error(
        course, STYLE_CONFIGS[COURSE]
    )


def test_a_class_path_to_a_module_outside_the_project(course):
    message = _error(
        course, STYLE_CONFIGS[COURSE], **{"data.class_path": "shared_utils.CustomDataModule"}
    )
    assert message == (
        "data.class_path='shared_utils.CustomDataModule': the job has no module 'shared_utils' "
        "(not in the source dir, the image or the bundle's wheels): " + _fix(course, "shared_utils")
    )


def test_nested_modules_of_a_src_layout_are_followed(hydra):
    dense = hydra / "src" / "hydra_style" / "models" / "components" / "dense_net.py"
    _append(dense, "from rich import print  # noqa: E402\n")
    line = len(dense.read_text().splitlines())
    assert _error(hydra, STYLE_CONFIGS[HYDRA]).startswith(
        f"src/hydra_style/models/components/dense_net.py:{line} imports 'rich', which the job "
        "will not have"
    )


def test_imports_that_never_run_in_the_job_pass(course):
    """Optional imports, imports inside functions, the image's packages (h5py is not installed
    here: the parse is left to the job with a note), and files the config never reaches."""
    _append(
        course / "course" / "mlp.py",
        "try:\n    import watermark\nexcept ImportError:\n    watermark = None\n\n\n"
        "def plot():\n    import matplotlib\n\n\nimport h5py  # noqa: E402, F401\n",
    )
    (course / "course" / "scripts.py").write_text("import seaborn\n")
    (course / "tests").mkdir()
    (course / "tests" / "test_mlp.py").write_text("import pytest\nfrom course import scripts\n")
    assert check_task(course, {"config": STYLE_CONFIGS[COURSE]}, world_size=2) == [
        "task not checked here: 'h5py' is not installed on this machine (the job has it, and "
        "checks the task in its first seconds)"
    ]
