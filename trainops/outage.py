"""A long poll (`trainops watch`) outlasts a transient network error or throttling: one line when
contact is lost, one when it is back, and the poll goes on; past OUTAGE_LIMIT_S the error stands.

Each call has already been retried by the SDK (trainops.aws: RETRY_MODE, MAX_ATTEMPTS); this is
for outages longer than those retries, which a run of hours will meet.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from trainops.aws_errors import NETWORK_ERRORS, is_throttling

#: How long a poll keeps trying through an outage before it gives up with the error.
OUTAGE_LIMIT_S = 600.0
T = TypeVar("T")


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Outage:
    """`poll(call)`: the call's result, or None while AWS cannot be reached (said once)."""

    def __init__(
        self,
        note: Callable[[str], None] = to_stderr,
        *,
        limit_s: float = OUTAGE_LIMIT_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.note = note
        self.limit_s = limit_s
        self.clock = clock
        self.since: float | None = None

    def poll(self, call: Callable[[], T]) -> T | None:
        try:
            result = call()
        except (*NETWORK_ERRORS, ClientError) as exc:
            if isinstance(exc, ClientError) and not is_throttling(exc):
                raise
            now = self.clock()
            if self.since is None:
                self.since = now
                self.note(
                    f"lost contact with AWS ({exc}); still watching, for up to {self.limit_s:.0f} s"
                )
            elif now - self.since > self.limit_s:
                raise
            return None
        if self.since is not None:
            self.note(f"contact with AWS restored after {self.clock() - self.since:.0f} s")
            self.since = None
        return result
