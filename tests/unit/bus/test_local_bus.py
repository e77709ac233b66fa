"""The local bus behaves like Service Bus: each semantic a flow or operator relies on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from shared.bus.local import (
    FILTER_EVALUATION_DEAD_LETTER_REASON,
    MAX_DELIVERY_COUNT_EXCEEDED,
    TTL_EXPIRED,
    LocalBus,
    MessageLockLostError,
    UnknownEntityError,
)
from shared.bus.port import BusError, BusPublisher, MessageTooLargeError, OutgoingMessage
from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, Topology, load_topology
from tests.unit.bus.conftest import FakeClock, subscription, topology

OpenBus = Callable[..., LocalBus]

TWO_SUBS = topology(
    subscription("contacts", "entity = 'contact'"),
    subscription("customers", "entity IN ('contact', 'account')"),
)


def msg(message_id: str, entity: str = "contact", **kwargs) -> OutgoingMessage:
    props = {"entity": entity, **kwargs.pop("props", {})}
    return OutgoingMessage(body=f'{{"id":"{message_id}"}}'.encode(), message_id=message_id,
                           application_properties=props, **kwargs)


def test_local_bus_implements_the_publisher_port(open_bus: OpenBus) -> None:
    assert isinstance(open_bus(TWO_SUBS), BusPublisher)


def test_fan_out_copies_to_every_matching_subscription_and_drops_unmatched(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("c1", "contact"), msg("a1", "account"), msg("p1", "product")])
    assert [m.message_id for m in bus.receive("orders", "contacts", 10)] == ["c1"]
    assert [m.message_id for m in bus.receive("orders", "customers", 10)] == ["c1", "a1"]
    for sub in ("contacts", "customers"):
        assert bus.counts("orders", sub).dead_letter == 0  # p1 matched nothing: gone


def test_receive_is_fifo_and_copies_keep_all_message_fields(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [
        OutgoingMessage(b"first", "m1", {"entity": "contact", "n": 1, "ok": True}, subject="s",
                        content_type="application/json", correlation_id="corr"),
        msg("m2"),
    ])
    first, second = bus.receive("orders", "contacts", 5)
    assert first.sequence_number < second.sequence_number
    assert (first.body, first.subject, first.content_type, first.correlation_id) == (
        b"first", "s", "application/json", "corr")
    assert first.application_properties == {"entity": "contact", "n": 1, "ok": True}
    assert first.delivery_count == 1
    assert (first.topic, first.subscription) == ("orders", "contacts")


def test_peek_lock_hides_the_message_until_the_lock_expires(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts")
    assert locked.locked_until == clock.now + timedelta(minutes=1)
    assert bus.receive("orders", "contacts") == []
    clock.advance(seconds=61)
    [again] = bus.receive("orders", "contacts")
    assert again.message_id == "m1" and again.delivery_count == 2
    assert again.lock_token != locked.lock_token
    with pytest.raises(MessageLockLostError):
        bus.complete(locked)  # the first lock is gone
    bus.complete(again)
    assert bus.counts("orders", "contacts").active == 0


def test_renew_lock_keeps_the_message_locked(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts")
    clock.advance(seconds=50)
    assert bus.renew_lock(locked) == clock.now + timedelta(minutes=1)
    clock.advance(seconds=50)  # 100 s after receive: past the original lock
    assert bus.receive("orders", "contacts") == []
    bus.complete(locked)
    clock.advance(minutes=5)
    assert bus.receive("orders", "contacts") == []


def test_lock_duration_can_be_given_per_receive(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts", lock_duration=timedelta(seconds=10))
    clock.advance(seconds=11)
    with pytest.raises(MessageLockLostError):
        bus.renew_lock(locked)
    assert len(bus.receive("orders", "contacts")) == 1


def test_complete_removes_the_message_and_settling_twice_fails(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts")
    bus.complete(locked)
    with pytest.raises(MessageLockLostError):
        bus.complete(locked)
    with pytest.raises(MessageLockLostError):
        bus.abandon(locked)
    assert bus.counts("orders", "contacts").active == 0
    assert [m.message_id for m in bus.receive("orders", "customers")] == ["m1"]  # other copy intact


def test_abandon_releases_at_once_and_can_modify_properties(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts")
    bus.abandon(locked, {"last_error": "timeout"})
    [again] = bus.receive("orders", "contacts")
    assert again.delivery_count == 2
    assert again.application_properties == {"entity": "contact", "last_error": "timeout"}


def test_explicit_dead_letter_keeps_reason_and_description(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts")
    bus.dead_letter(locked, reason="ValidationFailed", description="contact 42: email is invalid")
    assert bus.receive("orders", "contacts") == []
    [dead] = bus.peek_dead_letters("orders", "contacts")
    assert (dead.message_id, dead.dead_letter_reason, dead.dead_letter_error_description) == (
        "m1", "ValidationFailed", "contact 42: email is invalid")
    assert dead.lock_token == "" and dead.locked_until is None
    assert bus.counts("orders", "contacts").dead_letter == 1
    with pytest.raises(BusError, match="peeked message cannot be settled"):
        bus.complete(dead)


def test_abandon_at_max_delivery_count_dead_letters(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)  # maxDeliveryCount 3
    bus.publish("orders", [msg("m1")])
    for attempt in (1, 2):
        [locked] = bus.receive("orders", "contacts")
        assert locked.delivery_count == attempt
        bus.abandon(locked)
        assert bus.counts("orders", "contacts").dead_letter == 0
    [locked] = bus.receive("orders", "contacts")
    bus.abandon(locked)
    assert bus.receive("orders", "contacts") == []
    [dead] = bus.peek_dead_letters("orders", "contacts")
    assert dead.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert dead.delivery_count == 3
    assert "3 delivery attempts" in (dead.dead_letter_error_description or "")


def test_lock_expiry_at_max_delivery_count_dead_letters(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    for _ in range(3):
        assert len(bus.receive("orders", "contacts")) == 1
        clock.advance(minutes=2)  # the worker "crashed": the lock just runs out
    assert bus.receive("orders", "contacts") == []
    [dead] = bus.peek_dead_letters("orders", "contacts")
    assert dead.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED


def test_scheduled_messages_are_invisible_until_their_time(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    at = clock.now + timedelta(minutes=5)
    bus.publish_scheduled("orders", [msg("later")], at)
    bus.publish("orders", [msg("now")])
    [now] = bus.receive("orders", "contacts", 10)
    assert now.message_id == "now"
    assert bus.counts("orders", "contacts").scheduled == 1
    # peek shows locked messages but not scheduled ones
    assert [m.message_id for m in bus.peek("orders", "contacts")] == ["now"]
    bus.complete(now)
    clock.advance(minutes=4, seconds=59)
    assert bus.receive("orders", "contacts") == []
    clock.advance(seconds=1)
    [later] = bus.receive("orders", "contacts")
    assert later.scheduled_enqueue_time_utc == at
    assert later.enqueued_time_utc == at
    assert bus.counts("orders", "contacts").scheduled == 0


def test_duplicate_detection_drops_same_id_within_the_window(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)  # window PT10M
    bus.publish("orders", [msg("dup"), msg("dup")])
    clock.advance(minutes=9)
    bus.publish("orders", [msg("dup"), msg("other")])
    received = bus.receive("orders", "contacts", 10)
    assert [m.message_id for m in received] == ["dup", "other"]
    for m in received:
        bus.complete(m)
    clock.advance(minutes=1, seconds=1)  # 10 min after "dup" was first accepted
    bus.publish("orders", [msg("dup")])
    assert [m.message_id for m in bus.receive("orders", "contacts", 10)] == ["dup"]


def test_topic_without_duplicate_detection_accepts_repeats(open_bus: OpenBus) -> None:
    bus = open_bus(topology(subscription("all", "1 = 1"), requiresDuplicateDetection=False))
    bus.publish("orders", [msg("dup"), msg("dup")])
    assert len(bus.receive("orders", "all", 10)) == 2


def test_ttl_expiry_dead_letters_when_the_subscription_says_so(open_bus: OpenBus, clock: FakeClock) -> None:
    topo = topology(
        subscription("keeps", "1 = 1", deadLetteringOnMessageExpiration=True),
        subscription("drops", "1 = 1", deadLetteringOnMessageExpiration=False),
    )
    bus = open_bus(topo)
    bus.publish("orders", [msg("short", time_to_live=timedelta(seconds=30)), msg("long")])
    [short] = bus.peek("orders", "keeps", 1)
    assert short.expires_at_utc == clock.now + timedelta(seconds=30)
    clock.advance(seconds=31)
    assert [m.message_id for m in bus.receive("orders", "keeps", 10)] == ["long"]
    assert [m.message_id for m in bus.receive("orders", "drops", 10)] == ["long"]
    [dead] = bus.peek_dead_letters("orders", "keeps")
    assert (dead.message_id, dead.dead_letter_reason) == ("short", TTL_EXPIRED)
    assert bus.counts("orders", "drops").dead_letter == 0


def test_subscription_default_ttl_applies_and_dlq_has_no_ttl(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(topology(subscription("s", "1 = 1", defaultMessageTimeToLive="PT1H")))
    bus.publish("orders", [msg("m1", time_to_live=timedelta(days=2))])  # longer than the sub allows
    clock.advance(minutes=61)
    assert bus.receive("orders", "s") == []
    assert bus.counts("orders", "s").dead_letter == 1
    clock.advance(days=30)
    assert [m.message_id for m in bus.peek_dead_letters("orders", "s")] == ["m1"]


def test_locked_message_does_not_expire_while_locked(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1", time_to_live=timedelta(seconds=30))])
    [locked] = bus.receive("orders", "contacts")
    clock.advance(seconds=40)
    bus.complete(locked)
    assert bus.counts("orders", "contacts").dead_letter == 0


def test_state_survives_closing_and_reopening_the_file(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("locked"), msg("dead"), msg("waiting")])
    bus.publish_scheduled("orders", [msg("scheduled")], clock.now + timedelta(minutes=10))
    locked, dead, waiting = bus.receive("orders", "contacts", 3)
    bus.dead_letter(dead, "Poison", "bad record")
    bus.abandon(waiting)
    bus.close()
    with pytest.raises(BusError):
        bus.check()

    reopened = open_bus(TWO_SUBS)
    reopened.check()
    assert [m.message_id for m in reopened.peek_dead_letters("orders", "contacts")] == ["dead"]
    assert reopened.counts("orders", "contacts").scheduled == 1
    [again] = reopened.receive("orders", "contacts", 10)  # "locked" is still locked
    assert (again.message_id, again.delivery_count) == ("waiting", 2)
    reopened.complete(locked)  # the lock taken before the restart is still valid
    reopened.complete(again)
    reopened.publish("orders", [msg("dead")])  # duplicate history survived: dropped
    assert reopened.receive("orders", "customers", 10)[-1].message_id == "waiting"
    clock.advance(minutes=10)
    assert [m.message_id for m in reopened.receive("orders", "contacts", 10)] == ["scheduled"]


def test_lock_expiry_is_applied_after_a_restart(open_bus: OpenBus, clock: FakeClock) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    [locked] = bus.receive("orders", "contacts")
    bus.close()
    clock.advance(minutes=2)
    reopened = open_bus(TWO_SUBS)
    [again] = reopened.receive("orders", "contacts")
    assert again.message_id == "m1" and again.delivery_count == 2
    with pytest.raises(MessageLockLostError):
        reopened.complete(locked)


def test_replay_to_reaches_only_the_named_subscription_with_the_real_topology(open_bus: OpenBus) -> None:
    real = load_topology(DEFAULT_TOPOLOGY_PATH)
    raw = json.loads(Path(DEFAULT_TOPOLOGY_PATH).read_text())
    # Add a second flow on the same topic whose rule follows the file's own pattern, so
    # "only X" is observable even while the file has one subscription per topic.
    topic = raw["topics"][0]
    original = next(s for s in topic["subscriptions"] if s["name"] == "customers-to-dataverse")
    twin = json.loads(json.dumps(original).replace(original["name"], "twin-flow"))
    topic["subscriptions"].append(twin)
    bus = open_bus(Topology.model_validate(raw))
    name, sub = topic["name"], original["name"]
    entity = "contact"
    assert compile_check(real, name, sub, entity)

    bus.publish(name, [msg("fresh", entity), msg("replayed", entity, props={"replay_to": sub}),
                       msg("for-twin", entity, props={"replay_to": "twin-flow"})])
    assert [m.message_id for m in bus.receive(name, sub, 10)] == ["fresh", "replayed"]
    assert [m.message_id for m in bus.receive(name, "twin-flow", 10)] == ["fresh", "for-twin"]


def compile_check(topo: Topology, topic: str, sub: str, entity: str) -> bool:
    """The real file's rule for `sub` accepts a fresh notice of `entity`."""
    from shared.bus.sqlfilter import compile_filter

    rule = topo.topic(topic).subscription(sub).rule.sql_filter
    return compile_filter(rule).matches({"entity": entity}, {})


