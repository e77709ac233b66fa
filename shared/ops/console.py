"""The operations console's data and actions: what each page shows, read through shared/ops/metrics
and shared.bus (the code `syncctl` uses), and the dead-letter actions, each written to the audit.

Every panel is read on its own: a bus or store that cannot be reached shows its error in that
panel instead of failing the page.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from shared.bus.backlog import Backlog
from shared.bus.deadletters import DeadLetter, DeadLetterOps, Outcome, Selection
from shared.events import Envelope
from shared.ops import flow_control
from shared.ops.deadletters import audit_entity
from shared.ops.flow_control import Pause
from shared.ops.metrics import _COLUMNS as AUDIT_COLUMNS
from shared.ops.metrics import (
    AuditRow,
    CursorAge,
    FlowActivity,
    RequestBudget,
    Window,
    cursor_ages,
    cursor_owners,
    flow_activity,
    last_errors,
)
from shared.ops.metrics import _audit_row as audit_row
from shared.ops.records import RecordRef, record
from shared.ops.review import Decision, ReviewItem, decide
from shared.ops.sync_now import SyncRequest, request_sync
from shared.ops.triage import TriageGroup, triage
from shared.reconcile.report import REPORT_PREFIX, last_reports
from shared.store import StateStore
from shared.store.audit import AuditEntry, AuditResult
from shared.store.tables import optional_utc

T = TypeVar("T")
Action = Literal["resubmit", "purge"]
ACTIONS: dict[Action, str] = {"resubmit": "DeadLetterResubmitted", "purge": "DeadLetterPurged"}
MAX_DEAD_LETTERS = 200  # per subscription on one page
MAX_ANOMALIES = 50  # anomaly flags on the overview
FLOW_READERS = 8  # flows read at once for the overview


@dataclass
class Panel:
    """A figure that was read, or the error that stopped it (shown in place)."""

    value: Any = None
    error: str | None = None


def read(what: str, reader: Callable[[], T]) -> Panel:
    try:
        return Panel(reader())
    except Exception as exc:  # one panel's failure must not hide the others
        return Panel(error=f"{what} could not be read: {type(exc).__name__}: {exc}"[:500])


@dataclass
class Overview:
    window: Window
    flows: list[FlowActivity] = field(default_factory=list)
    flows_error: str | None = None
    backlog: Panel = field(default_factory=Panel)
    cursors: Panel = field(default_factory=Panel)
    budget: Panel = field(default_factory=Panel)
    dataverse: Panel = field(default_factory=Panel)
    pauses: Panel = field(default_factory=Panel)
    reconciliation: Panel = field(default_factory=Panel)  # (entity, last report or None)
    anomalies: Panel = field(default_factory=Panel)  # the window's anomaly flags, newest first

    @property
    def errors(self) -> list[AuditRow]:
        return last_errors(self.flows)

    def as_dict(self) -> dict[str, Any]:
        def panel(p: Panel, convert: Callable[[Any], Any]) -> dict[str, Any]:
            return {"error": p.error} if p.error else {"value": convert(p.value)}

        return {
            "window": {
                "since": self.window.since.isoformat(),
                "until": self.window.until.isoformat(),
                "bucket_seconds": self.window.bucket.total_seconds(),
            },
            "flows": [f.as_dict() for f in self.flows],
            "flows_error": self.flows_error,
            "backlog": panel(self.backlog, lambda rows: [r.as_dict() for r in rows]),
            "cursors": panel(self.cursors, lambda rows: [c.as_dict() for c in rows]),
            "brightpearl_budget": panel(self.budget, lambda b: b.as_dict() if b else None),
            "dataverse": panel(self.dataverse, lambda d: d),
            "paused": panel(self.pauses, lambda rows: [p.as_dict() for p in rows]),
            "reconciliation": panel(
                self.reconciliation,
                lambda rows: {name: r.model_dump(mode="json") if r else None for name, r in rows},
            ),
            "last_errors": [e.as_dict() for e in self.errors],
            "anomalies": panel(self.anomalies, lambda rows: [r.as_dict() for r in rows]),
        }


def flow_names(store: StateStore, wired: Sequence[str]) -> list[str]:
    """The wired flows first (registry order), then any other flow the audit has rows of."""
    return list(dict.fromkeys([*wired, *store.audit.flows()]))


def overview(
    store: StateStore,
    window: Window,
    *,
    flows: Sequence[str],
    backlog: Callable[[], list[Backlog]],
    budget: Callable[[], RequestBudget | None],
    dataverse: Callable[[], dict[str, int] | None],
    now: datetime,
) -> Overview:
    """Every panel of the overview page for `window`."""
    out = Overview(window)
    try:
        names = flow_names(store, flows)
        # one key-range query per flow, side by side (I/O-bound)
        with ThreadPoolExecutor(max_workers=min(FLOW_READERS, max(len(names), 1))) as pool:
            out.flows = list(pool.map(lambda name: flow_activity(store.audit, name, window), names))
    except Exception as exc:
        out.flows_error = f"audit could not be read: {type(exc).__name__}: {exc}"[:500]
    out.backlog = read("backlog", backlog)
    out.cursors = read("cursors", lambda: poller_cursors(store, now))
    out.pauses = read("paused flows", lambda: flow_control.paused_flows(store.cursors, flows))
    out.budget = read("Brightpearl budget", budget)
    out.dataverse = read("Dataverse client", dataverse)
    out.reconciliation = read("reconciliation reports", lambda: last_reports(store.cursors))
    out.anomalies = read("anomaly flags", lambda: anomaly_flags(store, window))
    return out


def anomaly_flags(store: StateStore, window: Window, *, limit: int = MAX_ANOMALIES) -> list[AuditRow]:
    """The newest anomaly flags of `window` (audit flow `anomalies`, shared/anomaly), newest first."""
    from shared.anomaly.flags import AUDIT_FLOW

    rows = store.audit.rows_between(AUDIT_FLOW, window.since, window.until, columns=AUDIT_COLUMNS)
    out = []
    for row in itertools.islice(rows, limit):
        at = optional_utc(row.get("at"))
        if at is not None:
            out.append(audit_row(AUDIT_FLOW, at, row))
    return out


def poller_cursors(store: StateStore, now: datetime) -> list[CursorAge]:
    """The cursors table's cursors, without the flows' pause flags and reconcile reports it also holds."""
    ages = cursor_ages(store.cursors, now, cursor_owners())
    return [c for c in ages if not c.name.startswith((flow_control.PREFIX, REPORT_PREFIX))]


# ----------------------------------------------------------------------------- dead letters
def dead_letters(
    ops: DeadLetterOps,
    pairs: Sequence[tuple[str, str]],
    *,
    subscription: str | None = None,
    max_messages: int = MAX_DEAD_LETTERS,
) -> list[DeadLetter]:
    """Dead letters of every subscription (or one), newest first."""
    out = []
    for topic, sub in pairs:
        if subscription and sub != subscription:
            continue
        out += ops.list(topic, sub, Selection(all=True), max_messages=max_messages)
    return sorted(out, key=lambda d: (d.enqueued_time_utc is None, d.enqueued_time_utc), reverse=True)


def with_reason(items: Sequence[DeadLetter], reason: str | None) -> list[DeadLetter]:
    """The dead letters of a reason code, compared in any case (all for no reason)."""
    wanted = (reason or "").strip().lower()
    return [i for i in items if not wanted or (i.reason or "").lower() == wanted]


def reasons(items: Sequence[DeadLetter]) -> Counter[str]:
    """How many dead letters carry each reason code."""
    return Counter(i.reason or "" for i in items)


def find_dead_letter(
    ops: DeadLetterOps, pairs: Sequence[tuple[str, str]], subscription: str, message_id: str
) -> DeadLetter | None:
    for topic, sub in pairs:
        if sub == subscription:
            found = ops.list(topic, sub, Selection(message_ids=frozenset({message_id})), max_messages=1000)
            return found[0] if found else None
    return None


def metadata(item: DeadLetter) -> list[tuple[str, str]]:
    """What the console shows of a dead letter: ids, routing and the reason, never the body."""
    envelope = item.envelope
    props = item.application_properties
    return [
        ("subscription", f"{item.topic}/{item.subscription}"),
        ("message id", item.message_id),
        ("sequence", str(item.sequence_number)),
        ("entity", item.entity or ""),
        ("record ids", ", ".join(item.record_ids)),
        ("source system", str(props.get("source_system", envelope.notice.system if envelope else ""))),
        ("operation", str(props.get("operation", envelope.notice.operation if envelope else ""))),
        ("attempt", str(props.get("attempt", envelope.attempt if envelope else ""))),
        ("observed at", envelope.notice.observed_at.isoformat() if envelope else ""),
        ("delivery count", str(item.delivery_count)),
        ("enqueued", item.enqueued_time_utc.isoformat() if item.enqueued_time_utc else ""),
        ("reason", item.reason or ""),
        ("description", item.description or ""),
        ("body", "change notice" if envelope else f"not a change notice ({len(item.body)} bytes)"),
    ]


def act(
    ops: DeadLetterOps,
    store: StateStore,
    pairs: Sequence[tuple[str, str]],
    action: Action,
    targets: Sequence[tuple[str, str]],
    *,
    actor: str = "console",
) -> list[Outcome]:
    """Resubmit or purge dead letters, each named by (subscription, message id), through
    shared.bus.deadletters as `syncctl dlq` does; then write one audit row per record id of each
    (result `operator`, reason DeadLetterResubmitted or DeadLetterPurged) in the flow's own
    rows, so the record's history shows it."""
    topics = {s: t for t, s in pairs}
    unknown = sorted({s for s, _ in targets if s not in topics})
    if unknown:
        raise ValueError(f"subscription {unknown[0]!r} is not one of {', '.join(topics)}")
    wanted: dict[str, set[str]] = {}
    for subscription, message_id in targets:
        wanted.setdefault(subscription, set()).add(message_id)
    run = ops.resubmit if action == "resubmit" else ops.purge
    outcomes: list[Outcome] = []
    for subscription, message_ids in wanted.items():
        outcomes += run(topics[subscription], subscription, Selection(message_ids=frozenset(message_ids)))
    store.audit.record_many(entry for outcome in outcomes for entry in _audit_entries(outcome, action, actor))
    return outcomes


