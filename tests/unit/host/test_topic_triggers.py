"""Service Bus topic triggers through the local host and the local bus.

Functions get genuine azure.servicebus.ServiceBusReceivedMessage objects decoded by the
extension, and every settlement path must show up in the bus's state.
"""

from __future__ import annotations

import logging
import time

import azure.servicebus
import pytest
from azurefunctions.extensions.bindings.servicebus.serviceBusMessageActions import SettlementError

from shared.bus.local import MAX_DELIVERY_COUNT_EXCEEDED
from shared.bus.port import OutgoingMessage
from tests.unit.host.conftest import TOPIC

APP = "tests.unit.host.apps.topic_app"


def publish(bus, target: str, *ids: str, **properties) -> None:
    bus.publish(
        TOPIC,
        [
            OutgoingMessage(
                body=f'{{"id": "{i}"}}'.encode(),
                message_id=i,
                application_properties={"target": target, **properties},
            )
            for i in ids
        ],
    )


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def received(host, function: str) -> list:
    return [m for name, m in host.module.RECEIVED if name == function]


def test_function_gets_a_genuine_sdk_message(make_host, bus, clock):
    bus.publish(
        TOPIC,
        [
            OutgoingMessage(
                body=b'{"a": 1}',
                message_id="msg-1",
                subject="contact",
                correlation_id="corr-1",
                content_type="application/json",
                application_properties={"target": "auto", "entity": "contact", "n": 3},
            )
        ],
    )
    with make_host(APP, bus=bus, clock=clock) as host:
        host.wait_idle()

    [msg] = received(host, "auto_fn")
    assert type(msg) is azure.servicebus.ServiceBusReceivedMessage
    assert b"".join(msg.body) == b'{"a": 1}'
    assert msg.message_id == "msg-1"
    assert msg.subject == "contact"
    assert msg.correlation_id == "corr-1"
    assert msg.content_type == "application/json"
    # As the SDK-type binding delivers them: keys (and string values) as bytes.
    assert msg.application_properties == {b"target": b"auto", b"entity": b"contact", b"n": 3}
    assert msg.delivery_count == 1
    assert msg.sequence_number == 1
    assert msg.enqueued_time_utc == clock()
    assert msg.locked_until_utc == clock() + __import__("datetime").timedelta(seconds=30)
    assert msg.lock_token is not None
    assert bus.counts(TOPIC, "auto").active == 0  # auto-completed