def test_real_topology_file_routes_replay_to_on_every_topic(tmp_path: Path, clock: FakeClock) -> None:
    with LocalBus(tmp_path / "real.sqlite3", load_topology(), clock=clock) as bus:
        for topic in bus.topology.topics:
            for sub in topic.subscriptions:
                entity = re.findall(r"'([^']+)'", sub.rule.sql_filter)[0]  # the first it takes
                bus.publish(topic.name, [
                    msg(f"{sub.name}-mine", entity, props={"replay_to": sub.name}),
                    msg(f"{sub.name}-other", entity, props={"replay_to": "another-flow"}),
                ])
                assert [m.message_id for m in bus.receive(topic.name, sub.name, 10)] == [f"{sub.name}-mine"]


def test_filter_evaluation_error_dead_letters_or_drops_per_subscription(open_bus: OpenBus) -> None:
    topo = topology(
        subscription("strict", "qty > 5", deadLetteringOnFilterEvaluationExceptions=True),
        subscription("lenient", "qty > 5", deadLetteringOnFilterEvaluationExceptions=False),
    )
    bus = open_bus(topo)
    bus.publish("orders", [msg("bad", props={"qty": "many"}), msg("good", props={"qty": 9})])
    [dead] = bus.peek_dead_letters("orders", "strict")
    assert dead.message_id == "bad" and dead.dead_letter_reason == FILTER_EVALUATION_DEAD_LETTER_REASON
    assert "cannot compare" in (dead.dead_letter_error_description or "")
    assert [m.message_id for m in bus.receive("orders", "strict", 10)] == ["good"]
    assert [m.message_id for m in bus.receive("orders", "lenient", 10)] == ["good"]
    assert bus.counts("orders", "lenient").dead_letter == 0


