"""Flow prices-to-dataverse: Brightpearl prices -> Dynamics price lists and items (issue 12 item 2).

A record is one Brightpearl product's prices: its quantity-1 price in each exported price list.
Per batch of change notices (the engine, shared/sync/engine.py):

1. Price lists (`expand`): read Brightpearl's price lists (one call) and keep those the
   `price_lists:` section of mappings/products.yaml exports (shared/mapping/prices.py: named
   SELL lists; a Cost/BUY list only with `export_cost: true`). Find their Dynamics price lists
   (`pricelevel`) by name in one query, with each one's currency; create a missing one in its
   Brightpearl currency, the `transactioncurrency` found by `isocurrencycode` (then read them
   again: of two created at once by two workers, the oldest is used). When Dynamics
   lacks that currency the list cannot exist: every product with a price in it is dead-lettered
   (`CurrencyMissing`, naming the price list by id and name and the ISO code); its prices in the
   other lists are still written. A Dynamics list of that name in another currency is not
   touched (`PriceListCurrencyMismatch`, dead-lettered the same way).
2. Prices (`fetch`): `product-price` for the whole id set, in the exported lists only (≤ 200
   ids a call, reference §7.3). Only quantity break "1" is mapped; other breaks are not
   (docs/mapping.md).
3. Match: the Dynamics products by `bpi_brightpearlid` (1,000 ids a query) with their default
   unit, then their items in the exported lists (~500 products a query, as the URL allows). A
   product Dynamics does not have yet is retried (`DataverseReferenceMissing`; the products flow
   creates it, and the retry policy bounds the wait); a retired one is left alone.
4. Decide: per exported list, a price without an item creates one (`pricingmethodcode` 1
   Currency Amount, `uomid` the product's default unit, the list's currency inherited); a
   changed amount, unit or method updates the item in place; an item without a price is
   deleted (the only delete of Dynamics data, but for a duplicate price list this flow itself
   just created); the rest is unchanged and nothing is written. Amounts are compared with
   what Dynamics holds, at a pricing precision of 2 to 4 decimals.
5. Write: every create, update and delete of the batch in `$batch` requests (1,000 each).

Throttling or an outage on either side is a retry (shared/resilience.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, Self, Unpack

from pydantic import BaseModel

from shared.dataverse import odata
from shared.dataverse.errors import DataverseDuplicateError
from shared.dataverse.models import BatchOperation
from shared.events import Envelope
from shared.flows.prices_spec import PRICES, TO_DATAVERSE
from shared.flows.products_to_dataverse import product_mapping_path, products_by_key, retired_product
from shared.mapping.prices import PriceSettings, SelectedList, load_price_settings
from shared.mapping.translation import MappingInputError, Translation
from shared.model.product import DRAFT
from shared.quality.issues import IssueCode, QualityIssue
from shared.sync.engine import Batch, FlowPorts, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("flows.prices_to_dataverse")

KEY = "bpi_brightpearlid"  # the product's alternate key holding the Brightpearl id
ITEMS = "productpricelevels"
CURRENCY_AMOUNT = 1  # productpricelevel.pricingmethodcode (reference dataverse-api.md §10.9)
QUANTITY_BREAK = "1"  # the only Brightpearl quantity break mapped
BATCH_OPS = 1000  # operations per $batch (the Web API's limit)
MISSING_PRODUCT = "DataverseReferenceMissing"
CURRENCY_MISMATCH = "PriceListCurrencyMismatch"
PRECISIONS = (2, 3, 4)  # the pricing decimal precisions an amount may have been rounded to
ITEM_IDS = uuid.UUID("6f1c2a4e-4b7d-5e0a-9c3f-2d8b1e7a9c41")  # namespace of the items' ids
ITEM_SELECT = [
    "productpricelevelid",
    "_pricelevelid_value",
    "_productid_value",
    "_uomid_value",
    "amount",
    "pricingmethodcode",
]


class ProductPrices(BaseModel):
    """One product's quantity-1 prices by Brightpearl price list id, as either side holds them."""

    product_id: str
    prices: dict[int, Decimal]


@dataclass(frozen=True)
class DynamicsList:
    """An exported Brightpearl list and its Dynamics price list (None: it cannot exist)."""

    selected: SelectedList
    pricelevel_id: str | None
    problem: tuple[str, str] | None = None  # (reason code, description) for products priced in it


