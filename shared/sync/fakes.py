"""In-memory fakes of the three ports (shared/sync/ports.py): state store, Brightpearl, Dataverse.

For fast flow tests (tests/unit/engine) and the customers benchmark's API-call runs. They
keep the behaviour the flows rely on, and tests/contract/test_fakes_agree.py runs the same
checks against each fake and its real counterpart (Azurite tables, the two simulators), so
a fake that drifts fails there first. Faults: `fail_next[operation] = [exc, ...]` raises
those exceptions on the next calls of that operation.
"""

from __future__ import annotations

import functools
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from shared.brightpearl.client import MessageOutcome, MultiMessageResult
from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlNotFound,
    BrightpearlPreconditionFailed,
    BrightpearlValidationError,
)
from shared.brightpearl.models import (
    ContactTag,
    OrderStatus,
    PriceList,
    ProductAvailability,
    ProductPrice,
    SalesOrderRowCreate,
)
from shared.brightpearl.transport import BrightpearlResponse
from shared.dataverse.models import BatchOperation, BatchResult, BulkResult, Record, RowOutcome
from shared.dataverse.tables import PRIMARY_IDS
from shared.store.audit import AuditEntry
from shared.store.cursors import Cursor
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.store.links import Claim, Link, LinkSide, LinkState

CENTS = Decimal("0.01")


def _now() -> datetime:
    return datetime.now(UTC)


class _Faults:
    """`fail_next[operation]`: exceptions the next calls of `operation` raise, in order."""

    def __init__(self) -> None:
        self.fail_next: dict[str, list[BaseException]] = {}
        self.calls: list[str] = []

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        queued = self.fail_next.get(operation)
        if queued:
            raise queued.pop(0)


