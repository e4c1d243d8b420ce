"""The app as users run it: `python app.py` (CDK's own template validation on), config errors,
and the pinned CDK CLI with a `-c` override."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.node_runtime import SUPPORTED_MAJORS, node_version, verdict

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


@pytest.mark.slow
def test_python_app_with_builtin_cloudformation_validation(tmp_path):
    """CDK_VALIDATION=true (conftest turns it off for speed) and the built-in validator's findings
    treated as errors: the report must stay empty and the synth must succeed."""
    env = _env(
        CDK_VALIDATION="true",
        CDK_OUTDIR=str(tmp_path),
        CDK_CONTEXT_JSON=json.dumps({"@aws-cdk/core:validateAgainstDefaultRules": True}),
    )
    run = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = tmp_path / "validation-report.json"
    if report.exists():
        assert json.loads(report.read_text())["pluginReports"] == []
    assert (tmp_path / "SageMakerTraining.template.json").exists()


def test_python_app_config_error_is_one_line(tmp_path):
    env = _env(
        CDK_OUTDIR=str(tmp_path),
        CDK_CONTEXT_JSON=json.dumps(
            {"training.backend": "smddp", "training.instance_type": "ml.p5.48xlarge"}
        ),
    )
    run = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines[-1] == (
        "configuration error (cdk.json training / -c training.KEY=VALUE): backend='smddp': smddp"
        " runs only on ml.p4d.24xlarge, ml.p4de.24xlarge, ml.p3dn.24xlarge, not ml.p5.48xlarge"
        " (SMDDP does not support P5: use backend=torchrun)"
    )


@pytest.mark.slow
def test_cdk_cli_synth_quiet_with_override(tmp_path):
    npx = shutil.which("npx")
    if npx is None or not (REPO / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is missing: run `make setup` (npm ci)")
    out = tmp_path / "cdk.out"
    run = subprocess.run(
        [
            npx,
            "cdk",
            "synth",
            "--quiet",
            "-o",
            str(out),
            "-c",
            "training.instance_type=ml.p5.48xlarge",
            "-c",
            "training.hyperparameters.epochs=3",
        ],
        cwd=REPO,
        # As a user runs it outside make: jsii's Node banner not silenced beforehand.
        env={k: v for k, v in _env().items() if not k.startswith("JSII_SILENCE_WARNING")},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # --quiet: no template dump, no notices, no telemetry; cdk.json sets every recommended
    # feature flag, so no unconfigured-flags line either.
    assert run.stdout.strip() == ""
    assert "feature flags" not in run.stderr
    # jsii's banner about this Node never reaches the user as bytes reprs; one line instead.
    assert not [line for line in run.stderr.splitlines() if line.startswith("b'")], run.stderr
    version = node_version()
    expected = f"note: {verdict(version)}"
    on_supported = int(str(version).lstrip("v").split(".")[0]) in SUPPORTED_MAJORS
    assert (expected in run.stderr.splitlines()) != on_supported, run.stderr
    template = (out / "SageMakerTraining.template.json").read_text()
    assert "2.10.0-gpu-py313" in template  # p5 -> torchrun -> the current DLC
