"""The stall watchdog's decisions, the uneven-data line and the time-based checkpoint schedule,
driven by an injected clock and an in-memory board (the multi-process runs are in
test_stall.py and tests/e2e/test_stall_e2e.py)."""

from __future__ import annotations

import pytest

from training import contract
from training import watchdog as wd
from training.checkpoint_schedule import TimeSchedule
from training.guards import uneven_batches_line
from training.sm_env import ConfigError, Hyperparameters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class DictBoard:
    """The StoreBoard protocol on a dict shared by the ranks of one test."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def publish(self, state: wd.RankState) -> None:
        self.data[f"state/{state.rank}"] = state

    def states(self, world: int) -> list[wd.RankState]:
        return [self.data[f"state/{r}"] for r in range(world) if f"state/{r}" in self.data]

    def claim(self, line: str) -> bool:
        self.data["claims"] = self.data.get("claims", 0) + 1
        if self.data["claims"] == 1:
            self.data["line"] = line
        return self.data["claims"] == 1

    def posted(self) -> str | None:
        return self.data.get("line")

    def ack(self) -> int:
        self.data["dumped"] = self.data.get("dumped", 0) + 1
        return self.data["dumped"]

    def acks(self) -> int:
        return self.data.get("dumped", 0)

    def mark_reported(self) -> None:
        self.data["reported"] = True

    def reported(self) -> bool:
        return bool(self.data.get("reported"))


class Exited(BaseException):  # os._exit never returns; this stands in for it
    pass


def _dog(clock: Clock, events: list, *, rank=0, world=1, board=None, startup=60, stall=10):
    def exit_process(code: int) -> None:
        events.append(("exit", rank, code))
        raise Exited

    return wd.Watchdog(
        rank=rank,
        world=world,
        host=f"algo-{rank + 1}",
        startup_timeout_s=startup,
        stall_timeout_s=stall,
        board_factory=lambda: board,
        clock=clock,
        emit=lambda line: events.append(("line", rank, line)),
        dump_stacks=lambda: events.append(("stacks", rank)),
        exit_process=exit_process,
    )


def test_start_up_has_its_own_limit_then_every_finished_step_resets_the_stall_clock():
    clock, events = Clock(), []
    dog = _dog(clock, events)
    clock.now += 59
    assert dog.overdue(clock()) is None  # start-up: 60 s, although stall is 10 s
    dog.step_done(1)
    clock.now += 10
    assert dog.overdue(clock()) is None
    dog.beat(wd.TRAINING_STEP, progress=False)  # a step started: not progress
    clock.now += 1
    assert dog.overdue(clock()) == ("stall_timeout_s", 10)
    dog.beat(wd.VALIDATION)  # validation (and checkpoints) count as progress
    assert dog.overdue(clock()) is None


def test_start_up_past_its_limit_fails_unless_a_sanity_check_is_still_progressing():
    clock, events = Clock(), []
    dog = _dog(clock, events)
    clock.now += 55
    dog.beat(wd.VALIDATION)
    clock.now += 6
    assert dog.overdue(clock()) is None  # past 60 s, but the last batch was 6 s ago
    clock.now += 5
    assert dog.overdue(clock()) == ("startup_timeout_s", 60)


def test_zero_turns_each_limit_off():
    clock, events = Clock(), []
    dog = _dog(clock, events, startup=0, stall=0)
    assert not dog.enabled
    clock.now += 10**6
    assert dog.overdue(clock()) is None
    dog = _dog(clock, events, startup=0, stall=10)
    clock.now += 10**6
    assert dog.overdue(clock()) is None  # start-up unbounded
    dog.step_done(3)
    clock.now += 11
    assert dog.overdue(clock()) == ("stall_timeout_s", 10)


def test_a_lone_rank_reports_itself_after_its_stacks_and_exits_1():
    clock, events = Clock(), []
    dog = _dog(clock, events)
    dog.step_done(7)
    clock.now += 11
    with pytest.raises(Exited):
        dog.tick(clock())
    (kind, _, line), exit_event = events
    assert kind == "line" and exit_event == ("exit", 0, 1)
    assert line == (
        "stalled: no progress for 10 s (stall_timeout_s=10): rank 0 on algo-1 in loading the "
        f"next batch after step 7; {wd.STACKS_NOTE}"
    )


def test_the_first_rank_to_notice_reports_every_rank_and_the_others_dump_their_stacks(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(wd, "PEER_DUMP_WAIT_S", 0.0)  # one thread plays both ranks here
    clock, events, data = Clock(), [], {}
    r0 = _dog(clock, events, rank=0, world=2, board=DictBoard(data))
    r1 = _dog(clock, events, rank=1, world=2, board=DictBoard(data))
    r0.step_done(3)
    r1.step_done(3)
    assert not r0.tick(clock()) and not r1.tick(clock())  # both publish their state
    r0.beat(wd.TRAINING_STEP, progress=False)  # rank 0 waits in a step (the all-reduce)
    clock.now += 0.5
    assert not r0.tick(clock())
    clock.now += 10  # rank 1 never fetched its next batch
    with pytest.raises(Exited):
        r0.tick(clock())
    line = data["line"]
    assert line.index("rank 1 on algo-2 in loading the next batch after step 3") < line.index(
        "rank 0 on algo-1 in training step after step 3"
    )
    assert events[:3] == [("stacks", 0), ("line", 0, line), ("exit", 0, 1)]
    with pytest.raises(Exited):
        r1.tick(clock())  # rank 1 sees the post: stacks, then a line marked as a consequence
    assert events[3][:2] == ("stacks", 1)
    kind, rank, follower_line = events[4]
    assert (kind, rank) == ("line", 1)
    assert contract.PEER_LOST_MARKER in follower_line and follower_line.endswith(line)
    assert data["dumped"] == 2


def test_a_rank_without_a_store_watches_itself():
    clock, events = Clock(), []

    def no_store():
        raise ConnectionError("no store at 127.0.0.1:29500")

    dog = _dog(clock, events, world=2)
    dog.board_factory = no_store
    dog.step_done(1)
    assert not dog.tick(clock())
    clock.now += 11
    with pytest.raises(Exited):
        dog.tick(clock())
    assert events[-2][0] == "line" and "rank 0 on algo-1" in events[-2][2]


def test_uneven_batch_counts_make_one_line_naming_ranks_and_counts():
    assert uneven_batches_line([5, 5, 5], 0) is None
    line = uneven_batches_line([40, 40, 38, 40], 2)
    assert line.startswith(
        "uneven data in epoch 2: the ranks have different numbers of training batches "
        "(rank 2: 38 batches; ranks 0, 1, 3: 40 batches)"
    )
    assert "\n" not in line


def test_time_schedule_probes_rarely_and_is_due_once_the_interval_passed():
    clock = Clock()
    schedule = TimeSchedule(60.0, clock=clock)
    schedule.reset(0)
    probes: list[int] = []

    def broadcast(value: float) -> float:
        probes.append(step)
        return value

    due_at = None
    for step in range(1, 400):
        clock.now += 1.0  # one second a step: due at step 60
        if schedule.due(step, broadcast):
            due_at = step
            break
    assert due_at == 60
    assert len(probes) <= 8, probes  # doubling, then straight to the interval's end
    schedule.reset(due_at)
    probes.clear()
    for step in range(61, 400):
        clock.now += 1.0
        if schedule.due(step, broadcast):
            break
    assert step == 120 and len(probes) == 1  # the measured step time lands on the interval


def test_time_schedule_answers_the_same_on_every_rank_from_rank_zeros_clock():
    """Ranks whose clocks differ still agree: the broadcast value decides."""
    rank0, rank1 = Clock(), Clock()
    s0, s1 = TimeSchedule(30.0, clock=rank0), TimeSchedule(30.0, clock=rank1)
    s0.reset(0)
    s1.reset(0)
    for step in range(1, 200):
        rank0.now += 1.0
        rank1.now += 0.25  # a rank whose own clock says "not yet"
        sent = rank0.now - s0.saved_at
        a = s0.due(step, lambda v, sent=sent: sent)
        b = s1.due(step, lambda v, sent=sent: sent)
        assert a == b
        if a:
            break
    assert step == 30


def test_the_new_hyperparameters_are_typed_and_checked():
    hp = Hyperparameters.from_mapping(
        {"stall_timeout_s": "0", "startup_timeout_s": "120", "checkpoint_every_minutes": "2.5"}
    )
    assert (hp.stall_timeout_s, hp.startup_timeout_s, hp.checkpoint_every_minutes) == (
        0,
        120,
        2.5,
    )
    with pytest.raises(ConfigError, match=r"stall_timeout_s='-1' is invalid: expected an integer"):
        Hyperparameters.from_mapping({"stall_timeout_s": "-1"})
