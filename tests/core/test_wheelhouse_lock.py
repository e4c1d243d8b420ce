"""`make lock` (core/wheelhouse_lock.py) against PyPI: a project pin that contradicts the image
fails with pip's own conflict lines; what the image ships is never brought."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core import wheelhouse_lock as wl
from core.image_contents import FAMILIES

#: The SMDDP image reduced to torch and torchvision (their closure as pip reported it, at the
#: image's versions): enough for pip to meet the image's pins without downloading torch.
SMDDP = dataclasses.replace(FAMILIES["smddp"], ships=("torch==2.3.0", "torchvision==0.18.0"))
IMAGE = {
    "torch": {"name": "torch", "version": "2.3.0", "requires_dist": ["numpy"]},
    "numpy": {"name": "numpy", "version": "1.26.4", "requires_dist": []},
    "pillow": {"name": "pillow", "version": "10.3.0", "requires_dist": []},
    "torchvision": {
        "name": "torchvision",
        "version": "0.18.0",
        "requires_dist": ["numpy", "torch==2.3.0", "pillow!=8.3.*,>=5.3.0"],
    },
}


@pytest.fixture
def locking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAINOPS_WHEEL_CACHE", str(tmp_path / "cache" / "wheels"))
    monkeypatch.setattr(wl, "resolve_image", lambda fam: IMAGE)
    project = tmp_path / "project"
    project.mkdir()
    return project


@pytest.mark.slow  # pip against PyPI
def test_a_pin_contradicting_the_image_fails_with_pips_conflict_lines(locking: Path) -> None:
    (locking / "requirements.txt").write_text("torchvision==0.25.0\n")
    with pytest.raises(SystemExit) as err:
        wl.lock_family(SMDDP, locking)
    assert str(err.value) == (
        "lock smddp: smddp.in / requirements.txt contradict(s) the image (pytorch-training 2.3.0 "
        "(SMDDP 2.3.0), Python 3.11, Ubuntu 20.04) or each other, for cp311 "
        "manylinux_2_31_x86_64: Cannot install torchvision==0.18.0 and torchvision==0.25.0 "
        "because these package versions have conflicting dependencies. The conflict is caused "
        "by: The user requested torchvision==0.18.0; The user requested torchvision==0.25.0; "
        "The user requested (constraint) torchvision<=0.18.0"
    )


def test_pips_reason_is_its_error_and_conflict_lines() -> None:
    stdout = (
        "Collecting torchvision==0.25.0\n  Downloading torchvision-0.25.0.whl\n"
        "INFO: pip is looking at multiple versions of torchvision\n\n"
        "The conflict is caused by:\n    The user requested torch==2.3.0\n"
        "    torchvision 0.25.0 depends on torch==2.10.0\n\n"
        "To fix this you could try to:\n1. loosen the range of package versions\n"
    )
    stderr = (
        "ERROR: Cannot install torch==2.3.0 and torchvision==0.25.0 because these package "
        "versions have conflicting dependencies.\nERROR: ResolutionImpossible: for help visit "
        "https://pip.pypa.io\n"
    )
    assert wl.pip_reason(stdout, stderr) == (
        "Cannot install torch==2.3.0 and torchvision==0.25.0 because these package versions "
        "have conflicting dependencies. The conflict is caused by: The user requested "
        "torch==2.3.0; torchvision 0.25.0 depends on torch==2.10.0"
    )
    assert wl.pip_reason("", "ERROR: No matching distribution found for nope==1\n") == (
        "ERROR: No matching distribution found for nope==1"
    )
