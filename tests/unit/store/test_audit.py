"""AuditLog against Azurite: outcomes per flow and per record, retention purge, no e-mails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from shared.store import AuditEntry, AuditResult, StateStore

FLOW = "customers-to-dataverse"


def entry(source_id: int | str, result: AuditResult = AuditResult.SYNCED, **extra: object) -> AuditEntry:
    values: dict[str, object] = {
        "flow": FLOW, "entity": "contact", "source_system": "brightpearl",
        "source_id": source_id, "result": result,
    }
    return AuditEntry.model_validate(values | extra)


def test_record_and_read_back_every_field(state_store: StateStore, clock) -> None:
    audit = state_store.with_clock(clock).audit
    written = audit.record(entry(
        207, AuditResult.DEAD_LETTERED, target_system="dataverse", target_id="dv-207",
        reason_code="InvalidEmail", description="brightpearl contact 207: field email is not valid",
        duration_ms=35, message_id="m-1", attempt=3,
    ))
    assert written.at == clock.now and written.id
    (read,) = audit.recent(FLOW)
    assert read == written
    assert read.result is AuditResult.DEAD_LETTERED and read.attempt == 3


def test_recent_is_newest_first_per_flow_across_days(state_store: StateStore, clock) -> None:
    audit = state_store.with_clock(clock).audit
    audit.record(entry(1))
    clock.advance(days=1)
    audit.record(entry(2))
    audit.record(entry(99, flow="orders-to-brightpearl"))
    clock.advance(minutes=1)
    audit.record(entry(3, AuditResult.SKIPPED))
    clock.advance(days=3)

    assert [e.source_id for e in audit.recent(FLOW)] == ["3", "2", "1"]
    assert [e.source_id for e in audit.recent(FLOW, limit=2)] == ["3", "2"]
    assert [e.source_id for e in audit.recent("orders-to-brightpearl")] == ["99"]
    assert audit.recent("no-such-flow") == []
    assert audit.flows() == ["customers-to-dataverse", "orders-to-brightpearl"]


def test_record_many_writes_beyond_one_transaction(state_store: StateStore, clock) -> None:
    audit = state_store.with_clock(clock).audit
    batch = []
    for n in range(150):  # more than the 100 operations of one entity group transaction
        batch.append(entry(n, at=clock.now))
        clock.advance(milliseconds=1)
    audit.record_many(batch)
    got = audit.recent(FLOW, limit=500)
    assert [e.source_id for e in got] == [str(n) for n in reversed(range(150))]


def test_rows_of_one_record_from_either_side(state_store: StateStore, clock) -> None:
    audit = state_store.with_clock(clock).audit
    audit.record(entry(5, target_system="dataverse", target_id="dv-5"))
    clock.advance(days=40)  # the next month: another index partition
    audit.record(AuditEntry(flow="customers-to-brightpearl", entity="contact",
                            source_system="dataverse", source_id="dv-5", target_system="brightpearl",
                            target_id="5", result=AuditResult.SKIPPED, reason_code="NoChange"))
    audit.record_many([entry(6), entry(55), entry("5|x"), entry("5~7C")])  # look-alike ids

    by_bp = audit.for_record("contact", "brightpearl", 5)
    assert [(e.flow, e.result) for e in by_bp] == [
        ("customers-to-brightpearl", AuditResult.SKIPPED), (FLOW, AuditResult.SYNCED)]
    assert [e.flow for e in audit.for_record("contact", "dataverse", "dv-5")] == [
        "customers-to-brightpearl", FLOW]
    assert audit.for_record("contact", "brightpearl", 5, limit=1)[0].reason_code == "NoChange"
    assert audit.for_record("account", "brightpearl", 5) == []
    assert [e.source_id for e in audit.for_record("contact", "brightpearl", "5|x")] == ["5|x"]


def test_purge_removes_rows_older_than_the_retention(state_store: StateStore, clock) -> None:
    audit = state_store.with_clock(clock).audit
    start = clock.now
    for age_days, source_id in ((120, "a"), (91, "b"), (90.5, "c"), (89.5, "d"), (1, "e")):
        clock.now = start - timedelta(days=age_days)
        audit.record(entry(source_id, target_system="dataverse", target_id=f"dv-{source_id}"))
    clock.now = start

    removed = audit.purge_older_than(90)
    assert removed == 3 * 3  # a, b, c: the flow row and two record index rows each
    assert [e.source_id for e in audit.recent(FLOW, limit=10, days=200)] == ["e", "d"]
    assert audit.for_record("contact", "brightpearl", "c") == []
    assert [e.source_id for e in audit.for_record("contact", "dataverse", "dv-d")] == ["d"]
    assert audit.purge_older_than() == 0  # default retention: 90 days


def test_descriptions_never_keep_email_addresses(state_store: StateStore) -> None:
    written = state_store.audit.record(entry(
        8, AuditResult.NEEDS_REVIEW, reason_code="LikelyDuplicate",
        description="Dataverse said: duplicate of Jane.Doe+shop@example.co.uk (contact 9)",
    ))
    (read,) = state_store.audit.recent(FLOW)
    assert "example.co.uk" not in read.description and "Jane.Doe" not in read.description
    assert read.description == "Dataverse said: duplicate of <email> (contact 9)"
    assert written == read


def test_invalid_entries_name_the_field() -> None:
    with pytest.raises(ValidationError, match="result"):
        entry(1, result="exploded")
    with pytest.raises(ValidationError, match="flow"):
        entry(1, flow="")
    long = entry(1, description="x" * 5000)
    assert len(long.description) == 2000