def triage_groups(
    ops: DeadLetterOps,
    pairs: Sequence[tuple[str, str]],
    *,
    mapping_file: Callable[[str], Path | None] = lambda subscription: None,
) -> list[TriageGroup]:
    """The dead letters of every subscription grouped by cause (shared.ops.triage, as
    `syncctl dlq triage` shows them)."""
    return triage(dead_letters(ops, pairs), mapping_file=mapping_file)


def resubmit_group(
    ops: DeadLetterOps,
    store: StateStore,
    pairs: Sequence[tuple[str, str]],
    group: TriageGroup,
    *,
    force: bool = False,
    actor: str = "console",
) -> list[Outcome]:
    """Resubmit every dead letter of a triage group through `act` (the dead-letter action, its
    audit rows included); a group not safe to resubmit in bulk is refused unless `force`."""
    if not group.safety.safe and not force:
        raise ValueError(
            f"force: group {group.key} is not safe to resubmit in bulk: {group.safety.why} "
            "(fix it first, or tick force to resubmit anyway)"
        )
    targets = [(group.subscription, message_id) for message_id in group.message_ids]
    return act(ops, store, pairs, "resubmit", targets, actor=actor)


def _audit_entries(outcome: Outcome, action: Action, actor: str) -> list[AuditEntry]:
    item = outcome.dead_letter
    envelope = item.envelope
    what = f" as {outcome.new_message_id}" if outcome.new_message_id else ""
    description = (
        f"{actor}: {outcome.action} dead letter {item.message_id} of {item.topic}/{item.subscription}"
        f"{what} (its reason: {item.reason or 'none'})"
    )
    ids = list(item.record_ids) or [item.message_id]
    return [
        AuditEntry(
            flow=item.subscription,
            entity=audit_entity(item.subscription, item.entity),
            source_system=envelope.notice.system if envelope else "bus",
            source_id=record_id,
            result=AuditResult.OPERATOR,
            reason_code=ACTIONS[action],
            description=description,
            message_id=item.message_id,
        )
        for record_id in ids
    ]