def test_too_large_message_is_refused_and_nothing_of_the_batch_is_sent(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS, max_message_bytes=1024)
    big = OutgoingMessage(b"x" * 2000, "big", {"entity": "contact"})
    with pytest.raises(MessageTooLargeError, match="big"):
        bus.publish("orders", [msg("small"), big])
    assert bus.counts("orders", "contacts").active == 0
    default = open_bus(TWO_SUBS)
    with pytest.raises(MessageTooLargeError):
        default.publish("orders", [OutgoingMessage(b"x" * (256 * 1024), "huge", {"entity": "contact"})])


def test_bad_input_names_the_problem(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    with pytest.raises(UnknownEntityError, match="unknown topic 'nope'"):
        bus.publish("nope", [msg("m1")])
    with pytest.raises(UnknownEntityError, match="no subscription 'ghost'"):
        bus.receive("orders", "ghost")
    with pytest.raises(BusError, match="message_id"):
        bus.publish("orders", [msg("x" * 129)])
    with pytest.raises(BusError, match="property 'when' has unsupported type"):
        bus.publish("orders", [msg("m1", props={"when": object()})])


def test_a_broken_rule_in_the_topology_is_named_at_start(tmp_path: Path) -> None:
    from shared.bus.topology import TopologyError

    bad = topology(subscription("contacts", "entity = 'contact"))
    with pytest.raises(TopologyError, match=r"subscription 'contacts' rule '\$Default'.*position 9"):
        LocalBus(tmp_path / "bus.sqlite3", bad)


def test_deferred_messages_come_back_only_by_sequence_number(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1"), msg("m2")])
    [first] = bus.receive("orders", "contacts")
    bus.defer(first)
    assert [m.message_id for m in bus.receive("orders", "contacts", 10)] == ["m2"]
    assert bus.counts("orders", "contacts").deferred == 1
    [back] = bus.receive_deferred("orders", "contacts", [first.sequence_number])
    assert back.message_id == "m1"
    bus.complete(back)
    assert bus.counts("orders", "contacts").deferred == 0


def test_dead_letter_queue_can_be_received_settled_and_purged(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1"), msg("m2"), msg("m3")])
    for locked in bus.receive("orders", "contacts", 3):
        bus.dead_letter(locked, "Poison")
    [one] = bus.receive_dead_letters("orders", "contacts")
    bus.abandon(one)  # back into the DLQ, not the active queue
    [one] = bus.receive_dead_letters("orders", "contacts")
    with pytest.raises(BusError, match="cannot be dead-lettered again"):
        bus.dead_letter(one)
    bus.complete(one)
    assert [m.message_id for m in bus.peek_dead_letters("orders", "contacts")] == ["m2", "m3"]
    assert [m.message_id for m in bus.peek_dead_letters("orders", "contacts", from_sequence=3)] == ["m3"]
    assert bus.purge_dead_letters("orders", "contacts") == 2
    assert bus.counts("orders", "contacts").dead_letter == 0


def test_concurrent_threads_never_get_the_same_message(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg(f"m{i}") for i in range(120)])
    seen: list[str] = []
    guard = threading.Lock()

    def worker() -> None:
        own = open_bus(TWO_SUBS)  # a second connection, as another host thread pool would
        while batch := own.receive("orders", "contacts", 3):
            for m in batch:
                own.complete(m)
            with guard:
                seen.extend(m.message_id for m in batch)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(f"m{i}" for i in range(120))


_RECEIVER = """
import sys
from datetime import UTC, datetime
from shared.bus.local import LocalBus
from tests.unit.bus.conftest import subscription, topology
topo = topology(subscription("contacts", "entity = 'contact'"))
bus = LocalBus(sys.argv[1], topo, clock=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
while batch := bus.receive("orders", "contacts", 2):
    for m in batch:
        bus.complete(m)
        print(m.message_id, flush=True)
bus.close()
"""


def test_several_processes_share_one_file_without_double_delivery(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    topo = topology(subscription("contacts", "entity = 'contact'"))
    with LocalBus(path, topo, clock=FakeClock()) as bus:
        bus.publish("orders", [msg(f"m{i}") for i in range(60)])
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen([sys.executable, "-c", _RECEIVER, str(path)], cwd=root,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    received: list[str] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        received.extend(out.split())
    assert sorted(received) == sorted(f"m{i}" for i in range(60))


def test_one_bus_object_is_safe_to_share_between_threads(open_bus: OpenBus) -> None:
    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg(f"m{i}") for i in range(90)])
    seen: list[str] = []
    guard = threading.Lock()

    def worker() -> None:
        while batch := bus.receive("orders", "contacts", 2):
            for m in batch:
                bus.complete(m)
            with guard:
                seen.extend(m.message_id for m in batch)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(f"m{i}" for i in range(90))


def test_storage_failures_surface_as_bus_errors_and_roll_back(open_bus: OpenBus, tmp_path: Path) -> None:
    import sqlite3

    bus = open_bus(TWO_SUBS)
    bus.publish("orders", [msg("m1")])
    other = sqlite3.connect(tmp_path / "bus.sqlite3")
    other.execute("DROP INDEX ix_entries_expiry")
    other.execute("ALTER TABLE entries RENAME COLUMN expires_at TO gone")  # fault injection
    other.close()
    with pytest.raises(BusError, match="local bus operation failed"):
        bus.receive("orders", "contacts")
    with pytest.raises(BusError):
        bus.publish("orders", [msg("m2")])
    bus.check()  # the connection itself is still usable
