"""Flow stock-to-dataverse: Brightpearl availability -> Dynamics `bpi_availablestock` (issue 12 item 3).

Per batch of change notices (the engine, shared/sync/engine.py): coalesce the product ids of
every notice (a storm of 5,000 on-hand-modified events over 200 products is 200 ids); read
`product-availability` for the whole id set (≤ 200 ids a call, reference §8.1); compute the
figure the `stock:` settings name (a measure, default `onHand`, summed over the configured
warehouses; shared/mapping/stock.py); read the Dynamics products of those ids in bulk by the
`bpi_brightpearlid` alternate key; and write, with one UpdateMultiple addressed by `productid`
(UpdateMultiple takes the primary key, reference dataverse-api.md §5.1), only the products
whose Dynamics value differs. Comparing with the value Dynamics holds (rather than a stored
hash) also repairs a figure someone edited in Dynamics.

- A product that is not stock-tracked is absent from availability: it is left alone, never
  zeroed (`skipped`).
- A retired Dynamics product is left alone (`skipped`): Brightpearl archived or destroyed it.
- A product Dynamics does not have yet is not an error. The products flow creates it (a new
  product's first goods-in can beat its product.created through the flows), so the notice is retried
  `stock.missing_product_retries` times with the usual backoff (15 s, 30 s, 60 s by default),
  which covers the products flow's own latency; after that the record completes `skipped`
  with reason `ProductNotInDynamics`, and the next stock or product event (or the stock
  poller) writes its stock. Nothing is dead-lettered for it.
- The stock sweep (shared/flows/stock_poller.py) re-reads every product in turn: a swept
  product whose figure is unchanged leaves no audit row (only changes are news).
- Throttling or an outage on either side is a retry (the engine's outcomes and
  shared/resilience.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Self, Unpack

from pydantic import BaseModel

from shared.brightpearl.models import ProductAvailability, StockLevel
from shared.events import Envelope
from shared.flows.products_to_dataverse import product_mapping_path, products_by_key, retired_product
from shared.flows.stock_spec import STOCK, SWEEP, TO_DATAVERSE
from shared.mapping.stock import StockSettings, load_stock_settings
from shared.mapping.translation import Translation
from shared.outcomes import Outcome
from shared.sync.engine import Batch, FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult
from shared.systems import System

KEY = "bpi_brightpearlid"  # the product's alternate key holding the Brightpearl id
AVAILABLE = "bpi_availablestock"
ON_HAND = "quantityonhand"
AVAILABILITY_IDS = 200  # ids per product-availability call (the port chunks at this)
MISSING_REASON = "ProductNotInDynamics"
MEASURE_FIELDS: dict[str, str] = {  # stock.measure -> the StockLevel field (reference §8.1)
    "onHand": "on_hand",
    "inStock": "in_stock",
    "allocated": "allocated",
    "inTransit": "in_transit",
}


class ProductStock(BaseModel):
    """The stock figures of one product, as either side holds them (None: not held)."""

    product_id: str
    available: Decimal | None = None
    on_hand: Decimal | None = None  # only when stock.write_quantityonhand


Record = SyncRecord[ProductStock]


class StockToDataverse(RecordSync[ProductStock]):
    """Brightpearl availability -> Dynamics products. Hooks: fetch (availability by id set), skip
    (not stock-tracked), match (Dynamics products by key, in bulk), write (UpdateMultiple)."""

    spec = TO_DATAVERSE
    link_entity = STOCK.link_entity

    def __init__(self, *, settings: StockSettings, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.settings = settings
        self.attempts: dict[str, int] = {}  # product id -> highest delivery attempt in this batch
        self.swept: set[str] = set()  # ids only the stock sweep named (no audit row when unchanged)

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the `stock:` section of PRODUCT_MAPPING_PATH."""
        return cls(settings=load_stock_settings(product_mapping_path()), **cls.runtime_ports())

    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        self.attempts = {}
        named = {i for e in envelopes if not e.notice.detail.get(SWEEP) for i in e.notice.ids}
        self.swept = {i for e in envelopes if e.notice.detail.get(SWEEP) for i in e.notice.ids} - named
        return super().handle(envelopes)

    def run(self, batch: Batch, results: BatchResults) -> None:
        super().run(batch, results)
        for record_id in self.swept:  # the sweep re-reads every product: only changes are news
            result = results.by_id.get(record_id)
            if result is not None and result.kind in ("unchanged", "skipped") and result.reason is None:
                del results.by_id[record_id]

    # ------------------------------------------------------------------------------ hooks
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        self.attempts[record_id] = max(self.attempts.get(record_id, 0), envelope.attempt)
        if envelope.notice.operation == "deleted":  # product.destroyed: nothing to count
            results.set(
                record_id,
                RecordResult("skipped", None, f"{self.label} {record_id} destroyed: its stock is left alone"),
            )
            return
        super().sort_notice(envelope, record_id, batch, results)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        # a product named by a webhook and by the poller in one batch is read once
        return list(dict.fromkeys(i for ids in batch.changed.values() for i in ids))

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Availability of the whole id set (the port chunks at 200); absent: not stock-tracked."""
        found = self.bp.get_product_availability([int(i) for i in ids])
        out: dict[str, dict[str, Any]] = {}
        for record_id in ids:
            availability = found.get(int(record_id))
            out[record_id] = {"id": int(record_id), "stockTracked": availability is not None}
            if availability is not None:
                out[record_id]["availability"] = availability
        return out

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        if source["stockTracked"]:
            return False
        results.set(
            record_id,
            RecordResult(
                "skipped",
                None,
                f"{self.label} {record_id} is not stock-tracked (or no longer exists): "
                "its Dynamics stock is left alone",
            ),
        )
        return True

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[ProductStock]:
        if system == "brightpearl":
            availability: ProductAvailability = record["availability"]
            figure = stock_figure(availability, self.settings)
            on_hand = figure if self.settings.write_quantityonhand else None
            return Translation(ProductStock(product_id=str(record["id"]), available=figure, on_hand=on_hand))
        return Translation(
            ProductStock(
                product_id=str(record.get(KEY) or ""),
                available=_decimal(record.get(AVAILABLE)),
                on_hand=_decimal(record.get(ON_HAND)) if self.settings.write_quantityonhand else None,
            )
        )

    def content_hash(self, value: ProductStock, system: System) -> str:
        text = f"{_text(value.available)}|{_text(value.on_hand)}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def decide_write(self, record: Record, current: ProductStock | None) -> PlainDecision[ProductStock]:
        wanted = record.read.value
        desired = self.content_hash(wanted, "dataverse")
        held = self.content_hash(current, "dataverse") if current is not None else None
        return PlainDecision[ProductStock](payload=wanted, desired_hash=desired, should_write=held != desired)

    def match(self, records: list[Record], results: BatchResults) -> None:
        """Each record's Dynamics product by the alternate key, read in bulk with its figures."""
        select = ["productid", KEY, AVAILABLE, "statecode"]
        if self.settings.write_quantityonhand:
            select.append(ON_HAND)
        rows = products_by_key(self.dv, records, KEY, select)
        for r in records:
            row = rows.get(r.source_id)
            if row is None:
                self._not_in_dynamics(r, results)
            elif retired := retired_product(self.label, r.source_id, row, "stock"):
                results.set(r.source_id, retired)
            else:
                r.target, r.target_id, r.matched_by = row, str(row["productid"]), "key"

    def write(self, records: list[Record], results: BatchResults) -> None:
        """One UpdateMultiple of the changed figures (by productid), then settle each record."""
        todo = self.to_write(records, results)
        changed = [(r, self._row(r)) for r in todo if self._decision(r).should_write]
        self.write_rows("products", "Dynamics product", results, updates=changed)
        for r in todo:
            if not results.has(r.source_id):
                self.settle(r, results)

    def remember(self, r: Record) -> None:
        """Nothing: Dynamics' own value is what the next batch compares with (no link needed)."""

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _decision(r: Record) -> PlainDecision[ProductStock]:
        assert isinstance(r.decision, PlainDecision)
        return r.decision

    def _row(self, r: Record) -> dict[str, Any]:
        value = self._decision(r).payload
        row: dict[str, Any] = {"productid": r.target_id, AVAILABLE: _number(value.available)}
        if self.settings.write_quantityonhand:
            row[ON_HAND] = _number(value.on_hand)
        return row

    def _not_in_dynamics(self, r: Record, results: BatchResults) -> None:
        """Retried a bounded number of times (the products flow is creating it), then left."""
        attempt = self.attempts.get(r.source_id, 1)
        what = f"{self.label} {r.source_id} has no Dynamics product (by {KEY}) yet"
        if attempt <= self.settings.missing_product_retries:
            results.set(
                r.source_id,
                RecordResult(
                    "transient", MISSING_REASON, f"{what}; retried while the products flow creates it"
                ),
            )
        else:
            results.set(
                r.source_id,
                RecordResult(
                    "skipped",
                    MISSING_REASON,
                    f"{what} after {attempt} attempts; its stock is written on its next product or "
                    "stock event, or by the stock poller",
                ),
            )


def stock_figure(availability: ProductAvailability, settings: StockSettings) -> Decimal:
    """The figure for one stock-tracked product: the measure summed over the configured
    warehouses (a warehouse not listed holds none of it), or the `total` when none are."""
    field = MEASURE_FIELDS[settings.measure]
    if not settings.warehouses:
        return Decimal(getattr(availability.total, field))
    levels: list[StockLevel] = [
        availability.warehouses[w] for w in settings.warehouses if w in availability.warehouses
    ]
    return Decimal(sum(getattr(level, field) for level in levels))


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _text(value: Decimal | None) -> str:
    """A figure in one spelling whatever its scale (Dynamics answers 7.0000000000 for 7)."""
    return "" if value is None else format(value.normalize(), "f")


def _number(value: Decimal | None) -> int | float | None:
    """A figure as JSON can carry it (whole numbers stay exact integers)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)
