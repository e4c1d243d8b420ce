"""The rules of the cluster and stack settings that a bound or a choice cannot say: instance
types from botocore's model, the backend and image matrix, spot limits, cron syntax, time zones,
the network, tags. Each raises ConfigError with one line: key, value, what is allowed.

core/schema/stack.py attaches them to the fields they check; the operator CLI calls the same
functions for one run's overrides.
"""

from __future__ import annotations

import ipaddress
import math
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from core.instance_types import (
    _NEURON_FAMILIES,
    MIN_FRAMEWORK_VERSION,
    SMDDP_FRAMEWORK_RANGE,
    SMDDP_INSTANCE_TYPES,
    gpus_per_instance,
    instance_family,
    pytorch_training_images,
    training_instance_types,
)
from core.schema.errors import ConfigError
from core.schema.limits import MAX_RUNTIME_S, MAX_TAGS, SUBNET_PREFIX

_fail = ConfigError


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def known_instance_type(value: str) -> str:
    """An ml.* type botocore's model lists for training, not a Neuron one (no Neuron DLC)."""
    if value not in training_instance_types():
        raise _fail(
            "instance_type", value, "not a SageMaker training instance type (botocore's API model)"
        )
    if instance_family(value) in _NEURON_FAMILIES:
        raise _fail(
            "instance_type", value, "Trainium/Inferentia need the Neuron DLC; use a GPU or CPU type"
        )
    return value


def resolve_backend(backend: str, instance_type: str, instance_count: int) -> str:
    """smddp | torchrun | none; `auto` = smddp on SMDDP instances, none for one single-device
    instance, torchrun otherwise. Raises for combinations that cannot run."""
    devices = gpus_per_instance(instance_type)
    if backend == "auto":
        if instance_type in SMDDP_INSTANCE_TYPES:
            return "smddp"
        return "none" if instance_count == 1 and devices <= 1 else "torchrun"
    if backend == "smddp" and instance_type not in SMDDP_INSTANCE_TYPES:
        hint = " (SMDDP does not support P5: use backend=torchrun)" if "p5" in instance_type else ""
        raise _fail(
            "backend",
            backend,
            f"smddp runs only on {', '.join(SMDDP_INSTANCE_TYPES)}, not {instance_type}{hint}",
        )
    if backend == "none" and instance_count > 1:
        raise _fail(
            "backend", backend, "none runs one node only; use torchrun for instance_count > 1"
        )
    return backend


def validate_framework(framework_version: Any, py_version: Any, backend: str) -> tuple[str, str]:
    """Resolve `auto` and check (framework_version, py_version) against the published DLCs and,
    for smddp, the SMDDP matrix (PyTorch DLC 2.0.1-2.3.0)."""
    images = pytorch_training_images()
    versions = images["versions"]
    low, high = SMDDP_FRAMEWORK_RANGE
    if framework_version == "auto":
        newest = max(versions, key=_version_tuple)
        framework_version = high if backend == "smddp" else newest
    framework_version = images["version_aliases"].get(framework_version, framework_version)
    supported = sorted(
        (v for v in versions if _version_tuple(v) >= _version_tuple(MIN_FRAMEWORK_VERSION)),
        key=_version_tuple,
    )
    if framework_version not in supported:
        raise _fail(
            "framework_version",
            framework_version,
            f"expected a PyTorch training DLC version from {supported[0]} to {supported[-1]}"
            " (sagemaker-core image data) or auto",
        )
    if backend == "smddp" and not (
        _version_tuple(low) <= _version_tuple(framework_version) <= _version_tuple(high)
    ):
        raise _fail(
            "framework_version",
            framework_version,
            f"SMDDP ships only in PyTorch DLCs {low} to {high}; use backend=torchrun for newer",
        )
    py_versions = versions[framework_version]["py_versions"]
    if py_version == "auto":
        py_version = max(py_versions, key=lambda p: int(p[2:]))
    if py_version not in py_versions:
        raise _fail(
            "py_version",
            py_version,
            f"PyTorch {framework_version} DLCs exist for {', '.join(py_versions)} only",
        )
    return framework_version, py_version


