"""Flow products-to-dataverse: Brightpearl products -> Dynamics products (issue 12 item 1).

Per batch of change notices (DESIGN §3, the engine in shared/sync/engine.py): coalesce the
product ids; read the products by id set (≤ 200 a call); translate and check them through
mappings/products.yaml; resolve the unit group, its default unit and the default price list
by name once per batch (the unit group and unit are created when missing, if the mapping
allows); find each product's Dynamics product by `bpi_brightpearlid`, the link, then
`productnumber` (both alternate keys), refusing a SKU another Brightpearl product already
holds (`DuplicateSku`, in the batch or in Dynamics); decide by ownership and content hash;
write with UpsertMultiple on the `bpi_brightpearlid` key (UpdateMultiple by id for a product
matched by productnumber); then move each product to the state Brightpearl implies with the
documented state change (PATCH statecode/statuscode, reference dataverse-api.md §10.7), sent
in `$batch` requests: a new product the organisation created Draft is published (Active), an
archived or destroyed one is Retired. Nothing is ever deleted: a webhook for a product that
no longer exists in Brightpearl retires its Dynamics product.

Two workers creating the same product converge on one row (UpsertMultiple by alternate key
is idempotent), so no creation claim is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self, Unpack

from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.flows.products_spec import PRODUCTS, TO_DATAVERSE
from shared.mapping.products import (
    PRODUCT_SELECT,
    ProductCatalogue,
    ProductDecision,
    brightpearl_product_to_canonical,
    column_delta,
    dataverse_product_to_canonical,
    decide_product_write,
    fatal_issue,
    product_columns,
    product_hash,
)
from shared.mapping.products_config import ProductMapping, load_product_mapping
from shared.mapping.translation import Translation
from shared.model.product import Product
from shared.quality.issues import IssueCode
from shared.sync.engine import FlowPorts, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked, in_parallel
from shared.sync.ports import DataversePort
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("flows.products_to_dataverse")

PRODUCT_GET = "/product-service/product/{ids}"
BATCH_OPS = 1000  # state changes per $batch (the Web API's limit)
RETIRED = 1  # product statecode (reference dataverse-api.md §10.7)

Record = SyncRecord[Product]


def products_by_key(
    dv: DataversePort, records: Sequence[SyncRecord[Any]], key: str, select: list[str]
) -> dict[str, dict[str, Any]]:
    """The Dynamics products of these records by their Brightpearl id (the alternate key `key`),
    `select`ed, read as many ids a query as the URL takes; a record with no product is absent."""
    found: dict[str, dict[str, Any]] = {}
    for of_records in odata.in_chunks(key, [r.source_id for r in records]):
        for row in dv.query("products", select=select, filter=of_records):
            found[str(row.get(key))] = dict(row.values)
    return found


def retired_product(label: str, source_id: str, row: dict[str, Any], left_alone: str) -> RecordResult | None:
    """A skip when the Dynamics product `row` is retired (a flow writing into a product leaves a
    retired one alone: `left_alone` says what, "stock"); None when it is active."""
    if row.get("statecode") != RETIRED:
        return None
    return RecordResult(
        "skipped",
        None,
        f"{label} {source_id}: its Dynamics product {row['productid']} is retired; {left_alone} left alone",
        target_id=str(row["productid"]),
    )


def product_mapping_path() -> Path:
    """The mapping file the PRODUCT_MAPPING_PATH setting names; a relative path is resolved
    against the app root (as CUSTOMER_MAPPING_PATH is), so one value works in Azure and locally."""
    from shared import runtime

    return runtime.app_file(runtime.settings().products.mapping_path)


class ProductSync(RecordSync[Product]):
    """What both product flows share: the mapping, the Dynamics key, the catalogue (units and
    price lists, resolved per batch), and translation and hashing through the canonical Product."""

    link_entity = PRODUCTS.link_entity

    def __init__(self, *, mapping: ProductMapping, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.mapping = mapping
        self.key = mapping.dataverse.key
        self.catalogue: ProductCatalogue | None = None

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[Product]:
        if system == "brightpearl":
            return brightpearl_product_to_canonical(record, self.mapping)
        return dataverse_product_to_canonical(record, self.mapping, self.catalogue)

    def content_hash(self, value: Product, system: System) -> str:
        return product_hash(value, system)


class ProductsToDataverse(ProductSync):
    """Brightpearl products -> Dynamics. Hooks: fetch (product GET by id set), gone (a destroyed
    product is retired), match (key, link, productnumber, duplicate SKUs), write (bulk, then
    state changes)."""

    spec = TO_DATAVERSE

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the mapping file PRODUCT_MAPPING_PATH names."""
        return cls(mapping=load_product_mapping(product_mapping_path()), **cls.runtime_ports())

    # ------------------------------------------------------------------------------ hooks
    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        params = {"includeOptional": "customFields"} if self.mapping.units.custom_field else None
        raw = self.bp.get_by_ids(PRODUCT_GET, [int(i) for i in ids], limit=200, params=params)
        return {str(item["id"]): item for item in raw if isinstance(item, dict) and "id" in item}

    def gone(self, record_id: str) -> dict[str, Any] | None:
        return {"id": int(record_id), "destroyed": True}  # destroyed in Brightpearl: retire it

    def decide_write(self, record: Record, current: Product | None) -> ProductDecision:
        assert self.catalogue is not None  # resolved by match()
        return decide_product_write(
            record.read.value,
            current,
            self.mapping,
            self.catalogue,
            record_id=record.source_id,
            source_issues=record.read.issues,
        )

    def match(self, records: list[Record], results: BatchResults) -> None:
        self.catalogue = self.resolve_catalogue()
        if self.mapping.price_list.default and self.catalogue.price_list_id is None:
            for r in records:  # may be created later (the price-list flow, an administrator)
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        "DataverseReferenceMissing",
                        f"Dynamics price list named in price_list.default (mappings/products.yaml) does "
                        f"not exist; Brightpearl product {r.source_id} waits for it",
                    ),
                )
            return
        links = self.store.links.get_many(self.link_entity, "brightpearl", [r.source_id for r in records])
        for r in records:
            r.link = links.get(r.source_id)
        pool = self._candidates(records)
        by_key = {str(row.get(self.key)): row for row in pool.values() if row.get(self.key)}
        by_sku: dict[str, list[dict[str, Any]]] = {}
        for row in pool.values():
            by_sku.setdefault(_fold(row.get("productnumber")), []).append(row)
        row_links = self.store.links.get_many(self.link_entity, "dataverse", list(pool))
        for r in records:
            linked = r.link.id_in("dataverse") if r.link is not None and r.link.is_linked else None
            if r.source_id in by_key:
                self._found(r, by_key[r.source_id], "key")
            elif linked and linked.lower() in pool:
                self._found(r, pool[linked.lower()], "link")
            if r.read.value.status == "destroyed" or not r.read.value.sku:
                continue
            for row in by_sku.get(_fold(r.read.value.sku), []):
                if r.target is not None and row is r.target:
                    continue
                owner = str(row.get(self.key) or "")
                row_link = row_links.get(str(row["productid"]).lower())
                owner = owner or (row_link.id_in("brightpearl") or "" if row_link is not None else "")
                if r.target is None and owner in ("", r.source_id):
                    self._found(r, row, "productnumber")
                else:
                    self._duplicate(r, f"Dynamics product {row['productid']} of Brightpearl product {owner}")
        self._duplicates_in_batch(records)
        for r in records:
            if r.read.value.status == "destroyed" and r.target is None and not results.has(r.source_id):
                results.set(
                    r.source_id,
                    RecordResult(
                        "missing",
                        "BrightpearlRecordMissing",
                        f"{self.label} {r.source_id} no longer exists and has no Dynamics product to retire",
                    ),
                )

    def write(self, records: list[Record], results: BatchResults) -> None:
        assert self.catalogue is not None
        todo = self.to_write(records, results)
        upserts: list[tuple[Record, dict[str, Any]]] = []
        updates: list[tuple[Record, dict[str, Any]]] = []
        for r in todo:
            decision = self._decision(r)
            product = decision.payload
            if not decision.should_write or product.status == "destroyed":
                continue  # nothing to write, or only the state changes
            columns = column_delta(product_columns(product, self.mapping, self.catalogue), r.target)
            if r.target is None or str(r.target.get(self.key) or "") == r.source_id:
                if columns or r.target is None:
                    upserts.append((r, {**columns, self.key: r.source_id}))
            else:
                updates.append((r, {"productid": r.target["productid"], **columns, self.key: r.source_id}))
        self.write_rows(
            "products", "Dynamics product", results, upserts=upserts, updates=updates, key=self.key
        )
        self._read_created(todo, results)
        notes = self._set_states(todo, results)
        remember: list[Record] = []
        for r in todo:
            if results.has(r.source_id):
                continue
            self.settle(r, results, notes.get(r.source_id, ""))
            remember.append(r)
        in_parallel(self.remember, remember)

    # ------------------------------------------------------------------------------ catalogue
    def resolve_catalogue(self) -> ProductCatalogue:
        """The unit group, its units and the default price list, by name (created if allowed)."""
        group = self.mapping.unit_group
        found = [
            r
            for r in self.dv.query(
                "uomschedules",
                select=["uomscheduleid", "name"],
                filter=odata.eq("name", group.name),
                orderby=["createdon asc"],  # two of one name (created concurrently): always the first
            )
        ]
        group_id = str(found[0]["uomscheduleid"]).lower() if found else None
        if group_id is None and group.create_if_missing:
            group_id = self.dv.create("uomschedules", {"name": group.name, "baseuomname": group.default_unit})
            log.info("created Dynamics unit group %s", group_id)
        units: dict[str, str] = {}
        if group_id is not None:
            for row in self.dv.query(
                "uoms", select=["uomid", "name"], filter=odata.lookup_eq("uomscheduleid", group_id)
            ):
                units[str(row["uomid"]).lower()] = str(row.get("name") or "")
            wanted = group.default_unit.casefold()
            if group.create_if_missing and all(n.casefold() != wanted for n in units.values()):
                body: dict[str, Any] = {
                    "name": group.default_unit,
                    "quantity": 1,
                    "uomscheduleid@odata.bind": odata.bind("uomschedules", group_id),
                }
                if units:  # a unit is defined against the group's base unit
                    body["baseuom@odata.bind"] = odata.bind("uoms", next(iter(units)))
                units[self.dv.create("uoms", body).lower()] = group.default_unit
        price_list_id = None
        if self.mapping.price_list.default:
            rows = list(
                self.dv.query(
                    "pricelevels",
                    select=["pricelevelid", "name"],
                    filter=odata.eq("name", self.mapping.price_list.default),
                )
            )
            price_list_id = str(rows[0]["pricelevelid"]).lower() if rows else None
        return ProductCatalogue(group_id, group.name, units, price_list_id, self.mapping.price_list.default)

    # ------------------------------------------------------------------------------ matching
    def _candidates(self, records: list[Record]) -> dict[str, dict[str, Any]]:
        """Dynamics products that may be these records' (by key, link or productnumber), by id."""
        pool: dict[str, dict[str, Any]] = {}
        select = [*PRODUCT_SELECT, self.key]
        for _, candidates in odata.fit_chunks(records, self._candidates_filter):
            for row in self.dv.query("products", select=select, filter=candidates):
                pool[str(row["productid"]).lower()] = dict(row.values)
        return pool

    def _candidates_filter(self, chunk: Sequence[Record]) -> odata.Filter:
        """The products of `chunk` by key, productnumber (when matched on) or link."""
        parts = [odata.in_(self.key, [r.source_id for r in chunk])]
        skus = sorted({r.read.value.sku for r in chunk if r.read.value.sku})
        if skus and self.mapping.dataverse.match_on_productnumber:
            parts.append(odata.in_("productnumber", skus))
        linked = [
            r.link.id_in("dataverse") or ""
            for r in chunk
            if r.link is not None and r.link.is_linked and r.link.id_in("dataverse")
        ]
        if linked:
            parts.append(odata.in_("productid", linked))
        return odata.any_of(*parts)

    @staticmethod
    def _found(r: Record, row: dict[str, Any], how: str) -> None:
        r.target, r.target_id, r.matched_by = row, str(row["productid"]), how

    def _duplicate(self, r: Record, holder: str) -> None:
        """`r`'s SKU is already another product's: DuplicateSku (the SKU itself is not named)."""
        if any(i.code is IssueCode.DUPLICATE_SKU for i in r.read.issues):
            return
        r.read.issues.append(
            fatal_issue(
                self.mapping,
                r.source_id,
                IssueCode.DUPLICATE_SKU,
                "identity.sku",
                f"is also the SKU of {holder}; Dynamics productnumber must be unique",
            )
        )

    def _duplicates_in_batch(self, records: list[Record]) -> None:
        """Two products of this batch with one SKU: the one already holding it in Dynamics keeps
        it, else the oldest (lowest Brightpearl id) that is otherwise valid, as it would had the
        two arrived apart; the others are DuplicateSku (and, replayed alone, meet the holder's
        Dynamics product)."""
        groups: dict[str, list[Record]] = {}
        for r in records:
            if r.read.value.sku and r.read.value.status != "destroyed":
                groups.setdefault(_fold(r.read.value.sku), []).append(r)
        for sku, group in groups.items():
            if len(group) < 2:
                continue
            holders = {
                r.source_id
                for r in group
                if r.target is not None
                and _fold(r.target.get("productnumber")) == sku
                and r.matched_by != "productnumber"
            }
            if not holders:
                valid = [r for r in group if not r.read.fatal]
                if valid:
                    holders.add(min(valid, key=lambda r: int(r.source_id)).source_id)
            for r in group:
                if r.source_id not in holders:
                    others = ", ".join(o.source_id for o in group if o is not r)
                    self._duplicate(r, f"Brightpearl product(s) {others}")

    # ------------------------------------------------------------------------------ writes
    @staticmethod
    def _decision(r: Record) -> ProductDecision:
        assert isinstance(r.decision, ProductDecision)
        return r.decision

    def _read_created(self, todo: list[Record], results: BatchResults) -> None:
        """The ids and states of the products just created (the organisation may create Draft)."""
        created = [r for r in todo if r.target is None and not results.has(r.source_id)]
        select = ["productid", "statecode", "statuscode", self.key]
        found = products_by_key(self.dv, created, self.key, select)
        for r in created:
            new = found.get(r.source_id)
            if new is not None:
                r.target_id = str(new["productid"])
                r.target = new  # matched_by stays None: settle() says "created"

    def _set_states(self, todo: list[Record], results: BatchResults) -> dict[str, str]:
        """PATCH statecode/statuscode where the Dynamics state differs from what Brightpearl implies
        (publish Draft, retire archived/destroyed, reactivate un-archived); notes per record."""
        pending: list[tuple[Record, BatchOperation, str]] = []
        for r in todo:
            if results.has(r.source_id) or r.target is None or not r.target_id:
                continue
            state, status = self._decision(r).payload.dataverse_state
            current = (r.target.get("statecode"), r.target.get("statuscode"))
            if current == (state, status):
                continue
            note = {0: " (published)" if current[0] == 2 else " (activated)", 1: " (retired)"}.get(state, "")
            body = {"statecode": state, "statuscode": status}
            pending.append(
                (r, BatchOperation("PATCH", odata.record_path("products", r.target_id), body), note)
            )
        notes: dict[str, str] = {}
        for chunk in chunked(pending, BATCH_OPS):
            answers = self.dv.execute_batch([op for _, op, _ in chunk], continue_on_error=True)
            for (r, _, note), answer in zip(chunk, answers, strict=True):
                if answer.ok:
                    notes[r.source_id] = note
                else:
                    what = f"state change of the Dynamics product of {self.label} {r.source_id}"
                    results.error(r.source_id, answer.error, what)
        return notes


def _fold(sku: Any) -> str:
    """A SKU as Dynamics compares alternate key values (case-insensitively)."""
    return str(sku or "").casefold()
