"""Batches that outlive their message locks (issue 17 item 3), through the local host.

The production flow trigger (functions.flow_triggers.register_flow) runs a slow fake flow whose
first batch takes 60 s on the fake clock, twice the subscription's 30 s lock. The Service Bus
extension does not renew locks of batch functions, so the trigger must: with renewal every 20 s
the batch settles on its first delivery; without it the local host loses the locks exactly as
Service Bus does (settlement fails with a lost lock, the bus redelivers with delivery count +1).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

from shared import runtime
from shared.bus.local import LocalBus
from shared.events import ChangeNotice, Envelope
from shared.settings import RetrySettings
from tests.unit.host.conftest import TOPIC

APP = "tests.unit.host.apps.long_batch_app"
SUBSCRIPTION = "batch-manual"  # lockDuration PT30S, maxDeliveryCount 3 (conftest)


def publish_notices(bus: LocalBus, clock, count: int) -> None:
    envelopes = [
        Envelope.wrap(
            ChangeNotice(
                system="brightpearl",
                entity="contact",
                ids=(str(100 + i),),
                observed_at=clock(),
                source="/brightpearl/test",
                origin="test",
            )
        )
        for i in range(count)
    ]
    messages = []
    for envelope in envelopes:
        message = envelope.to_message()
        props = {**message.application_properties, "target": SUBSCRIPTION}
        messages.append(type(message)(**{**message.__dict__, "application_properties": props}))
    bus.publish(TOPIC, messages)


def settings(renew_every: float) -> SimpleNamespace:
    return SimpleNamespace(bus=SimpleNamespace(lock_renewal_seconds=renew_every), retry=RetrySettings())


def run_long_batch(make_host, bus, clock, *, renew_every: float, wait_for_renewal: bool):
    host = make_host(APP, bus=bus, clock=clock)
    module = host.module
    module.CLOCK.append(clock)
    # Count renewals that reach the bus, so the fake flow never moves time past a lock
    # before the renewal thread has had its turn.
    renewals = {"n": 0}
    changed = threading.Condition()
    original = host.message_actions.renew_message_lock

    def counting(message):
        original(message)
        with changed:
            renewals["n"] += 1
            changed.notify_all()

    host.message_actions.renew_message_lock = counting
    # Record every completion: (delivery count, None or the settlement error's underlying cause).
    completions: list[tuple[int, str | None]] = []
    complete = host.message_actions.complete

    def recording(message):
        try:
            complete(message)
        except Exception as exc:
            completions.append((message.delivery_count, type(exc.__cause__).__name__))
            raise
        completions.append((message.delivery_count, None))

    host.message_actions.complete = recording
    batch = 4
    if wait_for_renewal:
        module.WAIT_FOR_RENEWALS.append(
            lambda n: _wait(changed, lambda: renewals["n"] >= n * batch, timeout=10.0)
        )
    publish_notices(bus, clock, batch)
    with runtime.override(settings=settings(renew_every), publisher=bus, clock=clock), host:
        host.wait_idle(timeout=30.0)
    return module, completions, renewals["n"]


def _wait(condition: threading.Condition, predicate, timeout: float) -> bool:
    with condition:
        return condition.wait_for(predicate, timeout)


def test_a_batch_longer_than_its_lock_keeps_its_locks_and_settles_once(make_host, bus, clock, caplog):
    module, completions, renewals = run_long_batch(
        make_host, bus, clock, renew_every=20.0, wait_for_renewal=True
    )

    assert module.STEP_RENEWED == [True, True, True]  # 60 s of work, a 30 s lock, renewed each 20 s
    assert renewals >= 12
    assert module.INVOCATIONS == [4]  # settled on the first delivery: no redelivery, no rework
    assert completions == [(1, None)] * 4
    assert bus.counts(TOPIC, SUBSCRIPTION) == type(bus.counts(TOPIC, SUBSCRIPTION))(0, 0, 0, 0)
    assert "lock lost" not in caplog.text.lower()


def test_without_renewal_the_local_host_loses_the_locks_as_service_bus_does(make_host, bus, clock, caplog):
    # Renewal interval far beyond the batch: the control case, as before the fix.
    module, completions, renewals = run_long_batch(
        make_host, bus, clock, renew_every=10_000.0, wait_for_renewal=False
    )

    assert renewals == 0
    # Delivery 1 ran 60 s on a 30 s lock: its settlements failed, the bus redelivered all four
    # (delivery count 2), and the second, quick delivery settled them.
    assert module.INVOCATIONS == [4, 4]
    assert completions == [(1, "MessageLockLostError")] * 4 + [(2, None)] * 4
    assert "settling message" in caplog.text and "will be redelivered" in caplog.text
    assert bus.counts(TOPIC, SUBSCRIPTION).active == 0
    assert bus.counts(TOPIC, SUBSCRIPTION).dead_letter == 0
