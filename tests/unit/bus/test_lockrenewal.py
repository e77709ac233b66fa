"""LockRenewal: renews each message of a batch on the clock's schedule and forgets the ones it
can no longer renew (settled, lock lost)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.bus.lockrenewal import LockRenewal


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Actions:
    def __init__(self, settled: set[str]) -> None:
        self.settled = settled
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def renew_message_lock(self, message: str) -> None:
        with self.lock:
            self.calls.append(message)
        if message in self.settled:
            raise RuntimeError(f"{message} is already settled")


def test_renews_every_message_each_interval_and_drops_the_settled_ones():
    clock, actions = Clock(), Actions(settled={"b"})
    with LockRenewal(["a", "b", "c"], actions, every=20, clock=clock, tick=0.005) as keeper:
        clock.advance(19)
        assert not keeper.wait_rounds(1, timeout=0.1)  # not due yet
        clock.advance(1)
        assert keeper.wait_rounds(1, timeout=5)
        clock.advance(20)
        assert keeper.wait_rounds(2, timeout=5)
    assert actions.calls == ["a", "b", "c", "a", "c"]
    assert (keeper.renewed, keeper.dropped) == (4, 1)


def test_no_renewal_after_the_block_ends():
    clock, actions = Clock(), Actions(settled=set())
    with LockRenewal(["a"], actions, every=20, clock=clock, tick=0.005):
        pass
    clock.advance(100)
    assert actions.calls == []


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="every must be positive"):
        LockRenewal(["a"], Actions(set()), every=0)
