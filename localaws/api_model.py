"""Validate an AWS request against botocore's published service model, constraints included.

botocore's own validator checks types, required and unknown keys but not enums, patterns,
lengths or numeric ranges; AWS rejects requests that break those, so this checks them too
from the shape metadata. Used by the emulator for every request it accepts and by tests for
every request the stack and the CLI send.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.validate import ParamValidator


class RequestInvalid(ValueError):
    """A request AWS would reject; the message lists every problem with its path."""


@functools.cache
def operation_model(service: str, operation: str) -> OperationModel:
    return botocore.session.get_session().get_service_model(service).operation_model(operation)


def validate_request(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise RequestInvalid naming each violation (path: problem); return None if valid."""
    shape = operation_model(service, operation).input_shape
    problems: list[str] = []
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems.append(report.generate_report())
    _check_constraints(params, shape, operation, problems)
    if problems:
        raise RequestInvalid(f"{service}.{operation}: " + "; ".join(problems))


def _check_constraints(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                _check_constraints(item, shape.members[key], f"{path}.{key}", problems)
        return
    if isinstance(shape, ListShape) and isinstance(value, list):
        _check_size(len(value), meta, path, "items", problems)
        for i, item in enumerate(value):
            _check_constraints(item, shape.member, f"{path}[{i}]", problems)
        return
    if isinstance(shape, MapShape) and isinstance(value, dict):
        _check_size(len(value), meta, path, "entries", problems)
        for key, item in value.items():
            _check_constraints(key, shape.key, f"{path} key {key!r}", problems)
            _check_constraints(item, shape.value, f"{path}[{key!r}]", problems)
        return
    if isinstance(value, str):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}={value!r} is not one of {', '.join(shape.enum)}")
        _check_size(len(value), meta, path, "characters", problems)
        pattern = _compiled(meta.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):  # AWS matches the whole value
            problems.append(f"{path}={value!r} does not match pattern {pattern.pattern}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path}={value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path}={value} is above the maximum {meta['max']}")


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """The shape's pattern, or None where it uses syntax Python lacks (e.g. \\p{...})."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _check_size(size: int, meta: dict[str, Any], path: str, unit: str, problems: list[str]) -> None:
    if "min" in meta and size < meta["min"]:
        problems.append(f"{path} has {size} {unit}, fewer than the minimum {meta['min']}")
    if "max" in meta and size > meta["max"]:
        problems.append(f"{path} has {size} {unit}, more than the maximum {meta['max']}")
