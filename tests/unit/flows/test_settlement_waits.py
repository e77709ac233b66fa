"""Waiting on another worker's claim spends no attempt, up to a bounded total wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.bus.settlement import MAX_WAIT_SECONDS, Settlement
from shared.events import ChangeNotice, Envelope
from shared.outcomes import DeadLetter, RetryLater
from shared.resilience import BackoffPolicy

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WAIT = RetryLater(
    "StateConflict", "Dataverse contact x (claimed): held by instance-b/7", delay=40, waiting=True
)


class Recorder:
    def __init__(self) -> None:
        self.scheduled: list[Any] = []
        self.settled: list[str] = []

    # publisher
    def publish_scheduled(self, topic: str, messages: list[Any], enqueue_at: datetime) -> None:
        self.scheduled += [
            (Envelope.from_body(m.body), m.message_id, (enqueue_at - NOW).total_seconds()) for m in messages
        ]

    # message actions
    def complete(self, message: Any) -> None:
        self.settled.append("completed")

    def abandon(self, message: Any) -> None:
        self.settled.append("abandoned")

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        if deadletter_reason == "lock-lost":
            raise RuntimeError("MessageLockLostError")
        self.settled.append(f"dead-lettered {deadletter_reason}")


def settle(envelope: Envelope, outcome: Any, recorder: Recorder) -> str:
    settlement = Settlement(
        recorder,
        topic="dataverse-changes",
        subscription="customers-to-brightpearl",  # type: ignore[arg-type]
        policy=BackoffPolicy(max_attempts=3, base_delay=15, max_delay=60),
        clock=lambda: NOW,
        rng=random.Random(1),
    )
    return settlement.apply(object(), envelope, outcome, recorder)


def envelope(**update: Any) -> Envelope:
    notice = ChangeNotice(
        system="dataverse",
        entity="contact",
        ids=("x",),
        observed_at=NOW,
        source="/dataverse/org",
        version="v1",
    )
    return Envelope.wrap(notice).model_copy(update=update)


def test_a_wait_keeps_the_attempt_even_at_the_last_one_and_gets_its_own_message_id():
    recorder = Recorder()
    assert settle(envelope(attempt=3), WAIT, recorder) == "retry_scheduled"  # 3 = max_attempts
    [(copy, message_id, delay)] = recorder.scheduled
    assert copy.attempt == 3 and copy.replay_to == "customers-to-brightpearl"
    assert 12 <= delay <= 18 and copy.waited == round(delay + 0.5)  # base delay, below the lease hint
    assert message_id.endswith(f".a3.w{copy.waited}")
    assert recorder.settled == ["completed"]


def test_waits_past_the_bound_spend_attempts_and_end_in_retries_exhausted():
    recorder = Recorder()
    settle(envelope(attempt=1, waited=int(MAX_WAIT_SECONDS) - 5), WAIT, recorder)
    [(copy, _, _)] = recorder.scheduled
    assert copy.attempt == 2  # counted: a claim that is never released cannot loop forever
    settle(envelope(attempt=3, waited=int(MAX_WAIT_SECONDS)), WAIT, recorder)
    assert recorder.settled[-1] == "dead-lettered RetriesExhausted"


def test_a_failed_dead_letter_call_runs_the_outcomes_undo():
    undone: list[bool] = []
    recorder = Recorder()
    outcome = DeadLetter("lock-lost", "the lock was lost", undo=lambda: undone.append(True))
    with pytest.raises(RuntimeError):  # the runner logs it; the broker redelivers
        settle(envelope(), outcome, recorder)
    assert undone == [True]
