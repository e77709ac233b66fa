"""The shared rate budget: local rolling window, server signals, throttle pauses."""

from __future__ import annotations

import itertools
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from croniter import croniter

from shared.brightpearl import ratebudget
from shared.brightpearl.errors import BrightpearlThrottled
from shared.brightpearl.ratebudget import RateBudget, poll_may_run
from shared.settings import CustomersSettings

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


# -- low-priority requests (the contact-search poller, issue 11 item 6) -----------------------
def test_a_poll_has_room_until_only_the_flows_share_of_the_window_is_left(clock: FakeClock):
    budget = RateBudget(200, 60.0, reserve=2, clock=clock)
    assert budget.flow_reserve == 49  # a quarter of the 198 usable slots
    for _ in range(198 - 49 - 1):
        budget.acquire(max_wait=0)
    assert budget.has_room_for_poll()  # this poll leaves exactly the flows' share
    budget.acquire(max_wait=0)
    assert not budget.has_room_for_poll()
    assert budget.used_in_window() == 149  # asking took no slot
    clock.advance(61.1)  # the window rolls on
    assert budget.has_room_for_poll()


def test_no_room_for_a_poll_while_paused_or_while_a_flow_waits(clock: FakeClock):
    budget = RateBudget(200, 60.0, clock=clock)
    budget.throttled(5000)
    assert not budget.has_room_for_poll()
    clock.advance(5.1)
    assert budget.has_room_for_poll()
    budget._waiting = 1  # a flow blocked in acquire() for the next slot
    assert not budget.has_room_for_poll()


def test_the_servers_remaining_count_limits_room_for_a_poll(clock: FakeClock):
    """Other apps share the account's pool: the server's count wins while it is current."""
    budget = RateBudget(200, 60.0, reserve=2, clock=clock)
    budget.observe({"brightpearl-requests-remaining": "60", "brightpearl-next-throttle-period": "30000"})
    assert budget.has_room_for_poll()  # 60 - 2 reserve = 58 free, 57 after the poll >= 49
    clock.advance(0.1)
    for _ in range(9):  # our own sends since the server spoke count against its figure
        budget.acquire(max_wait=0)
    assert not budget.has_room_for_poll()  # 58 - 9 = 49 free: a poll would leave 48
    clock.advance(30.0)  # the server's word is stale after its throttle period: local view only
    assert budget.has_room_for_poll()


def test_poll_may_run_logs_and_counts_a_skipped_round(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    counted: list[tuple[int, dict[str, Any]]] = []

    class Counter:
        def add(self, amount: int, attributes: dict[str, Any]) -> None:
            counted.append((amount, attributes))

    monkeypatch.setattr(ratebudget, "polls_skipped", Counter())
    budget = RateBudget(10, 60.0, flow_reserve=5, clock=clock)
    assert poll_may_run(budget, "poll_brightpearl_contacts")
    assert poll_may_run(None, "poll_brightpearl_contacts")  # a client without a budget
    for _ in range(5):
        budget.acquire(max_wait=0)
    with caplog.at_level(logging.INFO, logger="bpsync"):
        assert not poll_may_run(budget, "poll_brightpearl_contacts")
    assert counted == [(1, {"poller": "poll_brightpearl_contacts", "reason": "rate_budget"})]
    [record] = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "poll_brightpearl_contacts skipped this round: Brightpearl rate budget short "
        "(5 of 10 requests of the window used, 5 kept for the flows)"
    )


def test_default_brightpearl_poll_cadence_keeps_latency_and_budget_targets():
    """Brightpearl has no contact webhooks: a new customer waits for the next contact-search
    poll. The default schedule polls at least every 30 s (p95 under 60 s with the flow's own
    seconds) and costs under 3 % of the 200 requests a minute (one search per poll)."""
    schedule = CustomersSettings.model_fields["brightpearl_poll_schedule"].default
    assert len(schedule.split()) == 6, "NCRONTAB with a seconds field"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = croniter(schedule, start, second_at_beginning=True)
    times = [start]
    while (times[-1] - start).total_seconds() < 3600:  # an hour of runs
        times.append(runs.get_next(datetime))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 30, f"{schedule!r} leaves a new Brightpearl customer up to {max(gaps):.0f} s unseen"
    per_minute = (len(times) - 1) / ((times[-1] - start).total_seconds() / 60)
    assert per_minute / 200 < 0.03, f"{schedule!r} spends {per_minute / 200:.1%} of the request budget"
