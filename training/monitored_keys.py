"""A checkpoint or early-stopping callback that monitors a metric the module never logs fails
with one line naming the callback, its config key, the missing name and the names logged.

Which names a module logs is known only once its first training epoch has run with its
validation (a name may be logged in `training_step`, `validation_step` or an epoch-end hook).
Lightning checks at that moment too, but its errors name neither the config key nor, for
`ModelCheckpoint` without a validation loop, fail at all: it warns every epoch and never saves.
So this callback rewrites Lightning's error into the line (`on_exception`), and at the second
epoch's start fails a monitor Lightning let pass. `EarlyStopping(strict=False)` is left alone:
its user asked for a missing metric to be tolerated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.sm_env import ConfigError

#: Names ModelCheckpoint accepts besides the logged ones.
_COUNTERS = ("epoch", "step")


class MissingMonitorError(ConfigError):
    """A callback monitors a metric the module does not log."""


@dataclass(frozen=True)
class Monitor:
    """One callback's monitored name and where the user set it."""

    key: str  # config key, e.g. trainer.callbacks[0].init_args.monitor
    callback: str  # its class path
    name: str  # the monitored metric
    counters_count: bool  # whether epoch/step may be monitored (ModelCheckpoint)


def monitors(callbacks: list[Any], flavour_pkg: Any) -> list[Monitor]:
    """The monitors of the config's `trainer.callbacks` (in the config's order)."""
    checkpoint, early = flavour_pkg.callbacks.ModelCheckpoint, flavour_pkg.callbacks.EarlyStopping
    out = []
    for index, cb in enumerate(callbacks):
        name = getattr(cb, "monitor", None)
        if not isinstance(name, str) or not isinstance(cb, (checkpoint, early)):
            continue
        if isinstance(cb, early) and not getattr(cb, "strict", True):
            continue
        cls = type(cb)
        out.append(
            Monitor(
                key=f"trainer.callbacks[{index}].init_args.monitor",
                callback=f"{cls.__module__}.{cls.__qualname__}",
                name=name,
                counters_count=isinstance(cb, checkpoint),
            )
        )
    return out


def missing_line(found: list[Monitor], logged: list[str], config: str) -> str | None:
    """One line for the first monitor whose name is not logged, else None."""
    for m in found:
        if m.name in logged or (m.counters_count and m.name in _COUNTERS):
            continue
        names = ", ".join(sorted(logged)) or "nothing"
        return (
            f"{m.key}={m.name!r} in {config} ({m.callback}) monitors a metric the module never "
            f"logs; it logs: {names}: monitor one of those, or log {m.name!r} with self.log"
        )
    return None


class _MonitoredKeys:
    """Fails a monitor the module never logs with one line (see the module's docstring)."""

    def __init__(self, found: list[Monitor], config: str) -> None:
        self.found, self.config = found, config
        self._first_epoch: int | None = None

    def _logged(self, trainer: Any) -> list[str]:
        return list(trainer.callback_metrics)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self._first_epoch is None:
            self._first_epoch = trainer.current_epoch
            return
        line = missing_line(self.found, self._logged(trainer), self.config)
        if line:
            raise MissingMonitorError(line)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Lightning's own 'not available' / 'could not find the monitored key' errors."""
        if isinstance(exception, ConfigError):
            return
        text = str(exception)
        named = [m for m in self.found if f"{m.name!r}" in text or f"`{m.name}`" in text]
        line = missing_line(named, self._logged(trainer), self.config)
        if line:
            raise MissingMonitorError(line) from None


def monitor_guard(flavour: str, user_callbacks: list[Any], config: str) -> list[Any]:
    """The guard as a Callback of `flavour`'s package, or nothing when no callback monitors."""
    from training.lightning_flavour import callback_class, package

    found = monitors(user_callbacks, package(flavour))
    return [callback_class(flavour, _MonitoredKeys)(found, config)] if found else []
