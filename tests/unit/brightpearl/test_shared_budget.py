"""The rate budget shared by instances through Table Storage (Azurite), issue 16 item 2."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient, TableServiceClient

from shared import runtime
from shared.brightpearl.errors import BrightpearlThrottled
from shared.brightpearl.shared_budget import SharedRateBudget, TableLeases, margin_of
from shared.settings import load_settings
from shared.store import StateStore
from shared.store.errors import StoreConflictError

from .conftest import FakeClock

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def table(azurite: str) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite)
    name = f"b{uuid.uuid4().hex[:12]}cursors"
    client = service.create_table(name)
    try:
        yield client
    finally:
        service.delete_table(name)
        service.close()


def leases(
    table: TableClient, clock: Any, *, allowed: int = 20, window: float = 60.0, lease: float = 5.0, **kw: Any
) -> TableLeases:
    return TableLeases(
        table,
        "http://bp|acme|private",
        allowed=allowed,
        window_seconds=window,
        lease_seconds=lease,
        clock=clock,
        **kw,
    )


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_two_budgets_on_one_table_never_hand_out_more_than_the_cap_in_any_window(table: TableClient):
    """Two instances (own TableLeases each, four threads each) hammer one pool for ~3.5 windows:
    the requests they were allowed to send never exceed the cap in any rolling window, and the
    pool is not starved (at least 70 % of the cap per window + lease)."""
    limit, window, lease = 20, 1.0, 0.2
    budgets = [
        SharedRateBudget(
            leases(table, time.time, allowed=limit, window=window, lease=lease), limit, window, block=5
        )
        for _ in range(2)
    ]
    sent: list[float] = []
    lock = threading.Lock()
    stop = time.time() + 3.5 * window

    def worker(budget: SharedRateBudget) -> None:
        while time.time() < stop:
            budget.acquire(max_wait=10.0)
            with lock:
                sent.append(time.time())

    threads = [threading.Thread(target=worker, args=(b,)) for b in budgets for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_in_any_window(sent, window) <= limit
    period = window + lease + margin_of(window)
    assert len(sent) >= 0.7 * limit * (3.5 * window) / period
    assert all(b.stats()["leases"] > 0 for b in budgets)  # both instances got their share


def test_the_pool_refuses_beyond_the_cap_and_says_when_a_request_frees(table: TableClient):
    clock = FakeClock()
    a, b = leases(table, clock), leases(table, clock)
    assert a.lease(10).granted == 10
    clock.advance(1.0)
    assert b.lease(10).granted == 10
    refused = b.lease(10)
    assert refused.granted == 0
    assert refused.retry_at == pytest.approx(1000.0 + a.hold)  # a's grant, the oldest, expires first
    assert a.hold == pytest.approx(5.0 + 60.0 + 1.0)  # lease + window + margin


def test_a_crashed_instance_unused_tokens_expire(table: TableClient):
    """Instance A leases a block, sends one request and dies. Its nine unused requests stay
    counted (they might have been sent) until lease + window + margin, then free up for B."""
    clock = FakeClock()
    dead = SharedRateBudget(leases(table, clock), 20, 60.0, block=10, clock=clock)
    dead.acquire(max_wait=0)
    survivor = SharedRateBudget(leases(table, clock), 20, 60.0, block=10, clock=clock)
    for _ in range(10):
        survivor.acquire(max_wait=0)
    clock.advance(5.0)  # the survivor's own lease ran out with all used; the pool is full
    with pytest.raises(BrightpearlThrottled) as caught:
        survivor.acquire(max_wait=1.0)
    assert caught.value.retry_after == pytest.approx(61.0)  # 1000 + 66 - 1005
    clock.advance(61.0 - 0.01)
    with pytest.raises(BrightpearlThrottled):
        survivor.acquire(max_wait=0.001)
    clock.advance(0.02)  # the dead instance's grant (and the survivor's, made at the same time) expired
    survivor._paused_until = 0.0  # the refusal above paused it until then: skip the real wait
    assert survivor.acquire(max_wait=0) == 0.0
    assert survivor.leases.lease(20).granted == 20 - survivor.stats()["requests_leased"] + 10


class RacingTable:
    """A TableClient whose next `races` writes are each preceded by another instance's lease,
    so they fail the If-Match (412) the way a real race does."""

    def __init__(self, table: TableClient, rival: TableLeases, races: int) -> None:
        self._table, self._rival, self.races = table, rival, races
        self.table_name = table.table_name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def _race(self) -> None:
        if self.races > 0:
            self.races -= 1
            self._rival.lease(1)

    def update_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._race()
        return self._table.update_entity(*args, **kwargs)

    def create_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._race()
        return self._table.create_entity(*args, **kwargs)


def test_etag_conflicts_are_retried_and_the_grant_counts_the_winners(table: TableClient):
    clock = FakeClock()
    rival = leases(table, clock)
    racing = RacingTable(table, rival, races=3)
    mine = leases(racing, clock, sleep=lambda s: None)  # type: ignore[arg-type]
    lease = mine.lease(10)
    assert (lease.granted, lease.conflicts, mine.conflicts) == (10, 3, 3)
    assert lease.free == 20 - 3 - 10  # the rival's three requests were counted, not overwritten
    assert rival.free_now() == 7


def test_too_many_lost_races_fail_the_call_as_throttled_naming_the_table(table: TableClient):
    clock = FakeClock()
    racing = RacingTable(table, leases(table, clock, allowed=1000), races=100)
    budget = SharedRateBudget(
        leases(racing, clock, allowed=1000, max_conflicts=3, sleep=lambda s: None),  # type: ignore[arg-type]
        1000,
        60.0,
        clock=clock,
    )
    with pytest.raises(BrightpearlThrottled) as caught:
        budget.acquire(max_wait=5)
    assert "ETag mismatch" in str(caught.value) and table.table_name in str(caught.value)
    assert isinstance(caught.value.__cause__, StoreConflictError)


def test_a_missing_table_fails_the_call_as_throttled_naming_it(azurite: str):
    service = TableServiceClient.from_connection_string(azurite)
    gone = service.get_table_client(f"b{uuid.uuid4().hex[:12]}missing")
    budget = SharedRateBudget(leases(gone, time.time), 20, 60.0)
    with pytest.raises(BrightpearlThrottled) as caught:
        budget.acquire(max_wait=5)
    assert gone.table_name in str(caught.value) and "BRIGHTPEARL_SHARED_BUDGET" in str(caught.value)


def test_a_503_pauses_every_instance(table: TableClient):
    clock = FakeClock()
    a = SharedRateBudget(leases(table, clock), 20, 60.0, clock=clock)
    b = SharedRateBudget(leases(table, clock), 20, 60.0, clock=clock)
    a.throttled(4000)  # a got a 503 with a 4 s throttle period
    with pytest.raises(BrightpearlThrottled) as caught:
        b.acquire(max_wait=1.0)
    assert caught.value.retry_after == pytest.approx(4.0)
    clock.advance(4.01)
    b._paused_until = 0.0  # skip the real wait the refusal set up
    assert b.acquire(max_wait=0) == 0.0


def test_an_idle_instance_leases_smaller_blocks(table: TableClient):
    clock = FakeClock()
    budget = SharedRateBudget(leases(table, clock, allowed=200), 200, 60.0, block=10, clock=clock)
    budget.acquire(max_wait=0)
    clock.advance(5.1)  # the lease ran out with 9 unused
    budget.acquire(max_wait=0)
    stats = budget.stats()
    assert (stats["requests_leased"], stats["requests_expired"]) == (10 + 2, 9)


def test_low_priority_polls_see_the_whole_pool(table: TableClient):
    clock = FakeClock()
    other = leases(table, clock, allowed=20)
    budget = SharedRateBudget(leases(table, clock, allowed=20), 20, 60.0, clock=clock)
    assert budget.has_room_for_poll()
    assert other.lease(18).granted == 18  # another instance took most of the pool
    clock.advance(5.1)  # the budget's last look at the pool is older than a lease: it looks again
    assert not budget.has_room_for_poll()  # 2 left, 5 kept for the flows


def test_runtime_builds_the_shared_budget_by_default(state_store: StateStore):
    example = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    values = {k: v for k, v in example.items() if v != ""}
    with runtime.override(settings=load_settings(values), state_store=state_store):
        budget = runtime.brightpearl().transport.budget
        assert isinstance(budget, SharedRateBudget)
        assert budget.leases.table.table_name == state_store.cursors.table_name
    with runtime.override(
        settings=load_settings({**values, "BRIGHTPEARL_SHARED_BUDGET": "false"}), state_store=state_store
    ):
        assert not isinstance(runtime.brightpearl().transport.budget, SharedRateBudget)


def test_each_table_of_one_account_has_its_own_process_wide_budget(table: TableClient, azurite: str):
    """Two state stores on one storage account (two table prefixes) never share a budget: the
    registry is keyed by account and table, not by the account's URL alone."""
    service = TableServiceClient.from_connection_string(azurite)
    other = service.create_table(f"b{uuid.uuid4().hex[:12]}cursors")
    try:
        options = dict(limit=20, window_seconds=60.0, reserve=0, block=5, lease_seconds=5.0)
        first = SharedRateBudget.for_table(table, "bp", **options)  # type: ignore[arg-type]
        second = SharedRateBudget.for_table(other, "bp", **options)  # type: ignore[arg-type]
        assert first is not second and second.leases.table.table_name == other.table_name
        assert SharedRateBudget.for_table(table, "bp", **options) is first  # type: ignore[arg-type]
    finally:
        service.delete_table(other.table_name)
        service.close()
