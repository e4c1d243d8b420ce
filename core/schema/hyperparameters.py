"""The hyperparameters' schema, built from the runner's own table (training/contract.py).

The runner parses its hyperparameters without pydantic (the job images need not ship it), so
`contract.HYPERPARAMETERS` stays their one definition: kind, bound, choices, default and help.
This module reads that table for the JSON schemas and for synth's checks.
"""

from __future__ import annotations

from typing import Any

from core.schema.limits import (
    MAX_HYPERPARAMETER_LEN,
    MAX_USER_HYPERPARAMETERS,
    RESERVED_HYPERPARAMETER_PREFIX,
)
from training import contract

_KIND_WORDS = {"int": "integer", "float": "float"}
#: Text forms of a number, as the runner parses them (int() / float() of the string).
_PATTERNS = {"int": r"^\s*[-+]?\d+\s*$", "float": r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"}


def hyperparameter_rule(name: str) -> tuple[str, str, float] | None:
    """The numeric rule of a runner hyperparameter: (integer | float, >= | >, bound)."""
    spec = contract.HYPERPARAMETERS[name]
    if spec.kind not in _KIND_WORDS or spec.minimum is None:
        return None
    return _KIND_WORDS[spec.kind], ">" if spec.exclusive_minimum else ">=", float(spec.minimum)


def _property(name: str, spec: contract.Hyperparameter) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "description": f"{spec.help} ({spec.rule()})"}
    if spec.choices:
        out["enum"] = list(spec.choices)
    elif spec.kind in _PATTERNS:
        out["pattern"] = _PATTERNS[spec.kind]
    if spec.default is not None:
        out["default"] = spec.default
    return out


def json_schema(description: str) -> dict[str, Any]:
    """The hyperparameters object: the runner's keys described, any config override allowed,
    no sagemaker_* key, at most MAX_USER_HYPERPARAMETERS entries."""
    return {
        "type": "object",
        "description": description,
        "maxProperties": MAX_USER_HYPERPARAMETERS,
        "properties": {
            name: _property(name, spec)
            for name, spec in contract.HYPERPARAMETERS.items()
            if name != "config"
        },
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_HYPERPARAMETER_LEN,
            "not": {"pattern": f"^{RESERVED_HYPERPARAMETER_PREFIX}"},
        },
        "additionalProperties": {"type": "string", "maxLength": MAX_HYPERPARAMETER_LEN},
    }