# ----------------------------------------------------------------------------- operator loop
# The console's side of `syncctl history|review|flow|sync` (shared/ops: history, review,
# flow_control, sync_now); each action is written to the audit as result `operator`.
Publish = Callable[[str, list[Envelope]], None]


def audit_operator(
    store: StateStore,
    flow: str,
    reason: str,
    description: str,
    *,
    source_system: str | None = None,
    source_id: str | None = None,
    message_id: str | None = None,
) -> AuditEntry:
    """One operator row in `flow`'s audit; about the flow itself unless a record is named."""
    from shared.sync import registry

    spec = registry.flow(flow)
    return store.audit.record(
        AuditEntry(
            flow=flow,
            entity=registry.entity_of(flow).link_entity,
            source_system=source_system or spec.source,
            source_id=source_id or flow,
            result=AuditResult.OPERATOR,
            reason_code=reason,
            description=description,
            message_id=message_id,
        )
    )


def pause_flow(
    store: StateStore, flow: str, *, now: datetime, actor: str, reason: str = ""
) -> tuple[Pause, bool]:
    """Pause `flow` (shared.ops.flow_control) and audit it (FlowPaused) when this call paused it."""
    found, new = flow_control.pause(store.cursors, flow, now=now, by=actor, reason=reason)
    if new:
        audit_operator(store, flow, "FlowPaused", f"{actor}: paused ({reason or 'no reason given'})")
    return found, new


