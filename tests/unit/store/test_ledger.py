"""Ledger against Azurite: processed message keys, expiry by an injected clock, concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

from shared.store import StateStore
from shared.store.tables import write_in_transactions


def test_record_then_seen(state_store: StateStore) -> None:
    ledger = state_store.ledger
    assert ledger.seen("msg-1") is False
    assert ledger.record("msg-1") is True
    assert ledger.record("msg-1") is False
    assert ledger.seen("msg-1") is True
    assert ledger.seen("msg-2") is False


def test_keys_expire_after_the_retention(state_store: StateStore, clock) -> None:
    ledger = state_store.with_clock(clock).ledger
    assert ledger.retention == timedelta(days=14)
    ledger.record("bp:contact:1:v1")
    clock.advance(days=14, seconds=-1)
    assert ledger.seen("bp:contact:1:v1") is True
    assert ledger.record("bp:contact:1:v1") is False
    clock.advance(seconds=1)
    assert ledger.seen("bp:contact:1:v1") is False  # expired counts as unseen
    assert ledger.record("bp:contact:1:v1") is True  # and may be recorded again
    assert ledger.seen("bp:contact:1:v1") is True


def test_ttl_overrides_the_retention(state_store: StateStore, clock) -> None:
    ledger = state_store.with_clock(clock).ledger
    ledger.record("short", ttl=timedelta(minutes=5))
    clock.advance(minutes=5)
    assert ledger.seen("short") is False


def test_seen_many_returns_live_keys_only(state_store: StateStore, clock) -> None:
    ledger = state_store.with_clock(clock).ledger
    old = [f"old-{n}" for n in range(3)]
    for key in old:
        ledger.record(key, ttl=timedelta(hours=1))
    clock.advance(hours=2)
    fresh = [f"fresh/{n}#?" for n in range(40)]  # many keys, reserved characters
    for key in fresh:
        ledger.record(key)
    assert ledger.seen_many([*old, *fresh, "never"]) == set(fresh)
    assert ledger.seen_many([]) == set()


def test_concurrent_receivers_record_a_key_once(azurite: str, state_store: StateStore) -> None:
    receivers = [
        StateStore.from_connection_string(azurite, table_prefix=state_store.table_prefix) for _ in range(4)
    ]
    barrier = threading.Barrier(len(receivers))
    results: list[bool] = []

    def receive(store: StateStore) -> None:
        barrier.wait()
        results.append(store.ledger.record("same-message"))

    threads = [threading.Thread(target=receive, args=(r,)) for r in receivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    for receiver in receivers:
        receiver.close()


def test_purge_expired_removes_only_expired_rows(state_store: StateStore, clock) -> None:
    ledger = state_store.with_clock(clock).ledger
    for n in range(5):
        ledger.record(f"a-{n}", ttl=timedelta(days=1))
    for n in range(3):
        ledger.record(f"b-{n}", ttl=timedelta(days=30))
    clock.advance(days=2)
    assert ledger.purge_expired() == 5
    remaining = sorted(row["RowKey"] for row in ledger.table.list_entities())
    assert remaining == ["b-0", "b-1", "b-2"]
    assert ledger.purge_expired() == 0


def test_forget_makes_a_key_unseen(state_store: StateStore) -> None:
    ledger = state_store.ledger
    ledger.record("k")
    ledger.forget("k")
    assert ledger.seen("k") is False
    ledger.forget("k")  # absent: no error


def test_purge_handles_more_rows_than_one_page(state_store: StateStore, clock) -> None:
    ledger = state_store.with_clock(clock).ledger
    expired_at = clock.now - timedelta(seconds=1)
    rows = [
        {
            "PartitionKey": format(n % 16, "x"),
            "RowKey": f"bulk-{n}",
            "recorded_at": expired_at,
            "expires_at": expired_at,
        }
        for n in range(1_010)
    ]
    write_in_transactions(ledger.table, "create", rows, "seed")
    ledger.record("live")
    assert ledger.purge_expired() == 1_010
    assert [row["RowKey"] for row in ledger.table.list_entities()] == ["live"]


def test_record_for_grants_the_key_again_only_to_its_holder(state_store: StateStore, clock) -> None:
    ledger = state_store.with_clock(clock).ledger
    assert ledger.record_for("dl-207", "message-a") is True
    assert ledger.record_for("dl-207", "message-a") is True  # its redelivery or resubmitted copy
    assert ledger.record_for("dl-207", "message-b") is False  # another notice of the same record
    assert ledger.record("dl-207", holder="message-a") is False  # record() stays strict
    assert ledger.holder_of("dl-207") == "message-a"
    ledger.forget("dl-207")
    assert ledger.record_for("dl-207", "message-b") is True
    clock.advance(days=15)
    assert ledger.holder_of("dl-207") is None  # expired
