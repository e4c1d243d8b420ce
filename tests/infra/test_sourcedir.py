"""sourcedir.tar.gz: layout, reproducibility, and the asset hash that follows the bytes."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from core import wheelhouse
from core.image_contents import FAMILIES, family
from core.sourcedir import REPO_ROOT, build_sourcedir, build_sourcedir_bytes
from training import contract


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A copy of training/ (plus a cache and a test file that must stay out of the bundle)."""
    root = tmp_path / "src"
    shutil.copytree(
        REPO_ROOT / "training", root / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "training" / "__pycache__").mkdir()
    (root / "training" / "__pycache__" / "contract.cpython-311.pyc").write_bytes(b"\0")
    (root / "training" / "tests").mkdir()
    (root / "training" / "tests" / "test_x.py").write_text("assert True\n")
    return root


def _names(data: bytes) -> list[str]:
    import io

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def test_layout_requirements_and_wheels_per_image_family(source_tree):
    for name in FAMILIES:
        data = build_sourcedir_bytes(source_tree, image_family=name)
        names = _names(data)
        assert "requirements.txt" in names
        assert contract.ENTRY_POINT.split("/")[0] + "/contract.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests" in n]
        assert not [n for n in names if n.startswith("training/requirements")]  # lock inputs
        assert names == sorted(names)
        locked = wheelhouse.read_lock(family(name))
        wheels = sorted(n.split("/", 1)[1] for n in names if n.startswith("wheels/"))
        assert wheels == sorted(w.filename for w in locked)
        assert {"pytorch-lightning", "torchmetrics"} <= {w.name for w in locked}
        assert not [w for w in wheels if w.startswith(("torch-", "nvidia", "triton", "numpy"))]
        import io

        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            req = tar.extractfile("requirements.txt").read().decode()
            for member in tar.getmembers():
                assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
                    0,
                    0,
                    0,
                    "",
                    "",
                )
                assert member.mode in (0o644, 0o755)
            for wheel in locked:  # the bytes in the bundle are the locked bytes
                blob = tar.extractfile(f"wheels/{wheel.filename}").read()
                assert hashlib.sha256(blob).hexdigest() == wheel.sha256
        lines = [line for line in req.splitlines() if line and not line.startswith("#")]
        assert lines[:2] == ["--no-index", "--find-links wheels"]
        assert lines[2:] == [w.pin for w in locked]
        header = gzip.GzipFile(fileobj=io.BytesIO(data))
        header.read(1)
        assert header.mtime == 0
        assert data[3] & 0x08 == 0  # FNAME flag off: no file name in the gzip header


def test_hash_stable_across_rebuilds_and_touch(source_tree, tmp_path):
    first = build_sourcedir(
        tmp_path / "a" / "sourcedir.tar.gz", image_family="smddp", root=source_tree
    )
    for path in source_tree.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    second = build_sourcedir(
        tmp_path / "b" / "sourcedir.tar.gz", image_family="smddp", root=source_tree
    )
    assert first == second
    assert (tmp_path / "a" / "sourcedir.tar.gz").read_bytes() == (
        tmp_path / "b" / "sourcedir.tar.gz"
    ).read_bytes()


def test_hash_changes_with_code_and_family(source_tree, tmp_path):
    before = build_sourcedir(tmp_path / "x.tar.gz", image_family="smddp", root=source_tree)
    other_family = build_sourcedir(tmp_path / "y.tar.gz", image_family="current", root=source_tree)
    assert before != other_family
    with (source_tree / "training" / "contract.py").open("a") as handle:
        handle.write("\n# changed\n")
    after = build_sourcedir(tmp_path / "x.tar.gz", image_family="smddp", root=source_tree)
    assert after != before


def test_asset_hash_follows_bytes(source_tree, tmp_path):
    """Same bytes -> same CDK asset hash, wherever and whenever built; code change -> new hash."""
    import aws_cdk as cdk

    from infra.source_bundle import SourceBundle

    def asset_hash(build: Path) -> str:
        stack = cdk.Stack(cdk.App(outdir=str(tmp_path / "out")), "S")
        bundle = SourceBundle(
            stack, "Code", image_family="current", root=source_tree, build_dir=build
        )
        assert stack.resolve(bundle.s3_uri)["Fn::Join"][1][0] == "s3://"
        return bundle.asset.asset_hash

    first = asset_hash(tmp_path / "b1")
    for path in source_tree.rglob("*"):
        os.utime(path, None)
    assert asset_hash(tmp_path / "b2") == first
    (source_tree / "training" / "extra.py").write_text("X = 1\n")
    assert asset_hash(tmp_path / "b3") != first


def test_unknown_family_rejected(source_tree):
    with pytest.raises(ValueError, match="image_family='gpu'"):
        build_sourcedir_bytes(source_tree, image_family="gpu")
