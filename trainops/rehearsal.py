"""Which job `local-train` rehearses: the deployment's image family and backend.

The configuration is the deployment's own, read as `cdk deploy` and `trainops start` read it:
cdk.json's context, `-c KEY=VALUE` overrides on top (as `npx cdk deploy -c ...`), and
`--instance-type` checked with the rules `start` applies to a run's input. So the default
cdk.json (ml.p4d.24xlarge, backend auto) rehearses the SMDDP image family (PyTorch 2.3.0,
Lightning 2.2.5) with the smddp process group, and `-c training.backend=torchrun` the current
family.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from core.config import ConfigError, TrainingConfig, load_cdk_json_context
from core.execution_input import ExecutionInputError
from core.image_contents import family
from core.sourcedir import EXCLUDE_DIRS
from trainops.run_input import CDK_JSON, check_with_synth_rules


class RehearsalError(ValueError):
    """The deployment configuration is invalid; the message is one line."""


@dataclass(frozen=True)
class Rehearsal:
    """What the local job stands in for."""

    image_family: str
    backend: str  # the deployment's: smddp | torchrun | none
    instance_type: str
    source: str  # where the configuration came from, for the line the user sees

    def describe(self) -> str:
        return (
            f"rehearsing image family {self.image_family} ({family(self.image_family).description})"
            f", backend {self.backend} on {self.instance_type}, from {self.source}"
        )


def context_overrides(items: list[str]) -> dict[str, str]:
    """`-c KEY=VALUE` options (as `cdk deploy` takes them) as a dict; one line for a bad one."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RehearsalError(
                f"-c {item!r}: expected KEY=VALUE, e.g. -c training.backend=torchrun"
            )
        out[key] = value
    return out


def from_deployment(
    context: list[str] | None = None,
    instance_type: str | None = None,
    cdk_json: Path = CDK_JSON,
) -> Rehearsal:
    """The rehearsal of the job `cdk deploy` (with these `-c` overrides) and `trainops start`
    (with this `--instance-type`) would run."""
    overrides = context_overrides(context or [])
    try:
        config = TrainingConfig.from_context({**load_cdk_json_context(cdk_json), **overrides})
        data = {"instance_type": instance_type} if instance_type else {}
        check_with_synth_rules(data, config)
    except (ConfigError, ExecutionInputError, OSError) as exc:
        raise RehearsalError(str(exc)) from None
    source = " ".join([cdk_json.name, *(f"-c {k}={v}" for k, v in overrides.items())])
    if instance_type:
        source += f" --instance-type {instance_type}"
    return Rehearsal(
        image_family=config.image_family,
        backend=config.backend,
        instance_type=instance_type or config.instance_type,
        source=source,
    )


#: Import names that differ from the distribution's (for the image packages that need one).
_IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL"}


def unavailable(image_family: str) -> dict[str, str]:
    """Import name -> requirement, for what the image ships but this machine cannot stand in
    for (not in this venv: PyPI's torchvision 0.28.0 for torch 2.13 fails to load its operators
    beside the CPU build, torchaudio has no release for torch 2.13; accelerate is not
    installed)."""
    out = {}
    for line in family(image_family).ships:
        req = Requirement(line)
        try:
            md.distribution(req.name)
        except md.PackageNotFoundError:
            name = req.name.lower()
            out[_IMPORT_NAMES.get(name, name.replace("-", "_"))] = line
    return out


def project_imports(project: Path) -> dict[str, str]:
    """Top-level module -> the first file that imports it, over the project's .py files."""
    found: dict[str, str] = {}
    for path in sorted(Path(project).rglob("*.py")):
        rel = path.relative_to(project)
        if any(part in EXCLUDE_DIRS or part.startswith(".") for part in rel.parts):
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError:
            continue  # the task check reports it with the real traceback
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], rel.as_posix())
    return found


def refuse_unrehearsable(project: Path | None, image_family: str) -> None:
    """One line, before anything runs, when the project imports an image package this
    rehearsal cannot provide (the job on AWS has it)."""
    if project is None:
        return
    missing = unavailable(image_family)
    used = project_imports(project)
    for module, line in missing.items():
        if module in used:
            raise RehearsalError(
                f"{project}/{used[module]} imports {module}: the {image_family} image ships "
                f"{line}, which this rehearsal cannot provide (not installed here: no build of "
                f"it loads beside this machine's CPU torch {md.version('torch')}): rehearse "
                "without that import, or run the job on AWS"
            )