def test_exception_abandons_and_the_redelivery_counts_up(make_host, bus, clock, caplog):
    publish(bus, "auto", "flaky-1")
    host = make_host(APP, bus=bus, clock=clock)
    host.module.FAIL_FIRST.add("flaky-1")
    with caplog.at_level(logging.INFO, logger="sandbox.host"), host:
        host.wait_idle()

    failed = [r for r in caplog.records if "Executed 'Functions.auto_fn' (Failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None  # logged with its traceback
    details = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Trigger Details")]
    assert [("MessageId: flaky-1" in d, f"DeliveryCount: {n}" in d) for n, d in enumerate(details, 1)] == [
        (True, True),
        (True, True),
    ]

    assert [m.delivery_count for m in received(host, "auto_fn")] == [1, 2]
    counts = bus.counts(TOPIC, "auto")
    assert (counts.active, counts.dead_letter) == (0, 0)


def test_a_message_that_always_fails_ends_in_the_dead_letter_queue(make_host, bus, clock):
    publish(bus, "auto", "always-fail-1")
    with make_host(APP, bus=bus, clock=clock) as host:
        host.wait_idle()

    assert [m.delivery_count for m in received(host, "auto_fn")] == [1, 2, 3]
    [dead] = bus.peek_dead_letters(TOPIC, "auto")
    assert dead.message_id == "always-fail-1"
    assert dead.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED


@pytest.mark.parametrize(
    ("action", "deliveries", "expected"),
    [
        ("complete", 1, {"active": 0, "dead_letter": 0, "deferred": 0}),
        ("renew-complete", 1, {"active": 0, "dead_letter": 0, "deferred": 0}),
        ("deadletter", 1, {"active": 0, "dead_letter": 1, "deferred": 0}),
        ("defer", 1, {"active": 0, "dead_letter": 0, "deferred": 1}),
        ("abandon", 3, {"active": 0, "dead_letter": 1, "deferred": 0}),
        ("raise", 3, {"active": 0, "dead_letter": 1, "deferred": 0}),
        ("none", 3, {"active": 0, "dead_letter": 1, "deferred": 0}),
    ],
)
def test_manual_settlement_reaches_the_bus(make_host, bus, clock, action, deliveries, expected):
    publish(bus, "manual", "m-1")
    host = make_host(APP, bus=bus, clock=clock)
    host.module.ACTIONS["m-1"] = action
    with host:
        host.wait_idle()

    assert len(received(host, "manual_fn")) == deliveries
    assert host.module.ACTION_ERRORS == []
    counts = bus.counts(TOPIC, "manual")
    assert {
        "active": counts.active,
        "dead_letter": counts.dead_letter,
        "deferred": counts.deferred,
    } == expected


@pytest.mark.parametrize("action", ["deadletter", "deadletter-positional"])
def test_deadletter_carries_reason_and_description(make_host, bus, clock, action):
    publish(bus, "manual", "bad-1")
    host = make_host(APP, bus=bus, clock=clock)
    host.module.ACTIONS["bad-1"] = action
    with host:
        host.wait_idle()

    [dead] = bus.peek_dead_letters(TOPIC, "manual")
    assert (dead.message_id, dead.dead_letter_reason, dead.dead_letter_error_description) == (
        "bad-1",
        "BadPayload",
        "field 'id' is missing",
    )


def test_unsettled_message_is_abandoned_with_a_warning(make_host, bus, clock, caplog):
    publish(bus, "manual", "forgotten-1")
    host = make_host(APP, bus=bus, clock=clock)
    host.module.ACTIONS["forgotten-1"] = "none"
    with caplog.at_level(logging.WARNING, logger="sandbox.host"), host:
        host.wait_idle()

    assert [m.delivery_count for m in received(host, "manual_fn")] == [1, 2, 3]
    warnings = [r.getMessage() for r in caplog.records if "without settling" in r.getMessage()]
    assert len(warnings) == 3 and "forgotten-1" in warnings[0]
    [dead] = bus.peek_dead_letters(TOPIC, "manual")
    assert dead.dead_letter_reason == MAX_DELIVERY_COUNT_EXCEEDED


def test_settling_twice_raises_settlement_error_and_keeps_the_first_outcome(make_host, bus, clock):
    publish(bus, "manual", "twice-1")
    host = make_host(APP, bus=bus, clock=clock)
    host.module.ACTIONS["twice-1"] = "complete-twice"
    with host:
        host.wait_idle()

    [error] = host.module.ACTION_ERRORS
    assert isinstance(error, SettlementError) and error.method == "complete"
    assert bus.counts(TOPIC, "manual") == type(bus.counts(TOPIC, "manual"))(0, 0, 0, 0)


@pytest.mark.parametrize(
    ("action", "deliveries", "errors"),
    [
        ("advance-renew-complete", [1], 0),
        ("advance-complete", [1, 2], 1),  # control: without the renewal the lock is lost
    ],
)
def test_renew_message_lock_keeps_the_message_past_its_first_lock(
    make_host, bus, clock, action, deliveries, errors
):
    # Host renewal off (limit 0) so only the function's own renewal can keep the lock.
    publish(bus, "manual", "r-1")
    host = make_host(
        APP,
        bus=bus,
        clock=clock,
        host_json={"extensions": {"serviceBus": {"maxAutoLockRenewalDuration": "00:00:00"}}},
    )
    host.module.CLOCK.append(clock)
    host.module.ACTIONS["r-1"] = action
    with host:
        host.wait_idle()

    assert [m.delivery_count for m in received(host, "manual_fn")] == deliveries
    assert len(host.module.ACTION_ERRORS) == errors
    assert all(isinstance(e, SettlementError) for e in host.module.ACTION_ERRORS)
    assert bus.counts(TOPIC, "manual").active == 0


def test_host_json_auto_complete_false_applies_to_triggers_without_their_own_setting(make_host, bus, clock):
    publish(bus, "auto", "plain-1")
    host = make_host(
        APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": {"autoCompleteMessages": False}}}
    )
    with host:
        host.wait_idle()

    # auto_fn never settles itself, so with auto-complete off every delivery is abandoned.
    assert [m.delivery_count for m in received(host, "auto_fn")] == [1, 2, 3]
    assert bus.counts(TOPIC, "auto").dead_letter == 1


def test_trigger_level_auto_complete_overrides_host_json(make_host, bus, clock):
    # host.json says auto-complete; manual_fn's trigger says false, so "none" is not completed.
    publish(bus, "manual", "override-1")
    host = make_host(
        APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": {"autoCompleteMessages": True}}}
    )
    host.module.ACTIONS["override-1"] = "none"
    with host:
        host.wait_idle()

    assert len(received(host, "manual_fn")) == 3
    assert bus.counts(TOPIC, "manual").dead_letter == 1


def test_cardinality_many_gets_batches_of_the_configured_size(make_host, bus, clock):
    publish(bus, "batch", *[f"b-{i}" for i in range(7)])
    host = make_host(
        APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": {"maxMessageBatchSize": 3}}}
    )
    with host:
        host.wait_idle()

    assert host.module.BATCH_SIZES == [3, 3, 1]
    batches = received(host, "batch_fn")
    assert all(type(m) is azure.servicebus.ServiceBusReceivedMessage for batch in batches for m in batch)
    assert [m.message_id for batch in batches for m in batch] == [f"b-{i}" for i in range(7)]
    assert bus.counts(TOPIC, "batch").active == 0


def test_batch_waits_for_the_minimum_size_then_takes_what_it_has(make_host, bus, clock):
    publish(bus, "batch", "w-1", "w-2")
    host = make_host(
        APP,
        bus=bus,
        clock=clock,
        host_json={
            "extensions": {
                "serviceBus": {
                    "maxMessageBatchSize": 10,
                    "minMessageBatchSize": 5,
                    "maxBatchWaitTime": "00:00:00.2",
                }
            }
        },
    )
    with host:
        host.wait_idle()

    assert host.module.BATCH_SIZES == [2]


def test_messages_arriving_during_the_batch_wait_join_the_batch(make_host, bus, clock):
    publish(bus, "batch", "t-1")
    wait = {"maxMessageBatchSize": 10, "minMessageBatchSize": 3, "maxBatchWaitTime": "00:00:30"}
    host = make_host(APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": wait}})
    with host:
        wait_for(lambda: len(host.in_flight()) == 1, "the first message to be held for the batch")
        assert host.module.BATCH_SIZES == []  # one message is below the minimum: the host waits
        publish(bus, "batch", "t-2", "t-3")
        host.wait_idle(timeout=10)  # well before the 30 s wait: the minimum was reached

    assert host.module.BATCH_SIZES == [3]


@pytest.mark.parametrize(
    ("service_bus", "inert"),
    [
        ({"maxConcurrentCalls": 4}, []),  # a single-message trigger reads it
        ({"maxBatchWaitTime": "00:00:05"}, ["maxBatchWaitTime (minMessageBatchSize is 1)"]),
        ({"minMessageBatchSize": 2, "maxBatchWaitTime": "00:00:05"}, []),
    ],
)
def test_host_json_values_the_extension_ignores_are_named_at_start(
    make_host, bus, clock, caplog, service_bus, inert
):
    with caplog.at_level(logging.WARNING, logger="sandbox.host"):
        make_host(APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": service_bus}})
    named = [r.getMessage() for r in caplog.records if "has no effect" in r.getMessage()]
    assert named == [
        f"host.json extensions.serviceBus.{key} has no effect on this app's triggers" for key in inert
    ]


def test_single_message_settings_are_named_when_every_trigger_takes_batches(make_host, bus, clock, caplog):
    settings = {"maxConcurrentCalls": 4, "maxAutoLockRenewalDuration": "00:05:00"}
    with caplog.at_level(logging.WARNING, logger="sandbox.host"):
        make_host(
            "tests.unit.host.apps.long_batch_app",
            bus=bus,
            clock=clock,
            host_json={"extensions": {"serviceBus": settings}},
        )
    assert "serviceBus.maxConcurrentCalls has no effect" in caplog.text
    assert "serviceBus.maxAutoLockRenewalDuration has no effect" in caplog.text


def test_concurrency_is_limited_by_max_concurrent_calls(make_host, bus, clock):
    publish(bus, "limited", *[f"c-{i}" for i in range(6)])
    host = make_host(
        APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": {"maxConcurrentCalls": 2}}}
    )
    state = host.module.LIMIT_STATE
    with host:
        wait_for(lambda: state["entered"] == 2, "two invocations")
        # Give the dispatcher many polls (poll interval 0.02 s) to break the limit if it would.
        time.sleep(0.3)
        assert state["current"] == 2 and state["entered"] == 2
        host.module.LIMIT_RELEASE.set()
        host.wait_idle()

    assert state["entered"] == 6
    assert state["max"] == 2
    assert bus.counts(TOPIC, "limited").active == 0


def test_lock_is_renewed_while_a_long_invocation_runs(make_host, bus, clock):
    publish(bus, "slow", "long-1")  # lock duration 5 s
    host = make_host(APP, bus=bus, clock=clock)
    with host:
        wait_for(host.module.SLOW_ENTERED.is_set, "the slow function to start")
        [first] = host.in_flight()
        assert first.locked_until == clock() + __import__("datetime").timedelta(seconds=5)
        for _ in range(3):  # 9 s in all: well past the original 5 s lock
            before = host.in_flight()[0].locked_until
            clock.advance(3)  # past half the lock duration
            wait_for(lambda before=before: host.in_flight()[0].locked_until > before, "a lock renewal")
        host.module.SLOW_RELEASE.set()
        host.wait_idle()

    assert host.module.SLOW_SETTLE_ERRORS == []
    assert [m.delivery_count for m in received(host, "slow_fn")] == [1]
    assert bus.counts(TOPIC, "slow") == type(bus.counts(TOPIC, "slow"))(0, 0, 0, 0)


def test_renewal_stops_at_max_auto_lock_renewal_duration_and_the_message_is_redelivered(
    make_host, bus, clock
):
    publish(bus, "slow", "long-2")
    host = make_host(
        APP,
        bus=bus,
        clock=clock,
        host_json={"extensions": {"serviceBus": {"maxAutoLockRenewalDuration": "00:00:04"}}},
    )
    with host:
        wait_for(host.module.SLOW_ENTERED.is_set, "the slow function to start")
        start = host.in_flight()[0].locked_until
        clock.advance(3)
        wait_for(lambda: host.in_flight()[0].locked_until > start, "the one renewal within the limit")
        clock.advance(6)  # 9 s after receipt: the renewed lock (until 8 s) has run out
        wait_for(lambda: len(received(host, "slow_fn")) == 2, "the redelivery")
        host.module.SLOW_RELEASE.set()
        host.wait_idle()

    assert [m.delivery_count for m in received(host, "slow_fn")] == [1, 2]
    [error] = host.module.SLOW_SETTLE_ERRORS  # the first invocation lost its lock
    assert isinstance(error, SettlementError)
    assert bus.counts(TOPIC, "slow").active == 0


def test_batch_function_settles_each_message_itself(make_host, bus, clock):
    bus.publish(
        TOPIC,
        [
            OutgoingMessage(
                body=b"{}",
                message_id=f"bm-{i}",
                application_properties={"target": "batch-manual", "kind": kind},
            )
            for i, kind in enumerate(["good", "bad", "good", "skip"])
        ],
    )
    with make_host(APP, bus=bus, clock=clock) as host:
        host.wait_idle()

    batches = received(host, "batch_manual_fn")
    assert [len(b) for b in batches] == [4, 1, 1]  # the unsettled one comes back until it is dead-lettered
    dead = {m.message_id: m.dead_letter_reason for m in bus.peek_dead_letters(TOPIC, "batch-manual")}
    assert dead == {"bm-1": "Invalid", "bm-3": MAX_DELIVERY_COUNT_EXCEEDED}
    assert bus.counts(TOPIC, "batch-manual").active == 0
