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


#: soundfile 0.14.0's files on PyPI: a pure wheel that loads the system's libsndfile, and
#: platform wheels tied to no CPython ABI that bundle it.
SOUNDFILE = [
    "soundfile-0.14.0-py2.py3-none-any.whl",
    "soundfile-0.14.0-py2.py3-none-macosx_11_0_arm64.whl",
    "soundfile-0.14.0-py2.py3-none-manylinux_2_28_x86_64.whl",
    "soundfile-0.14.0.tar.gz",
]
AIOHTTP = [
    "aiohttp-3.14.5-cp311-cp311-manylinux_2_17_x86_64.whl",
    "aiohttp-3.14.5-py3-none-any.whl",
]


def _entry(filename: str) -> dict[str, str]:
    name, version = filename.split("-")[:2]
    return {"name": name, "version": version, "url": f"https://files/{filename}", "sha256": "x"}


def test_the_pure_wheel_replaces_an_extension_wheel_never_one_bundling_a_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lock once pinned soundfile's pure wheel: the job then failed on `cannot load library
    'libsndfile.so'` (no PyTorch image installs it), where pip's manylinux pick carries it."""
    files = {"soundfile": SOUNDFILE, "aiohttp": AIOHTTP}
    monkeypatch.setattr(
        wl,
        "_pypi_files",
        lambda name: [
            {"filename": f, "url": f"https://files/{f}", "hashes": {"sha256": f}}
            for f in files[name]
        ],
    )
    bundling = _entry("soundfile-0.14.0-py2.py3-none-manylinux_2_28_x86_64.whl")
    assert wl.prefer_pure(bundling) == bundling
    extension = wl.prefer_pure(_entry("aiohttp-3.14.5-cp311-cp311-manylinux_2_17_x86_64.whl"))
    assert extension["url"] == "https://files/aiohttp-3.14.5-py3-none-any.whl"
    assert extension["sha256"] == "aiohttp-3.14.5-py3-none-any.whl"
