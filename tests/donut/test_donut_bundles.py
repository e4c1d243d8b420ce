"""The donut bundle of each image family installs with no network into that image's stand-in
(transformers 4.49.0 for the SMDDP image, 5.23.0 for current ones) and builds the tiny model;
the current bundle also resolves for the image's own Python 3.13."""

from __future__ import annotations

import pytest

from core import wheelhouse
from core.image_contents import FAMILIES
from core.sourcedir import build_sourcedir_bytes, requirements_dir
from localjob.image_standin import image_standin
from localjob.netns import PrivateNetwork
from tests.infra.test_bundle_offline_install import (
    _toolkit_install,
    _unpack,
    resolve_for_image,
    run_in_image,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BUILD = (
    "from training.tasks.donut.data import char_tokenizer\n"
    "from training.tasks.donut.model import tiny_model\n"
    "import transformers\n"
    "model = tiny_model(char_tokenizer(), (64, 48), 32)\n"
    "print(transformers.__version__, sum(p.numel() for p in model.parameters()) > 0)\n"
)


@pytest.fixture(scope="module")
def network():
    net = PrivateNetwork()
    yield net
    net.close()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_donut_bundle_installs_offline_and_builds_the_model(family, network, tmp_path):
    fam = FAMILIES[family]
    code = _unpack(build_sourcedir_bytes(image_family=family, config="donut"), tmp_path / "code")
    bindir = image_standin(family).host_env(tmp_path / "env")
    done = _toolkit_install(bindir, code, network)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    built = run_in_image(bindir, code, network, BUILD, 200)
    assert built.returncode == 0, built.stderr[-3000:]
    locked = {w.name: w.version for w in wheelhouse.read_lock(fam, requirements_dir(None, "donut"))}
    assert built.stdout.split() == [locked["transformers"], "True"]
    if family == "current":  # the image is Python 3.13: pip's resolver accepts the wheelhouse
        would = resolve_for_image(code, fam, tmp_path)
        assert "transformers-5.23.0" in would and "regex-" in would
