"""The synthesized bundle installs with no network into an image stand-in, then imports.

What AWS enforces: the training image has torch and the toolkits but no Lightning, the job has
no route to PyPI, and the toolkit runs `python -m pip install -r requirements.txt` in the code
folder at start. Here: the toolkit's own install step, inside a private network namespace
(loopback only), in a fresh host venv that sees only the image's packages; then every module of
the bundle is imported. The bundle shipped before the wheelhouse fails exactly as on AWS.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from core import wheelhouse
from core.image_contents import FAMILIES
from core.sourcedir import build_sourcedir_bytes
from localjob.image_standin import image_standin
from localjob.netns import PrivateNetwork
from tests import timing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: What the bundle's requirements.txt said before the wheelhouse (the regression case).
LEGACY_REQUIREMENTS = "pytorch-lightning==2.2.5\ntorchmetrics==1.4.0\n"
#: Must come from the image (the stand-in's folder), never from what the install added.
#: Come from the image stand-in, unless the lock brings another version (fsspec and packaging
#: on the SMDDP image: Lightning 2.2.5 caps them below the newest).
IMAGE_PACKAGES = ("torch", "numpy", "fsspec", "packaging", "sagemaker_training")


@pytest.fixture(scope="module")
def network():
    net = PrivateNetwork()
    yield net
    net.close()


def _image_env() -> dict[str, str]:
    """The container's environment: none of this machine's pip configuration or venv."""
    return {**wheelhouse.clean_pip_env(os.environ), "PYTHONDONTWRITEBYTECODE": "1"}


def _toolkit_install(bindir: Path, code: Path, network: PrivateNetwork):
    """sagemaker_training.modules.install_requirements, as the toolkit calls it at job start."""
    step = (
        "from sagemaker_training import modules; "
        f"modules.install_requirements({str(code)!r}, capture_error=True)"
    )
    return run_in_image(bindir, code, network, step, 100, PATH=f"{bindir}:/usr/bin:/bin")


def run_in_image(
    bindir: Path, code: Path, network: PrivateNetwork, script: str, seconds: float, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -c script` of the stand-in image in the code folder, with no network, in the
    container's environment (+ `env`), bounded by `seconds` (scaled for this machine)."""
    return subprocess.run(
        network.command([str(bindir / "python"), "-c", script]),
        cwd=code,
        env={**_image_env(), **env},
        capture_output=True,
        text=True,
        timeout=timing.bound(seconds),
    )


def _unpack(bundle: bytes, into: Path) -> Path:
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    return into


def _bundle_modules(code: Path) -> list[str]:
    return sorted(
        ".".join(p.relative_to(code).with_suffix("").parts).removesuffix(".__init__")
        for p in (code / "training").rglob("*.py")
    )


@pytest.fixture(scope="module")
def synthesized_bundles(default_synth) -> dict[str, bytes]:
    """smddp: the asset of the default synth (p4d, SMDDP image); current: the same builder."""
    smddp = default_synth.outdir / ".sourcedir" / "smddp" / "sourcedir.tar.gz"
    assert default_synth.stack.config.image_family == "smddp"
    return {"smddp": smddp.read_bytes(), "current": build_sourcedir_bytes(image_family="current")}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_bundle_installs_offline_and_imports(family, synthesized_bundles, network, tmp_path):
    code = _unpack(synthesized_bundles[family], tmp_path / "code")
    bindir = image_standin(family).host_env(tmp_path / "env")
    assert subprocess.run(
        [str(bindir / "python"), "-c", "import pytorch_lightning"], capture_output=True
    ).returncode, "the stand-in image must lack Lightning"

    done = _toolkit_install(bindir, code, network)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    installed = subprocess.run(
        [
            str(bindir / "python"),
            "-m",
            "pip",
            "list",
            "--format=freeze",
            "--path",
            str(next((tmp_path / "env" / "lib").glob("python*/site-packages"))),
        ],
        env=_image_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    locked = {w.name.lower(): w.version for w in wheelhouse.read_lock(FAMILIES[family])}
    got = dict(line.lower().split("==") for line in installed.split())
    # The wheelhouse, less what the image already has at that very version (pip keeps it);
    # nothing from the image reinstalled.
    assert got.items() <= locked.items()
    image = set(wheelhouse.image_closure_versions(FAMILIES[family]))
    assert {canonicalize_name(n) for n in set(locked) - set(got)} <= image
    assert "Uninstalling" not in done.stdout

    modules = _bundle_modules(code)
    assert "training.train" in modules and "training.tasks.digits.module" in modules
    check = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"for name in {tuple(p for p in IMAGE_PACKAGES if p not in got)!r}:\n"
        "    assert 'standins' in importlib.import_module(name).__file__, name\n"
        "import pytorch_lightning, torchmetrics\n"
        "print(pytorch_lightning.__version__, torchmetrics.__version__)\n"
    )
    imported = run_in_image(bindir, code, network, check, 100)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.split() == [locked["pytorch-lightning"], locked["torchmetrics"]]


def test_current_wheelhouse_resolves_offline_for_the_images_python(synthesized_bundles, tmp_path):
    """The current image is Python 3.13: pip, told that interpreter and platform, accepts the
    wheelhouse alone (this machine runs 3.11, so this part is pip's resolver, not an install)."""
    code = _unpack(synthesized_bundles["current"], tmp_path / "code")
    assert "pytorch-lightning-2.6.6" in resolve_for_image(code, FAMILIES["current"], tmp_path)


def resolve_for_image(code: Path, fam, tmp_path: Path) -> str:
    """pip's dry-run install of the bundle for the image's own Python and platform: its
    "Would install" output (asserts it succeeded)."""
    cmd = [
        "python3",
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--no-deps",
        *fam.pip_target_args(),
        f"--target={tmp_path / 'target'}",
        "-r",
        "requirements.txt",
    ]
    done = subprocess.run(cmd, cwd=code, env=_image_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Would install" in done.stdout
    return done.stdout


def test_the_bundle_before_the_wheelhouse_fails_as_on_aws(network, tmp_path):
    """Regression: requirements that name PyPI packages cannot install with no network."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "requirements.txt").write_text(LEGACY_REQUIREMENTS)
    bindir = image_standin("smddp").host_env(tmp_path / "env")
    done = _toolkit_install(bindir, code, network)
    assert done.returncode != 0
    assert "No matching distribution found for pytorch-lightning==2.2.5" in (
        done.stdout + done.stderr
    )
