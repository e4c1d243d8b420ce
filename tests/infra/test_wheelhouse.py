"""The wheelhouse rules, offline: locks are current and hash-pinned, wheels fit the image's
Python, the cache makes a second build start no process, bad locks fail in one line."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from core import wheelhouse
from core.image_contents import FAMILIES, family_for_image
from core.wheelhouse import BundleError, LockedWheel

#: The Lightning release of each image family (AWS's pairing for SMDDP 2.3.0; the newest).
LIGHTNING = {"smddp": "2.2.5", "current": "2.6.6"}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_locks_are_current_and_bring_no_image_package(name):
    fam = FAMILIES[name]
    wheels = wheelhouse.read_lock(fam)
    names = {w.name.lower() for w in wheels}
    assert {"pytorch-lightning", "torchmetrics"} <= names
    # Both Lightning flavours of the family's release come with the runner.
    versions = {w.name.lower(): w.version for w in wheels}
    assert versions["lightning"] == versions["pytorch-lightning"] == LIGHTNING[name]
    # The image's pinned packages never; an unpinned one only at another version the job needs
    # (e.g. Lightning 2.2.5 caps fsspec and packaging below what the image's closure has).
    pinned = {Requirement(line).name.lower() for line in fam.ships if "==" in line}
    assert not names & pinned
    assert not [n for n in names if n.startswith(("nvidia-", "triton", "torch-"))]
    wheelhouse.check_fits(wheels, fam, fam.python)


def test_cached_wheels_are_reused_without_pip(monkeypatch):
    fam = FAMILIES["current"]
    wheels = wheelhouse.read_lock(fam)
    wheelhouse.fetch(wheels, fam)  # warm (downloads at most once per machine)

    def no_process(*args, **kwargs):
        raise AssertionError(f"a warm build started a process: {args}")

    monkeypatch.setattr(subprocess, "run", no_process)
    paths = wheelhouse.fetch(wheels, fam)
    for wheel, path in zip(wheels, paths, strict=True):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == wheel.sha256


def test_a_binary_wheel_for_another_python_fails_with_one_line():
    fam = FAMILIES["smddp"]
    wheel = LockedWheel(
        "aiohttp",
        "3.9.5",
        "0" * 64,
        "aiohttp-3.9.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    )
    wheelhouse.check_fits([wheel], fam, "3.11")  # fits the 2.3.0 image
    with pytest.raises(BundleError) as error:
        wheelhouse.check_fits([wheel], fam, "3.10")  # e.g. framework_version 2.2.0 (py310)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("aiohttp==3.9.5 (aiohttp-3.9.5-cp311-cp311-manylinux")
    assert "does not install on the image's Python 3.10 / manylinux_2_31_x86_64" in message
    assert "smddp.in" in message and "make lock" in message


def test_a_stale_lock_fails_synth_naming_the_command(tmp_path):
    fam = FAMILIES["smddp"]
    original = fam.requirements_in.read_text()
    edited = tmp_path / "smddp.in"
    edited.write_text(original + "jsonargparse==4.27.7\n")
    copy = tmp_path / "smddp.lock"
    copy.write_text(fam.lock.read_text())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(fam), "requirements_in", property(lambda self: edited))
        mp.setattr(type(fam), "lock", property(lambda self: copy))
        with pytest.raises(BundleError, match=r"smddp.lock is out of date with smddp.in: run"):
            wheelhouse.read_lock(fam)
        edited.write_text(original)  # back in step with the lock: accepted
        assert wheelhouse.read_lock(fam)


def test_a_malformed_lock_line_names_its_line(tmp_path, monkeypatch):
    fam = FAMILIES["current"]
    copy = tmp_path / "current.lock"
    copy.write_text(fam.lock.read_text() + "torch>=2.0\n")
    monkeypatch.setattr(type(fam), "lock", property(lambda self: copy))
    with pytest.raises(BundleError, match=r"current.lock:\d+: 'torch>=2.0' is not `name=="):
        wheelhouse.read_lock(fam)


def test_an_oversized_wheelhouse_names_the_largest_wheels(tmp_path):
    files = []
    for name, size in (("small-1-py3-none-any.whl", 10), ("big-1-py3-none-any.whl", 3000)):
        path = tmp_path / name
        path.write_bytes(b"\0" * size)
        files.append(path)
    wheelhouse.check_size(files, limit=4000)
    with pytest.raises(BundleError) as error:
        wheelhouse.check_size(files, limit=2048)
    assert "largest: big-1-py3-none-any.whl" in str(error.value)
    assert "drop what the image ships" in str(error.value)


def test_a_wheel_whose_download_does_not_match_its_hash_is_refused(tmp_path, monkeypatch):
    fam = FAMILIES["current"]
    good = wheelhouse.read_lock(fam)[0]
    forged = dataclasses.replace(good, sha256="f" * 64)
    monkeypatch.setenv("TRAINOPS_WHEEL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BundleError) as error:
        wheelhouse.fetch([forged], fam)
    assert good.name in str(error.value) and "\n" not in str(error.value)
    assert not list(Path(tmp_path / "cache").rglob("*.whl"))


@pytest.mark.parametrize(
    ("uri", "family"),
    [
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311", "smddp"),
        ("x.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.0.1-gpu-py310-cu118", "smddp"),
        ("x.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-cpu-py313", "current"),
    ],
)
def test_image_family_from_the_image_uri(uri, family):
    assert family_for_image(uri) == family
