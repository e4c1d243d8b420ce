"""The field types every setting is declared with, each carrying its rule in words.

A field's bounds and choices are pydantic constraints (so the JSON schemas and the state
machine's checks are generated from them); `Allowed` holds what the one-line error says when a
value breaks them (core/schema/errors.py), and `Glob` a string rule Step Functions can check too.
Values from `-c` arrive as strings: integers and flags accept their text form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field


@dataclass(frozen=True)
class Allowed:
    """What a field allows, in the words of its one-line error."""

    text: str


@dataclass(frozen=True)
class Glob:
    """A string rule as Step Functions' StringMatches writes it (`*` = any characters): it
    must match `match` and none of `exclude`."""

    match: str
    exclude: tuple[str, ...] = ()

    def regex(self) -> str:
        """The same rule as a regular expression (pydantic's check, the JSON schema)."""

        def body(glob: str) -> str:
            return ".*".join(re.escape(part) for part in glob.split("*"))

        excluded = "".join(f"(?!{body(g)}$)" for g in self.exclude)
        return f"^{excluded}{body(self.match)}$"

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.regex()[1:-1], value) is not None


def _int_from_text(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def _bool_from_text(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def integer(
    low: int | None = None,
    high: int | None = None,
    allowed: str = "",
    unit: str = "",
    *,
    from_text: bool = True,
) -> Any:
    """An integer from `low` to `high` (or its text, with `from_text`); `allowed` words the
    range if not the usual `expected an integer from low to high<unit>`."""
    text = allowed or f"expected an integer from {low} to {high}{unit}"
    number = Annotated[int, Field(ge=low, le=high, strict=True), Allowed(text)]
    return Annotated[number, BeforeValidator(_int_from_text)] if from_text else number


#: true/false, or their text in any case.
Flag = Annotated[bool, Field(strict=True), BeforeValidator(_bool_from_text)]


def choice(*values: str) -> Any:
    """One of `values` (a Literal: an `enum` in the JSON schema, string equality in the ASL)."""
    return Literal[values]  # type: ignore[valid-type]


def glob_text(glob: Glob, allowed: str) -> Any:
    """A string that matches `glob` (checked the same way in Python and in the state machine)."""
    return Annotated[str, Field(pattern=glob.regex(), strict=True), glob, Allowed(allowed)]


def optional_text(value: Any) -> Any:
    """`off`, `none` and "" mean not set (None) wherever a setting is optional."""
    if value is None or (isinstance(value, str) and value.lower() in ("", "off", "none")):
        return None
    return value
