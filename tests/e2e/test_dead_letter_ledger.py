"""One dead letter per bad record, through the real local bus, settlement, runner and a ledger
on Azurite: the ledger's "already dead-lettered" key must never outlive a dead letter that did
not happen (a lost lock), and the message holding the dead letter is recognised however it
comes back (redelivery, retry copy, resubmit) while other notices of the record are not."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.bus.local import LocalBus
from shared.bus.settlement import Settlement
from shared.events import ChangeNotice, Envelope
from shared.flows.customers_common import BatchResults, RecordResult, finish_batch
from shared.flows.runner import run_flow
from shared.outcomes import Outcome
from shared.resilience import BackoffPolicy
from shared.store import StateStore
from tests.e2e.test_settlement_path import FakeClock

TOPIC, SUB = "brightpearl-changes", "customers-to-dataverse"


class BusActions:
    """The settlement methods of the Functions binding, on the local bus (no host needed)."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus

    def complete(self, message: Any) -> None:
        self.bus.complete(message)

    def abandon(self, message: Any) -> None:
        self.bus.abandon(message)

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self.bus.dead_letter(message, reason=deadletter_reason, description=deadletter_error_description)


class BadRecordFlow:
    """Every record is bad (a fatal quality problem); `slow_once` makes the first delivery take
    longer than the message lock, as a batch waiting on a rate budget does."""

    name = SUB

    def __init__(
        self, store: StateStore, bus: LocalBus, clock: FakeClock, *, slow_once: bool = False
    ) -> None:
        self.store, self.bus, self.clock, self.slow_once = store, bus, clock, slow_once

    def handle(self, envelopes: list[Envelope]) -> list[Outcome]:
        results = BatchResults()
        for envelope in envelopes:
            for record_id in envelope.notice.ids:
                results.set(
                    record_id,
                    RecordResult(
                        "fatal",
                        "InvalidEmail",
                        f"Brightpearl contact {record_id}: e-mail is not valid",
                        stamp="2026-11-01T11:00:00Z",
                    ),
                )
        if self.slow_once:
            self.slow_once = False
            self.clock.advance(61)  # past the subscription's 1-minute lockDuration
        return finish_batch(
            envelopes,
            lambda e: e.notice.ids,
            results,
            flow=self.name,
            system_label="Brightpearl contact",
            publish=lambda envs: self.bus.publish(TOPIC, [e.to_message() for e in envs]),
            store=self.store,
            source_system="brightpearl",
            target_system="dataverse",
            message_of={},
            started=time.monotonic(),
        )


@pytest.fixture
def rig(tmp_path, state_store: StateStore):
    clock = FakeClock()
    bus = LocalBus(tmp_path / "bus.sqlite3", clock=clock)
    settlement = Settlement(
        bus,
        topic=TOPIC,
        subscription=SUB,
        clock=clock,
        policy=BackoffPolicy(max_attempts=5, base_delay=10, max_delay=30),
    )
    store = state_store.with_clock(clock)
    try:
        yield bus, clock, settlement, store
    finally:
        bus.close()


def notice(record_id: str, version: str) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="contact",
            ids=(record_id,),
            operation="updated",
            observed_at=datetime(2026, 11, 1, 11, 59, tzinfo=UTC),
            source="/brightpearl/sandbox",
            version=version,
        )
    )


def deliver(bus: LocalBus, settlement: Settlement, flow: BadRecordFlow) -> Any:
    messages = bus.receive(TOPIC, SUB, max_messages=10)
    assert messages, "nothing to deliver"
    return run_flow(flow, messages, BusActions(bus), settlement)


def test_dead_letter_lost_with_the_lock_is_dead_lettered_on_redelivery(rig):
    bus, clock, settlement, store = rig
    bus.publish(TOPIC, [notice("207", "webhook-1").to_message()])
    done = deliver(bus, settlement, BadRecordFlow(store, bus, clock, slow_once=True))
    assert done["unsettled"] == 1  # the dead-letter call failed: the lock had expired

    done = deliver(bus, settlement, BadRecordFlow(store, bus, clock))  # delivery 2
    assert done["dead_lettered"] == 1
    counts = bus.counts(TOPIC, SUB)
    assert (counts.dead_letter, counts.active) == (1, 0)
    [dead] = bus.peek_dead_letters(TOPIC, SUB)
    assert dead.dead_letter_reason == "InvalidEmail" and dead.delivery_count == 2


def test_a_second_notice_completes_but_the_holders_resubmitted_copy_dead_letters_again(rig):
    bus, clock, settlement, store = rig
    flow = BadRecordFlow(store, bus, clock)
    bus.publish(TOPIC, [notice("207", "webhook-1").to_message()])
    assert deliver(bus, settlement, flow)["dead_lettered"] == 1
    bus.publish(TOPIC, [notice("207", "backfill-1").to_message()])  # same record version again
    assert deliver(bus, settlement, flow)["completed"] == 1
    assert bus.counts(TOPIC, SUB).dead_letter == 1

    # the operator resubmits the dead letter (a copy of its body, new message id) unfixed
    from shared.bus.deadletters import LocalDeadLetters, Selection

    LocalDeadLetters(bus).resubmit(TOPIC, SUB, Selection(all=True))
    assert deliver(bus, settlement, flow)["dead_lettered"] == 1
    [dead] = bus.peek_dead_letters(TOPIC, SUB)
    assert dead.dead_letter_reason == "InvalidEmail"