# ---------------------------------------------------------------------------------- state store
class MemoryLinks:
    """Links, hashes and creation claims in memory, with the LinkStore's conflict rules:
    a record has one link; a second claim or link of it raises ClaimTaken; a hash update with
    a stale ETag raises StoreConflictError. Claims never expire (no clock)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Link] = {}  # (entity, system, id) -> Link
        self.claims: dict[tuple[str, str, str], Claim] = {}
        self.released: dict[tuple[str, str, str], dict[str, Any]] = {}  # progress the next claim resumes
        self.lock = threading.Lock()

    @staticmethod
    def _link(
        entity: str,
        source: str,
        source_id: str,
        target: str,
        target_id: str | None,
        state: LinkState,
        source_hash: str | None,
        target_hash: str | None,
    ) -> Link:
        now = _now()
        return Link(
            entity=entity,
            state=state,
            source=LinkSide(system=source, id=source_id, content_hash=source_hash),
            target=LinkSide(system=target, id=target_id, content_hash=target_hash),
            created_at=now,
            updated_at=now,
            etag=uuid.uuid4().hex,
        )

    def _store(self, link: Link) -> None:
        for side in (link.source, link.target):
            if side.id is not None:
                self.rows[(link.entity, side.system, side.id)] = link

    def get(self, entity: str, system: str, record_id: str | int) -> Link | None:
        return self.rows.get((entity, system, str(record_id)))

    def get_many(self, entity: str, system: str, record_ids: Iterable[str | int]) -> dict[str, Link]:
        found = {str(i): self.rows.get((entity, system, str(i))) for i in record_ids}
        return {i: link for i, link in found.items() if link is not None}

    def all_links(self, entity: str) -> Iterator[Link]:
        """Every link of `entity`, once each (LinkStore.all_links)."""
        seen: set[int] = set()
        for link in list(self.rows.values()):
            if link.entity == entity and id(link) not in seen:
                seen.add(id(link))
                yield link

    def unlink(self, entity: str, system: str, record_id: str | int) -> bool:
        """Remove a link (both sides). False when there was none (LinkStore.unlink)."""
        link = self.rows.get((entity, system, str(record_id)))
        if link is None:
            return False
        for side in (link.source, link.target):
            if side.id is not None:
                self.rows.pop((entity, side.system, side.id), None)
        return True

    def link(
        self,
        entity: str,
        source_system: str,
        source_id: str | int,
        target_system: str,
        target_id: str | int,
        *,
        source_hash: str | None = None,
        target_hash: str | None = None,
    ) -> Link:
        sid, tid = str(source_id), str(target_id)
        with self.lock:
            existing = self.rows.get((entity, source_system, sid))
            if existing is not None:
                if existing.is_linked and existing.id_in(target_system) == tid:
                    return existing  # idempotent for the same pair
                raise ClaimTaken("linked", link=existing, table="links", partition_key="", row_key=sid)
            if (entity, target_system, tid) in self.rows:
                raise StoreConflictError(
                    f"{target_system} {tid} is linked to another record",
                    table="links",
                    partition_key="",
                    row_key=tid,
                )
            link = self._link(
                entity, source_system, sid, target_system, tid, LinkState.LINKED, source_hash, target_hash
            )
            self._store(link)
            return link

    def record_hashes(
        self,
        entity: str,
        system: str,
        record_id: str | int,
        hashes: Mapping[str, str],
        *,
        etag: str | None = None,
    ) -> Link:
        with self.lock:
            link = self.rows.get((entity, system, str(record_id)))
            if link is None or (etag is not None and etag != link.etag):
                raise StoreConflictError(
                    f"link of {system} {record_id} changed meanwhile",
                    table="links",
                    partition_key="",
                    row_key=str(record_id),
                )
            for side_system, value in hashes.items():  # Link is frozen: a new one per hash
                role = "source" if link.side(side_system) is link.source else "target"
                side = getattr(link, role).model_copy(update={"content_hash": value})
                link = link.model_copy(update={role: side, "etag": uuid.uuid4().hex})
            self._store(link)
            return link

    def claim(self, entity: str, source_system: str, source_id: str | int, target_system: str) -> Claim:
        sid = str(source_id)
        with self.lock:
            existing = self.rows.get((entity, source_system, sid))
            if existing is not None:
                raise ClaimTaken("taken", link=existing, table="links", partition_key="", row_key=sid)
            pending = self._link(
                entity, source_system, sid, target_system, None, LinkState.PENDING, None, None
            )
            self._store(pending)
            now = _now()
            claim = Claim(
                entity=entity,
                source_system=source_system,
                source_id=sid,
                target_system=target_system,
                token=uuid.uuid4().hex,
                claimed_at=now,
                created_at=now,
                etag=pending.etag,
                progress=self.released.pop((entity, source_system, sid), {}),
            )
            self.claims[(entity, source_system, sid)] = claim
            return claim

    def save_progress(self, claim: Claim, progress: Mapping[str, Any]) -> Claim:
        saved = claim.model_copy(update={"progress": dict(progress)})
        self.claims[(claim.entity, claim.source_system, claim.source_id)] = saved
        return saved

    @contextmanager
    def keep(self, claims: Iterable[Claim]) -> Iterator[MemoryKeeper]:
        yield MemoryKeeper()  # in memory nothing expires: every claim stays held

    def complete_claim(
        self,
        claim: Claim,
        target_id: str | int,
        *,
        source_hash: str | None = None,
        target_hash: str | None = None,
    ) -> Link:
        with self.lock:
            link = self._link(
                claim.entity,
                claim.source_system,
                claim.source_id,
                claim.target_system,
                str(target_id),
                LinkState.LINKED,
                source_hash,
                target_hash,
            )
            self._store(link)
            self.claims.pop((claim.entity, claim.source_system, claim.source_id), None)
            return link

    def release_claim(self, claim: Claim) -> None:
        with self.lock:
            key = (claim.entity, claim.source_system, claim.source_id)
            link = self.rows.get(key)
            if link is not None and not link.is_linked:
                del self.rows[key]
            held = self.claims.pop(key, None)
            if held is not None and held.progress:  # as the LinkStore: a released claim keeps its progress
                self.released[key] = dict(held.progress)


class MemoryKeeper:
    def held(self, claim: Claim) -> bool:
        return True


class MemoryLedger:
    """Keys of things done once, each with the holder that did it."""

    def __init__(self) -> None:
        self.held: dict[str, str | None] = {}
        self.expires: dict[str, datetime] = {}  # keys recorded with a ttl
        self.lock = threading.Lock()

    def record(self, key: str, *, holder: str | None = None, ttl: timedelta | None = None) -> bool:
        with self.lock:
            if key in self.held and self.expires.get(key, datetime.max.replace(tzinfo=UTC)) > _now():
                return False
            self.held[key] = holder
            if ttl is not None:
                self.expires[key] = _now() + ttl
            return True

    def record_for(self, key: str, holder: str) -> bool:
        """True when `key` is new or already held by `holder` (a redelivery of the holder)."""
        with self.lock:
            return self.held.setdefault(key, holder) == holder

    def forget(self, key: str) -> None:
        with self.lock:
            self.held.pop(key, None)
            self.expires.pop(key, None)


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def record_many(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        written = list(entries)
        self.entries.extend(written)
        return written


class MemoryCursors:
    def __init__(self) -> None:
        self.values: dict[str, Cursor] = {}

    def get(self, name: str) -> Cursor | None:
        return self.values.get(name)

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor:
        current = self.values.get(name)
        if current is not None and etag is not None and etag != current.etag:
            raise StoreConflictError(
                f"cursor {name} moved meanwhile", table="cursors", partition_key="", row_key=name
            )
        cursor = Cursor(name=name, value=value, updated_at=_now(), etag=uuid.uuid4().hex)
        self.values[name] = cursor
        return cursor

    def delete(self, name: str, etag: str | None = None) -> None:
        self.values.pop(name, None)


class MemoryStateStore:
    """The four state tables in memory (links, ledger, audit, cursors)."""

    def __init__(self) -> None:
        self.links = MemoryLinks()
        self.ledger = MemoryLedger()
        self.audit = MemoryAudit()
        self.cursors = MemoryCursors()

    def drop_tables(self) -> None:
        pass

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------- Dataverse
_IN = re.compile(r"^Microsoft\.Dynamics\.CRM\.In\(PropertyName='([^']+)',PropertyValues=\[(.*)\]\)$")
_EQ = re.compile(r"^([A-Za-z0-9_]+) eq (.+)$")
_NE_GT = re.compile(r"^([A-Za-z0-9_]+) (ne|gt) (.+)$")


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        return text.lower()  # a GUID


@functools.lru_cache(maxsize=256)  # a query evaluates one filter text on every row
def _split(text: str, word: str) -> tuple[str, ...] | None:
    """`(a) or (b) or (c)` -> [a, b, c]: top-level parts joined by `word`, or None."""
    parts, depth, start, i = [], 0, 0, 0
    sep = f" {word} "
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "'":
            i = text.index("'", i + 1)
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i = i + len(sep)
            continue
        i += 1
    if not parts:
        return None
    return (*parts, text[start:])


def _unwrap(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _split(text[1:-1], "or") is not None:
        text = text[1:-1].strip()
    if text.startswith("(") and text.endswith(")") and "(" not in text[1:-1]:
        text = text[1:-1].strip()
    return text


@functools.lru_cache(maxsize=64)
def _in_values(text: str) -> tuple[Any, ...]:
    """The literals of an In(...) filter's PropertyValues list."""
    return tuple(_literal(v) for v in re.findall(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^,]+", text))


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        return value.lower() == wanted.lower()
    return bool(value == wanted) or str(value) == str(wanted)


def filter_matches(text: str, row: Mapping[str, Any]) -> bool:
    """Evaluate the OData filters the flows build (In, eq, and/or of them) on one row."""
    text = text.strip()
    for word, combine in (("or", any), ("and", all)):
        parts = _split(text, word)
        if parts is not None:
            return combine(filter_matches(_unwrap(p), row) for p in parts)
    if text.startswith("(") and text.endswith(")"):
        return filter_matches(text[1:-1], row)
    if m := _IN.match(text):
        values = _in_values(m.group(2))
        return any(_same(row.get(m.group(1)), v) for v in values)
    if m := _EQ.match(text):
        return _same(row.get(m.group(1)), _literal(m.group(2)))
    if m := _NE_GT.match(text):  # ne null, gt 'text' (string order, as the stock sweep pages)
        value, wanted = row.get(m.group(1)), _literal(m.group(3))
        if m.group(2) == "ne":
            return not (value is None if wanted is None else _same(value, wanted))
        return value is not None and str(value) > str(wanted)
    raise ValueError(f"the fake Dataverse cannot evaluate the filter {text!r}")


PRIMARY = PRIMARY_IDS
EXPANDS = {
    "parentcustomerid_account": ("_parentcustomerid_value", "accounts"),
    "transactioncurrencyid": ("_transactioncurrencyid_value", "transactioncurrencies"),  # a price list's
    "productid": ("_productid_value", "products"),  # an order line's product
}
LOOKUP_COLUMNS = {"parentcustomerid_account": "parentcustomerid"}  # navigation property -> lookup column
DRAFT_ON_CREATE = {"products"}  # created Draft unless the organisation creates them active (§10.7)
STATES = {"products": {0: {1}, 1: {2}, 2: {0}, 3: {3}}}  # statecode -> its statuscodes
_RECORD_PATH = re.compile(r"^([a-z]+)\(([0-9a-fA-F-]{36})\)$")
FULFILL_SALES_ORDER = "salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder"
# salesorder statecode -> its statuscodes (reference dataverse-api.md §10.5); 2, 3, 4 are closed
SALESORDER_STATES = {0: {1, 2, 700970000}, 1: {3}, 2: {4}, 3: {100001, 100002}, 4: {100003}}
_SET_PATH = re.compile(r"^([a-z]+)$")


class FakeDataverse(_Faults):
    """Tables of rows in memory: queries with the flows' filters, UpsertMultiple by alternate
    key and UpdateMultiple by primary id (a missing row fails that row, as in Dataverse), single
    creates, and `$batch` PATCHes of a row. New products are Draft unless
    `products_active_on_create` (organization.createproductswithoutparentinactivestate). With
    `only_active_orders_editable`, as Dataverse and the simulator (reference dataverse-api.md
    §10.5), a salesorder that is not Active, and its lines, take nothing but a state change."""

    def __init__(
        self, *, products_active_on_create: bool = False, only_active_orders_editable: bool = False
    ) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in PRIMARY_IDS}
        self.products_active_on_create = products_active_on_create
        self.only_active_orders_editable = only_active_orders_editable

    def add(self, entity_set: str, row: Mapping[str, Any]) -> str:
        pk = PRIMARY[entity_set]
        record_id = str(row.get(pk) or uuid.uuid4()).lower()
        stamps = {"createdon": _now().isoformat(), "modifiedon": _now().isoformat()}
        self.tables[entity_set][record_id] = {**stamps, **row, pk: record_id}
        return record_id

    def query(self, entity_set: str, **kwargs: Any) -> Iterator[Record]:
        self._call("query")
        flt = kwargs.get("filter")
        select = kwargs.get("select")
        expand = kwargs.get("expand")
        pk = PRIMARY[entity_set]
        rows = list(self.tables[entity_set].items())
        for clause in reversed(kwargs.get("orderby") or ()):  # "column asc|desc", as strings
            column, _, direction = str(clause).partition(" ")
            rows.sort(key=lambda item: str(item[1].get(column) or ""), reverse=direction == "desc")
        top = kwargs.get("top")
        for record_id, row in rows:
            if flt is not None and not filter_matches(str(flt), row):
                continue
            if top is not None:
                if top <= 0:
                    return
                top -= 1
            values = {k: v for k, v in row.items() if not select or k in select or k == pk or "@" in k}
            for name in _expanded(expand):
                column, target_set = EXPANDS[name]
                parent = self.tables[target_set].get(str(row.get(column) or "").lower())
                values[name] = dict(parent) if parent is not None else None
            yield Record(entity_set=entity_set, id=record_id, etag=None, values=values)

    def upsert_multiple(
        self,
        entity_set: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        key_columns: Sequence[str],
        **kwargs: Any,
    ) -> BulkResult:
        self._call("upsert_multiple")
        outcomes = []
        for i, row in enumerate(rows):
            key = {c: row[c] for c in key_columns}
            found = next(
                (
                    rid
                    for rid, r in self.tables[entity_set].items()
                    if all(_same(r.get(c), v) for c, v in key.items())
                ),
                None,
            )
            record_id = self._write(entity_set, found, row)
            outcomes.append(RowOutcome(index=i, key=key, ok=True, id=record_id))
        return BulkResult(outcomes=outcomes, bulk_requests=1)

    def update_multiple(
        self, entity_set: str, rows: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> BulkResult:
        from shared.dataverse.errors import DataverseNotFound

        self._call("update_multiple")
        pk = PRIMARY[entity_set]
        outcomes = []
        for i, row in enumerate(rows):
            record_id = str(row[pk]).lower()
            if record_id not in self.tables[entity_set]:
                error = DataverseNotFound(f"{entity_set}({record_id}) does not exist", status=404)
                outcomes.append(RowOutcome(index=i, key={pk: record_id}, ok=False, error=error))
                continue
            self._write(entity_set, record_id, row)
            outcomes.append(RowOutcome(index=i, key={pk: record_id}, ok=True, id=record_id))
        return BulkResult(outcomes=outcomes, bulk_requests=1)

    def _write(self, entity_set: str, record_id: str | None, row: Mapping[str, Any]) -> str:
        pk = PRIMARY[entity_set]
        values = dict(row)
        for column, value in row.items():  # lookups written by binding: parentcustomerid_account@odata.bind
            if column.endswith("@odata.bind"):
                del values[column]
                navigation = column.removesuffix("@odata.bind")
                target = re.search(r"/?([a-z]+)\(([^)]*)\)", str(value))
                if target is not None:
                    target_set, key = target.groups()
                    if "=" in key:  # alternate key: accounts(bpi_accountkey='x')
                        name, _, raw = key.partition("=")
                        wanted = _literal(raw)
                        rows = self.tables[target_set].items()
                        key = next((i for i, r in rows if _same(r.get(name), wanted)), key)
                    values[f"_{LOOKUP_COLUMNS.get(navigation, navigation)}_value"] = key.lower()
        if record_id is None:
            record_id = str(uuid.uuid4())
        current = self.tables[entity_set].get(record_id, {})
        if not current and entity_set in DRAFT_ON_CREATE and "statecode" not in values:
            draft = not self.products_active_on_create and values.get("_parentproductid_value") is None
            values["statecode"], values["statuscode"] = (2, 0) if draft else (0, 1)
        self._check_state(entity_set, {**current, **values})
        if self.only_active_orders_editable:
            self._check_order_editable(entity_set, current, values)
        if entity_set == "productpricelevels":
            self._check_item_currency({**current, **values}, values)
        self.tables[entity_set][record_id] = {
            "createdon": _now().isoformat(),  # kept from the first write
            **current,
            **values,
            pk: record_id,
            "modifiedon": _now().isoformat(),
        }
        return record_id

    @staticmethod
    def _check_state(entity_set: str, row: Mapping[str, Any]) -> None:
        from shared.dataverse.errors import DataverseValidationError

        allowed = STATES.get(entity_set, {}).get(row.get("statecode"))  # type: ignore[arg-type]
        if entity_set in STATES and (allowed is None or row.get("statuscode") not in allowed):
            raise DataverseValidationError(
                f"{row.get('statuscode')} is not a valid status code for state code {row.get('statecode')}",
                status=400,
            )

    def _check_order_editable(
        self, entity_set: str, current: Mapping[str, Any], values: Mapping[str, Any]
    ) -> None:
        """Only Active orders (and their lines) are edited; a state change alone is not an edit."""
        from shared.dataverse.errors import DataverseValidationError

        if entity_set == "salesorderdetails":
            parent = current.get("_salesorderid_value") or values.get("_salesorderid_value")
            order = self.tables["salesorders"].get(str(parent or "").lower()) or {}
        elif entity_set == "salesorders" and current and not values.keys() <= {"statecode", "statuscode"}:
            order = dict(current)
        else:
            return
        if (order.get("statecode") or 0) != 0:
            raise DataverseValidationError(
                "This salesorder can not be edited because it is not active. "
                "Only active orders can be edited.",
                status=400,
            )

    def _check_item_currency(self, row: Mapping[str, Any], values: dict[str, Any]) -> None:
        """A price list item inherits its list's currency and refuses another (pricing error 34,
        reference dataverse-api.md §10.9), as the simulator does."""
        from shared.dataverse.errors import DataverseValidationError

        price_list = self.tables["pricelevels"].get(str(row.get("_pricelevelid_value") or "").lower())
        wanted = (price_list or {}).get("_transactioncurrencyid_value")
        given = row.get("_transactioncurrencyid_value")
        if wanted is not None and given is not None and not _same(given, wanted):
            raise DataverseValidationError(
                "The currency (transactioncurrencyid) of the price list item does not match the currency "
                "of its price list (pricelevelid): pricing error 34, Invalid Price Level Currency.",
                status=400,
            )
        if wanted is not None:
            values["_transactioncurrencyid_value"] = wanted

    def create(self, entity_set: str, data: Mapping[str, Any], *, detect_duplicates: bool = False) -> str:
        self._call("create")
        return self._write(entity_set, None, data)

    def _batch_create(self, entity_set: str, body: Mapping[str, Any]) -> str:
        """POST `<set>` in a `$batch`: a row, with the primary id the body gives (taken: 412)."""
        from shared.dataverse.errors import DataverseDuplicateError

        given = body.get(PRIMARY[entity_set])
        if given is not None and str(given).lower() in self.tables[entity_set]:
            raise DataverseDuplicateError(
                "A record with matching key values already exists.", status=412, code="0x80040237"
            )
        return self._write(entity_set, str(given).lower() if given else None, body)

    def execute_change_sets(self, groups: Sequence[Sequence[BatchOperation]]) -> list[list[BatchResult]]:
        """Each group as `execute_batch` runs it, all counted as one call; a group with a failed
        operation reports that error for each of its operations (the writes before it are NOT
        rolled back in this fake)."""
        self._call("execute_change_sets")
        out: list[list[BatchResult]] = []
        for group in groups:
            results = self.execute_batch(group, change_set=True) if group else []
            self.calls.pop()  # counted above, as the one $batch it is
            failed = next((r for r in results if r.error is not None), None)
            if failed is not None:
                results = [BatchResult(i, failed.status, {}, None, failed.error) for i in range(len(group))]
            out.append(results)
        return out

    def execute_batch(
        self, ops: Sequence[BatchOperation], *, continue_on_error: bool = True, change_set: bool = False
    ) -> list[BatchResult]:
        """PATCH and DELETE `<set>(<guid>)`, POST `<set>` operations (what the flows batch: state
        changes, price list items). A created row's id is in its OData-EntityId header."""
        from shared.dataverse.errors import DataverseError, DataverseNotFound

        self._call("execute_batch")
        results = []
        for i, op in enumerate(ops):
            headers: dict[str, str] = {}
            error: DataverseError | None = None
            created = _SET_PATH.match(op.path) if op.method == "POST" else None
            m = _RECORD_PATH.match(op.path)
            if op.method == "POST" and op.path == FULFILL_SALES_ORDER:
                error = self._fulfil(op.body or {})
            elif created is not None:
                try:
                    new_id = self._batch_create(created.group(1), op.body or {})
                    headers["odata-entityid"] = f"https://fake/api/data/v9.2/{created.group(1)}({new_id})"
                except DataverseError as exc:
                    error = exc
            elif op.method not in ("PATCH", "DELETE") or m is None:
                raise ValueError(f"the fake Dataverse does not batch {op.method} {op.path}")
            else:
                entity_set, record_id = m.group(1), m.group(2).lower()
                if record_id not in self.tables[entity_set]:
                    error = DataverseNotFound(f"{entity_set}({record_id}) does not exist", status=404)
                elif op.method == "DELETE":
                    del self.tables[entity_set][record_id]
                else:
                    try:
                        if entity_set == "salesorders" and "statecode" in (op.body or {}):
                            self._check_order_state(record_id, op.body or {})
                        self._write(entity_set, record_id, op.body or {})
                    except DataverseError as exc:
                        error = exc
            if error is not None and not continue_on_error:
                raise error
            status = 204 if error is None else (error.status or 500)
            results.append(BatchResult(i, status, headers, None, error))
        return results

    def _check_order_state(self, record_id: str, body: Mapping[str, Any], *, fulfil: bool = False) -> None:
        """A salesorder state change (SetState by PATCH): a valid pair, and only from an open
        order (Active or Submitted); Fulfilled is reached through FulfillSalesOrder."""
        from shared.dataverse.errors import DataverseValidationError

        state, status = body.get("statecode"), body.get("statuscode")
        current = self.tables["salesorders"][record_id].get("statecode") or 0
        if state not in SALESORDER_STATES or status not in SALESORDER_STATES[state]:
            raise DataverseValidationError(
                f"{status} is not a valid status code for state code {state} on salesorder", status=400
            )
        if current not in (0, 1):
            raise DataverseValidationError(
                f"The order is closed (statecode {current}) and its state cannot be changed", status=400
            )
        if state == 3 and not fulfil:
            raise DataverseValidationError(
                "A sales order is fulfilled through the FulfillSalesOrder action", status=400
            )

    def _fulfil(self, body: Mapping[str, Any]) -> Any:
        """FulfillSalesOrder: OrderClose binds the order, Status a Fulfilled statuscode."""
        from shared.dataverse.errors import DataverseError, DataverseNotFound

        close = body.get("OrderClose") or {}
        bound = re.search(r"salesorders\(([0-9a-fA-F-]{36})\)", str(close.get("salesorderid@odata.bind")))
        if bound is None or bound.group(1).lower() not in self.tables["salesorders"]:
            return DataverseNotFound("FulfillSalesOrder: OrderClose names no existing salesorder", status=404)
        record_id = bound.group(1).lower()
        try:
            self._check_order_state(
                record_id, {"statecode": 3, "statuscode": body.get("Status")}, fulfil=True
            )
        except DataverseError as exc:
            return exc
        self._write("salesorders", record_id, {"statecode": 3, "statuscode": body.get("Status")})
        return None


def _expanded(expand: Any) -> list[str]:
    if not expand:
        return []
    names = expand if isinstance(expand, list | tuple) else str(expand).split(",")
    return [str(n).split("(")[0].strip() for n in names if str(n).split("(")[0].strip() in EXPANDS]


# ---------------------------------------------------------------------------------- Brightpearl
_CONTACT_PATH = re.compile(r"^/contact-service/contact/([0-9,\-]+)(/custom-field)?$")


@dataclass
class FakeBrightpearl(_Faults):
    """Contacts, postal addresses and products in memory, answering the calls the flows make."""

    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    addresses: dict[int, dict[str, Any]] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    tagged: dict[int, set[int]] = field(default_factory=dict)
    groups: dict[int, set[int]] = field(default_factory=dict)
    stock: dict[int, dict[int, dict[str, int]]] = field(default_factory=dict)  # product, warehouse
    goods_movements: list[dict[str, Any]] = field(default_factory=list)
    goods_out: dict[int, dict[str, Any]] = field(default_factory=dict)  # note id -> as its GET (§8.3)
    price_lists: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> as price-list GET
    prices: dict[int, dict[int, dict[str, str]]] = field(default_factory=dict)  # product, list -> breaks
    sales_orders: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> the POST body
    order_statuses: dict[int, str] = field(default_factory=dict)  # status id -> name (per account)
    lost_answers: int = 0  # the next N sales-order POSTs are applied, then time out (answer lost)
    # a sales order whose externalRef + installedIntegrationInstanceId is taken: refused (the
    # simulator's default, reference §6.2) or answered with the existing order's id
    duplicate_external_ref: str = "error"
    cancelled_status: int | None = None  # the account's cancelled sales status (its rules apply)
    next_id: int = 1000
    next_row_id: int = 0

    def __post_init__(self) -> None:
        _Faults.__init__(self)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_contact(self, contact: Mapping[str, Any]) -> int:
        contact_id = int(contact.get("contactId") or self._new_id())
        self.contacts[contact_id] = {
            "contactId": contact_id,
            "updatedOn": _now().isoformat(),
            "isCustomer": True,
            "relationshipToAccount": {"isCustomer": True, "isSupplier": False, "isStaff": False},
            **contact,
        }
        return contact_id

    def add_product(self, product: Mapping[str, Any]) -> int:
        """A product as product GET returns it (reference §7.1); `id` is given or new."""
        product_id = int(product.get("id") or self._new_id())
        self.products[product_id] = {
            "id": product_id,
            "status": "LIVE",
            "updatedOn": _now().isoformat(),
            "version": 1,
            **product,
        }
        return product_id

    def _view(self, contact: dict[str, Any]) -> dict[str, Any]:
        out = dict(contact)
        ids = contact.get("postAddressIds") or {}
        out["postalAddresses"] = [
            {"addressId": i, **self.addresses[i]} for i in dict.fromkeys(ids.values()) if i in self.addresses
        ]
        return out

    def request(self, method: str, path: str, **kwargs: Any) -> BrightpearlResponse:
        self._call(f"{method} {path.split('/')[1] if '/' in path else path}")
        m = _CONTACT_PATH.match(path)
        if method == "GET" and m and m.group(2):
            return _answer({})
        if method == "POST" and path.rstrip("/") == "/contact-service/contact":
            return _answer(self.create_contact(kwargs["json"]))
        if method == "POST" and path.rstrip("/") == "/contact-service/postal-address":
            return _answer(self.create_postal_address(kwargs["json"]))
        if method == "POST" and path.rstrip("/") == "/product-service/product":
            return _answer(self.add_product({k: v for k, v in kwargs["json"].items() if k != "id"}))
        raise ValueError(f"the fake Brightpearl does not answer {method} {path}")

    def get_by_ids(
        self,
        path: str,
        ids: Iterable[int],
        *,
        limit: int | None = 200,
        params: dict[str, Any] | None = None,
    ) -> list[Any]:
        self._call("get_by_ids")
        if path.startswith("/contact-service/postal-address/"):  # with contactId, 0 when unattached
            owners = {
                a: c for c, row in self.contacts.items() for a in (row.get("postAddressIds") or {}).values()
            }
            return [
                {**self.addresses[i], "addressId": i, "contactId": owners.get(i, 0)}
                for i in map(int, ids)
                if i in self.addresses
            ]
        if path.startswith("/product-service/product/"):  # customFields only when asked for
            custom = "customFields" in str((params or {}).get("includeOptional", ""))
            return [
                {k: v for k, v in self.products[int(i)].items() if custom or k != "customFields"}
                for i in ids
                if int(i) in self.products
            ]
        if path.startswith("/warehouse-service/order/"):  # goods-out GET (§8.3): a map of note id to note
            by_note = path.endswith("/goods-out/{ids}")
            wanted = {int(i) for i in ids}
            notes = {
                str(i): dict(n)
                for i, n in sorted(self.goods_out.items())
                if (i if by_note else n["orderId"]) in wanted
            }
            return [notes] if notes else []
        if path.startswith("/order-service/order/"):  # order GET (reference §6.4), the status part
            return [self._order_view(self.sales_orders[int(i)]) for i in ids if int(i) in self.sales_orders]
        if not path.startswith("/contact-service/contact/"):
            raise ValueError(f"the fake Brightpearl does not answer GET {path}")
        return [self._view(self.contacts[int(i)]) for i in ids if int(i) in self.contacts]

    def update_product(self, product_id: int, body: dict[str, Any], *, version: int | None) -> None:
        """Product PUT as the simulator answers it (reference §7.2): a stale `If-Match` version is
        412, `salesChannels` is replaced whole, and `version` and `updatedOn` move."""
        self._call("update_product")
        path = f"/product-service/product/{int(product_id)}"
        product = self.products.get(int(product_id))
        if product is None:
            raise BrightpearlNotFound(f"PUT {path}: product {product_id} not found", status=404)
        if version is not None and str(version) != str(product.get("version")):
            raise BrightpearlPreconditionFailed(
                f"PUT {path}: product {product_id} was changed since version {version}", status=412
            )
        product.update(body)
        product["version"] = int(product.get("version") or 0) + 1
        product["updatedOn"] = _now().isoformat()

    def set_stock(self, product_id: int, warehouse_id: int, **levels: int) -> None:
        """A product's levels in one warehouse (onHand=, inStock=, allocated=, inTransit=)."""
        self.stock.setdefault(int(product_id), {})[int(warehouse_id)] = dict(levels)

    def move_stock(self, product_id: int, warehouse_id: int, quantity: int, code: str = "SC") -> None:
        """A stock correction (SC) or shipped goods-out (GO): onHand and inStock move by `quantity`,
        and a goods movement row is left (the product's updatedOn does not move)."""
        levels = self.stock.setdefault(int(product_id), {}).setdefault(int(warehouse_id), {})
        for name in ("onHand", "inStock"):
            levels[name] = levels.get(name, 0) + quantity
        self.goods_movements.append(
            {
                "goodsMovementId": len(self.goods_movements) + 1,
                "productId": int(product_id),
                "warehouseId": int(warehouse_id),
                "quantity": quantity,
                "goodsNoteTypeCode": code,
                "updatedOn": _now().isoformat(),
            }
        )

    def get_product_availability(self, product_ids: Iterable[int]) -> dict[int, ProductAvailability]:
        """Reference §8.1: only stock-tracked products, only warehouses holding them; one call
        (`calls`) per 200 ids, the resource's limit."""
        ids = list(dict.fromkeys(int(i) for i in product_ids))
        out: dict[int, ProductAvailability] = {}
        for start in range(0, len(ids), 200):
            self._call("get_product_availability")
            for product_id in ids[start : start + 200]:
                product = self.products.get(product_id)
                if product is None or not (product.get("stock") or {}).get("stockTracked"):
                    continue
                warehouses = self.stock.get(product_id, {})
                total = {
                    name: sum(levels.get(name, 0) for levels in warehouses.values())
                    for name in ("inStock", "onHand", "allocated", "inTransit")
                }
                answer = {"total": total, "warehouses": warehouses}
                out[product_id] = ProductAvailability.model_validate(answer)
        return out

    def add_price_list(self, list_id: int, name: str, currency: str, type_code: str = "SELL") -> int:
        """A price list as price-list GET returns it (reference §7.3)."""
        self.price_lists[int(list_id)] = {
            "id": int(list_id),
            "code": name.upper().replace(" ", "-"),
            "name": {"languageCode": "EN", "text": name, "format": "PLAINTEXT"},
            "currencyCode": currency,
            "priceListTypeCode": type_code,
            "gross": False,
        }
        return int(list_id)

    def set_prices(self, product_id: int, list_id: int, breaks: Mapping[str, Any] | None) -> None:
        """A product's quantity breaks in one list, replaced ({"1": "9.99"}); None removes them.
        As in Brightpearl, a price change moves the product's updatedOn."""
        lists = self.prices.setdefault(int(product_id), {})
        if breaks is None:
            lists.pop(int(list_id), None)
        else:
            lists[int(list_id)] = {str(k): str(v) for k, v in breaks.items()}
        if int(product_id) in self.products:
            self.products[int(product_id)]["updatedOn"] = _now().isoformat()

    def get_price_lists(self, ids: Iterable[int] | None = None) -> list[PriceList]:
        self._call("get_price_lists")
        wanted = None if ids is None else {int(i) for i in ids}
        return [
            PriceList.model_validate(row)
            for list_id, row in sorted(self.price_lists.items())
            if wanted is None or list_id in wanted
        ]

    def get_product_prices(
        self, product_ids: Iterable[int], price_list_ids: Iterable[int] | None = None
    ) -> list[ProductPrice]:
        """Reference §7.3: one item per existing product, its lists (those asked for) with their
        quantity breaks; one call (`calls`) per 200 ids."""
        ids = list(dict.fromkeys(int(i) for i in product_ids))
        lists = None if price_list_ids is None else {int(i) for i in price_list_ids}
        out: list[ProductPrice] = []
        for start in range(0, len(ids), 200):
            self._call("get_product_prices")
            for product_id in ids[start : start + 200]:
                if product_id not in self.products:
                    continue
                entries = [
                    {
                        "priceListId": list_id,
                        "currencyCode": self.price_lists.get(list_id, {}).get("currencyCode"),
                        "sku": (self.products[product_id].get("identity") or {}).get("sku", ""),
                        "quantityPrice": dict(breaks),
                    }
                    for list_id, breaks in sorted(self.prices.get(product_id, {}).items())
                    if lists is None or list_id in lists
                ]
                out.append(ProductPrice.model_validate({"productId": product_id, "priceLists": entries}))
        return out

    def search_goods_movements(
        self, *, updated_since: Any = None, columns: list[str] | None = None, **filters: Any
    ) -> Iterable[dict[str, Any]]:
        self._call("search_goods_movements")
        return [
            {k: v for k, v in row.items() if not columns or k in columns}
            for row in sorted(self.goods_movements, key=lambda r: int(r["goodsMovementId"]))
            if updated_since is None or datetime.fromisoformat(str(row["updatedOn"])) >= updated_since
        ]

    def search_contacts(
        self,
        *,
        updated_since: Any = None,
        updated_until: Any = None,
        primary_email: str | None = None,
        is_customer: bool | None = None,
        columns: list[str] | None = None,
        sort: str | None = "contactId.ASC",
        page_size: int | None = None,
        **filters: Any,
    ) -> Iterable[dict[str, Any]]:
        self._call("search_contacts")
        rows = []
        for contact in sorted(self.contacts.values(), key=lambda c: int(c["contactId"])):
            row = {
                "contactId": contact["contactId"],
                "primaryEmail": ((contact.get("communication") or {}).get("emails") or {})
                .get("PRI", {})
                .get("email"),
                "firstName": contact.get("firstName"),
                "lastName": contact.get("lastName"),
                "updatedOn": contact.get("updatedOn"),
                "isCustomer": contact.get("isCustomer", True),
            }
            if primary_email is not None and str(row["primaryEmail"] or "").lower() != primary_email.lower():
                continue
            if is_customer is not None and bool(row["isCustomer"]) != is_customer:
                continue
            if (
                "lastName" in filters
                and str(row["lastName"] or "").lower() != str(filters["lastName"]).lower()
            ):
                continue
            rows.append({k: v for k, v in row.items() if not columns or k in columns})
        return rows

    def search_products(
        self,
        *,
        sku: str | None = None,
        updated_since: Any = None,
        columns: list[str] | None = None,
        **filters: Any,
    ) -> Iterable[dict[str, Any]]:
        """product-search rows (productId ascending), by SKU and/or updatedOn >= updated_since."""
        self._call("search_products")
        rows = []
        for product in sorted(self.products.values(), key=lambda p: int(p["id"])):
            identity = product.get("identity") or {}
            row = {
                "productId": product["id"],
                "SKU": identity.get("sku"),
                "EAN": identity.get("ean"),
                "UPC": identity.get("upc"),
                "ISBN": identity.get("isbn"),
                "productName": ((product.get("salesChannels") or [{}])[0]).get("productName"),
                "updatedOn": product.get("updatedOn"),
                "stockTracked": bool((product.get("stock") or {}).get("stockTracked")),
            }
            if sku is not None and row["SKU"] != sku:
                continue
            if updated_since is not None and datetime.fromisoformat(str(row["updatedOn"])) < updated_since:
                continue
            rows.append({k: v for k, v in row.items() if not columns or k in columns})
        return rows

    def multi_message(
        self,
        messages: list[dict[str, Any]],
        *,
        processing_mode: str = "SEQUENTIAL",
        on_fail: str = "CONTINUE",
    ) -> MultiMessageResult:
        self._call("multi_message")
        processed = {}
        for message in messages:
            answer = self.request(message["httpMethod"], message["uri"], json=message["body"])
            processed[str(message["label"])] = MessageOutcome(200, {"response": answer.response})
        return MultiMessageResult(processed, [])

    def create_many(self, uri: str, bodies: Sequence[dict[str, Any]]) -> Sequence[int | BaseException]:
        self._call("create_many")
        out: list[int | BaseException] = []
        for body in bodies:
            try:
                out.append(int(self.request("POST", uri, json=body).response))
            except Exception as exc:
                out.append(exc)
        return out

    def highest_created_id(self, uri: str) -> int | None:
        return max(self.addresses, default=None) if "postal-address" in uri else None

    def create_sales_order(self, order: Any) -> int:
        """Atomic: all rows or nothing. As the simulator by default, a second order with the same
        externalRef + installedIntegrationInstanceId (none counts as 0) is refused, or with
        `duplicate_external_ref="return-existing"` answered with the first one's id (reference
        §6.2); with `lost_answers` the order is made and the answer lost (a timeout)."""
        self._call("create_sales_order")
        body = order.wire() if hasattr(order, "wire") else dict(order)
        ext = body.get("externalRef")
        if ext:
            instance = body.get("installedIntegrationInstanceId") or 0
            for existing in self._order_ids(ext, instance):
                if self.duplicate_external_ref == "return-existing":
                    return existing
                raise BrightpearlValidationError(
                    f"externalRef {ext!r} is already used by order {existing}", status=400
                )
        order_id = self._new_id()
        rows = [{"id": self._new_row_id(), **row} for row in body.get("rows") or []]
        self.sales_orders[order_id] = {"id": order_id, **body, "rows": rows}
        if self.lost_answers:
            self.lost_answers -= 1
            raise BrightpearlAmbiguousWrite("the sales-order POST timed out after it was sent")
        return order_id

    def set_order_status(
        self, order_id: int, status_id: int, *, note: str | None = None, public: bool = False
    ) -> None:
        """PUT order/{id}/status (reference §6.6). Into `cancelled_status`, as Brightpearl: no
        goods-out notes (`goodsOutNotes`), not invoiced (`invoices`), payments total zero
        (`paid`); else refused and nothing changes. A note is kept per change."""
        self._call("set_order_status")
        order = self.sales_orders[int(order_id)]
        if self.cancelled_status is not None and int(status_id) == self.cancelled_status:
            if order.get("goodsOutNotes"):
                raise BrightpearlValidationError(
                    "an order with goods-out notes cannot be cancelled", status=400
                )
            if order.get("invoices"):
                raise BrightpearlValidationError("an invoiced order cannot be cancelled", status=400)
            if Decimal(str(order.get("paid") or 0)) != 0:
                raise BrightpearlValidationError("an order with payments cannot be cancelled", status=400)
        order["statusId"] = int(status_id)
        order.setdefault("notes", []).append(note or f"Order status changed to {status_id}")

    def get_order_statuses(self) -> list[OrderStatus]:
        self._call("get_order_statuses")
        return [
            OrderStatus.model_validate({"statusId": i, "name": name, "orderTypeCode": "SO"})
            for i, name in self.order_statuses.items()
        ]

    def _new_row_id(self) -> int:
        self.next_row_id += 1
        return self.next_row_id

    def _rows_of(self, order_id: int, what: str) -> list[dict[str, Any]]:
        """An order's rows for a change; refused once it is invoiced (reference §6.5)."""
        order = self.sales_orders[int(order_id)]
        if order.get("invoices"):
            raise BrightpearlValidationError(f"rows cannot be {what} once the order is invoiced", status=400)
        rows: list[dict[str, Any]] = order.setdefault("rows", [])
        return rows

    def put_sales_order_rows(self, order_id: int, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Each row replaces the row of its id (reference §6.2); unknown ids are refused per row."""
        self._call("put_sales_order_rows")
        stored = self._rows_of(order_id, "changed")
        refused: dict[str, str] = {}
        for row in rows:
            index = next((i for i, r in enumerate(stored) if r["id"] == int(row["id"])), None)
            if index is None:
                refused[str(row["id"])] = f"Order row {row['id']} not found on order {order_id}"
                continue
            wire = SalesOrderRowCreate.model_validate({k: v for k, v in row.items() if k != "id"}).wire()
            stored[index] = {"id": int(row["id"]), **wire}
        return refused

    def add_order_row(self, order_id: int, row: Mapping[str, Any]) -> int:
        """A new row (reference §6.5); amounts kept to the 2 d.p. this call takes."""
        self._call("add_order_row")
        stored = self._rows_of(order_id, "added")
        wire = SalesOrderRowCreate.model_validate(dict(row)).wire()
        for key in ("net", "tax"):
            wire[key] = format(Decimal(wire[key]).quantize(CENTS).quantize(Decimal("0.0001")), "f")
        wire.pop("externalRef", None)  # row POST takes no externalRef
        row_id = self._new_row_id()
        stored.append({"id": row_id, **wire})
        return row_id

    def delete_order_row(self, order_id: int, row_id: int) -> None:
        self._call("delete_order_row")
        stored = self._rows_of(order_id, "deleted")
        if not any(r["id"] == int(row_id) for r in stored):
            raise BrightpearlNotFound(f"Order row {row_id} not found on order {order_id}", status=404)
        stored[:] = [r for r in stored if r["id"] != int(row_id)]

    def _order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        """Order GET (reference §6.4): status, customer, invoices, payment status and the rows
        keyed by row id."""
        status_id = order.get("statusId")
        rows = {
            str(row["id"]): {
                "productId": row.get("productId") or 0,
                "productName": row.get("name") or "",
                "quantity": {"magnitude": row["quantity"]},
                "rowValue": {
                    "taxCode": row["taxCode"],
                    "rowNet": {"value": row["net"]},
                    "rowTax": {"value": format(Decimal(row["tax"]).quantize(CENTS), "f")},
                },
                "nominalCode": row.get("nominalCode") or "4000",
                "externalRef": row.get("externalRef") or "",
                "composition": {"bundleParent": False, "bundleChild": False, "parentOrderRowId": 0},
            }
            for row in order.get("rows") or []
        }
        paid = Decimal(str(order.get("paid") or 0))
        return {
            "id": order["id"],
            "orderTypeCode": order.get("orderTypeCode", "SO"),
            "reference": order.get("ref"),
            "externalRef": order.get("externalRef"),
            "orderStatus": {"orderStatusId": status_id, "name": self.order_statuses.get(status_id or 0)},
            "orderPaymentStatus": order.get("orderPaymentStatus") or ("PAID" if paid > 0 else "UNPAID"),
            "parties": {"customer": {"contactId": (order.get("customer") or {}).get("id")}},
            "invoices": list(order.get("invoices") or []),
            "orderRows": rows,
            **self._fulfilment_view(order),
        }

    def _fulfilment_view(self, order: dict[str, Any]) -> dict[str, Any]:
        """Order GET's delivery, updatedOn and shippingStatusCode: SNS, SPS or ASS by what the
        shipped goods-out notes hold of the product rows (reference §6.4)."""
        shipped: dict[int, Decimal] = {}
        for note in self.goods_out.values():
            if note["orderId"] == order["id"] and note["status"]["shipped"]:
                for row_id, parts in note["orderRows"].items():
                    shipped[int(row_id)] = shipped.get(int(row_id), Decimal(0)) + sum(
                        Decimal(str(p["quantity"])) for p in parts
                    )
        rows = [r for r in order.get("rows") or [] if r.get("productId")]
        done = [shipped.get(r["id"], Decimal(0)) >= Decimal(str(r["quantity"])) for r in rows]
        code = "ASS" if rows and all(done) else "SPS" if any(shipped.values()) else "SNS"
        return {
            "updatedOn": order.get("updatedOn") or _now().isoformat(),
            "delivery": {"shippingMethodId": (order.get("delivery") or {}).get("shippingMethodId", 0)},
            "shippingStatusCode": code if rows else "NST",
        }

    def ship(
        self,
        order_id: int,
        quantities: Mapping[int, int] | None = None,
        *,
        reference: str = "",
        shipping_method_id: int = 0,
        shipped_on: str | None = None,
        shipped: bool = True,
    ) -> int:
        """A goods-out note of `quantities` (row id -> units; default every product row whole),
        shipped (SHW) unless `shipped` is false, with its tracking `reference` (reference §8.3).
        The order's updatedOn moves, as in Brightpearl."""
        order = self.sales_orders[int(order_id)]
        rows = quantities or {
            r["id"]: int(r["quantity"]) for r in order.get("rows") or [] if r.get("productId")
        }
        note_id = self._new_id()
        when = shipped_on or _now().isoformat()
        self.goods_out[note_id] = {
            "orderId": int(order_id),
            "warehouseId": order.get("warehouseId") or 2,
            "transfer": False,
            "status": {"shipped": shipped, **({"shippedOn": when} if shipped else {})},
            "shipping": {"shippingMethodId": shipping_method_id, "reference": reference},
            "orderRows": {str(r): [{"productId": 0, "quantity": q}] for r, q in rows.items()},
        }
        order.setdefault("goodsOutNotes", []).append(note_id)
        order["updatedOn"] = _now().isoformat()
        return note_id

    def search_orders(
        self,
        *,
        updated_since: Any = None,
        updated_until: Any = None,
        columns: list[str] | None = None,
        sort: str | None = "orderId.ASC",
        **filters: Any,
    ) -> Iterable[dict[str, Any]]:
        """order-search rows (orderId, orderTypeId, updatedOn) by updatedOn, ascending by `sort`."""
        self._call("search_orders")
        rows = []
        for order in self.sales_orders.values():
            row = {
                "orderId": order["id"],
                "orderTypeId": 1,
                "updatedOn": self._fulfilment_view(order)["updatedOn"],
            }
            stamp = datetime.fromisoformat(str(row["updatedOn"]))
            if updated_since is not None and stamp < updated_since:
                continue
            if updated_until is not None and stamp > updated_until:
                continue
            rows.append({k: v for k, v in row.items() if not columns or k in columns})
        if (sort or "").startswith("updatedOn"):
            return sorted(rows, key=lambda r: (str(r.get("updatedOn")), int(r.get("orderId") or 0)))
        return sorted(rows, key=lambda r: int(r.get("orderId") or 0))

    def find_order_ids_by_external_ref(
        self, external_ref: str, integration_instance_id: int | None = None
    ) -> list[int]:
        self._call("find_order_ids_by_external_ref")
        return self._order_ids(external_ref, integration_instance_id)

    def _order_ids(self, external_ref: str, integration_instance_id: int | None) -> list[int]:
        return sorted(
            i
            for i, o in self.sales_orders.items()
            if o.get("externalRef") == external_ref
            and (
                integration_instance_id is None
                or (o.get("installedIntegrationInstanceId") or 0) == integration_instance_id
            )
        )

    def create_contact(self, body: Mapping[str, Any]) -> int:
        owned = {a for c in self.contacts.values() for a in (c.get("postAddressIds") or {}).values()}
        for code, address_id in (body.get("postAddressIds") or {}).items():
            if address_id in owned:  # as Brightpearl (the simulator's CNTC-108)
                raise BrightpearlValidationError(
                    f"postAddressIds.{code}: postal address {address_id} belongs to another contact",
                    status=400,
                )
        return self.add_contact({k: v for k, v in body.items() if k != "contactId"})

    def patch_contact(self, contact_id: int, ops: Iterable[Any]) -> Any:
        self._call("patch_contact")
        contact = self._contact(contact_id)
        for op in ops:
            op = op if isinstance(op, dict) else op.model_dump(by_alias=True)
            keys = [p for p in str(op["path"]).split("/") if p]
            target = contact
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            if op["op"] == "remove":
                target.pop(keys[-1], None)
            else:
                target[keys[-1]] = op.get("value")
        contact["updatedOn"] = _now().isoformat()
        return contact

    def patch_contact_custom_fields(self, contact_id: int, ops: Iterable[Any]) -> object:
        self._call("patch_contact_custom_fields")
        return {}

    def create_postal_address(self, address: Any) -> int:
        address_id = self._new_id()
        self.addresses[address_id] = dict(address)
        return address_id

    def update_postal_address(self, address_id: int, address: Any) -> object:
        self._call("update_postal_address")
        if address_id not in self.addresses:
            raise BrightpearlNotFound(f"postal address {address_id} not found", status=404)
        self.addresses[address_id] = dict(address)
        return None

    def link_contact_addresses(self, contact_id: int, links: list[dict[str, Any]]) -> object:
        self._call("link_contact_addresses")
        contact = self._contact(contact_id)
        ids = contact.setdefault("postAddressIds", {})
        for link in links:
            ids[link["type"]] = link["postalAddressId"]
        return None

    def add_contacts_to_group(self, group_id: int, contact_ids: Iterable[int]) -> object:
        self.groups.setdefault(group_id, set()).update(contact_ids)
        return None

    def get_tags(self, ids: Iterable[int] | None = None) -> list[ContactTag]:
        return [ContactTag.model_validate({"tagId": i, "tagName": n}) for i, n in self.tags.items()]

    def create_tag(self, name: str, description: str | None = None) -> int:
        tag_id = self._new_id()
        self.tags[tag_id] = name
        return tag_id

    def tag_contacts(self, contact_ids: Iterable[int], tag_id: int) -> object:
        for contact_id in contact_ids:
            self.tagged.setdefault(contact_id, set()).add(tag_id)
        return None

    def _contact(self, contact_id: int) -> dict[str, Any]:
        if contact_id not in self.contacts:
            raise BrightpearlNotFound(f"contact {contact_id} not found", status=404)
        return self.contacts[contact_id]


def _answer(response: Any) -> BrightpearlResponse:
    return BrightpearlResponse(
        status=200, response=response, body={"response": response}, headers=httpx.Headers()
    )
