"""The suite's one time knob, and the only way a test waits.

No test decides by how long something took on the machine it runs on: it waits for an event
(a status, a file, a log line) and gives up only past a generous bound. Every bound is a base
figure (what an idle 2-core machine needs, with room) times `TEST_TIME_SCALE`, so a loaded CI
machine or a slow laptop turns one knob instead of editing waits. The default is generous
because a bound costs nothing while the event arrives; it only delays reporting a real hang.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import pytest

SCALE_ENV = "TEST_TIME_SCALE"
DEFAULT_SCALE = 3.0
#: Base pytest-timeout for a test without a `timeout` mark (scaled like every other bound).
DEFAULT_TEST_TIMEOUT_S = 120.0

T = TypeVar("T")


def scale() -> float:
    """The factor every bound is multiplied by (env TEST_TIME_SCALE, default 3)."""
    raw = os.environ.get(SCALE_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_SCALE
    except ValueError as exc:
        raise ValueError(f"{SCALE_ENV}={raw!r} is not a number") from exc
    if value <= 0:
        raise ValueError(f"{SCALE_ENV}={raw!r} must be > 0")
    return value


def bound(seconds: float) -> float:
    """`seconds` (a base figure for an idle machine) scaled by the knob."""
    return seconds * scale()


def wait_until(
    predicate: Callable[[], T | None],
    seconds: float,
    what: str,
    *,
    seen: Callable[[], object] | None = None,
    interval_s: float = 0.2,
) -> T:
    """Poll `predicate` until it returns something truthy and return that; past
    `bound(seconds)` fail naming `what` and showing `seen()` (last status, log tail...)."""
    limit = bound(seconds)
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = seen() if seen is not None else ""
            pytest.fail(f"{what}: not reached within {limit:.0f} s\n{shown}", pytrace=False)
        time.sleep(interval_s)


class _Job(Protocol):
    def wait(self, timeout_s: float | None = None) -> list[int]: ...
    def log_lines(self) -> list[str]: ...


def finish(job: _Job, seconds: float, what: str = "job") -> list[int]:
    """`job.wait()` within `bound(seconds)`; past it the job is stopped and the test fails with
    the job's log tail instead of asserting on the exit codes of a job that was cut short."""
    limit = bound(seconds)
    started = time.monotonic()
    codes = job.wait(limit)
    if time.monotonic() - started > limit:
        tail = "\n".join(job.log_lines()[-60:])
        pytest.fail(f"{what}: still running after {limit:.0f} s (codes {codes})\n{tail}")
    return codes


def scale_timeout_marks(items: list[pytest.Item]) -> None:
    """Give every test a pytest-timeout mark scaled by the knob (unmarked tests get the
    default base), so the hang guard grows with the waits inside the test."""
    for item in items:
        mark = item.get_closest_marker("timeout")
        base = mark.args[0] if mark is not None and mark.args else None
        if mark is not None and "timeout" in mark.kwargs:
            base = mark.kwargs["timeout"]
        if base is None:
            base = DEFAULT_TEST_TIMEOUT_S
        kwargs = {k: v for k, v in (mark.kwargs if mark else {}).items() if k != "timeout"}
        scaled = bound(float(base)) if base else 0
        item.add_marker(pytest.mark.timeout(scaled, **kwargs), append=False)
