"""Applies flow outcomes to received messages: the one settlement adapter (DESIGN §6).

- Completed -> complete.
- RetryLater -> publish a scheduled copy (attempt+1, replay_to = this subscription) after an
  exponential, jittered, capped delay that honours the server's own delay; then complete
  the original. If the copy cannot be published the original is abandoned (nothing lost).
  After the configured attempts -> dead-letter `RetriesExhausted` with the last error.
- RetryLater(waiting=True) -> the same, but the copy keeps its attempt number: the message
  waited on another worker (its claim on the same record), nothing failed, so no retry is
  spent. Waits are bounded: once a message has waited `max_wait` seconds in total, further
  waits count as attempts again, so a claim that is never released still ends, after the
  usual attempts, in `RetriesExhausted` instead of looping forever.
- DeadLetter -> dead-letter with the flow's reason code and description. If that call fails
  (e.g. the lock was lost), the outcome's `undo` runs before the error propagates, so the
  flow's "already dead-lettered" ledger key does not outlive a dead letter that never happened.
- An exception from the flow itself -> logged and the message abandoned; the broker's
  maxDeliveryCount then decides (MaxDeliveryCountExceeded).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.bus.port import BusError, BusPublisher, message_body
from shared.events import Envelope, EnvelopeError, now_utc
from shared.outcomes import Completed, DeadLetter, Outcome, RetryLater
from shared.telemetry import correlation, end_to_end_latency, get_logger, message_outcomes

# Total seconds a message may wait on other workers' claims without spending attempts. A live
# claim is renewed while its owner works and ends with the owner's batch (minutes at most);
# a dead owner's claim can be taken over once its lease (LINK_CLAIM_TIMEOUT_SECONDS, 90 s)
# runs out. 15 minutes covers either many times over; past it, waits count as attempts.
MAX_WAIT_SECONDS = 900.0

# Service Bus keeps DeadLetterErrorDescription in a header property; keep it readable and small.
MAX_DESCRIPTION = 1024
MAX_REASON = 128

log = get_logger("settlement")


class MessageActions(Protocol):
    """The settlement methods of azurefunctions' ServiceBusMessageActions that we use."""

    def complete(self, message: Any) -> None: ...

    def abandon(self, message: Any) -> None: ...

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None: ...


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RetryPolicy(Protocol):
    """When to retry and when to give up (shared.resilience.BackoffPolicy, from RETRY_* settings)."""

    def delay(
        self, attempt: int, server_delay: float | None, rng: random.Random, *, reason: str | None = None
    ) -> float: ...

    def exhausted(self, attempt: int, *, reason: str | None = None, waiting: float | None = None) -> bool: ...


