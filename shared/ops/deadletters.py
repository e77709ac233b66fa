"""Dead letters as the operator loop needs them, on top of shared.bus.deadletters:

- `rows(items)`: one plain, JSON-ready row per dead letter (ids, reason, times; never contents);
- `copy_fates(...)`: what became of the copies a resubmit sent: the flow's next audit row about
  each record (synced, needs review, dead-lettered again, ...), or the copy still on the bus
  (waiting, or a retry scheduled), or "queued" with its message id when nothing is known yet;
- `superseded(...)`: the dead letters whose every record synced in the same flow after the
  dead letter was written (fixed at the source, or synced by a later notice); they can be
  cleared in bulk (`syncctl dlq purge --superseded`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.bus.deadletters import DeadLetter, Outcome
from shared.ops.busview import BusMessage

AUDIT_LOOKBACK_ROWS = 50


@dataclass(frozen=True)
class DeadLetterRow:
    """One dead letter for lists and JSON: where, what it names, why, when."""

    topic: str
    subscription: str
    sequence_number: int
    message_id: str
    entity: str | None
    ids: tuple[str, ...]
    reason: str | None
    description: str | None
    enqueued: datetime | None
    delivery_count: int
    attempt: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription": f"{self.topic}/{self.subscription}",
            "sequence": self.sequence_number,
            "messageId": self.message_id,
            "entity": self.entity,
            "ids": list(self.ids),
            "reason": self.reason,
            "description": self.description,
            "enqueued": self.enqueued.isoformat() if self.enqueued else None,
            "deliveryCount": self.delivery_count,
            "attempt": self.attempt,
        }


def row(item: DeadLetter) -> DeadLetterRow:
    envelope = item.envelope
    return DeadLetterRow(
        topic=item.topic,
        subscription=item.subscription,
        sequence_number=item.sequence_number,
        message_id=item.message_id,
        entity=item.entity,
        ids=item.record_ids,
        reason=item.reason,
        description=item.description,
        enqueued=item.enqueued_time_utc,
        delivery_count=item.delivery_count,
        attempt=envelope.attempt if envelope else None,
    )


def rows(items: Iterable[DeadLetter]) -> list[DeadLetterRow]:
    return [row(i) for i in items]


@dataclass(frozen=True)
class CopyFate:
    """What became of one resubmitted copy, as far as is known now."""

    subscription: str
    message_id: str  # the copy's broker message id
    ids: tuple[str, ...]
    state: str  # an audit result (synced, needs-review, dead-lettered, skipped, missing), or
    # "dead-lettered again" (on the bus), "retry scheduled", "waiting", "queued"
    reason: str | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "messageId": self.message_id,
            "ids": list(self.ids),
            "state": self.state,
            "reason": self.reason,
            "description": self.description,
        }


def audit_entity(subscription: str, fallback: str | None) -> str:
    """The entity a flow's audit rows carry (its links entity, e.g. customer)."""
    from shared.sync import registry

    try:
        return registry.entity_of(subscription).link_entity
    except KeyError:
        return fallback or "message"


def audit_marks(audit: Any, items: Iterable[DeadLetter]) -> set[str]:
    """The ids of the audit rows that exist now about the dead letters' records (so rows written
    before a resubmit are never taken for its copy's outcome, however close the clocks)."""
    marks: set[str] = set()
    for item in items:
        envelope = item.envelope
        if envelope is None:
            continue
        entity = audit_entity(item.subscription, item.entity)
        for record_id in item.record_ids:
            entries = audit.for_record(entity, envelope.notice.system, record_id, limit=AUDIT_LOOKBACK_ROWS)
            marks |= {e.id for e in entries if e.id}
    return marks


def _audited(audit: Any, outcome: Outcome, since: datetime, exclude: set[str]) -> CopyFate | None:
    item = outcome.dead_letter
    envelope = item.envelope
    if envelope is None or not item.record_ids:
        return None
    entity = audit_entity(item.subscription, item.entity)
    results = []
    for record_id in item.record_ids:
        entries = audit.for_record(entity, envelope.notice.system, record_id, limit=AUDIT_LOOKBACK_ROWS)
        newer = [
            e
            for e in entries
            if e.flow == item.subscription
            and e.at is not None
            and e.at >= since
            and e.result.value != "operator"
        ]
        if not newer:
            return None  # not every record has an outcome yet
        results.append(newer[0])  # newest first
    worst = next((e for e in results if e.result.value != "synced"), results[0])
    return CopyFate(
        item.subscription,
        outcome.new_message_id or "",
        item.record_ids,
        worst.result.value,
        worst.reason_code,
        worst.description,
    )


