"""One run's input checked before anything is sent: the CLI's `start` and `trainops.sdk`.

The schema's rules synth applies to cdk.json (core/schema), applied to the overrides of one run
against the deployed stack's defaults (its RunDefaults output).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core import outputs as output_names
from core.config import TrainingConfig, load_cdk_json_context
from core.execution_input import ExecutionInputError
from core.schema import rules, stack, task_rules
from core.schema.errors import ConfigError
from training import contract
from trainops.aws import StackOutputs

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


@dataclass(frozen=True)
class RunDefaults:
    """What a run gets when the input says nothing: the deployed stack's configuration."""

    backend: str
    instance_type: str
    instance_count: int
    spot: bool
    max_runtime_s: int
    max_wait_s: int
    hyperparameters: dict[str, str]

    @classmethod
    def of_config(cls, config: TrainingConfig) -> RunDefaults:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    @classmethod
    def of_stack(cls, outputs: StackOutputs) -> RunDefaults:
        """From the stack's RunDefaults output; cdk.json for a stack deployed without it."""
        raw = outputs.values.get(output_names.RUN_DEFAULTS)
        return cls(**json.loads(raw)) if raw else cls.of_config(local_config())


def local_config(path: Path = CDK_JSON) -> TrainingConfig:
    """The configuration in this checkout's cdk.json."""
    return TrainingConfig.from_context(load_cdk_json_context(path))


def check_with_synth_rules(
    data: dict[str, Any],
    config: TrainingConfig | RunDefaults | None,
    *,
    hp_label: str = "--hp",
) -> None:
    """The rules synth applies to cdk.json, applied to one run's input (one line each).

    Without `config` only the checks that need no stack run; with it (the deployed stack's
    defaults) the rules that depend on it too: SMDDP instance types, spot limits. `hp_label`
    is how the caller's user wrote a hyperparameter (`--hp` on the CLI).
    """
    try:
        for key, value in data.get("hyperparameters", {}).items():
            if key not in contract.HYPERPARAMETERS and not contract.is_override_key(key):
                known = ", ".join(sorted(contract.HYPERPARAMETERS))
                raise ExecutionInputError(
                    f"{hp_label} {key}={value}: the training script has no hyperparameter {key!r}; "
                    f"known: {known}, or a config override like model.init_args.<name>"
                )
            task_rules.validate_hyperparameter(key, value)
        for key in ("instance_type", "instance_count"):
            if key in data:
                stack.setting(key, data[key])
        if config is None:
            return
        instance_type = data.get("instance_type", config.instance_type)
        count = data.get("instance_count", config.instance_count)
        if config.backend == "smddp":
            rules.resolve_backend("smddp", instance_type, count)
        task_rules.validate_sharding(
            {**config.hyperparameters, **data.get("hyperparameters", {})}, int(count)
        )
        spot = data.get("spot", config.spot)
        max_wait = config.max_wait_s or (config.max_runtime_s * 2 if spot else 0)
        stack.validate_spot(spot, config.max_runtime_s, max_wait)
    except ConfigError as exc:
        raise ExecutionInputError(str(exc)) from None