@dataclass(frozen=True)
class ItemWrite:
    """One price list item operation."""

    method: Literal["POST", "PATCH", "DELETE"]
    list_id: int
    item_id: str
    body: dict[str, Any] | None = None

    def operation(self) -> BatchOperation:
        if self.method == "POST":
            return BatchOperation("POST", ITEMS, self.body)
        return BatchOperation(self.method, odata.record_path(ITEMS, self.item_id), self.body)


@dataclass
class PriceDecision:
    """What to write for one product's prices (the engine's Decision)."""

    payload: list[ItemWrite]
    desired_hash: str
    should_write: bool
    problems: list[tuple[str, str]] = field(default_factory=list)  # lists it cannot be priced in
    issues: list[QualityIssue] = field(default_factory=list)
    fatal: bool = False
    reason: str | None = None


Record = SyncRecord[ProductPrices]


class PricesToDataverse(RecordSync[ProductPrices]):
    """Brightpearl prices -> Dynamics price list items. Hooks: expand (price lists), fetch
    (product-price by id set), match (products and their items, in bulk), write ($batch)."""

    spec = TO_DATAVERSE
    link_entity = PRICES.link_entity

    def __init__(self, *, settings: PriceSettings, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.settings = settings
        self.lists: list[DynamicsList] = []

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the `price_lists:` section of PRODUCT_MAPPING_PATH."""
        settings = load_price_settings(product_mapping_path())
        return cls(settings=settings, **cls.runtime_ports())

    # ------------------------------------------------------------------------------ hooks
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        if envelope.notice.operation == "deleted":  # product.destroyed: the products flow retires it
            results.set(
                record_id,
                RecordResult(
                    "skipped",
                    None,
                    f"{self.label} {record_id} destroyed: its Dynamics product is retired (products flow); "
                    "its price list items are left",
                ),
            )
            return
        super().sort_notice(envelope, record_id, batch, results)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        ids = list(dict.fromkeys(i for ids in batch.changed.values() for i in ids))
        if not ids:
            return []
        self.lists = self.resolve_lists()
        if not self.lists:
            for record_id in ids:
                results.set(
                    record_id,
                    RecordResult(
                        "skipped",
                        None,
                        f"{self.label} {record_id}: no price list is exported "
                        "(price_lists in mappings/products.yaml)",
                    ),
                )
            return []
        return ids

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """product-price of the whole id set in the exported lists; a missing product is absent."""
        wanted = {dl.selected.id for dl in self.lists}
        found = self.bp.get_product_prices([int(i) for i in ids], sorted(wanted))
        out: dict[str, dict[str, Any]] = {}
        for item in found:
            entries = [e for e in item.price_lists if e.get("priceListId") in wanted]
            stamp = json.dumps(
                sorted(
                    (e.get("priceListId"), (e.get("quantityPrice") or {}).get(QUANTITY_BREAK))
                    for e in entries
                ),
                default=str,
            )
            out[str(item.product_id)] = {
                "id": item.product_id,
                "priceLists": entries,
                "pricesHash": hashlib.sha256(stamp.encode()).hexdigest()[:16],
            }
        return out

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[ProductPrices]:
        if system == "brightpearl":
            prices: dict[int, Decimal] = {}
            for i, entry in enumerate(record["priceLists"]):
                value = (entry.get("quantityPrice") or {}).get(QUANTITY_BREAK)
                if value is None:
                    continue  # no quantity-1 price in this list: no item
                amount = _decimal(value)
                if amount is None:
                    raise MappingInputError(f"priceLists[{i}].quantityPrice.{QUANTITY_BREAK} is not a number")
                prices[int(entry["priceListId"])] = amount
            return Translation(ProductPrices(product_id=str(record["id"]), prices=prices))
        held: dict[int, Decimal] = {}
        for list_id, item in record["items"].items():
            amount = _decimal(item.get("amount"))
            if amount is not None:
                held[list_id] = amount
        return Translation(ProductPrices(product_id=str(record["product"].get(KEY) or ""), prices=held))

    def content_hash(self, value: ProductPrices, system: System) -> str:
        text = "|".join(f"{k}={_text(v)}" for k, v in sorted(value.prices.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def decide_write(self, record: Record, current: ProductPrices | None) -> PriceDecision:
        assert record.target is not None and record.target_id is not None  # match() found it
        product_id = record.target_id.lower()
        unit = str(record.target["product"]["_defaultuomid_value"]).lower()
        items: dict[int, dict[str, Any]] = record.target["items"]
        wanted = record.read.value.prices
        writes: list[ItemWrite] = []
        problems: list[tuple[str, str]] = []
        for dl in self.lists:
            list_id = dl.selected.id
            price, item = wanted.get(list_id), items.get(list_id)
            if dl.problem is not None or dl.pricelevel_id is None:
                if price is not None and dl.problem is not None:
                    problems.append(dl.problem)
                continue
            if price is None:
                if item is not None:
                    writes.append(ItemWrite("DELETE", list_id, str(item["productpricelevelid"])))
                continue
            columns = {
                "amount": _number(price),
                "pricingmethodcode": CURRENCY_AMOUNT,
                "uomid@odata.bind": odata.bind("uoms", unit),
            }
            if item is None:
                item_id = str(uuid.uuid5(ITEM_IDS, f"{dl.pricelevel_id}|{product_id}"))
                body = {
                    "productpricelevelid": item_id,
                    "pricelevelid@odata.bind": odata.bind("pricelevels", dl.pricelevel_id),
                    "productid@odata.bind": odata.bind("products", product_id),
                    **columns,
                }
                writes.append(ItemWrite("POST", list_id, item_id, body))
            elif not (
                _same_amount(_decimal(item.get("amount")), price)
                and str(item.get("_uomid_value") or "").lower() == unit
                and item.get("pricingmethodcode") == CURRENCY_AMOUNT
            ):
                writes.append(ItemWrite("PATCH", list_id, str(item["productpricelevelid"]), columns))
        return PriceDecision(
            payload=writes,
            desired_hash=self.content_hash(record.read.value, "dataverse"),
            should_write=bool(writes),
            problems=problems,
        )

    def match(self, records: list[Record], results: BatchResults) -> None:
        """Each record's Dynamics product (by key) with its default unit, then its items in the
        exported lists, read in bulk."""
        select = ["productid", KEY, "_defaultuomid_value", "statecode"]
        rows = products_by_key(self.dv, records, KEY, select)
        matched: list[Record] = []
        for r in records:
            row = rows.get(r.source_id)
            if row is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        MISSING_PRODUCT,
                        f"{self.label} {r.source_id} has no Dynamics product (by {KEY}) yet; its prices are "
                        "retried while the products flow creates it",
                    ),
                )
            elif retired := retired_product(self.label, r.source_id, row, "prices"):
                results.set(r.source_id, retired)
            elif row.get("statecode") == DRAFT[0]:
                # the products flow publishes it, or retires it (archived in Brightpearl), next
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        MISSING_PRODUCT,
                        f"{self.label} {r.source_id}: its Dynamics product {row['productid']} is still "
                        "Draft; its prices wait until the products flow has published or retired it",
                    ),
                )
            elif not row.get("_defaultuomid_value"):
                results.set(
                    r.source_id,
                    RecordResult(
                        "fatal",
                        str(IssueCode.UNIT_NOT_RESOLVED),
                        f"{self.label} {r.source_id}: its Dynamics product {row['productid']} has no "
                        "default unit (defaultuomid), which a price list item needs (uomid); the products "
                        "flow sets it",
                        stamp=str(r.source.get(self.spec.stamp_field) or ""),
                    ),
                )
            else:
                r.target = {"product": row, "items": {}}
                r.target_id, r.matched_by = str(row["productid"]), "key"
                matched.append(r)
        self._read_items(matched)

    def write(self, records: list[Record], results: BatchResults) -> None:
        """Every item create, update and delete of the batch in $batch requests, then per product:
        an error, a dead letter for a list it cannot be priced in, or its result."""
        todo = self.to_write(records, results)
        pending = [(r, w) for r in todo for w in self._decision(r).payload]
        failed: dict[str, tuple[ItemWrite, BaseException | None]] = {}
        for chunk in chunked(pending, BATCH_OPS):
            answers = self.dv.execute_batch([w.operation() for _, w in chunk], continue_on_error=True)
            for (r, w), answer in zip(chunk, answers, strict=True):
                if not answer.ok and r.source_id not in failed:
                    failed[r.source_id] = (w, answer.error)
        for r in todo:
            decision = self._decision(r)
            if r.source_id in failed:
                w, error = failed[r.source_id]
                what = f"Dynamics price list item ({w.method}) of {self.label} {r.source_id}"
                if isinstance(error, DataverseDuplicateError) and w.method == "POST":
                    # another worker created the same item meanwhile: the next run updates it
                    results.set(
                        r.source_id,
                        RecordResult("transient", "DataverseConcurrencyConflict", f"{what}: {error}"),
                    )
                else:
                    results.error(r.source_id, error, what)
            elif decision.problems:
                reasons = list(dict.fromkeys(reason for reason, _ in decision.problems))
                written = f" (its other prices: {_counts(decision.payload)})" if decision.payload else ""
                results.set(
                    r.source_id,
                    RecordResult(
                        "fatal",
                        reasons[0],
                        f"{self.label} {r.source_id}{written}: "
                        + "; ".join(text for _, text in dict.fromkeys(decision.problems)),
                        target_id=r.target_id,
                        stamp=str(r.source.get(self.spec.stamp_field) or ""),
                    ),
                )
            else:
                self.settle(r, results, f" ({_counts(decision.payload)})" if decision.payload else "")

    def remember(self, r: Record) -> None:
        """Nothing: the items Dynamics holds are what the next batch compares with."""

    # ------------------------------------------------------------------------------ price lists
    def resolve_lists(self) -> list[DynamicsList]:
        """The exported Brightpearl lists with their Dynamics price lists (created when missing).

        Workers of a backfill all find a list missing at once: each creates one, then reads the
        lists again and uses the oldest of that name (createdon, then id), so every worker
        writes items into the same list, and deletes its own list when it is not that one."""
        selected, notes = self.settings.select(self.bp.get_price_lists())
        for note in notes:
            log.warning("price lists: %s", note)
        if not selected:
            return []
        found = self._price_levels(selected)
        missing = [s for s in selected if s.dynamics_name.casefold() not in found]
        currencies = self._currencies({s.currency for s in missing}) if missing else {}
        created: dict[str, str] = {}
        for s in missing:
            currency_id = currencies.get(s.currency)
            if currency_id is not None:
                body = {
                    "name": s.dynamics_name,
                    "transactioncurrencyid@odata.bind": odata.bind("transactioncurrencies", currency_id),
                }
                created[s.dynamics_name.casefold()] = new_id = self.dv.create("pricelevels", body).lower()
                log.info("created Dynamics price list %s for Brightpearl price list %s", new_id, s.id)
        if created:
            found = self._price_levels(selected)
            self._drop_duplicates(created, found)
        return [self._dynamics_list(s, found.get(s.dynamics_name.casefold())) for s in selected]

    def _price_levels(self, selected: Sequence[SelectedList]) -> dict[str, dict[str, Any]]:
        """The Dynamics price lists of the exported lists' names, the oldest of each name, by
        folded name, each with its currency's ISO code (expanded)."""
        found: dict[str, dict[str, Any]] = {}
        for row in self.dv.query(
            "pricelevels",
            select=["pricelevelid", "name", "_transactioncurrencyid_value"],
            filter=odata.in_("name", sorted({s.dynamics_name for s in selected})),
            expand="transactioncurrencyid($select=isocurrencycode)",
            orderby=["createdon asc", "pricelevelid asc"],  # two of one name: always the same one
        ):
            found.setdefault(str(row.get("name") or "").casefold(), dict(row.values))
        return found

    def _drop_duplicates(self, created: dict[str, str], found: dict[str, dict[str, Any]]) -> None:
        """Delete the lists this batch created that another worker's older list of the same name
        makes redundant (nobody writes items into them: every worker uses the oldest)."""
        redundant = [
            new_id
            for name, new_id in created.items()
            if str((found.get(name) or {}).get("pricelevelid") or new_id).lower() != new_id
        ]
        if not redundant:
            return
        ops = [BatchOperation("DELETE", odata.record_path("pricelevels", i)) for i in redundant]
        for new_id, answer in zip(redundant, self.dv.execute_batch(ops, continue_on_error=True), strict=True):
            if answer.ok:
                log.info("deleted Dynamics price list %s: an older one of that name exists", new_id)
            else:  # left empty; nothing uses it
                log.warning("could not delete the duplicate Dynamics price list %s: %s", new_id, answer.error)

    def _dynamics_list(self, s: SelectedList, level: dict[str, Any] | None) -> DynamicsList:
        """An exported list with its Dynamics price list, or the problem that keeps it from one."""
        what = f"Brightpearl price list {s.id} ({s.name})"
        if level is None:
            iso = s.currency or "(none)"
            problem = (
                str(IssueCode.CURRENCY_MISSING),
                f"{what} is in currency {iso}, which Dynamics lacks (no transactioncurrency with "
                f"isocurrencycode {iso}); add the currency in Dynamics, then resubmit",
            )
            return DynamicsList(s, None, problem)
        level_id = str(level["pricelevelid"]).lower()
        held = str((level.get("transactioncurrencyid") or {}).get("isocurrencycode") or "").upper()
        if held and s.currency and held != s.currency:
            problem = (
                CURRENCY_MISMATCH,
                f"{what} is in {s.currency} but the Dynamics price list {level_id} of that name is in "
                f"{held}; rename one (price_lists.lists.<list>.dynamics_name in mappings/products.yaml), "
                "then resubmit",
            )
            return DynamicsList(s, level_id, problem)
        return DynamicsList(s, level_id)

    def _currencies(self, codes: set[str]) -> dict[str, str]:
        """ISO code -> transactioncurrencyid of the Dynamics currencies among `codes`."""
        codes = {c for c in codes if c}
        if not codes:
            return {}
        return {
            str(row.get("isocurrencycode") or "").upper(): str(row["transactioncurrencyid"]).lower()
            for row in self.dv.query(
                "transactioncurrencies",
                select=["transactioncurrencyid", "isocurrencycode"],
                filter=odata.in_("isocurrencycode", sorted(codes)),
            )
        }

    # ------------------------------------------------------------------------------ helpers
    def _read_items(self, matched: Sequence[Record]) -> None:
        """The items of the matched products in the exported lists, by product then list: where
        a product has several in one list (other units), the one in its default unit, else the first."""
        by_level = {
            dl.pricelevel_id: dl.selected.id for dl in self.lists if dl.pricelevel_id and not dl.problem
        }
        if not matched or not by_level:
            return
        by_product = {str(r.target_id).lower(): r for r in matched}
        in_lists = odata.in_("_pricelevelid_value", sorted(by_level))
        for of_products in odata.in_chunks("_productid_value", list(by_product), also=in_lists):
            rows = self.dv.query(ITEMS, select=ITEM_SELECT, filter=of_products)
            for row in rows:
                r = by_product.get(str(row.get("_productid_value") or "").lower())
                list_id = by_level.get(str(row.get("_pricelevelid_value") or "").lower())
                if r is None or list_id is None or r.target is None:
                    continue
                items: dict[int, dict[str, Any]] = r.target["items"]
                unit = str(r.target["product"]["_defaultuomid_value"]).lower()
                held = items.get(list_id)
                if held is None or (
                    str(held.get("_uomid_value") or "").lower() != unit
                    and str(row.get("_uomid_value") or "").lower() == unit
                ):
                    items[list_id] = dict(row.values)

    @staticmethod
    def _decision(r: Record) -> PriceDecision:
        assert isinstance(r.decision, PriceDecision)
        return r.decision


def _counts(writes: Sequence[ItemWrite]) -> str:
    words = {"POST": "created", "PATCH": "updated", "DELETE": "removed"}
    counts = {m: sum(1 for w in writes if w.method == m) for m in words}
    return ", ".join(f"{n} item(s) {words[m]}" for m, n in counts.items() if n)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _same_amount(held: Decimal | None, wanted: Decimal) -> bool:
    """Does Dynamics hold `wanted`, at a pricing precision it may store (2 to 4 decimals)? An
    organisation pricing to 2 decimals stores 9.555 as 9.56: that is not a change to rewrite.
    A sub-cent change in an organisation pricing to 3 or 4 decimals is missed (docs/mapping.md)."""
    if held is None:
        return False
    if held == wanted:
        return True
    places = -int(wanted.normalize().as_tuple().exponent)
    return any(
        wanted.quantize(Decimal(1).scaleb(-p), rounding=ROUND_HALF_UP) == held
        for p in PRECISIONS
        if p < places
    )


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _number(value: Decimal) -> int | float:
    """An amount as JSON carries it (whole numbers stay exact integers)."""
    return int(value) if value == value.to_integral_value() else float(value)