def _on_bus(outcome: Outcome, messages: Sequence[BusMessage]) -> CopyFate | None:
    item = outcome.dead_letter
    mine = [m for m in messages if m.subscription == item.subscription and set(m.ids) & set(item.record_ids)]
    copy_id = outcome.new_message_id or ""
    for queue, state in (("dead-lettered", "dead-lettered again"), ("scheduled", "retry scheduled")):
        for m in mine:
            if m.queue == queue and (
                m.message_id == copy_id or m.message_id.startswith(copy_id.split(".r")[0])
            ):
                if queue == "dead-lettered" and m.message_id == item.message_id:
                    continue  # the original itself (kept when its removal failed)
                when = f" due {m.due.isoformat()}" if m.due else ""
                return CopyFate(
                    item.subscription, copy_id, item.record_ids, state, m.reason, (m.description or "") + when
                )
    if any(m.queue == "active" and m.message_id == copy_id for m in mine):
        return CopyFate(
            item.subscription, copy_id, item.record_ids, "waiting", None, "on the bus, not yet processed"
        )
    return None


def copy_fates(
    outcomes: Sequence[Outcome],
    *,
    audit: Any,
    since: datetime,
    bus: Callable[[set[str]], Sequence[BusMessage]] | None = None,
    exclude: set[str] | None = None,
    wait: float = 0.0,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CopyFate]:
    """What became of each resubmitted copy: its flow's audit rows written since `since` (and not
    in `exclude`, see `audit_marks`); else, once `wait` seconds are over, where it is on the
    bus; else "queued" with its message id."""
    exclude = exclude or set()
    sent = [o for o in outcomes if o.new_message_id]
    fates: dict[str, CopyFate] = {}
    deadline = time.monotonic() + wait
    while True:
        for outcome in sent:
            key = outcome.new_message_id or ""
            if key not in fates:
                found = _audited(audit, outcome, since, exclude)
                if found is not None:
                    fates[key] = found
        if len(fates) == len(sent) or time.monotonic() >= deadline:
            break
        sleep(poll)
    pending = [o for o in sent if (o.new_message_id or "") not in fates]
    messages: Sequence[BusMessage] = []
    if pending and bus is not None:
        try:
            messages = bus({i.lower() for o in pending for i in o.dead_letter.record_ids})
        except Exception:  # the bus cannot be read now: report them as queued
            messages = []
    for outcome in pending:
        key = outcome.new_message_id or ""
        fates[key] = _on_bus(outcome, messages) or CopyFate(
            outcome.dead_letter.subscription,
            key,
            outcome.dead_letter.record_ids,
            "queued",
            None,
            "sent; no outcome yet (syncctl history shows it once the flow has run)",
        )
    return [fates[o.new_message_id or ""] for o in sent]


def superseded(items: Iterable[DeadLetter], audit: Any) -> list[tuple[DeadLetter, str]]:
    """The dead letters whose every record synced (or was found unchanged) in the same flow after
    the dead letter was written, each with a note naming the sync; reads each record's newest
    audit rows (a key-range query per record)."""
    out: list[tuple[DeadLetter, str]] = []
    for item in items:
        envelope = item.envelope
        if envelope is None or not item.record_ids or item.enqueued_time_utc is None:
            continue
        entity = audit_entity(item.subscription, item.entity)
        notes = []
        for record_id in item.record_ids:
            entries = audit.for_record(entity, envelope.notice.system, record_id, limit=AUDIT_LOOKBACK_ROWS)
            later = [
                e
                for e in entries
                if e.flow == item.subscription and e.at is not None and e.at > item.enqueued_time_utc
            ]
            outcomes = [e for e in later if e.result.value != "operator"]
            if not outcomes or outcomes[0].result.value not in ("synced", "skipped"):
                break
            notes.append(f"{record_id} {outcomes[0].result.value} {outcomes[0].at.isoformat()}")
        else:
            out.append((item, "; ".join(notes)))
    return out
