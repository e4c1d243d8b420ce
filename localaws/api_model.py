"""Validate a request dict against botocore's model of an AWS API, constraints included.

`botocore.validate` checks types, required members and unknown members, but not the shape
metadata that AWS enforces server side: enums, patterns, string lengths, list/map sizes and
numeric ranges. `validate_request` checks both, so a test can prove that a request the stack
would send (rendered from a state machine definition, or built by the operator CLI) is one the
real API accepts, without credentials or a network:

    validate_request("sagemaker", "CreateTrainingJob", params)   # raises RequestInvalid

Every problem is reported on its own line with a path into the request, e.g.
`CreateTrainingJob.ResourceConfig.InstanceType: 'ml.x' is not one of the enum values`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.model import Shape
from botocore.validate import ParamValidator

try:  # AWS patterns use Java classes such as \p{L}; the `regex` module understands them.
    import regex as _regex
except ImportError:  # pragma: no cover - `regex` is pinned in requirements-dev
    import re as _regex  # type: ignore[no-redef]


class RequestInvalid(ValueError):
    """The request breaks the service model; `problems` lists one path-qualified line each."""

    def __init__(self, operation: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{operation}: {len(problems)} problem(s):\n" + "\n".join(problems))


@functools.cache
def _service_model(service: str):
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _compiled(pattern: str):
    """AWS model patterns are implicitly anchored; None when the pattern cannot be compiled."""
    try:
        return _regex.compile(pattern)
    except Exception:  # a handful of model patterns are not valid in any Python engine
        return None


#: Patterns seen during this process that could not be compiled (so were not checked).
UNCHECKED_PATTERNS: set[str] = set()


def operation_input_shape(service: str, operation: str) -> Shape:
    return _service_model(service).operation_model(operation).input_shape


def _length(value: Any) -> int | None:
    if isinstance(value, (str, list, dict)):
        return len(value)
    return None


def _constraint_problems(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """Metadata constraints (min/max/pattern/enum) of `shape` applied to `value`, recursively."""
    meta = shape.metadata
    type_name = shape.type_name
    if type_name == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                yield from _constraint_problems(member, value[name], f"{path}.{name}")
    elif type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _constraint_problems(shape.member, item, f"{path}[{index}]")
    elif type_name == "map" and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _constraint_problems(shape.key, key, f"{path} key {key!r}")
            yield from _constraint_problems(shape.value, item, f"{path}[{key!r}]")

    if type_name in ("integer", "long", "float", "double") and isinstance(value, (int, float)):
        if isinstance(value, bool):
            return  # botocore's own validation reports the type
        if "min" in meta and value < meta["min"]:
            yield f"{path}: {value!r} is below the minimum {meta['min']}"
        if "max" in meta and value > meta["max"]:
            yield f"{path}: {value!r} is above the maximum {meta['max']}"
        return

    length = _length(value)
    if length is not None and type_name in ("string", "list", "map", "blob"):
        unit = "characters" if isinstance(value, str) else "entries"
        if "min" in meta and length < meta["min"]:
            yield f"{path}: has {length} {unit}, fewer than the minimum {meta['min']}"
        if "max" in meta and length > meta["max"]:
            yield f"{path}: has {length} {unit}, more than the maximum {meta['max']}"
    if type_name == "string" and isinstance(value, str):
        enum = meta.get("enum")
        if enum and value not in enum:
            yield f"{path}: {value!r} is not one of the enum values of {shape.name}"
        pattern = meta.get("pattern")
        if pattern:
            compiled = _compiled(pattern)
            if compiled is None:
                UNCHECKED_PATTERNS.add(pattern)
            elif compiled.fullmatch(value) is None:
                yield f"{path}: {value!r} does not match the pattern {pattern!r}"


def request_problems(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """All problems of `params` for `service`.`operation`; [] when the API would accept it."""
    return _shape_problems(operation, operation_input_shape(service, operation), params)


def validate_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Raise `RequestInvalid` unless `params` satisfies the service model of the operation.

    Checks types, required and unknown members (botocore's validator) and, from the shape
    metadata, enums, patterns (anchored, Java-style classes via `regex`), string lengths,
    list/map sizes and numeric ranges, at every depth.
    """
    try:
        problems = request_problems(service, operation, params)
    except ParamValidationError as exc:  # pragma: no cover - validate() reports, not raises
        problems = [f"{operation}: {exc}"]
    if problems:
        raise RequestInvalid(operation, problems)


def response_problems(service: str, operation: str, body: Mapping[str, Any]) -> list[str]:
    """All problems of a response (as boto3 parsed it) against the operation's output shape:
    what an emulator extension must return so that code written against AWS holds."""
    shape = _service_model(service).operation_model(operation).output_shape
    body = {k: v for k, v in body.items() if k != "ResponseMetadata"}
    return _shape_problems(operation, shape, body)


def _shape_problems(operation: str, shape: Shape, value: Mapping[str, Any]) -> list[str]:
    """botocore's validator (types, required and unknown members), then the constraints it
    leaves out (enums, patterns, lengths, sizes, ranges), one line each."""
    problems: list[str] = []
    report = ParamValidator().validate(value, shape)
    if report.has_errors():
        text = report.generate_report()
        problems += [f"{operation}: {line.strip()}" for line in text.splitlines() if line.strip()]
    problems += list(_constraint_problems(shape, value, operation))
    return problems