def resume_flow(store: StateStore, flow: str, *, actor: str) -> Pause | None:
    """Resume `flow` and audit it (FlowResumed) when it was paused."""
    ended = flow_control.resume(store.cursors, flow)
    if ended is not None:
        audit_operator(
            store, flow, "FlowResumed", f"{actor}: resumed (paused since {ended.since.isoformat()})"
        )
    return ended


def sync_record(
    store: StateStore, ref: RecordRef, *, publish: Publish, source: str, now: datetime, actor: str
) -> SyncRequest:
    """Publish the record's change notice now (shared.ops.sync_now) and audit it (SyncRequested)
    in each flow it reaches, so the record's history shows the request before its outcome."""
    sent = request_sync(ref, publish=publish, source=source, now=now, actor=actor)
    for flow in sent.flows:
        audit_operator(
            store,
            flow,
            "SyncRequested",
            f"{actor}: sync of {ref.label} requested; notice {sent.message_id} published",
            source_system=ref.system,
            source_id=ref.record_id,
            message_id=sent.message_id,
        )
    return sent


def decide_review(
    store: StateStore,
    item: ReviewItem,
    decision: Decision,
    *,
    publish: Publish,
    source: Callable[[str], str],
    now: datetime,
    actor: str,
) -> AuditEntry:
    """Accept (sync the record again) or dismiss a needs-review record (shared.ops.review.decide,
    which writes ReviewAccepted / ReviewDismissed)."""

    def resync(found: ReviewItem) -> str:
        ref = record(found.system, found.entity, found.record_id)
        return request_sync(
            ref, publish=publish, source=source(found.system), now=now, actor=actor
        ).message_id

    return decide(store.audit, item, decision, actor=actor, resync=resync)
