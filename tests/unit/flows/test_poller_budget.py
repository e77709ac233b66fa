"""The Brightpearl contact poller spends the shared rate budget only when the flows can spare
it (issue 11 item 6): polling every 20 s is a low-priority request; when the budget is short
the poller skips the round, logs it without data and leaves its watermark where it was, so
the next round reads the same changes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from shared.brightpearl.ratebudget import RateBudget
from shared.events import Envelope
from shared.flows.customers_spec import BRIGHTPEARL_CURSOR
from shared.flows.pollers import BrightpearlContactPoller
from shared.sync.fakes import FakeBrightpearl, MemoryCursors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def poller(budget: RateBudget | None) -> tuple[BrightpearlContactPoller, FakeBrightpearl, list[Envelope]]:
    client = FakeBrightpearl()
    client.add_contact({"firstName": "Ada", "lastName": "Lovelace"})
    published: list[Envelope] = []
    return (
        BrightpearlContactPoller(
            client=client,
            cursors=MemoryCursors(),
            publish=published.extend,
            clock=lambda: datetime.now(UTC),
            source="/brightpearl/unit",
            overlap=timedelta(0),
            initial_lookback=timedelta(hours=1),
            budget=budget,
        ),
        client,
        published,
    )


def test_the_poller_polls_while_the_budget_has_room():
    budget = RateBudget(200, 60.0, reserve=2, clock=Clock())
    p, client, published = poller(budget)
    report = p.poll()
    assert not report.skipped
    assert client.calls == ["search_contacts"]
    assert report.records == 1 and len(published) == 1


def test_the_poller_skips_a_round_when_the_budget_is_short(caplog: pytest.LogCaptureFixture):
    budget = RateBudget(200, 60.0, reserve=2, clock=Clock())
    for _ in range(150):  # the flows used all but their quarter of the window
        budget.acquire(max_wait=0)
    p, client, published = poller(budget)
    with caplog.at_level(logging.INFO, logger="bpsync"):
        report = p.poll()
    assert report.skipped
    assert client.calls == []  # no request spent
    assert published == []
    assert p.cursors.get(BRIGHTPEARL_CURSOR) is None  # the next round starts from the same place
    assert any("skipped this round" in r.getMessage() for r in caplog.records)


def test_a_poller_without_a_budget_always_polls():
    p, client, _ = poller(None)
    assert not p.poll().skipped
    assert client.calls == ["search_contacts"]
