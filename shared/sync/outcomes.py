"""Per-record results of a sync batch, one outcome per envelope, audit rows (every flow).

A flow works on records, not messages: it coalesces the ids of a whole batch,
syncs each record once and then turns the per-record results back into one outcome per
envelope (DESIGN §3, §6):

- any record of the envelope failed transiently -> RetryLater (the whole envelope is
  re-run later; records that already synced are then no-ops, the flows are state-based);
- else, a record with a fatal quality problem -> DeadLetter when the envelope carries only
  that record; when it carries several ids, the good ones are synced and each bad id is
  re-published as its own single-id notice for this subscription (replay_to), which then
  dead-letters with its own reason. A ledger key per (flow, record, record version) makes
  that happen once even when a webhook, the poller and a backfill all named the record. So
  every poison record ends as exactly one dead letter, named by id, and resubmitting it
  re-runs only that record;
- else Completed (synced, unchanged, missing, needs review, skipped).

Which message "holds" a dead letter: the ledger key is recorded for the message that is to
be dead-lettered (its envelope id, which its scheduled retry copies and an operator's
resubmitted copies share). A later notice of another lineage (the poller, a backfill, a
retry copy of another notice) completes as "already dead-lettered"; the holder itself
(redelivered, retried, or resubmitted from the DLQ while the record is still bad) is
dead-lettered again. If the dead-letter call fails (a lost lock), the key is forgotten, so
the redelivery is dead-lettered rather than completed with no dead letter anywhere.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar

from shared.events import ChangeNotice, Envelope
from shared.outcomes import Completed, DeadLetter, Outcome, RetryLater
from shared.resilience import classify, outcome_for_error
from shared.store import AuditEntry, AuditResult
from shared.store.errors import ClaimTaken
from shared.telemetry import get_logger

if TYPE_CHECKING:
    from shared.sync.ports import AuditPort, LedgerPort, StateStorePort

T = TypeVar("T")

log = get_logger("sync")

Kind = Literal["synced", "unchanged", "skipped", "needs-review", "missing", "fatal", "transient"]

AUDIT_RESULTS: dict[str, AuditResult] = {
    "synced": AuditResult.SYNCED,
    "unchanged": AuditResult.SKIPPED,
    "skipped": AuditResult.SKIPPED,
    "needs-review": AuditResult.NEEDS_REVIEW,
    "missing": AuditResult.MISSING,
    "fatal": AuditResult.DEAD_LETTERED,
}


@dataclass
class RecordResult:
    """What happened to one source record in this run."""

    kind: Kind
    reason: str | None = None
    description: str = ""
    target_id: str | None = None
    retry_after: float | None = None
    created: bool = False
    stamp: str | None = None  # the source record's modification stamp (fatal records: dead-letter key)
    waiting: bool = False  # transient only because another worker holds the record: no retry spent
    fields: tuple[str, ...] = ()  # synced: the canonical fields the write changed (audit `fields`)


def waiting_on_claim(label: str, taken: ClaimTaken) -> RecordResult:
    """Another worker holds this record's creation claim (or has just linked it): wait for it
    without spending a retry. `label` names the record, e.g. "Dataverse order <guid>"."""
    what = "linked meanwhile" if taken.link is not None and taken.link.is_linked else "claimed"
    description, wait = f"{label} ({what}): {taken}", taken.retry_after
    return RecordResult("transient", "StateConflict", description, retry_after=wait, waiting=True)


@dataclass
class BatchResults:
    """Per-record results of one batch, keyed by the source record id."""

    by_id: dict[str, RecordResult] = field(default_factory=dict)

    def set(self, record_id: str, result: RecordResult) -> None:
        self.by_id[record_id] = result

    def has(self, record_id: str) -> bool:
        return record_id in self.by_id

    def error(self, record_id: str, exc: BaseException | None, what: str) -> None:
        """Record an expected error (through the one error table); re-raise an unknown one."""
        if exc is None:  # a bulk row reported failure without an error: a bug, not data
            raise RuntimeError(f"{what} failed without an error")
        outcome = outcome_for_error(exc, what)
        if isinstance(outcome, RetryLater):
            self.set(
                record_id, RecordResult("transient", outcome.reason, outcome.error, retry_after=outcome.delay)
            )
        elif isinstance(outcome, DeadLetter):
            self.set(record_id, RecordResult("fatal", outcome.reason, outcome.description))
        else:  # IGNORE, e.g. the record vanished between read and write
            self.set(record_id, RecordResult("missing", None, outcome.note or ""))


def batch_failure(exc: BaseException, envelopes: Sequence[Envelope], what: str) -> list[Outcome]:
    """An error that hit the whole batch (a read failed): the same outcome for every envelope."""
    if classify(exc) is None:
        raise exc
    return [outcome_for_error(exc, what) for _ in envelopes]


Publish = Callable[[list[Envelope]], None]


def dead_letter_key(flow: str, record_id: str, stamp: str | None) -> str:
    """One key per (flow, record, version of the record): the ledger lets one dead letter exist
    per bad record version, however many notices (webhook, poller, backfill) named it."""
    text = f"{flow}|dead|{record_id}|{stamp or ''}"
    return "dl-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def split_notice(envelope: Envelope, record_id: str, replay_to: str, stamp: str | None = None) -> Envelope:
    """A single-id copy of `envelope` for one bad record, only for subscription `replay_to`."""
    n = envelope.notice
    notice = ChangeNotice(
        system=n.system,
        entity=n.entity,
        ids=(record_id,),
        operation=n.operation,
        observed_at=n.observed_at,
        source=n.source,
        origin=n.origin,
        version=f"dead:{record_id}:{stamp or ''}"[:128],
        detail=n.detail,
    )
    return Envelope(notice=notice, id=notice.key, replay_to=replay_to)


class AuditFields(TypedDict):
    """The AuditEntry fields every row of one batch shares."""

    flow: str
    entity: str
    source_system: str
    target_system: str
    duration_ms: int


@dataclass(frozen=True)
class BatchScope:
    """Whose batch it is: the names its outcome notes, split notices and audit rows carry."""

    flow: str  # the flow's name: its subscription (split notices replay to it), ledger keys, audit
    system_label: str  # one source record in outcome notes: "Brightpearl contact"
    entity: str  # the audit entity (the links entity both directions share)
    source_system: str
    target_system: str

    def audit_fields(self, duration_ms: int) -> AuditFields:
        return {
            "flow": self.flow,
            "entity": self.entity,
            "source_system": self.source_system,
            "target_system": self.target_system,
            "duration_ms": duration_ms,
        }


def outcomes_for(
    envelopes: Sequence[Envelope],
    ids_of: Callable[[Envelope], Iterable[str]],
    results: BatchResults,
    scope: BatchScope,
    publish: Publish,
    ledger: LedgerPort | None = None,
) -> list[Outcome]:
    """One outcome per envelope from the per-record results (rules in the module docstring).

    With a `ledger`, each bad record version is dead-lettered once: a second notice naming it
    (the poller and a backfill both did) completes instead. The message holding the dead
    letter (its redelivery, retry copies or resubmitted copy) dead-letters again if the
    record is still bad.
    """
    flow, system_label = scope.flow, scope.system_label
    outcomes: list[Outcome] = []
    for envelope in envelopes:
        ids = list(dict.fromkeys(ids_of(envelope)))
        got = [(i, results.by_id.get(i)) for i in ids]
        transient = [(i, r) for i, r in got if r is not None and r.kind == "transient"]
        if transient:
            first = next((r for _, r in transient if not r.waiting), transient[0][1])
            delays = [r.retry_after for _, r in transient if r.retry_after is not None]
            outcomes.append(
                RetryLater(
                    reason=first.reason or "Transient",
                    error="; ".join(r.description for _, r in transient)[:1500],
                    delay=max(delays) if delays else None,
                    waiting=all(r.waiting for _, r in transient),
                )
            )
            continue
        bad = [(i, r) for i, r in got if r is not None and r.kind == "fatal"]
        if not bad:
            outcomes.append(Completed())
            continue
        if len(envelope.notice.ids) == 1 and len(bad) == 1:
            record_id, result = bad[0]
            key = dead_letter_key(flow, record_id, result.stamp)
            if ledger is not None and not ledger.record_for(key, envelope.id):
                outcomes.append(Completed(note=f"{system_label} {record_id} is already dead-lettered"))
                continue
            outcomes.append(
                DeadLetter(
                    reason=result.reason or "Rejected",
                    description=result.description[:4000],
                    undo=_forgetting(ledger, key),
                )
            )
            continue
        fresh = []
        for record_id, result in bad:
            key = dead_letter_key(flow, record_id, result.stamp)
            split = split_notice(envelope, record_id, flow, result.stamp)
            if ledger is None or ledger.record(key, holder=split.id):
                fresh.append((split, key))
        try:
            publish([split for split, _ in fresh])
        except Exception as exc:  # the bus is down: retry the whole envelope later
            for _, key in fresh:
                if ledger is not None:
                    ledger.forget(key)
            outcomes.append(outcome_for_error(exc, f"split of {system_label} notice {envelope.id}"))
            continue
        outcomes.append(Completed(note=f"{len(fresh)} bad record(s) split off for dead-lettering"))
    return outcomes


def _forgetting(ledger: LedgerPort | None, key: str) -> Callable[[], None] | None:
    """The undo of a dead letter whose ledger key was recorded: forget the key again."""
    if ledger is None:
        return None

    def undo() -> None:
        ledger.forget(key)

    return undo


def audit_rows(
    results: BatchResults, scope: BatchScope, message_of: dict[str, Envelope], started: float
) -> list[AuditEntry]:
    """Audit entries for every record result (transient failures are not audited: they retry)."""
    shared = scope.audit_fields(int((time.monotonic() - started) * 1000))
    rows = []
    for record_id, result in results.by_id.items():
        audit_result = AUDIT_RESULTS.get(result.kind)
        if audit_result is None:
            continue
        envelope = message_of.get(record_id)
        rows.append(
            AuditEntry(
                **shared,
                source_id=record_id,
                result=audit_result,
                target_id=result.target_id,
                reason_code=result.reason,
                description=result.description,
                message_id=envelope.id if envelope else None,
                attempt=envelope.attempt if envelope else 1,
                observed_at=envelope.notice.observed_at if envelope else None,
                fields=_fields_text(result.fields),
            )
        )
    return rows


def _fields_text(fields: tuple[str, ...], limit: int = 1000) -> str | None:
    """The changed fields as the audit keeps them: comma-separated, cut at a field boundary."""
    text = ""
    for name in fields:
        item = f"{',' if text else ''}{name}"
        if len(text) + len(item) > limit - 2:
            return text + ",…"
        text += item
    return text or None


STATE_WORKERS = 8  # concurrent state-table writes per batch (links, audit): independent rows


def in_parallel(fn: Callable[[T], object], items: Sequence[T], workers: int = STATE_WORKERS) -> None:
    """Run `fn` over `items` on a small thread pool (Table Storage calls are I/O-bound).

    Exceptions propagate (the first one raised), like a plain loop's would.
    """
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        for _ in pool.map(fn, items):
            pass


def record_audit(audit: AuditPort, entries: list[AuditEntry], chunk: int = 100) -> None:
    """Write audit rows in parallel chunks (each chunk is grouped into table transactions)."""
    in_parallel(audit.record_many, [list(c) for c in chunked(entries, chunk)])


def finish_batch(
    envelopes: Sequence[Envelope],
    ids_of: Callable[[Envelope], Iterable[str]],
    results: BatchResults,
    *,
    flow: str,
    system_label: str,
    publish: Publish,
    store: StateStorePort,
    entity: str,
    source_system: str,
    target_system: str,
    message_of: dict[str, Envelope],
    started: float,
) -> list[Outcome]:
    """The end of every flow's batch: one outcome per envelope, then the audit rows.

    A failed audit write is logged, not retried: the audit records what happened, it is no
    reason to redo it.
    """
    scope = BatchScope(flow, system_label, entity, source_system, target_system)
    outcomes = outcomes_for(envelopes, ids_of, results, scope, publish, store.ledger)
    try:
        record_audit(store.audit, audit_rows(results, scope, message_of, started))
    except Exception:
        log.exception("writing %d audit rows failed", len(results.by_id))
    return outcomes


def chunked(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fatal_description(issues: Iterable[Any]) -> str:
    return "\n".join(issue.summary() for issue in issues if issue.fatal)
