"""The suite's time knob: bounds scale with it, failed waits say what they saw."""

from __future__ import annotations

import pytest

from tests import timing


def test_bounds_scale_with_the_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(timing.SCALE_ENV, raising=False)
    assert timing.bound(10) == 10 * timing.DEFAULT_SCALE
    monkeypatch.setenv(timing.SCALE_ENV, "0.5")
    assert timing.bound(10) == 5
    for bad in ("fast", "0", "-1"):
        monkeypatch.setenv(timing.SCALE_ENV, bad)
        with pytest.raises(ValueError, match=timing.SCALE_ENV):
            timing.scale()


def test_wait_until_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, {"step": 10}])
    assert timing.wait_until(lambda: next(values), 1, "a value", interval_s=0) == {"step": 10}


def test_wait_until_fails_with_what_it_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(timing.SCALE_ENV, "0.001")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)a checkpoint: not reached.*InProgress"):
        timing.wait_until(lambda: None, 1, "a checkpoint", seen=lambda: "InProgress", interval_s=0)


@pytest.mark.timeout(7)
def test_timeout_marks_are_scaled(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("timeout").args == (timing.bound(7),)


def test_unmarked_tests_get_the_scaled_default(request: pytest.FixtureRequest) -> None:
    expected = (timing.bound(timing.DEFAULT_TEST_TIMEOUT_S),)
    assert request.node.get_closest_marker("timeout").args == expected
