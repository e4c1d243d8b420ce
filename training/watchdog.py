"""Stall watchdog: a rank that stops making progress fails the job in minutes, with one line.

On SageMaker a job that hangs keeps billing until MaxRuntimeInSeconds: a data loader that
deadlocks, a rank waiting on a collective the others never reach, an endless loop. The
distributed timeout only fires at a collective, and only when a peer is dead. So every rank
runs a daemon thread that watches its own progress (a finished training step, validation batch
or checkpoint; `startup_timeout_s` until the first training step, `stall_timeout_s` after it).
When the limit passes, that rank (the first to notice, if several do) posts the stall on the
job's rendezvous store, every rank writes its Python stacks to the log (faulthandler), and the
job fails with one line naming each rank's host, phase and last step: the toolkit passes the
script's last error line to SageMaker's FailureReason.

Ranks share their state through the TCPStore at MASTER_ADDR:MASTER_PORT (torchrun's agent
store, or the one rank 0 hosts), through a client of their own opened once the process group
is up; without it (one process, or the store gone) a rank reports on itself alone. Nothing
here runs per step but `beat()`: two attribute writes.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from training import contract

log = logging.getLogger("training")

#: What a rank is doing, as the line names it. A rank stuck `WAITING_FOR_DATA` waits on nobody
#: else (its loader is stuck); one stuck in a step usually waits on a collective for that rank.
STARTUP = "start-up"
TRAINING_STEP = "training step"
WAITING_FOR_DATA = "loading the next batch"
VALIDATION = "validation"
CHECKPOINT = "checkpoint"
#: Order in the line: the likely cause first.
_PHASE_ORDER = (WAITING_FOR_DATA, STARTUP, VALIDATION, CHECKPOINT, TRAINING_STEP)
#: In the line, so the operator knows where the rest is.
STACKS_NOTE = "every rank's Python stacks are in the job log"
#: How long the rank that reports a stall waits for the other ranks to dump their stacks.
PEER_DUMP_WAIT_S = 10.0
#: How often a rank publishes its state and looks for a stall posted by another rank.
POLL_S = 1.0
#: Ranks named one by one in the line; the rest are counted.
MAX_NAMED_RANKS = 4


@dataclass(frozen=True)
class RankState:
    """One rank's last known progress (wall-clock time: ranks compare theirs)."""

    rank: int
    host: str
    phase: str
    step: int
    progress_at: float

    def describe(self) -> str:
        step = "before its first step" if self.step < 0 else f"after step {self.step}"
        return f"rank {self.rank} on {self.host} in {self.phase} {step}"


def stall_line(limit_name: str, limit_s: int, states: list[RankState]) -> str:
    """The one line: which limit passed, then every rank's state, the likely cause first."""
    ordered = sorted(
        states,
        key=lambda s: (
            _PHASE_ORDER.index(s.phase) if s.phase in _PHASE_ORDER else len(_PHASE_ORDER),
            s.progress_at,
            s.rank,
        ),
    )
    named = [s.describe() for s in ordered[:MAX_NAMED_RANKS]]
    if len(ordered) > MAX_NAMED_RANKS:
        named.append(f"{len(ordered) - MAX_NAMED_RANKS} more ranks")
    what = "no training step finished" if limit_name == "startup_timeout_s" else "no progress"
    return (
        f"stalled: {what} for {limit_s} s ({limit_name}={limit_s}): "
        + "; ".join(named)
        + f"; {STACKS_NOTE}"
    )


class Board(Protocol):
    """Where ranks meet: states, the stall post, acknowledgements (a TCPStore, or a dict)."""

    def publish(self, state: RankState) -> None: ...
    def states(self, world: int) -> list[RankState]: ...
    def claim(self, line: str) -> bool: ...
    def posted(self) -> str | None: ...
    def ack(self) -> int: ...
    def acks(self) -> int: ...
    def mark_reported(self) -> None: ...
    def reported(self) -> bool: ...


class StoreBoard:
    """Board on a torch.distributed store (keys under `trainops-watchdog/`)."""

    PREFIX = "trainops-watchdog/"

    def __init__(self, store: Any) -> None:
        self.store = store

    def _key(self, name: str) -> str:
        return self.PREFIX + name

    def publish(self, state: RankState) -> None:
        self.store.set(self._key(f"state/{state.rank}"), json.dumps(state.__dict__))

    def states(self, world: int) -> list[RankState]:
        out = []
        for rank in range(world):
            key = self._key(f"state/{rank}")
            if self.store.check([key]):
                out.append(RankState(**json.loads(self.store.get(key))))
        return out

    def claim(self, line: str) -> bool:
        first = int(self.store.add(self._key("claims"), 1)) == 1
        if first:
            self.store.set(self._key("line"), line)
        return first

    def posted(self) -> str | None:
        key = self._key("line")
        return self.store.get(key).decode() if self.store.check([key]) else None

    def ack(self) -> int:
        return int(self.store.add(self._key("dumped"), 1))

    def acks(self) -> int:
        return int(self.store.add(self._key("dumped"), 0))

    def mark_reported(self) -> None:
        self.store.set(self._key("reported"), "1")

    def reported(self) -> bool:
        return bool(self.store.check([self._key("reported")]))


def connect_store_board(timeout_s: float = 10.0) -> StoreBoard | None:
    """A client of the job's rendezvous store once the process group is up (None before);
    raises when there is no store to reach."""
    import datetime as dt

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=dt.timedelta(seconds=timeout_s),
        wait_for_workers=False,
    )
    return StoreBoard(store)


