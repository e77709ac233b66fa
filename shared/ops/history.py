"""One record's history across both systems (`syncctl history brightpearl contact 215`).

Read from where the app keeps it:

- the audit table: every outcome of every flow about the record, as source or as target
  (synced, with the canonical fields the write changed; unchanged/skipped, needs review,
  dead-lettered, missing) with its reason, attempt
  (an attempt above 1 means earlier tries failed transiently and were retried), message id and
  description, and the operators' actions (resubmits, purges, review decisions, sync requests);
  the linked record on the other side is read too, so both directions show;
- the links table: which record it is linked to, and the link's state;
- the bus: the dead letters naming the record (the dead-letter queue is the ledger of what
  failed for good), its scheduled retry copies and its notices waiting to be processed.

Transient failures are not audited as rows of their own (they are retried): the retry copies
waiting on the bus and the attempt numbers of the outcomes show them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.ops.busview import BusMessage
from shared.ops.records import RecordRef
from shared.store.audit import AuditEntry

MAX_AUDIT_ROWS = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class HistoryEvent:
    """One thing that happened to the record: an audit row or a message on the bus."""

    at: datetime | None
    kind: str  # "outcome", "operator", or a bus queue: "dead-lettered", "scheduled", "active"
    flow: str | None
    result: str | None  # the audit result (synced, needs-review, ...) or the bus queue
    reason: str | None
    attempt: int | None
    message_id: str | None
    source: str | None  # "brightpearl 215"
    target: str | None  # "dataverse <guid>"
    description: str = ""
    fields: tuple[str, ...] = ()  # synced: the canonical fields the write changed

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat() if self.at else None,
            "kind": self.kind,
            "flow": self.flow,
            "result": self.result,
            "reason": self.reason,
            "attempt": self.attempt,
            "messageId": self.message_id,
            "source": self.source,
            "target": self.target,
            "description": self.description,
            "fields": list(self.fields),
        }


@dataclass
class RecordHistory:
    """What the audit, the links and the bus know about one record, oldest first."""

    record: RecordRef
    linked: dict[str, str] = field(default_factory=dict)  # system -> id, both sides
    link_state: str | None = None
    events: list[HistoryEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def retries(self) -> int:
        """Retries the audit shows (attempts above 1) plus retry copies still scheduled."""
        audited = sum(max((e.attempt or 1) - 1, 0) for e in self.events if e.kind == "outcome")
        return audited + sum(1 for e in self.events if e.kind == "scheduled")

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "record": {"system": r.system, "type": r.name, "id": r.record_id, "entity": r.audit_entity},
            "linked": self.linked,
            "linkState": self.link_state,
            "retries": self.retries,
            "events": [e.as_dict() for e in self.events],
            "notes": self.notes,
        }


def _audit_event(e: AuditEntry) -> HistoryEvent:
    result = e.result.value
    return HistoryEvent(
        at=e.at,
        kind="operator" if result == "operator" else "outcome",
        flow=e.flow,
        result=result,
        reason=e.reason_code,
        attempt=e.attempt,
        message_id=e.message_id,
        source=f"{e.source_system} {e.source_id}",
        target=f"{e.target_system} {e.target_id}" if e.target_system and e.target_id else None,
        description=e.description,
        fields=tuple(f for f in (e.fields or "").split(",") if f),
    )


def _bus_event(m: BusMessage) -> HistoryEvent:
    at = m.due if m.queue == "scheduled" else m.enqueued
    what = {
        "dead-lettered": f"dead letter: [{m.reason or 'no reason'}] {m.description or ''}".strip(),
        "scheduled": f"retry copy (attempt {m.attempt}) due {m.due.isoformat() if m.due else '?'}",
        "active": f"notice waiting to be processed ({m.origin or 'unknown origin'})",
    }[m.queue]
    return HistoryEvent(
        at=at,
        kind=m.queue,
        flow=m.subscription,
        result=m.queue,
        reason=m.reason,
        attempt=m.attempt,
        message_id=m.message_id,
        source=None,
        target=None,
        description=what,
    )


def record_history(
    store: Any,
    ref: RecordRef,
    *,
    bus: Callable[[set[str]], Sequence[BusMessage]] | None = None,
    limit: int = MAX_AUDIT_ROWS,
) -> RecordHistory:
    """The record's history from the audit (and its linked record's), its link and the bus.

    `bus(ids)` returns the bus messages naming any of `ids` (shared.ops.busview.bus_messages);
    when it raises, the history is still returned, with a note saying what could not be read.
    """
    history = RecordHistory(ref)
    link = store.links.get(ref.audit_entity, ref.system, ref.record_id)
    records = [(ref.system, ref.record_id)]
    if link is not None:
        history.link_state = str(getattr(link.state, "value", link.state))
        for system in ("brightpearl", "dataverse"):
            other = link.id_in(system)
            if other:
                history.linked[system] = str(other)
                if (system, str(other).lower()) != (ref.system, ref.record_id.lower()):
                    records.append((system, str(other)))
    seen: dict[str, AuditEntry] = {}
    for system, record_id in records:
        for entry in store.audit.for_record(ref.audit_entity, system, record_id, limit=limit):
            seen.setdefault(entry.id or repr(entry), entry)  # a row about both records: once
    events = [_audit_event(e) for e in seen.values()]
    if bus is not None:
        try:
            events += [_bus_event(m) for m in bus({r for _, r in records})]
        except Exception as exc:  # the audit still answers when the bus cannot be read
            history.notes.append(f"bus not read: {type(exc).__name__}: {exc}")
    # by time; at the same instant an operator's action before the outcome it led to
    history.events = sorted(events, key=lambda e: (e.at is None, e.at or _EPOCH, e.kind != "operator"))
    if len(seen) >= limit:
        history.notes.append(f"only the newest {limit} audit rows per record are shown")
    return history
