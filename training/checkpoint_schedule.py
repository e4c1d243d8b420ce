"""When a time-based checkpoint is due, decided identically on every rank at almost no cost.

A checkpoint is a collective (every rank enters `save_checkpoint`), so ranks must agree on the
step that writes it, but their clocks and speeds differ. Lightning's ModelCheckpoint with
`train_time_interval` broadcasts rank 0's decision after every step (a pickled object through
two collectives). Here ranks agree on *probe* steps instead: at a probe, rank 0's seconds since
the last checkpoint are broadcast, and from that one number every rank computes the same
answer: save now, or the next probe step (where the interval should run out at the measured
step time, never further than the steps already taken since the last save, so a slowdown is
caught within a factor of two). With steady steps that is a few broadcasts per interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TimeSchedule:
    """Probe-step bookkeeping for one interval (`interval_s` <= 0: never due)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.saved_at = clock()
        self.saved_step = 0
        self.next_probe = 1
        self.step_s: float | None = None  # the last measured seconds per step

    def reset(self, step: int) -> None:
        """A checkpoint was written at `step` (on every rank): the interval starts again."""
        self.saved_at = self.clock()
        self.saved_step = step
        ahead = 1
        if self.step_s:
            ahead = max(1, math.floor(self.interval_s / self.step_s))
        self.next_probe = step + ahead

    def due(self, step: int, broadcast: Callable[[float], float]) -> bool:
        """Whether the checkpoint is due at `step`; calls `broadcast` (a collective: rank 0's
        value on every rank) at probe steps only, which every rank reaches together."""
        if self.interval_s <= 0 or step < self.next_probe:
            return False
        elapsed = float(broadcast(self.clock() - self.saved_at))
        if elapsed >= self.interval_s:
            return True
        steps = max(step - self.saved_step, 1)
        self.step_s = elapsed / steps
        remaining = self.interval_s - elapsed
        ahead = math.ceil(remaining / self.step_s) if self.step_s > 0 else steps
        self.next_probe = step + max(1, min(ahead, steps))
        return False