class Watchdog:
    """One rank's stall watchdog (a daemon thread). `beat()` is what the training loop calls."""

    def __init__(
        self,
        *,
        rank: int,
        world: int,
        host: str,
        startup_timeout_s: int,
        stall_timeout_s: int,
        board_factory: Callable[[], Board | None] = connect_store_board,
        clock: Callable[[], float] = time.time,
        emit: Callable[[str], None] | None = None,
        dump_stacks: Callable[[], None] | None = None,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.rank, self.world, self.host = rank, world, host
        self.startup_timeout_s, self.stall_timeout_s = startup_timeout_s, stall_timeout_s
        self.board_factory = board_factory
        self.clock = clock
        self.emit = emit or _print_error
        self.dump_stacks = dump_stacks or _dump_stacks
        self.exit_process = exit_process
        self.started_at = clock()
        self.phase = STARTUP
        self.step = -1
        self.progress_at = self.started_at
        self.trained = False  # a training step has finished
        self.board: Board | None = None
        self._alone = False
        self._published: tuple[str, int, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.startup_timeout_s > 0 or self.stall_timeout_s > 0

    # --- called by the training loop (cheap) ---------------------------------------------
    def beat(self, phase: str, step: int | None = None, *, progress: bool = True) -> None:
        """`phase` starts; with `progress`, something finished (resets the stall clock)."""
        self.phase = phase
        if step is not None:
            self.step = step
        if progress:
            self.progress_at = self.clock()

    def step_done(self, step: int) -> None:
        self.trained = True
        self.beat(WAITING_FOR_DATA, step)

    # --- decisions (no threads: the tests call these) -------------------------------------
    def overdue(self, now: float) -> tuple[str, int] | None:
        """(limit name, seconds) when this rank is past its limit, else None."""
        if not self.trained:  # start-up: its own limit; a long sanity check still counts
            if self.startup_timeout_s <= 0 or now - self.started_at <= self.startup_timeout_s:
                return None
            if self.stall_timeout_s > 0 and now - self.progress_at <= self.stall_timeout_s:
                return None
            return "startup_timeout_s", self.startup_timeout_s
        if self.stall_timeout_s > 0 and now - self.progress_at > self.stall_timeout_s:
            return "stall_timeout_s", self.stall_timeout_s
        return None

    def state(self) -> RankState:
        return RankState(self.rank, self.host, self.phase, self.step, self.progress_at)

    def tick(self, now: float) -> bool:
        """One round: publish, answer a stall another rank posted, or post this rank's own.
        True when the process must end (it has been ended, unless exit_process returns)."""
        if self.board is None and self.world > 1 and not self._alone:
            try:
                self.board = self.board_factory()
            except Exception as err:  # no store: this rank still watches itself
                log.warning("stall watchdog: no rendezvous store (%s); watching this rank", err)
                self._alone = True
        if self.board is not None:
            try:
                return self._tick_shared(self.board, now)
            except Exception as err:  # the store went away (its host died): carry on alone
                log.warning("stall watchdog: rendezvous store lost (%s); watching this rank", err)
                self.board, self._alone = None, True
        overdue = self.overdue(now)
        if overdue is None:
            return False
        self._fail(stall_line(*overdue, [self.state()]))
        return True

    def _tick_shared(self, board: Board, now: float) -> bool:
        key = (self.phase, self.step, self.progress_at)
        if key != self._published:
            board.publish(self.state())
            self._published = key
        posted = board.posted()
        if posted is None:
            overdue = self.overdue(now)
            if overdue is None:
                return False
            board.publish(self.state())
            line = stall_line(*overdue, board.states(self.world) or [self.state()])
            if board.claim(line):  # this rank reports: stacks of all first, its line first
                self.dump_stacks()
                board.ack()
                _wait_for(lambda: board.acks() >= self.world, PEER_DUMP_WAIT_S)
                self.emit(line)
                board.mark_reported()
                self.exit_process(1)
                return True
            posted = board.posted()
            if posted is None:  # claimed but not yet posted by the winner
                return False
        self.dump_stacks()
        board.ack()
        # After the reporting rank's line: the job's failure is its line, not this consequence.
        _wait_for(board.reported, PEER_DUMP_WAIT_S)
        who = f"rank {self.rank} of {self.world} on host {self.host}"
        self._fail(f"{who} {contract.PEER_LOST_MARKER} (stopped by the stall watchdog): {posted}")
        return True

    def _fail(self, line: str) -> None:
        self.emit(line)
        self.exit_process(1)

    # --- the thread -------------------------------------------------------------------------
    def start(self) -> Watchdog:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stall-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            if self.tick(self.clock()):
                return


def _wait_for(predicate: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def _print_error(line: str) -> None:
    """The script's error line (`error: ...`, as main() prints it), flushed before the exit."""
    sys.stdout.flush()
    print(f"error: {line}", file=sys.stderr, flush=True)


def _dump_stacks() -> None:
    """Every thread's Python stack on stderr (the job log), headed by who dumped it."""
    print(
        f"[stall watchdog] Python stacks of every thread of pid {os.getpid()}:",
        file=sys.stderr,
        flush=True,
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()


#: The process's watchdog (one per rank, like faulthandler's own state); None when off.
_CURRENT: Watchdog | None = None


def install(watchdog: Watchdog) -> Watchdog:
    """Start `watchdog` and make it the one `beat()` reaches (checkpoint writes call it)."""
    global _CURRENT
    if _CURRENT is not None:
        _CURRENT.stop()
    _CURRENT = watchdog.start() if watchdog.enabled else None
    return watchdog


def uninstall() -> None:
    global _CURRENT
    if _CURRENT is not None:
        _CURRENT.stop()
    _CURRENT = None


def beat(phase: str, step: int | None = None, *, progress: bool = True) -> None:
    """Progress from code that has no handle on the watchdog (no-op when none runs)."""
    if _CURRENT is not None:
        _CURRENT.beat(phase, step, progress=progress)
