"""pydantic's errors as the one line a user reads: the key, the value, what is allowed.

pydantic reports every broken rule in a multi-line ValidationError; the user gets the first
one, worded from the field's own rule (core/schema/fields.py), never pydantic's text.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from core.schema.fields import Allowed

#: pydantic error types that mean "not a number / not a flag" rather than "out of range".
_NOT_AN_INTEGER = ("int_type", "int_parsing", "int_from_float")
_NOT_A_FLAG = ("bool_type", "bool_parsing")


class ConfigError(ValueError):
    """A bad configuration value; the message is one line: key, value, what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:45] + "..." + shown[-10:]
        super().__init__(f"{key}={shown}: {allowed}")


def first_error(err: ValidationError) -> dict[str, Any]:
    """The error the user sees: an unknown key first (sorted), else the first field's."""
    errors = err.errors()
    unknown = sorted((e for e in errors if e["type"] == "extra_forbidden"), key=lambda e: e["loc"])
    return (unknown or errors)[0]


def raised(error: dict[str, Any]) -> Exception | None:
    """The exception a field's own rule raised (already one line), if it was one of ours."""
    found = (error.get("ctx") or {}).get("error")
    return found if isinstance(found, (ConfigError, ValueError)) else None


def allowed_text(model: type[BaseModel], name: str) -> str:
    """The `Allowed` words of a field, the outermost when nested ("" when it has none)."""
    field = model.model_fields.get(name)
    texts = [m.text for m in field.metadata if isinstance(m, Allowed)] if field else []
    return texts[-1] if texts else ""


def config_error(
    err: ValidationError, model: type[BaseModel], name: str | None = None
) -> ConfigError:
    """A ValidationError of a settings model (or of its field `name` alone) as one line."""
    error = first_error(err)
    own = raised(error)
    if isinstance(own, ConfigError):
        return own
    name = name or (str(error["loc"][0]) if error["loc"] else "")
    kind = error["type"]
    if kind in _NOT_AN_INTEGER:
        return ConfigError(name, error["input"], "expected an integer")
    if kind in _NOT_A_FLAG:
        return ConfigError(name, error["input"], "expected true or false")
    if kind == "literal_error":
        choices = get_args(model.model_fields[name].annotation)
        return ConfigError(name, error["input"], f"expected one of {', '.join(choices)}")
    if own is not None:
        return ConfigError(name, error["input"], str(own))
    # Never pydantic's own words: a field without `Allowed` points at its documented type.
    fallback = "expected the type docs/cdk-training.schema.json gives it"
    return ConfigError(name, error["input"], allowed_text(model, name) or fallback)
