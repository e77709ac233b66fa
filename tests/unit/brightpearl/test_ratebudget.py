"""The shared rate budget: local rolling window, server signals, throttle pauses."""

from __future__ import annotations

import threading

import pytest

from shared.brightpearl.errors import BrightpearlThrottled
from shared.brightpearl.ratebudget import RateBudget

from .conftest import FakeClock


def test_rolling_window_admits_the_limit_then_refuses_until_a_slot_frees(clock: FakeClock):
    budget = RateBudget(3, 10.0, clock=clock)
    assert [budget.acquire(max_wait=0) for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(BrightpearlThrottled) as caught:
        budget.acquire(max_wait=1)
    assert caught.value.retry_after == pytest.approx(10.5)  # window plus the latency margin
    clock.advance(10.6)
    assert budget.acquire(max_wait=0) == 0.0


def test_reserve_leaves_slots_for_other_apps(clock: FakeClock):
    budget = RateBudget(5, 60.0, reserve=2, clock=clock)
    for _ in range(3):
        budget.acquire(max_wait=0)
    with pytest.raises(BrightpearlThrottled):
        budget.acquire(max_wait=0)


def test_server_signals_pause_everyone_before_the_budget_runs_out(clock: FakeClock):
    budget = RateBudget(200, 60.0, reserve=2, clock=clock)
    budget.observe({"brightpearl-requests-remaining": "150", "brightpearl-next-throttle-period": "40000"})
    assert budget.acquire(max_wait=0) == 0.0  # plenty left: no pause
    budget.observe({"brightpearl-requests-remaining": "2", "brightpearl-next-throttle-period": "23329"})
    with pytest.raises(BrightpearlThrottled) as caught:
        budget.acquire(max_wait=5)
    assert caught.value.retry_after == pytest.approx(23.329)
    assert budget.server_pauses == 1
    clock.advance(23.4)
    assert budget.acquire(max_wait=0) == 0.0
    budget.observe({})  # responses without the headers change nothing
    budget.observe({"brightpearl-requests-remaining": "x", "brightpearl-next-throttle-period": "1"})


def test_a_503_pauses_for_the_throttle_period_or_a_window(clock: FakeClock):
    budget = RateBudget(200, 60.0, clock=clock)
    assert budget.throttled(1500) == 1.5
    with pytest.raises(BrightpearlThrottled):
        budget.acquire(max_wait=1)
    clock.advance(1.6)
    budget.acquire(max_wait=0)
    assert budget.throttled(None) == 60.0


def test_shared_budget_per_key():
    a = RateBudget.shared("unit|acct-a", 200, 60)
    assert RateBudget.shared("unit|acct-a", 200, 60) is a
    assert RateBudget.shared("unit|acct-b", 200, 60) is not a


def test_concurrent_callers_never_exceed_the_window():
    budget = RateBudget(5, 0.1)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            budget.acquire(max_wait=5)
            with lock:
                sent.append(budget._clock())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent.sort()
    assert len(sent) == 40
    for i, start in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < start + 0.1) <= 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="limit"):
        RateBudget(0, 60)
    with pytest.raises(ValueError, match="window"):
        RateBudget(10, 0)
