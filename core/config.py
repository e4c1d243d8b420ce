"""The stack's one typed configuration object: loading (cdk.json + `-c`) and derived values.

Config flows one way: cdk.json context (and `-c` overrides) -> `TrainingConfig.from_context`
-> constructs. The fields, their bounds, choices and defaults, and every rule are the schema's
(core/schema/stack.py); this module adds how the values arrive and what follows from them. No
aws_cdk import, so the operator CLI applies the same rules to its overrides.

Where the values come from (later wins):

1. the schema's defaults;
2. cdk.json `context.training` (an object whose keys are the field names);
3. CLI overrides, one per field: `npx cdk synth -c training.instance_count=4`
   (`-c training.hyperparameters.epochs=5` / `-c training.tags.team=ml` set one entry of a map;
   `-c training.hyperparameters='{"epochs": "5"}'` replaces the whole map).

Values given on the command line arrive as strings and are converted to the field's type
(`true`/`false`, integers, `off`/`none` for optional fields). Unknown keys are errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.image_contents import family_for_framework

# The rules and facts the operator CLI's preflight and the tests use as core.config.<name>.
from core.instance_types import (  # noqa: F401
    SMDDP_INSTANCE_TYPES,
    gpus_per_instance,
    instance_family,
    pytorch_training_images,
)
from core.schema.errors import ConfigError
from core.schema.hyperparameters import hyperparameter_rule  # noqa: F401
from core.schema.limits import (  # noqa: F401
    CONTEXT_KEY,
    JOB_NAME_PREFIX_MAX_LEN,
    JOB_NAME_SUFFIX_MAX_LEN,
    MAX_INSTANCE_COUNT,
    MAX_USER_HYPERPARAMETERS,
)
from core.schema.rules import _version_tuple, resolve_backend, validate_schedule  # noqa: F401
from core.schema.stack import (  # noqa: F401
    SETTING_NAMES,
    StackSettings,
    model_package_group_name,
    unknown_setting,
    validate_instance_count,
    validate_instance_type,
    validate_job_name_prefix,
    validate_keep_alive,
    validate_spot,
)
from core.schema.task_rules import validate_hyperparameter, validate_hyperparameters  # noqa: F401
from training import contract

# --- S3 layout shared by roles, workflow and operator --------------------------------------------
#: Artifacts bucket: SageMaker model output (OutputDataConfig) and checkpoints (CheckpointConfig).
OUTPUT_PREFIX = "models/"  # = S3OutputPath of infra/workflow_definition.py
CHECKPOINT_PREFIX = "checkpoints/"


class TrainingConfig(StackSettings):
    """Validated stack configuration (see cdk.json `context.training` for the defaults).

    Constructing one validates every field and resolves `auto` values, so an instance is always
    valid: backend, framework_version and py_version hold concrete values afterwards.
    """

    # --- derived values ---
    @property
    def gpus_per_instance(self) -> int:
        return gpus_per_instance(self.instance_type)

    @property
    def processor(self) -> str:
        """cpu | gpu: which DLC flavour the instance needs."""
        return "gpu" if self.gpus_per_instance else "cpu"

    @property
    def python_version(self) -> str:
        """The image's Python as `3.11` (py_version is `py311`)."""
        return f"{self.py_version[2]}.{self.py_version[3:]}"

    @property
    def image_family(self) -> str:
        """A key of core.image_contents.FAMILIES: the SMDDP-era DLC (<= 2.3.0) or a current one."""
        return family_for_framework(self.framework_version)

    @property
    def launcher_flag(self) -> str | None:
        """The sagemaker_* hyperparameter that selects the launcher (None for backend none)."""
        return contract.LAUNCHER_FLAGS.get(self.backend)

    @property
    def train_prefix(self) -> str:
        """Key prefix of the default `train` channel in the data bucket."""
        return f"{contract.TRAIN_CHANNEL}/"

    @property
    def validation_prefix(self) -> str:
        return f"{contract.VALIDATION_CHANNEL}/"

    @property
    def model_package_group_name(self) -> str:
        """The stack's model package group (validated: SageMaker allows 63 characters)."""
        return model_package_group_name(self.stack_name)

    @property
    def retrain_marker_key(self) -> str:
        """The data-bucket key whose upload starts a run (retrain_on_new_data)."""
        return f"{self.train_prefix}{self.retrain_marker}"

    # --- loading ---
    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TrainingConfig:
        """Build from a whole CDK context (cdk.json context + `-c` overrides)."""
        return cls(**merge_context(context))


_MAP_FIELDS = ("hyperparameters", "tags", "channels")


def merge_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """cdk.json `training` object + `training.<key>` overrides -> TrainingConfig keyword args."""
    base = context.get(CONTEXT_KEY, {})
    if isinstance(base, str):
        try:
            base = json.loads(base)
        except json.JSONDecodeError:
            base = None
    if not isinstance(base, Mapping):
        raise ConfigError(CONTEXT_KEY, base, "expected an object of training settings")
    merged: dict[str, Any] = {}
    for key, value in base.items():
        if key not in SETTING_NAMES:
            raise unknown_setting(f"{CONTEXT_KEY}.{key}", value)
        merged[key] = dict(value) if key in _MAP_FIELDS and isinstance(value, Mapping) else value
    prefix = CONTEXT_KEY + "."
    for key in sorted(context):
        value = context[key]
        if key in SETTING_NAMES:
            raise ConfigError(key, value, f"settings go under {prefix}: use -c {prefix}{key}=...")
        if not key.startswith(prefix):
            continue
        name, _, entry = key[len(prefix) :].partition(".")
        if name not in SETTING_NAMES or (entry and name not in _MAP_FIELDS):
            raise unknown_setting(key, value)
        if entry:
            current = merged.get(name, {})
            merged[name] = {**(current if isinstance(current, Mapping) else {}), entry: value}
        elif name in _MAP_FIELDS and isinstance(value, str):
            try:
                merged[name] = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(key, value, "expected a JSON object") from None
        else:
            merged[name] = value
    return merged


def load_cdk_json_context(path: str | Path) -> dict[str, Any]:
    """The `context` object of a cdk.json (what the CLI would pass), for plain `python app.py`."""
    return dict(json.loads(Path(path).read_text()).get("context", {}))
