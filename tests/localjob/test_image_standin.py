"""The image stand-in imports what the image ships at the image model's versions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from core import wheelhouse
from core.image_contents import family
from localjob.image_standin import image_standin

pytestmark = [pytest.mark.slow]  # builds the stand-in once per machine (pip, PyPI once)

_PROBE = """
import importlib.metadata as md, json, sys
names = json.loads(sys.argv[1])
out = {}
for name in names:
    try:
        out[name] = md.version(name)
    except md.PackageNotFoundError:
        pass
import numpy, pandas, pkg_resources  # importable together at those versions
out["ComplexWarning"] = hasattr(numpy, "ComplexWarning")
print(json.dumps(out))
"""


def test_smddp_stand_in_meets_the_image_models_specifiers(tmp_path: Path) -> None:
    fam = family("smddp")
    bindir = image_standin("smddp").host_env(tmp_path / "host")
    specs = [Requirement(line) for line in fam.ships if not line.startswith("torch")]
    done = subprocess.run(
        [str(bindir / "python"), "-c", _PROBE, json.dumps([r.name for r in specs])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    for req in specs:
        if req.name in found:
            assert req.specifier.contains(found[req.name], prereleases=True), (req, found)
    resolved = wheelhouse.image_closure_versions(fam)
    assert found["numpy"] == resolved["numpy"]  # NumPy 1.x, as the 2.3.0 image has
    assert found["ComplexWarning"] is True  # removed in NumPy 2: code relying on it runs there
