"""Recovery after an outage (issue 17 item 5): once an API is back (or has request budget
again after a long throttle), 95 % of the records that waited on it converge within 2 minutes.

The real settlement (scheduled retry copies on the local bus), the real runner and the retry
policy built from the default RETRY_* settings, on a fake clock: 200 records fail with
BrightpearlUnavailable (or a network error) while the outage lasts, the host takes batches of
whatever is due every 5 s, and each record's convergence time is read off the clock. No wall
clock is involved.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.bus.local import LocalBus
from shared.bus.settlement import Settlement
from shared.events import ChangeNotice, Envelope
from shared.flows.runner import run_flow
from shared.outcomes import Completed, RetryLater
from shared.resilience import BackoffPolicy
from shared.settings import RetrySettings

TOPIC, SUBSCRIPTION = "brightpearl-changes", "customers-to-dataverse"
RECORDS = 200
TICK = 5.0  # seconds between the host's receives (fake clock)
BATCH = 20


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Actions:
    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus

    def complete(self, message) -> None:
        self.bus.complete(message)

    def abandon(self, message) -> None:
        self.bus.abandon(message)

    def deadletter(self, message, deadletter_reason=None, deadletter_error_description=None) -> None:
        self.bus.dead_letter(message, deadletter_reason, deadletter_error_description)


class FlakyApi:
    """A flow whose API is down until `back_at`: every record retries as `reason`, then completes."""

    name = SUBSCRIPTION

    def __init__(self, clock: Clock, back_at: datetime, reason: str) -> None:
        self.clock, self.back_at, self.reason = clock, back_at, reason
        self.converged: dict[str, datetime] = {}

    def handle(self, envelopes):
        if self.clock() < self.back_at:
            return [RetryLater(reason=self.reason, error="503 Service Unavailable") for _ in envelopes]
        for envelope in envelopes:
            self.converged.setdefault(envelope.notice.ids[0], self.clock())
        return [Completed() for _ in envelopes]


def run_outage(tmp_path: Path, outage_minutes: float, reason: str) -> tuple[list[float], int]:
    clock = Clock()
    bus = LocalBus(tmp_path / "bus.sqlite3", clock=clock)
    try:
        back_at = clock() + timedelta(minutes=outage_minutes)
        flow = FlakyApi(clock, back_at, reason)
        policy = BackoffPolicy.from_settings(RetrySettings())  # the shipped defaults
        settlement = Settlement(
            bus, topic=TOPIC, subscription=SUBSCRIPTION, policy=policy, clock=clock, rng=random.Random(7)
        )
        bus.publish(
            TOPIC,
            [
                Envelope.wrap(
                    ChangeNotice(
                        system="brightpearl",
                        entity="contact",
                        ids=(str(1000 + i),),
                        operation="updated",
                        observed_at=clock(),
                        source="/brightpearl/acme",
                        version="v1",
                    )
                ).to_message()
                for i in range(RECORDS)
            ],
        )
        actions = Actions(bus)
        deadline = back_at + timedelta(hours=2)
        while clock() < deadline and len(flow.converged) < RECORDS:
            while batch := bus.receive(TOPIC, SUBSCRIPTION, BATCH):
                run_flow(flow, batch, actions, settlement)
            clock.now += timedelta(seconds=TICK)
        dead = bus.counts(TOPIC, SUBSCRIPTION).dead_letter
    finally:
        bus.close()
    return sorted((t - back_at).total_seconds() for t in flow.converged.values()), dead


@pytest.mark.parametrize(
    ("outage_minutes", "reason"),
    [
        (20, "BrightpearlUnavailable"),
        (60, "NetworkTimeout"),
        (30, "BrightpearlThrottled"),
        (30, "DataverseThrottled"),
    ],
)
def test_after_an_outage_95_percent_of_waiting_records_converge_within_two_minutes(
    tmp_path, outage_minutes, reason
):
    after, dead = run_outage(tmp_path, outage_minutes, reason)

    assert dead == 0  # nobody gave up during the outage (RetriesExhausted)
    assert len(after) == RECORDS
    p95 = after[int(0.95 * RECORDS) - 1]
    assert p95 <= 120, f"95th percentile converged {p95:.0f}s after the outage ended"
    assert after[-1] <= 120


def test_a_record_wrong_for_other_reasons_still_gives_up_after_its_attempts():
    policy = BackoffPolicy.from_settings(RetrySettings())
    assert policy.exhausted(policy.max_attempts, reason="DataverseConcurrencyConflict", waiting=60)
    assert not policy.exhausted(policy.max_attempts, reason="DataverseUnavailable", waiting=60)
    assert policy.exhausted(policy.max_attempts, reason="DataverseUnavailable", waiting=policy.outage_give_up)
    # a long throttle (a backlog draining the request budget) is waiting too, not a bad record
    assert not policy.exhausted(policy.max_attempts, reason="BrightpearlThrottled", waiting=600)


def test_availability_delays_stop_growing_at_the_outage_cap_and_stay_spread():
    policy, rng = BackoffPolicy(), random.Random(1)
    delays = [policy.delay(attempt, None, rng, reason="BrightpearlUnavailable") for attempt in range(1, 30)]
    assert max(delays) <= policy.outage_max_delay * (1 + policy.jitter_ratio)
    assert len({round(d) for d in delays[5:]}) > 5  # jitter: not all at the same second
    # other transient errors keep the long exponential backoff
    assert policy.delay(8, None, rng, reason="StateConflict") > 1000
    # a server's own delay still wins
    assert policy.delay(2, 300.0, rng, reason="BrightpearlUnavailable") == 300.0
