"""Shared fixtures for the infra tests: the default app, synthesized once per session; the
state machine in moto (tests/infra/workflow_moto.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.workflow_moto import moto_env  # noqa: F401 (the workflow tests' fixture)


@dataclass
class Synth:
    """One synthesized app: the stack object, its template, the assembly folder, nag findings."""

    stack: Any
    template: dict[str, Any]
    outdir: Path
    error: str | None  # synth exception text (cdk-nag errors fail the synth)
    findings: list[dict[str, str]]  # every cdk-nag violation: rule, severity, path

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    from infra.stack import create_app

    app, stack = create_app(context, outdir=str(outdir))
    error = None
    try:
        app.synth()
    except Exception as exc:  # the validation plugin raises on errors
        error = str(exc)
    findings = []
    report = outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            for violation in plugin["violations"]:
                for construct in violation["violatingConstructs"]:
                    findings.append(
                        {
                            "rule": violation["ruleName"],
                            "severity": violation["severity"],
                            "path": construct["constructPath"],
                        }
                    )
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return Synth(stack, template, outdir, error, findings)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app exactly as cdk.json configures it, cdk-nag on."""
    return synthesize(tmp_path_factory.mktemp("cdk-default"))