@dataclass(eq=False, repr=False)
class Settlement:
    """Settles the messages of one subscription."""

    publisher: BusPublisher
    _: KW_ONLY
    topic: str
    subscription: str
    policy: RetryPolicy
    clock: Callable[[], datetime] = now_utc
    rng: random.Random = field(default_factory=random.Random)
    max_wait: float = MAX_WAIT_SECONDS

    def parse(self, message: Any, actions: MessageActions) -> Envelope | None:
        """Parse a message into an envelope; dead-letter it as MalformedMessage if it is not one."""
        try:
            return Envelope.from_body(message_body(message))
        except EnvelopeError as exc:
            self._deadletter(
                message,
                actions,
                "MalformedMessage",
                f"{self.subscription}: message {getattr(message, 'message_id', '?')} "
                f"is not a change notice: {exc}. Fix the body and resubmit, or purge it.",
            )
            return None

    def apply(self, message: Any, envelope: Envelope, outcome: Outcome, actions: MessageActions) -> str:
        """Settle one message per its outcome; returns what was done (for logs and tests)."""
        with correlation(
            message_id=envelope.id,
            flow=self.subscription,
            entity=envelope.notice.entity,
            record_ids=envelope.notice.ids,
            attempt=envelope.attempt,
            source_system=envelope.notice.system,
        ):
            if isinstance(outcome, Completed):
                actions.complete(message)
                self._observe(envelope, "completed", "Completed")
                log.info("completed%s", f" ({outcome.note})" if outcome.note else "")
                return "completed"
            if isinstance(outcome, DeadLetter):
                try:
                    self._deadletter(message, actions, outcome.reason, outcome.description)
                except Exception:
                    self._undo(outcome)
                    raise
                self._observe(envelope, "dead_lettered", outcome.reason)
                return "dead_lettered"
            if isinstance(outcome, RetryLater):
                return self._retry(message, envelope, outcome, actions)
            raise TypeError(f"unknown outcome {outcome!r}")

    def abandon_all(self, messages: Sequence[Any], actions: MessageActions, error: BaseException) -> None:
        """The flow itself failed unexpectedly: log it and release every message to the broker."""
        log.error(
            "flow %s failed unexpectedly; abandoning %d message(s): %s",
            self.subscription,
            len(messages),
            type(error).__name__,
            exc_info=error,
        )
        for message in messages:
            try:
                actions.abandon(message)
            except Exception:  # the lock will expire and the broker redelivers: still not lost
                log.exception("abandon failed; the message lock will expire and it will be redelivered")
        message_outcomes.add(
            len(messages), {"flow": self.subscription, "outcome": "abandoned", "reason": type(error).__name__}
        )

    # -- internals ---------------------------------------------------------------------
    def _retry(self, message: Any, envelope: Envelope, outcome: RetryLater, actions: MessageActions) -> str:
        if outcome.waiting:
            delay = self.policy.delay(1, None, self.rng)
            if outcome.delay is not None:
                delay = max(min(delay, outcome.delay), 1.0)
            if envelope.waited + delay <= self.max_wait:
                return self._schedule(
                    message, envelope, outcome, actions, envelope.wait(self.subscription, delay), delay
                )
        waiting = (self.clock() - envelope.notice.observed_at).total_seconds()
        if self.policy.exhausted(envelope.attempt, reason=outcome.reason, waiting=waiting):
            description = (
                f"{self.subscription}: gave up after {envelope.attempt} attempts; last error "
                f"[{outcome.reason}] {outcome.error}"
            )
            self._deadletter(message, actions, "RetriesExhausted", description)
            self._observe(envelope, "dead_lettered", "RetriesExhausted")
            return "dead_lettered"
        delay = self.policy.delay(envelope.attempt, outcome.delay, self.rng, reason=outcome.reason)
        return self._schedule(message, envelope, outcome, actions, envelope.retry(self.subscription), delay)

    def _schedule(
        self,
        message: Any,
        envelope: Envelope,
        outcome: RetryLater,
        actions: MessageActions,
        copy: Envelope,
        delay: float,
    ) -> str:
        enqueue_at = self.clock() + timedelta(seconds=delay)
        try:
            self.publisher.publish_scheduled(self.topic, [copy.to_message()], enqueue_at)
        except BusError as exc:
            log.warning("could not schedule the retry copy (%s); abandoning so the broker redelivers", exc)
            actions.abandon(message)
            self._observe(envelope, "abandoned", "BusUnavailable")
            return "abandoned"
        actions.complete(message)
        self._observe(envelope, "retry_scheduled", outcome.reason)
        if copy.attempt == envelope.attempt:
            log.info(
                "waiting %.1fs (attempt %d not spent, %ds waited): [%s] %s",
                delay,
                copy.attempt,
                copy.waited,
                outcome.reason,
                _clip(outcome.error, 300),
            )
        else:
            log.warning(
                "retry %d scheduled in %.1fs: [%s] %s",
                copy.attempt,
                delay,
                outcome.reason,
                _clip(outcome.error, 300),
            )
        return "retry_scheduled"

    @staticmethod
    def _undo(outcome: DeadLetter) -> None:
        if outcome.undo is None:
            return
        try:
            outcome.undo()
        except Exception:  # the key stays, held by this message: its redelivery still dead-letters
            log.exception("could not undo what the flow recorded for a dead letter that failed")

    def _deadletter(self, message: Any, actions: MessageActions, reason: str, description: str) -> None:
        log.error("dead-lettered [%s] %s", reason, _clip(description, 300))
        actions.deadletter(
            message,
            deadletter_reason=_clip(reason, MAX_REASON),
            deadletter_error_description=_clip(description, MAX_DESCRIPTION),
        )

    def _observe(self, envelope: Envelope, outcome: str, reason: str) -> None:
        attributes = {"flow": self.subscription, "outcome": outcome, "reason": reason}
        message_outcomes.add(1, attributes)
        if outcome in ("completed", "dead_lettered"):
            latency = (self.clock() - envelope.notice.observed_at).total_seconds()
            end_to_end_latency.record(max(latency, 0.0), {"flow": self.subscription})
