"""The record-sync engine: the steps every flow takes from a batch of change notices to writes.

Per batch (DESIGN §3): coalesce the notices' ids (one result per record, however many
notices named it) -> read the source records in bulk (`fetch`) -> validate and translate them
to the canonical model (`translate`; `skip` for records the flow leaves alone) -> find each
one's target record (`match`: key, link, then matching rules) -> decide per record by link
hash (echo), field ownership and content hash (`decide`, shared/mapping/decision.py) -> write
in bulk (`write`) -> remember links and hashes (`remember`) -> audit and one outcome per
envelope (shared/sync/outcomes.py).

An entity subclasses `RecordSync`, points `spec` at its FlowSpec and overrides the hooks
where it differs: `fetch`, `to_canonical`, `match`, `write` (and, rarely, `sort_notice`,
`expand`, `skip`). The model is Meltano singer-sdk's Stream: a declaration plus overridable
hooks; the clients are ports (shared/sync/ports.py), so unit tests run it on fakes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypedDict, TypeVar, Unpack

from pydantic import BaseModel

from shared.anomaly.watch import Watches
from shared.dataverse import odata
from shared.dataverse.models import RowOutcome
from shared.events import Envelope
from shared.mapping.brightpearl import bp_id
from shared.mapping.translation import Translation
from shared.outcomes import Outcome
from shared.quality.issues import QualityIssue
from shared.resilience import classify
from shared.store.errors import StoreConflictError
from shared.store.links import Claim, Link
from shared.sync.outcomes import (
    BatchResults,
    Kind,
    RecordResult,
    batch_failure,
    chunked,
    fatal_description,
    finish_batch,
)
from shared.sync.ports import BrightpearlPort, DataversePort, Publish, StateStorePort
from shared.sync.spec import SYSTEM_TITLES, FlowSpec
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("sync.engine")

M = TypeVar("M", bound=BaseModel)  # the entity's canonical model (shared/model)


class Decision(Protocol):
    """What deciding one record yields (shared/mapping/decision.py WriteDecision)."""

    @property
    def fatal(self) -> bool: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def should_write(self) -> bool: ...

    issues: list[QualityIssue]
    desired_hash: str
    payload: Any  # the entity's target payload (e.g. DataverseCustomerPayload)


@dataclass
class PlainDecision(Generic[M]):
    """A Decision for flows with no field ownership (one-way figures such as stock or an order's
    state): write `payload` when its hash differs from what the target holds."""

    payload: M
    desired_hash: str
    should_write: bool
    issues: list[QualityIssue] = field(default_factory=list)
    fatal: bool = False
    reason: str | None = None


@dataclass
class SyncRecord(Generic[M]):
    """One source record on its way through the engine."""

    source_id: str
    source: dict[str, Any]  # the source record as read
    read: Translation[M]  # its canonical form and the issues met reading it
    target: dict[str, Any] | None = None  # the target record as read (None: not found yet)
    target_id: str | None = None
    matched_by: str | None = None  # key | link | email | recovered; None: to be created
    decision: Decision | None = None
    link: Link | None = None
    claim: Claim | None = None
    changed: tuple[str, ...] = ()  # canonical fields the write changes in the target (audit)


@dataclass
class Batch:
    """The ids of one batch after coalescing: changed records per notice entity, deletions."""

    changed: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    derived: dict[str, list[str]] = field(default_factory=dict)  # notice id -> records it stands for
    envelopes: Sequence[Envelope] = ()  # the batch's messages (anomaly watches read their notices)
    records: list[Any] = field(default_factory=list)  # the SyncRecords read (for the watches)
    flags: list[Any] = field(default_factory=list)  # anomaly flags raised before the write

    def add(self, entity: str, record_id: str) -> None:
        ids = self.changed.setdefault(entity, [])
        if record_id not in ids:
            ids.append(record_id)

    def ids_of(self, envelope: Envelope) -> list[str]:
        out: list[str] = []
        for record_id in envelope.notice.ids:
            out.append(record_id)
            out.extend(self.derived.get(record_id, ()))
        return out


class FlowPorts(TypedDict):
    """The adapters every flow is built with (keyword arguments of `RecordSync`; subclasses pass
    them on as `**ports` and add their own settings)."""

    brightpearl: BrightpearlPort
    dataverse: DataversePort
    store: StateStorePort
    publish: Publish  # where split-off bad records are re-published (the source's topic)


# How a record was matched -> the note its audit row carries (None: it was created).
MATCH_NOTES: dict[str | None, str] = {
    None: "created",
    "key": "",
    "link": "",
    "email": "linked by e-mail",
    "productnumber": "linked by productnumber",
    "recovered": "recovered after an interrupted create",
}


# Canonical fields that are bookkeeping, not content: never reported as changed.
NOT_CONTENT = frozenset({"modified_at", "source_system", "ids"})


def integration_echo(envelope: Envelope, integration_user: str | None, trust: bool) -> bool:
    """A Dataverse notice the integration's own application user initiated
    (DATAVERSE_INTEGRATION_USER_ID), when the deployment trusts that user
    (CUSTOMERS_TRUST_INTEGRATION_USER): a flow writing to Brightpearl may skip it without reading
    (`IntegrationEcho`). Off, every notice is read and the content decides."""
    user = str(envelope.notice.detail.get("initiating_user") or "").lower()
    return trust and bool(integration_user) and user == (integration_user or "").lower()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A canonical value as {dotted field: value}, one level into nested models and dicts."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    out: dict[str, Any] = {}
    for name, item in (data or {}).items():
        if not prefix and name in NOT_CONTENT:
            continue
        key = f"{prefix}{name}"
        if not prefix and isinstance(item, dict):
            out.update(_flat(item, f"{key}."))
        else:
            out[key] = item
    return out


def changed_fields(source: BaseModel, current: BaseModel | None, keep: Sequence[str] = ()) -> tuple[str, ...]:
    """The canonical fields (dotted, e.g. `name.last_name`, `emails.primary`) where `source` and
    what the target holds (`current`; None: a new record, every non-empty field) differ, leaving
    out the fields the target keeps by ownership (`keep`). Names only, never values."""
    new = _flat(source)
    old = _flat(current) if current is not None else {}
    kept = tuple(keep)
    names = [
        k
        for k in new.keys() | old.keys()
        if new.get(k) != old.get(k)
        and (current is not None or new.get(k) not in (None, "", [], {}))
        and not any(k == f or k.startswith(f"{f}.") for f in kept)
    ]
    return tuple(sorted(names))


class RecordSync(Generic[M]):
    """One flow: change notices of `spec.source` -> records in `spec.target`. `handle` per batch."""

    spec: ClassVar[FlowSpec]
    link_entity: ClassVar[str]
    batch_ids_shown: ClassVar[int] = 10  # ids named in a whole-batch failure
    echo_needs_linked_target: ClassVar[bool] = False  # the link must point at the matched target
    # Source records read, matched, decided and written at a time (None: the whole batch). A
    # backfill batch is 50 notices of 100 ids, 5,000 records; a 5-line Brightpearl order is about
    # 20 KB as Python objects, so flows of large records set this to bound a batch's memory.
    # Each pass still reads and writes in bulk. A watch reading `batch.records` after settling
    # sees the last pass only, so flows with such a watch (customers, stock) keep None.
    records_per_pass: ClassVar[int | None] = None

    def __init__(self, **ports: Unpack[FlowPorts]) -> None:
        self.bp = ports["brightpearl"]
        self.dv = ports["dataverse"]
        self.store = ports["store"]
        self.publish = ports["publish"]
        self.watches = Watches.of(self.spec, self.store)  # anomaly detection (shared/anomaly)

    @classmethod
    def runtime_ports(cls) -> FlowPorts:
        """The process's adapters for this flow (shared/runtime.py, the composition root)."""
        from shared import runtime

        return {
            "brightpearl": runtime.brightpearl(),
            "dataverse": runtime.dataverse(),
            "store": runtime.state_store(),
            "publish": runtime.publisher_to(cls.spec.topic_setting),
        }

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.source_label

    # ------------------------------------------------------------------------------ entry
    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        started = time.monotonic()
        results = BatchResults()
        message_of: dict[str, Envelope] = {}
        batch = Batch(envelopes=envelopes)
        for envelope in envelopes:
            for record_id in envelope.notice.ids:
                message_of.setdefault(record_id, envelope)
                self.sort_notice(envelope, record_id, batch, results)
        try:
            self.run(batch, results)
        except Exception as exc:  # a read or a state call failed for the whole batch
            shown = ",".join(list(message_of)[: self.batch_ids_shown])
            return batch_failure(exc, envelopes, f"{self.label}s {shown}")
        for record_ids in batch.derived.values():
            for record_id in record_ids:
                message_of.setdefault(record_id, envelopes[0])
        outcomes = finish_batch(
            envelopes,
            batch.ids_of,
            results,
            flow=self.name,
            system_label=self.label,
            publish=self.publish,
            store=self.store,
            entity=self.link_entity,
            source_system=self.spec.source,
            target_system=self.spec.target,
            message_of=message_of,
            started=started,
        )
        self.watches.after_settle(self, batch, results, outcomes)
        return outcomes

    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        """Put one id of a notice into the batch (or give it its result now). Default: a
        malformed id is fatal, everything else is a change to read."""
        problem = self.id_problem(envelope.notice.entity, record_id)
        if problem is not None:
            results.set(record_id, RecordResult("fatal", "MalformedMessage", problem))
        else:
            batch.add(envelope.notice.entity, record_id)

    def run(self, batch: Batch, results: BatchResults) -> None:
        """The pipeline of one batch after coalescing, in passes of `records_per_pass` ids."""
        if batch.deleted:
            self.deleted(batch.deleted, results)
        ids = self.expand(batch, results)
        if not ids:
            return
        passes = self.passes(ids)
        for number, ids_of_pass in enumerate(passes):
            try:
                self.run_pass(batch, list(ids_of_pass), results)
            except Exception as exc:
                if number == 0 or classify(exc) is None:
                    raise  # nothing written yet (the whole batch is retried), or a bug
                # earlier passes are written and settled: they keep their results; this pass and
                # the later ones are retried with the error (their envelopes are redelivered)
                rest = [i for p in passes[number:] for i in p if not results.has(i)]
                for record_id in rest:
                    results.error(record_id, exc, f"{self.label}s {rest[0]}..{rest[-1]} ({len(rest)})")
                return

    def passes(self, ids: Sequence[str]) -> list[Sequence[str]]:
        """`ids` in passes of `records_per_pass` (one pass when it is None)."""
        return list(chunked(ids, self.records_per_pass or max(len(ids), 1)))

    def run_pass(self, batch: Batch, ids: list[str], results: BatchResults) -> None:
        """Read, match, decide and write one pass of ids (the whole batch unless
        `records_per_pass` splits it). `batch.records` holds this pass's records."""
        batch.records = []  # the previous pass's records are let go before this pass reads
        records = self.read(ids, results)
        if not records:
            return
        batch.records = records
        self.match(records, results)
        self.decide(records, results)
        self.watches.before_write(self, batch, results)
        self.write(records, results)

    # ------------------------------------------------------------------------------ hooks
    def id_problem(self, entity: str, record_id: str) -> str | None:
        """Why `record_id` cannot be an id of the source system (None: it can). Default: a
        Brightpearl id is a positive integer, a Dataverse id a GUID."""
        if self.spec.source == "brightpearl" and bp_id(record_id) is None:
            return f"Brightpearl {self.spec.record} id {record_id!r} is not a positive integer"
        if self.spec.source == "dataverse" and not odata.is_guid(record_id):
            return f"Dataverse {entity} id {record_id!r} is not a GUID"
        return None

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        """The source record ids to sync (default: every changed id, in order)."""
        return [i for ids in batch.changed.values() for i in ids]

    def deleted(self, ids: list[str], results: BatchResults) -> None:
        """Records deleted in the source (default: not consumed)."""

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The current source records by id, read in bulk; missing ids are left out."""
        raise NotImplementedError

    def gone(self, record_id: str) -> dict[str, Any] | None:
        """A stand-in source record for an id the source no longer has, when its disappearance is
        itself a change to sync (a destroyed product retires its target). None: `missing`."""
        return None

    def fetch_key(self, record_id: str) -> str:
        """The key `fetch` files `record_id` under."""
        return record_id

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        """Leave this record alone (after setting its result)? Default: no."""
        return False

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[M]:
        """A record of `system` in the canonical model (raises MappingInputError)."""
        raise NotImplementedError

    def content_hash(self, value: M, system: System) -> str:
        """Hash of what `system` would hold for `value` (shared/mapping/hashing.py)."""
        raise NotImplementedError

    def decide_write(self, record: SyncRecord[M], current: M | None) -> Decision:
        """Ownership merge, translation and hash comparison for one record."""
        raise NotImplementedError

    def match(self, records: list[SyncRecord[M]], results: BatchResults) -> None:
        """Find each record's target (`target`, `target_id`, `matched_by`, `link`)."""
        raise NotImplementedError

    def write(self, records: list[SyncRecord[M]], results: BatchResults) -> None:
        """Write the decided records in bulk, then `settle` each."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ steps
    def read(self, ids: list[str], results: BatchResults) -> list[SyncRecord[M]]:
        """Fetch in bulk, then validate and translate each record."""
        from shared.mapping import MappingInputError

        sources = self.fetch(ids)
        title = SYSTEM_TITLES[self.spec.source]
        records: list[SyncRecord[M]] = []
        for record_id in ids:
            source = sources.get(self.fetch_key(record_id))
            if source is None:
                source = self.gone(record_id)
            if source is None:
                results.set(
                    record_id,
                    RecordResult(
                        "missing", f"{title}RecordMissing", f"{self.label} {record_id} no longer exists"
                    ),
                )
                continue
            if self.skip(record_id, source, results):
                continue
            try:
                read = self.to_canonical(self.spec.source, source)
            except MappingInputError as exc:
                results.set(
                    record_id,
                    RecordResult("fatal", f"{title}ProtocolError", f"{self.label} {record_id}: {exc}"),
                )
                continue
            records.append(SyncRecord(record_id, source, read))
        return records

    def decide(self, records: list[SyncRecord[M]], results: BatchResults) -> None:
        """Per record: an echo of the last sync writes nothing; else ownership + content hash."""
        from shared.mapping import MappingInputError

        target = self.spec.target
        for r in records:
            if results.has(r.source_id):
                continue
            link = r.link
            if r.target is not None and self.is_echo(r):
                results.set(r.source_id, self.echo_result(r))
                continue
            current: M | None = None
            if r.target is not None:
                try:
                    current = self.to_canonical(target, r.target).value
                except MappingInputError:
                    current = None
            if current is not None and self.unchanged_since_sync(link, target, current):
                # only the source changed since the last sync: it is the last writer, whatever
                # the clocks say (Dataverse stamps whole seconds, our own writes move modifiedon)
                current = current.model_copy(update={"modified_at": None})
            r.decision = decision = self.decide_write(r, current)
            if decision.should_write:
                r.changed = changed_fields(r.read.value, current, keep=getattr(decision, "kept", ()))
            if decision.fatal:
                results.set(
                    r.source_id,
                    RecordResult(
                        "fatal",
                        decision.reason,
                        fatal_description(decision.issues),
                        stamp=str(r.source.get(self.spec.stamp_field) or ""),
                    ),
                )

    def is_echo(self, r: SyncRecord[M]) -> bool:
        """Does the source hold what was last synced (typically our own write coming back)? Then
        there is nothing to push; a newer edit on the other side travels the other way."""
        link, source = r.link, self.spec.source
        return (
            not r.read.fatal
            and link is not None
            and link.is_linked
            and (not self.echo_needs_linked_target or link.id_in(self.spec.target) == r.target_id)
            and link.hash_of(source) == self.content_hash(r.read.value, source)
        )

    def echo_result(self, r: SyncRecord[M]) -> RecordResult:
        return RecordResult(
            "unchanged",
            None,
            f"{self.label} {r.source_id} unchanged since the last sync (echo or no-op)",
            target_id=r.target_id,
        )

    def unchanged_since_sync(self, link: Link | None, system: System, current: M) -> bool:
        """Does `system` still hold exactly what the last sync left there (per the link's hash)?"""
        if link is None or not link.is_linked:
            return False
        stored = link.hash_of(system)
        return stored is not None and stored == self.content_hash(current, system)

    def to_write(self, records: list[SyncRecord[M]], results: BatchResults) -> list[SyncRecord[M]]:
        """The records decided and not yet settled (no result)."""
        return [r for r in records if r.decision is not None and not results.has(r.source_id)]

    def settle(self, r: SyncRecord[M], results: BatchResults, extra: str = "") -> None:
        """The result of a record written (or found up to date) in the target."""
        assert r.decision is not None
        kind: Kind = "synced" if r.decision.should_write else "unchanged"
        description = f"{self.label} {r.source_id} -> {self.spec.target_label} {r.target_id}"
        if kind == "unchanged":
            title = SYSTEM_TITLES[self.spec.target]
            description += f": {title} already holds this content (echo or no-op)"
        elif note := MATCH_NOTES.get(r.matched_by, ""):
            description += f" ({note})"
        results.set(
            r.source_id,
            RecordResult(
                kind,
                None,
                description + extra,
                target_id=r.target_id,
                created=r.matched_by is None,
                fields=r.changed if kind == "synced" else (),
            ),
        )

    def write_rows(
        self,
        entity_set: str,
        row: str,
        results: BatchResults,
        *,
        upserts: Sequence[tuple[SyncRecord[M], dict[str, Any]]] = (),
        updates: Sequence[tuple[SyncRecord[M], dict[str, Any]]] = (),
        key: str = "",
    ) -> None:
        """Write Dataverse rows in bulk: `upserts` by the alternate key `key` (UpsertMultiple),
        `updates` by their primary id (UpdateMultiple). A row Dataverse refused is its record's
        error, named "<row> of <source record> <id>" (`row`: "Dataverse contact")."""
        if upserts:
            answer = self.dv.upsert_multiple(entity_set, [cols for _, cols in upserts], key_columns=[key])
            self._row_errors([r for r, _ in upserts], answer.outcomes, row, results)
        if updates:
            answer = self.dv.update_multiple(entity_set, [cols for _, cols in updates])
            self._row_errors([r for r, _ in updates], answer.outcomes, row, results)

    def _row_errors(
        self, records: list[SyncRecord[M]], outcomes: Sequence[RowOutcome], row: str, results: BatchResults
    ) -> None:
        for r, outcome in zip(records, outcomes, strict=True):
            if not outcome.ok:
                results.error(r.source_id, outcome.error, f"{row} of {self.label} {r.source_id}")

    def remember(self, r: SyncRecord[M]) -> None:
        """Record the link (a record just matched) or the hashes both sides now hold."""
        if not r.target_id or r.claim is not None or r.decision is None:
            return  # not written, or created under a claim (complete_claim linked it)
        source, target = self.spec.source, self.spec.target
        source_hash = self.content_hash(r.read.value, source)
        target_hash = r.decision.desired_hash
        links = self.store.links
        link = r.link
        try:
            if link is None:
                links.link(
                    self.link_entity,
                    source,
                    r.source_id,
                    target,
                    r.target_id,
                    source_hash=source_hash,
                    target_hash=target_hash,
                )
            elif (
                link.is_linked
                and (link.id_in(target) or "").lower() == r.target_id.lower()
                and (link.hash_of(source) != source_hash or link.hash_of(target) != target_hash)
            ):
                links.record_hashes(
                    self.link_entity,
                    source,
                    r.source_id,
                    {source: source_hash, target: target_hash},
                    etag=link.etag,
                )
        except StoreConflictError as exc:
            # another worker recorded the link meanwhile; the record itself is synced
            log.info("link of %s %s not recorded: %s", self.label, r.source_id, type(exc).__name__)
