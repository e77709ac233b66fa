"""The operator loop's data functions (shared/ops) on a real LocalBus and an Azurite state store:
retry copies visible as scheduled work with their attempt and due time (and the batch logged as
not done), a paused flow's messages postponed for its subscription only without spending a
delivery, records named by operators, superseded dead letters, what became of a resubmitted copy."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.bus.deadletters import LocalDeadLetters, Selection
from shared.bus.local import LocalBus
from shared.bus.settlement import Settlement
from shared.bus.topology import load_topology
from shared.events import ChangeNotice, Envelope
from shared.flows.runner import run_flow
from shared.ops import flow_control
from shared.ops.busview import bus_messages
from shared.ops.deadletters import audit_marks, copy_fates, superseded
from shared.ops.records import RecordInputError, record
from shared.ops.sync_now import sync_notice
from shared.outcomes import Completed, RetryLater
from shared.resilience import BackoffPolicy
from shared.settings import BusSettings, RetrySettings
from shared.store import StateStore
from shared.store.audit import AuditEntry, AuditResult

TOPIC, FLOW, OTHER = "brightpearl-changes", "customers-to-dataverse", "products-to-dataverse"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class Actions:
    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus

    def complete(self, message) -> None:  # type: ignore[no-untyped-def]
        self.bus.complete(message)

    def abandon(self, message) -> None:  # type: ignore[no-untyped-def]
        self.bus.abandon(message)

    def deadletter(self, message, deadletter_reason=None, deadletter_error_description=None) -> None:  # type: ignore[no-untyped-def]
        self.bus.dead_letter(message, deadletter_reason, deadletter_error_description)


class HalfDown:
    """A flow whose API answers 503 for contact 2 and syncs contact 1."""

    name = FLOW

    def handle(self, envelopes):  # type: ignore[no-untyped-def]
        return [
            RetryLater("BrightpearlUnavailable", "503") if e.notice.ids == ("2",) else Completed()
            for e in envelopes
        ]


def notice(contact_id: str, entity: str = "contact") -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity=entity,
            ids=(contact_id,),
            observed_at=datetime.now(UTC),
            source="/brightpearl/acme",
            version=f"v-{contact_id}",
        )
    )


@pytest.fixture
def bus(tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = Clock()
    with LocalBus(tmp_path / "bus.sqlite3", load_topology(), clock=clock) as bus:
        bus.clock = clock  # type: ignore[attr-defined]
        yield bus


def settlement(bus: LocalBus, clock: Clock) -> Settlement:
    policy = BackoffPolicy.from_settings(RetrySettings.model_validate({}))
    return Settlement(bus, topic=TOPIC, subscription=FLOW, policy=policy, clock=clock, rng=random.Random(1))


def test_a_retry_is_scheduled_work_with_attempt_and_due_time_and_the_batch_says_not_done(
    bus: LocalBus, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    clock = bus.clock  # type: ignore[attr-defined]
    bus.publish(TOPIC, [notice("1").to_message(), notice("2").to_message()])
    messages = bus.receive(TOPIC, FLOW, 10)
    with caplog.at_level(logging.WARNING):
        done = run_flow(HalfDown(), messages, Actions(bus), settlement(bus, clock))
    assert done == {"completed": 1, "retry_scheduled": 1}
    [line] = [r.getMessage() for r in caplog.records if "not done" in r.getMessage()]
    assert f"batch of flow {FLOW} not done: 1 retry(ies) scheduled" in line and "1 completed" in line

    settings = BusSettings.model_validate(
        {"BUS_BACKEND": "local", "LOCAL_BUS_PATH": str(tmp_path / "bus.sqlite3")}
    )
    [copy] = bus_messages(settings, load_topology(), [(TOPIC, FLOW)], queues=["scheduled"])
    assert copy.ids == ("2",) and copy.attempt == 2 and copy.due is not None and copy.due > clock()
    assert bus_messages(settings, load_topology(), [(TOPIC, FLOW)], ids=["1"]) == []


def test_a_paused_flow_postpones_its_messages_for_itself_only_without_spending_a_delivery(bus: LocalBus):
    clock = bus.clock  # type: ignore[attr-defined]
    bus.publish(TOPIC, [notice("7", entity="product").to_message()])  # both product flows take it
    bus.publish(TOPIC, [notice("8").to_message()])
    messages = bus.receive(TOPIC, FLOW, 10)
    assert len(messages) == 1  # only the contact notice reaches the customers flow
    pause = flow_control.Pause(FLOW, clock(), "ops", "test", 30)
    assert (
        flow_control.postpone(messages, Actions(bus), settlement(bus, clock), pause=pause, now=clock()) == 1
    )
    counts = bus.counts(TOPIC, FLOW)
    assert (counts.active, counts.scheduled, counts.dead_letter) == (0, 1, 0)
    assert bus.counts(TOPIC, OTHER).scheduled == 0  # nobody else gets the postponed copy
    for _ in range(12):  # more postponements than maxDeliveryCount: still never dead-lettered
        clock.now += timedelta(seconds=31)
        [again] = bus.receive(TOPIC, FLOW, 10)
        assert again.delivery_count == 1  # a fresh message each time
        envelope = Envelope.from_body(again.body)
        assert envelope.id == notice("8").id and envelope.attempt == 1 and envelope.replay_to == FLOW
        assert again.message_id.startswith(notice("8").id + ".")
        flow_control.postpone([again], Actions(bus), settlement(bus, clock), pause=pause, now=clock())
    assert bus.counts(TOPIC, FLOW).dead_letter == 0 and bus.counts(TOPIC, FLOW).scheduled == 1


def test_pause_flag_round_trip(state_store: StateStore):
    cursors = state_store.cursors
    now = datetime.now(UTC)
    assert flow_control.get_pause(cursors, FLOW) is None
    made, new = flow_control.pause(cursors, FLOW, now=now, by="ops", reason="upgrade", recheck_seconds=45)
    assert new and made.recheck_seconds == 45
    again, new = flow_control.pause(cursors, FLOW, now=now, by="someone else")
    assert not new and again.by == "ops" and again.reason == "upgrade"
    cache = flow_control.PauseCache(lambda: cursors, ttl=0)
    assert cache.paused(FLOW) is not None and cache.paused(OTHER) is None
    assert flow_control.resume(cursors, FLOW) is not None
    assert cache.paused(FLOW) is None and flow_control.resume(cursors, FLOW) is None
    with pytest.raises(ValueError, match="recheck must be 5 to 3600 seconds"):
        flow_control.pause(cursors, FLOW, now=now, by="ops", recheck_seconds=1)


def test_records_are_named_by_system_type_and_id():
    contact = record("Brightpearl", "contact", " 215 ")
    assert (contact.system, contact.record_id, contact.audit_entity) == ("brightpearl", "215", "customer")
    assert [f.name for f in contact.reading_flows] == ["customers-to-dataverse"]
    guid = "{5B0D9A6E-2F3C-4D1E-9A8B-7C6D5E4F3A21}"
    assert record("dataverse", "contact", guid).record_id == "5b0d9a6e-2f3c-4d1e-9a8b-7c6d5e4f3a21"
    assert record("brightpearl", "product", "1001").audit_entity == "product"
    for system, name, record_id, problem in (
        ("dataverse", "contact", "215", "a Dataverse id is a GUID"),
        ("brightpearl", "contact", "0", "a Brightpearl id is a positive whole number"),
        ("brightpearl", "widget", "1", "no Brightpearl record type 'widget'; known: "),
        ("sap", "contact", "1", "system must be brightpearl or dataverse"),
    ):
        with pytest.raises(RecordInputError, match=problem):
            record(system, name, record_id)
    first = sync_notice(contact, source="/brightpearl/acme", now=datetime.now(UTC))
    second = sync_notice(contact, source="/brightpearl/acme", now=first.notice.observed_at)
    assert first.notice.ids == ("215",) and first.notice.entity == "contact" and first.id != second.id


def _dead(bus: LocalBus, contact_id: str, reason: str) -> None:
    bus.publish(TOPIC, [notice(contact_id).to_message()])
    for m in bus.receive(TOPIC, FLOW, 10):
        bus.dead_letter(m, reason, f"contact {contact_id}: bad")


def _audit(store: StateStore, contact_id: str, result: AuditResult, at: datetime) -> None:
    store.audit.record(
        AuditEntry(
            flow=FLOW,
            entity="customer",
            source_system="brightpearl",
            source_id=contact_id,
            result=result,
            at=at,
        )
    )


def test_superseded_dead_letters_and_what_became_of_a_resubmitted_copy(
    bus: LocalBus, state_store: StateStore
):
    clock = bus.clock  # type: ignore[attr-defined]
    _audit(state_store, "5", AuditResult.DEAD_LETTERED, clock())
    _dead(bus, "5", "InvalidEmail")
    _dead(bus, "6", "InvalidEmail")
    ops = LocalDeadLetters(bus)
    items = ops.list(TOPIC, FLOW, Selection(reason="invalidemail"))  # any case
    assert len(items) == 2
    assert superseded(items, state_store.audit) == []
    later = clock() + timedelta(seconds=5)
    _audit(state_store, "5", AuditResult.SYNCED, later)  # fixed at the source and synced since
    [(item, note)] = superseded(items, state_store.audit)
    assert item.record_ids == ("5",) and note.startswith("5 synced")

    marks = audit_marks(state_store.audit, items)
    [outcome] = ops.resubmit(TOPIC, FLOW, Selection(message_ids=frozenset({items[1].message_id})))
    [queued] = copy_fates([outcome], audit=state_store.audit, since=clock(), exclude=marks)
    assert queued.state == "queued" and queued.message_id == outcome.new_message_id

    settings = BusSettings.model_validate({"BUS_BACKEND": "local", "LOCAL_BUS_PATH": str(bus.path)})  # type: ignore[attr-defined]

    def on_bus(ids: set[str]):  # type: ignore[no-untyped-def]
        return bus_messages(settings, load_topology(), [(TOPIC, FLOW)], ids=ids)

    [waiting] = copy_fates([outcome], audit=state_store.audit, since=clock(), exclude=marks, bus=on_bus)
    assert waiting.state == "waiting"
    _audit(state_store, "6", AuditResult.NEEDS_REVIEW, later)
    [reviewed] = copy_fates([outcome], audit=state_store.audit, since=clock(), exclude=marks, bus=on_bus)
    assert reviewed.state == "needs-review"


def test_changed_fields_name_what_a_write_changes_and_never_values():
    from shared.model.customer import Customer
    from shared.sync.engine import changed_fields
    from shared.sync.outcomes import _fields_text

    before = Customer.model_validate({"name": {"first_name": "Ada", "last_name": "Byron"}, "tags": ["vip"]})
    after = before.model_copy(update={"name": before.name.model_copy(update={"last_name": "Lovelace"})})
    assert changed_fields(after, before) == ("name.last_name",)
    assert changed_fields(after, before, keep=("name",)) == ()  # the target keeps it (ownership)
    assert changed_fields(after, None) == ("name.first_name", "name.last_name", "tags")  # a create
    assert _fields_text(("a" * 600, "b" * 600)) == "a" * 600 + ",…"  # bounded for the audit row


def test_pause_flags_of_two_stores_in_one_process_are_not_shared(azurite: str):
    stores = [
        StateStore.from_connection_string(azurite, table_prefix=f"p{i}{random.randrange(10**8)}")
        for i in (1, 2)
    ]
    for store in stores:
        store.ensure_tables()
    try:
        current = {"store": stores[0]}
        cache = flow_control.PauseCache(lambda: current["store"].cursors, ttl=60)
        flow_control.pause(stores[0].cursors, FLOW, now=datetime.now(UTC), by="ops")
        assert cache.paused(FLOW) is not None
        current["store"] = stores[1]  # another sandbox in the same process (tests), same flow name
        assert cache.paused(FLOW) is None
    finally:
        for store in stores:
            store.drop_tables()
            store.close()
