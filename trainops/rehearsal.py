"""Which job `local-train` rehearses: the deployment's image family and backend.

The configuration is the deployment's own, read as `cdk deploy` and `trainops start` read it:
cdk.json's context, `-c KEY=VALUE` overrides on top (as `npx cdk deploy -c ...`), and
`--instance-type` checked with the rules `start` applies to a run's input. So the default
cdk.json (ml.p4d.24xlarge, backend auto) rehearses the SMDDP image family (PyTorch 2.3.0,
Lightning 2.2.5) with the smddp process group, and `-c training.backend=torchrun` the current
family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.config import ConfigError, TrainingConfig, load_cdk_json_context
from infra.execution_input import ExecutionInputError
from infra.image_contents import family
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


def _context_overrides(items: list[str]) -> dict[str, str]:
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
    overrides = _context_overrides(context or [])
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