def check_spot(spot: bool, max_runtime: int, max_wait: int, checkpointing: bool = True) -> None:
    """MaxWaitTimeInSeconds exists only for spot, and then exceeds the runtime; a spot job
    resumes from checkpoints, so it needs them."""
    if spot:
        if not max_runtime < max_wait <= MAX_RUNTIME_S:
            raise _fail(
                "max_wait_s",
                max_wait,
                f"with spot=true expected max_runtime_s ({max_runtime}) < max_wait_s"
                f" <= {MAX_RUNTIME_S}",
            )
        if not checkpointing:
            raise _fail("checkpointing", False, "spot=true needs checkpointing=true to resume")
    elif max_wait != 0:
        raise _fail("max_wait_s", max_wait, "only with spot=true; expected 0 without spot")


def check_keep_alive(keep_alive_s: int, spot: bool) -> None:
    if keep_alive_s and spot:
        raise _fail("keep_alive_s", keep_alive_s, "warm pools cannot be used with spot; expected 0")


_MON = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DOW = "SUN|MON|TUE|WED|THU|FRI|SAT"


def _cron_field(atom: str, extra: str = "") -> re.Pattern[str]:
    item = rf"(?:\*|{atom}(?:-{atom})?)(?:/\d+)?{extra}"
    return re.compile(rf"{item}(?:,{item})*")


_CRON_FIELDS = (
    ("minutes", _cron_field(r"(?:[0-5]?\d)")),
    ("hours", _cron_field(r"(?:[01]?\d|2[0-3])")),
    (
        "day-of-month",
        re.compile(
            r"\?|L|LW|(?:[1-9]|[12]\d|3[01])W|" + _cron_field(r"(?:[1-9]|[12]\d|3[01])").pattern
        ),
    ),
    ("month", _cron_field(rf"(?:[1-9]|1[0-2]|{_MON})")),
    (
        "day-of-week",
        re.compile(r"\?|[1-7]L|[1-7]#[1-5]|" + _cron_field(rf"(?:[1-7]|{_DOW})").pattern),
    ),
    ("year", _cron_field(r"(?:19[7-9]\d|2[01]\d\d)")),
)


def validate_schedule(value: Any) -> str | None:
    """`cron(m h dom mon dow y)` (EventBridge Scheduler syntax) or off/none -> None."""
    key = "schedule_cron"
    if value is None or (isinstance(value, str) and value.lower() in ("off", "none", "")):
        return None
    allowed = "expected cron(minutes hours day-of-month month day-of-week year) or off"
    match = re.fullmatch(r"cron\((.*)\)", value) if isinstance(value, str) else None
    if not match:
        raise _fail(key, value, allowed)
    parts = match.group(1).split()
    if len(parts) != 6:
        raise _fail(key, value, f"{allowed}; got {len(parts)} fields, need 6")
    for (name, pattern), part in zip(_CRON_FIELDS, parts, strict=True):
        if not pattern.fullmatch(part.upper()):
            raise _fail(key, value, f"{name} field {part!r} is not valid cron syntax")
    if (parts[2] == "?") == (parts[4] == "?"):
        raise _fail(key, value, "exactly one of day-of-month and day-of-week must be ?")
    return value


def known_timezone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise _fail("schedule_timezone", value, "expected an IANA time zone like Europe/Berlin")
    return value


def validate_network(vpc_cidr: str, max_azs: int) -> str:
    """A private /16 to the widest prefix that still leaves a /SUBNET_PREFIX per AZ."""
    widest = SUBNET_PREFIX - math.ceil(math.log2(max_azs))
    allowed = f"expected a private IPv4 network /16 to /{widest} (a /{SUBNET_PREFIX} per AZ)"
    try:
        network = ipaddress.IPv4Network(vpc_cidr, strict=True)
    except (ValueError, TypeError):
        raise _fail("vpc_cidr", vpc_cidr, allowed) from None
    if not 16 <= network.prefixlen <= widest or not network.is_private:
        raise _fail("vpc_cidr", vpc_cidr, allowed)
    return str(network)


def validate_tags(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or len(value) > MAX_TAGS:
        raise _fail("tags", value, f"expected an object of at most {MAX_TAGS} string tags")
    pattern = re.compile(r"[\w .:/=+\-@]*")
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 128 or not pattern.fullmatch(k):
            raise _fail("tags", k, "expected tag keys of 1-128 letters, digits, spaces, _.:/=+-@")
        if k.lower().startswith("aws:"):
            raise _fail(f"tags.{k}", v, "tag keys starting with aws: are reserved by AWS")
        if not isinstance(v, str) or len(v) > 256 or not pattern.fullmatch(v):
            raise _fail(f"tags.{k}", v, "expected a string of 0-256 letters, digits, _.:/=+-@")
    return dict(value)
