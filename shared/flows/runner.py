"""Runs a flow over a batch of received messages and settles each one (DESIGN §3-§6).

Topic-trigger functions stay thin: they hand their messages and settlement object here.
Malformed messages are dead-lettered on their own; the rest go to the flow in one batch;
the flow returns one outcome per envelope; the settlement adapter applies them. If the flow
raises, that is a bug, not data: every message is abandoned and the broker's delivery count
decides (MaxDeliveryCountExceeded ends in the dead-letter queue).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from shared.bus.settlement import MessageActions, Settlement
from shared.events import Envelope
from shared.outcomes import Outcome
from shared.telemetry import correlation, get_logger

log = get_logger("flows")


class Flow(Protocol):
    """A flow maps change notices of one source to writes in one target."""

    name: str

    def handle(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        """One outcome per envelope, in the same order."""
        ...


def run_flow(
    flow: Flow, messages: Sequence[Any], actions: MessageActions, settlement: Settlement
) -> Counter[str]:
    """Process and settle `messages`; returns counts of what was done per message."""
    done: Counter[str] = Counter()
    parsed: list[tuple[Any, Envelope]] = []
    for message in messages:
        envelope = settlement.parse(message, actions)
        if envelope is None:
            done["dead_lettered"] += 1
        else:
            parsed.append((message, envelope))
    if not parsed:
        return done
    with correlation(flow=flow.name):
        try:
            outcomes = list(flow.handle([envelope for _, envelope in parsed]))
            if len(outcomes) != len(parsed):
                raise RuntimeError(
                    f"flow {flow.name} returned {len(outcomes)} outcomes for {len(parsed)} messages"
                )
        except Exception as exc:  # a bug: release everything, the broker decides
            settlement.abandon_all([m for m, _ in parsed], actions, exc)
            done["abandoned"] += len(parsed)
            return done
        for (message, envelope), outcome in zip(parsed, outcomes, strict=True):
            try:
                done[settlement.apply(message, envelope, outcome, actions)] += 1
            except Exception:  # settlement failed: the lock expires and the broker redelivers
                log.exception("settling message %s failed; it will be redelivered", envelope.id)
                done["unsettled"] += 1
        _summarise(flow.name, done)
    return done


def _summarise(flow: str, done: Counter[str]) -> None:
    """One line per batch saying what is not done yet: the invocation itself ends "Succeeded"
    (every message is settled), so a batch with retries scheduled says so here, at WARNING,
    with the counts (`syncctl bus messages --queue scheduled` lists the retry copies)."""
    pending = done["retry_scheduled"] + done["abandoned"] + done["unsettled"]
    if pending:
        log.warning(
            "batch of flow %s not done: %d retry(ies) scheduled, %d abandoned, %d unsettled; "
            "%d completed, %d dead-lettered",
            flow,
            done["retry_scheduled"],
            done["abandoned"],
            done["unsettled"],
            done["completed"],
            done["dead_lettered"],
        )
