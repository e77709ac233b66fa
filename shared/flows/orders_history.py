"""Order history (issue 14 item 1): a Brightpearl-born sales order becomes a Dynamics salesorder.

A collaborator of orders-to-dataverse (`OrdersToDataverse.history`): its `match` hands over the
Brightpearl orders that have no `order` link, and `create` makes the Dynamics order of each one
that is Brightpearl's own and in an included channel (mappings/orders.yaml `history:`), then
returns them linked, so the write-back of the same batch brings their state (Submitted,
Fulfilled...) exactly as for a Dynamics-born order. Per batch, in bulk:

1. orders that started in Dynamics are not copied: their `externalRef` names a Dynamics order
   (orders-to-brightpearl's claim or link on it, or the salesorder itself): `skipped`,
   `FromDynamics`;
2. channels not in `history.channels`: `skipped`, `ChannelNotIncluded`; orders cancelled before
   they reached Dynamics (`changes.cancelled_status`): `skipped`, `CancelledInBrightpearl`;
3. rows that do not add up to the order's total beyond `history.rounding_tolerance`: dead letter
   `OrderTotalsMismatch`, naming each difference;
4. the currency (transactioncurrency by ISO code; none: `CurrencyMissing`), the price list
   (`history.price_lists`, else the first Dynamics price list in that currency; none:
   `PriceListMissing`), the customer through the `customer` link (not linked yet: retried as
   `CustomerNotLinked`, the customers flow asked for it, up to `customer_wait.attempts`, then
   `CustomerNotSynced`), the products by SKU (productnumber) and their price list items;
5. exactly once: a creation claim in `links` (entity `order`, source side brightpearl) per
   order; one look-up by `bpi_brightpearlid` of the orders an earlier attempt may have created
   (their claim carries the `posting` mark: taken over, or released after a failed attempt);
   the `posting` mark saved on every other claim; then the batch's orders go together, ONE
   `$batch` per `ORDERS_PER_BATCH` (continue-on-error), each order one POST of the salesorder
   with its lines (deep insert, atomic on its own) under a deterministic `salesorderid`
   (`salesorder_id`: uuid5 of the Brightpearl order id); per order: created -> linked; refused
   with a duplicate key (the alternate key `bpi_brightpearlid_key` or the primary key: made by an
   attempt whose answer was lost) -> looked up (one query for all of them) and linked; any
   other refusal -> that order's error and retry only, its claim released.

The salesorder carries `bpi_origin` = Brightpearl: orders-to-brightpearl never sends it back
(`brightpearl_owned`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.dataverse import odata
from shared.dataverse.errors import DataverseDuplicateError
from shared.dataverse.models import BatchOperation
from shared.events import Envelope, notices_in_chunks
from shared.mapping.orders_history import (
    LINE_NAMESPACE,
    ORIGIN_BRIGHTPEARL,
    HistorySettings,
    KnownProduct,
    channel_of,
    currency_of,
    customer_of,
    rows_of,
    salesorder_body,
    totals_gap,
)
from shared.mapping.orders_status import CANCELED
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.store.links import Claim, Link
from shared.sync.engine import SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked, waiting_on_claim
from shared.sync.ports import DataversePort, Publish, StateStorePort
from shared.telemetry import get_logger

Record = SyncRecord[Any]  # a Brightpearl order on its way through orders-to-dataverse

log = get_logger("flows.orders_history")

FROM_DYNAMICS = "FromDynamics"
CHANNEL_EXCLUDED = "ChannelNotIncluded"
CANCELLED = "CancelledInBrightpearl"
HISTORY_OFF = "NotFromDynamics"  # history off: not created from Dynamics, so not written back
TOTALS = "OrderTotalsMismatch"
CURRENCY_MISSING = "CurrencyMissing"
PRICE_LIST_MISSING = "PriceListMissing"
CUSTOMER_WAIT = "CustomerNotLinked"
CUSTOMER_MISSING = "CustomerNotSynced"
BRIGHTPEARL_OWNED = "BrightpearlOwned"
CUSTOMER_RETRY_SECONDS = 120.0
POSTING = "posting"  # claim progress: the salesorder POST may have been sent
# new orders per `$batch`: one part (a deep insert of the order and its lines) each, so well under
# the 1,000 operations a $batch holds, and one request's run time stays short (its execution
# time counts against Dataverse's 20 minutes per 5 minutes, reference dataverse-api.md §8)
ORDERS_PER_BATCH = 200


def _copies_filter(records: Sequence[SyncRecord[Any]]) -> odata.Filter:
    """The salesorders copied from these Brightpearl orders: by bpi_brightpearlid or by id."""
    ids = [r.source_id for r in records]
    return odata.any_of(
        odata.in_("bpi_brightpearlid", ids), odata.in_("salesorderid", sorted(salesorder_id(i) for i in ids))
    )


def salesorder_id(order_id: str | int) -> str:
    """The salesorderid of a Brightpearl order's Dynamics copy (deterministic: uuid5 of the order
    id), so a create whose answer was lost is refused as a duplicate when sent again."""
    return str(uuid.uuid5(LINE_NAMESPACE, f"brightpearl-order:{order_id}"))


def brightpearl_owned(source: dict[str, Any], link: Link | None) -> bool:
    """Is this Dynamics order a copy of a Brightpearl-born order (bpi_origin, or its link's
    source side)? Dynamics edits of it are not sent back (orders-to-brightpearl)."""
    if str(source.get("bpi_origin") or "") == ORIGIN_BRIGHTPEARL:
        return True
    return link is not None and link.source.system == "brightpearl"


def owned_result(record_id: str, source: dict[str, Any], link: Link | None) -> RecordResult:
    bp_id = source.get("bpi_brightpearlid") or (link.id_in("brightpearl") if link is not None else None)
    return RecordResult(
        "skipped",
        BRIGHTPEARL_OWNED,
        f"Dataverse order {record_id} is a copy of Brightpearl order {bp_id or '?'} (bpi_origin "
        "Brightpearl): Brightpearl owns it, so edits made in Dynamics are not sent back; make the "
        "change in Brightpearl",
    )


class HistoryFlow(Protocol):
    """What the order history uses of its flow (orders-to-dataverse)."""

    dv: DataversePort
    store: StateStorePort
    publish: Publish

    def born_columns(self, r: Record) -> dict[str, Any]: ...


class OrderHistory:
    """Creates the Dynamics order of Brightpearl-born orders for orders-to-dataverse."""

    def __init__(
        self,
        flow: HistoryFlow,
        settings: HistorySettings,
        *,
        customer_attempts: int = 6,
        cancelled_status: str = "Cancelled",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.flow = flow
        self.settings = settings
        self.customer_attempts = customer_attempts
        self.cancelled_status = cancelled_status.casefold()  # changes.cancelled_status
        self.now = now or (lambda: datetime.now(UTC))
        self._attempt: dict[str, int] = {}
        self.new_batch()

    def new_batch(self) -> None:
        """Forget the catalogue an earlier batch read. Within a batch, its passes share what the
        first one read: ISO code -> currency id, (code, currency) -> price list, SKU -> product,
        and the price list items asked for ("" / None: Dynamics has none)."""
        self._known_currencies: dict[str, str] = {}
        self._known_lists: dict[tuple[str, str], str] = {}
        self._known_products: dict[str, tuple[str, str | None] | None] = {}
        self._items_asked: set[tuple[str, str]] = set()
        self._items: set[tuple[str, str]] = set()

    @property
    def _links(self) -> Any:
        return self.flow.store.links

    def saw(self, envelope: Envelope, record_id: str) -> None:
        """Remember the highest delivery attempt naming the order (the customer wait counts them)."""
        self._attempt[record_id] = max(self._attempt.get(record_id, 0), envelope.attempt)

    # ------------------------------------------------------------------------------ entry
    def create(self, records: list[Record], results: BatchResults) -> list[Record]:
        """The Dynamics orders of the unlinked Brightpearl orders `records` that are to be
        copied, created (or found) and linked; every other record gets its result."""
        if not records:
            return []
        if not self.settings.enabled:
            for r in records:
                results.set(
                    r.source_id,
                    RecordResult(
                        "skipped",
                        HISTORY_OFF,
                        f"{self._what(r)} has no link to a Dynamics order: it was not created from "
                        "Dynamics, and history.enabled is false in mappings/orders.yaml, so it is not "
                        "copied and its status, shipments and invoice are not written back",
                    ),
                )
            return []
        todo = self._not_from_dynamics(records, results)
        todo = [
            r
            for r in todo
            if self._included(r, results) and not self._cancelled(r, results) and self._adds_up(r, results)
        ]
        if not todo:
            return []
        currencies = self._currencies({currency_of(r.source) for r in todo})
        price_lists = self._price_lists(currencies)
        customers = self._customers(todo, results)
        ready: list[tuple[Record, dict[str, Any]]] = []
        products = self._products(todo, price_lists)
        for r in todo:
            if results.has(r.source_id):
                continue
            code = currency_of(r.source)
            currency = currencies.get(code)
            if currency is None:
                results.set(r.source_id, self._fatal(r, CURRENCY_MISSING, self._no_currency(code)))
                continue
            price_list = price_lists.get(currency)
            if price_list is None:
                results.set(r.source_id, self._fatal(r, PRICE_LIST_MISSING, self._no_price_list(code)))
                continue
            body, write_ins = salesorder_body(
                r.source,
                self.settings,
                customer=customers[r.source_id],
                currency=currency,
                price_list=price_list,
                products=products.get(price_list, {}),
                columns=self.flow.born_columns(r),
            )
            if write_ins:
                log.info("Brightpearl order %s: %d write-in line(s)", r.source_id, len(write_ins))
            ready.append((r, body))
        return self._create_all(ready, results)

    # ------------------------------------------------------------------------------ filters
    def _not_from_dynamics(self, records: list[Record], results: BatchResults) -> list[Record]:
        """Orders whose externalRef names a Dynamics order (being) created by orders-to-brightpearl
        are Dynamics-born: skipped (their link comes with orders-to-brightpearl)."""
        refs = {
            r.source_id: str(r.source.get("externalRef") or "").lower()
            for r in records
            if odata.is_guid(str(r.source.get("externalRef") or ""))
        }
        known: set[str] = set()
        if refs:
            guids = sorted(set(refs.values()))
            known.update(k.lower() for k in self._links.get_many("order", "dataverse", guids))
            rest = [g for g in guids if g not in known]
            for of_orders in odata.in_chunks("salesorderid", rest):
                for row in self.flow.dv.query("salesorders", select=["salesorderid"], filter=of_orders):
                    known.add(str(row.id).lower())
        out: list[Record] = []
        for r in records:
            ref = refs.get(r.source_id)
            if ref and ref in known:
                results.set(
                    r.source_id,
                    RecordResult(
                        "skipped",
                        FROM_DYNAMICS,
                        f"{self._what(r)} started in Dynamics (externalRef: Dynamics order {ref}), so it "
                        "is not copied; orders-to-brightpearl links it to that order",
                    ),
                )
            else:
                out.append(r)
        return out

    def _included(self, r: Record, results: BatchResults) -> bool:
        channel = channel_of(r.source)
        if self.settings.includes(channel):
            return True
        results.set(
            r.source_id,
            RecordResult(
                "skipped",
                CHANNEL_EXCLUDED,
                f"{self._what(r)} is from channel {channel}, which history.channels in "
                "mappings/orders.yaml does not include: not copied to Dynamics",
            ),
        )
        return False

    def _cancelled(self, r: Record, results: BatchResults) -> bool:
        """An order cancelled before it reached Dynamics (status `changes.cancelled_status`, or one
        order_status.yaml maps to Canceled) is not copied: Dynamics would show it open (the
        write-back does not cancel orders)."""
        name = str((r.source.get("orderStatus") or {}).get("name") or "")
        if name.casefold() != self.cancelled_status and r.read.value.statecode != CANCELED:
            return False
        results.set(
            r.source_id,
            RecordResult(
                "skipped",
                CANCELLED,
                f"{self._what(r)} was cancelled in Brightpearl (status {name!r}) before it reached "
                "Dynamics: not copied",
            ),
        )
        return True

    def _adds_up(self, r: Record, results: BatchResults) -> bool:
        gap = totals_gap(r.source, self.settings.rounding_tolerance)
        if gap is None:
            return True
        results.set(
            r.source_id,
            self._fatal(r, TOTALS, f"{gap}; correct the order in Brightpearl, then resubmit"),
        )
        return False

    # ------------------------------------------------------------------------------ references
    def _currencies(self, codes: set[str]) -> dict[str, str]:
        """ISO code -> transactioncurrencyid, for the codes Dynamics has (read once a batch)."""
        known = self._known_currencies
        ask = sorted(c for c in codes if c and c not in known)
        if ask:
            known.update(dict.fromkeys(ask, ""))
            for row in self.flow.dv.query(
                "transactioncurrencies",
                select=["transactioncurrencyid", "isocurrencycode"],
                filter=odata.in_("isocurrencycode", ask),
            ):
                known[str(row.values.get("isocurrencycode") or "").upper()] = str(row.id).lower()
        return {c: known[c] for c in codes if c and known.get(c)}

    def _price_lists(self, currencies: dict[str, str]) -> dict[str, str]:
        """transactioncurrencyid -> pricelevelid: the list history.price_lists names for the
        currency, else the first active list in it by name (read once a batch)."""
        known = self._known_lists
        ask = {code: currency for code, currency in currencies.items() if (code, currency) not in known}
        if ask:
            by_currency: dict[str, list[tuple[str, str]]] = {}
            for row in self.flow.dv.query(
                "pricelevels",
                select=["pricelevelid", "name", "_transactioncurrencyid_value"],
                filter=odata.all_of(
                    odata.eq("statecode", 0),
                    odata.in_("_transactioncurrencyid_value", sorted(set(ask.values()))),
                ),
            ):
                currency = str(row.values.get("_transactioncurrencyid_value") or "").lower()
                by_currency.setdefault(currency, []).append(
                    (str(row.values.get("name") or ""), str(row.id).lower())
                )
            for code, currency in ask.items():
                lists = sorted(by_currency.get(currency, []))
                named = self.settings.price_lists.get(code)
                pick = (
                    [i for n, i in lists if n.casefold() == named.casefold()]
                    if named
                    else [i for _, i in lists]
                )
                known[(code, currency)] = pick[0] if pick else ""
        return {
            currency: known[(code, currency)]
            for code, currency in currencies.items()
            if known[(code, currency)]
        }

    def _products(
        self, records: list[Record], price_lists: dict[str, str]
    ) -> dict[str, dict[str, KnownProduct]]:
        """pricelevelid -> SKU (case-folded) -> the Dynamics product of that productnumber (each
        SKU and price list item read once a batch)."""
        known = self._known_products
        skus = sorted(
            {
                str(row.get("productSku") or "").strip()
                for r in records
                for _, row in rows_of(r.source)
                if str(row.get("productSku") or "").strip()
            }
        )
        ask = [sku for sku in skus if sku.casefold() not in known]
        known.update(dict.fromkeys((sku.casefold() for sku in ask), None))
        for of_skus in odata.in_chunks("productnumber", ask):
            for row in self.flow.dv.query(
                "products", select=["productid", "productnumber", "_defaultuomid_value"], filter=of_skus
            ):
                unit = row.values.get("_defaultuomid_value")
                known[str(row.values.get("productnumber") or "").casefold()] = (
                    str(row.id).lower(),
                    str(unit).lower() if unit else None,
                )
        found = {sku.casefold(): got for sku in skus if (got := known.get(sku.casefold()))}
        lists = sorted(set(price_lists.values()))
        ids = sorted({p for p, _ in found.values()})
        unasked = sorted({p for p in ids for pl in lists if (pl, p) not in self._items_asked})
        if lists and unasked:
            in_lists = odata.in_("_pricelevelid_value", lists)
            for of_products in odata.in_chunks("_productid_value", unasked, also=in_lists):
                for row in self.flow.dv.query(
                    "productpricelevels",
                    select=["_pricelevelid_value", "_productid_value"],
                    filter=of_products,
                ):
                    self._items.add(
                        (
                            str(row.values.get("_pricelevelid_value") or "").lower(),
                            str(row.values.get("_productid_value") or "").lower(),
                        )
                    )
            self._items_asked.update((pl, p) for pl in lists for p in unasked)
        return {
            price_list: {
                sku: KnownProduct(product, unit, (price_list, product) in self._items)
                for sku, (product, unit) in found.items()
            }
            for price_list in lists
        }

    def _customers(self, records: list[Record], results: BatchResults) -> dict[str, str]:
        """Brightpearl order id -> the Dynamics contactid of its customer (the `customer` link);
        an order whose customer is not linked waits (the customers flow is asked), then is
        dead-lettered."""
        contacts = {r.source_id: customer_of(r.source) for r in records}
        links = self._links.get_many(
            "customer", "brightpearl", sorted({str(c) for c in contacts.values() if c})
        )
        out: dict[str, str] = {}
        asked: list[str] = []
        for r in records:
            contact = contacts[r.source_id]
            link = links.get(str(contact)) if contact else None
            target = link.id_in("dataverse") if link is not None and link.is_linked else None
            if target:
                out[r.source_id] = str(target).lower()
                continue
            attempt = self._attempt.get(r.source_id, 1)
            if not contact:
                results.set(
                    r.source_id,
                    self._fatal(r, CUSTOMER_MISSING, "has no customer (parties.customer.contactId)"),
                )
            elif attempt <= self.customer_attempts:
                if attempt == 1:
                    asked.append(str(contact))
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        CUSTOMER_WAIT,
                        f"{self._what(r)}: its customer, Brightpearl contact {contact}, is not in Dynamics "
                        f"yet (no customer link); retry {attempt} of {self.customer_attempts}",
                        retry_after=CUSTOMER_RETRY_SECONDS,
                    ),
                )
            else:
                results.set(
                    r.source_id,
                    self._fatal(
                        r,
                        CUSTOMER_MISSING,
                        f"its customer, Brightpearl contact {contact}, has no Dynamics contact after "
                        f"{self.customer_attempts} retries (customer_wait.attempts); sync the customer "
                        "(syncctl backfill customers), then resubmit",
                    ),
                )
        self._ask_for_customers(sorted(set(asked)))
        return out

    def _ask_for_customers(self, contacts: list[str]) -> None:
        """Notices for customers-to-dataverse to sync the orders' customers (once, on first sight)."""
        if not contacts:
            return
        now = self.now()
        notices = notices_in_chunks(
            "brightpearl",
            "contact",
            contacts,
            per_notice=100,
            version=f"order-customer:{now.isoformat()}",
            source="/brightpearl/orders",
            origin="poller",
            observed_at=now,
        )
        try:
            self.flow.publish(notices)
        except Exception as exc:  # the order retries anyway
            log.warning("asking for %d customer(s) failed: %s", len(contacts), type(exc).__name__)

    # ------------------------------------------------------------------------------ creating
    def _create_all(self, ready: list[tuple[Record, dict[str, Any]]], results: BatchResults) -> list[Record]:
        """Claim each order; look up, in one query, those an earlier attempt may have created;
        mark the others `posting`, then POST them together ($batch); link. The records that now
        have their Dynamics order (r.target_id), in the order given."""
        claimed: list[tuple[Record, dict[str, Any]]] = []
        linked: list[Record] = []  # linked meanwhile by another worker
        for r, body in ready:
            try:
                r.claim = self._links.claim("order", "brightpearl", r.source_id, "dataverse")
            except ClaimTaken as taken:
                link = taken.link
                target = link.id_in("dataverse") if link is not None and link.is_linked else None
                if target:  # the write-back goes on
                    r.target_id, r.matched_by, r.link = str(target).lower(), "link", link
                    linked.append(r)
                else:
                    results.set(r.source_id, waiting_on_claim(self._what(r), taken))
                continue
            claimed.append((r, body))
        suspects = [r for r, _ in claimed if r.claim and (r.claim.takeover or r.claim.progress.get(POSTING))]
        found = self._found(suspects, results)
        to_post: list[tuple[Record, dict[str, Any]]] = []
        for r, body in claimed:
            if results.has(r.source_id):
                continue
            if r.source_id in found:
                log.warning(
                    "Brightpearl order %s: found its Dynamics order made by an earlier attempt", r.source_id
                )
                r.target_id, r.matched_by = found[r.source_id], "recovered"
                continue
            claim = r.claim
            assert claim is not None
            try:
                r.claim = self._links.save_progress(claim, {**claim.progress, POSTING: True})
            except Exception as exc:
                self._failed(r, exc, results)
                continue
            to_post.append((r, body))
        for chunk in chunked(to_post, ORDERS_PER_BATCH):
            self._post(chunk, results)
        made: list[Record] = []
        for r, _ in claimed:
            if results.has(r.source_id) or r.target_id is None or r.claim is None:
                continue
            try:
                self._links.complete_claim(r.claim, r.target_id)
            except StoreConflictError as exc:
                log.warning(
                    "claim of Brightpearl order %s was taken over: %s", r.source_id, type(exc).__name__
                )
            made.append(r)
        done = {id(r) for r in [*linked, *made]}
        return [r for r, _ in ready if id(r) in done]

    def _post(self, chunk: Sequence[tuple[Record, dict[str, Any]]], results: BatchResults) -> None:
        """One `$batch` of the orders' creates (each a deep insert under its deterministic id);
        per order: created, found after a duplicate-key refusal, or its own error."""
        ops = [
            BatchOperation("POST", "salesorders", {**body, "salesorderid": salesorder_id(r.source_id)})
            for r, body in chunk
        ]
        try:
            answers = self.flow.dv.execute_batch(ops, continue_on_error=True)
        except Exception as exc:  # the request as a whole (throttled, answer lost): each order retries
            for r, _ in chunk:
                self._failed(r, exc, results)
            return
        refused: list[tuple[Record, BaseException | None]] = []
        for (r, _), answer in zip(chunk, answers, strict=True):
            if answer.ok:
                r.target_id, r.matched_by = (answer.entity_id or salesorder_id(r.source_id)).lower(), None
            else:
                refused.append((r, answer.error))
        duplicates = [r for r, error in refused if isinstance(error, DataverseDuplicateError)]
        # made by an attempt whose answer was lost (the alternate key or the primary key holds it)
        found = self._found(duplicates, results)
        for r, error in refused:
            if results.has(r.source_id):
                continue
            if r.source_id in found:
                r.target_id, r.matched_by = found[r.source_id], "recovered"
            else:
                self._failed(r, error, results)

    def _found(self, records: list[Record], results: BatchResults) -> dict[str, str]:
        """Brightpearl order id -> the salesorderid of the copy made earlier (its
        bpi_brightpearlid, or its deterministic id), for those of `records` that have one; as
        many orders a query as the URL takes. A failed query is the error of each of them."""
        out: dict[str, str] = {}
        try:
            for chunk, by_key_or_id in odata.fit_chunks(records, _copies_filter):
                ids = [r.source_id for r in chunk]
                expected = {salesorder_id(i): i for i in ids}
                for row in self.flow.dv.query(
                    "salesorders", select=["salesorderid", "bpi_brightpearlid"], filter=by_key_or_id
                ):
                    row_id = str(row.id).lower()
                    owner = str(row.values.get("bpi_brightpearlid") or "")
                    if owner in ids:
                        out[owner] = row_id
                    elif row_id in expected:
                        out.setdefault(expected[row_id], row_id)
        except Exception as exc:
            for r in records:
                self._failed(r, exc, results)
            return {}
        return out

    def _failed(self, r: Record, exc: BaseException | None, results: BatchResults) -> None:
        """The order's creation failed: its claim released, its error (retried or dead-lettered
        by the error table) its result; the batch's other orders go on."""
        log.warning(
            "creating the Dynamics order of Brightpearl order %s failed: %s", r.source_id, type(exc).__name__
        )
        if r.claim is not None:
            self._release(r.claim, r.source_id)
        results.error(r.source_id, exc, f"creation of the Dynamics order of {self._what(r)}")

    def _release(self, claim: Claim, order_id: str) -> None:
        try:
            self._links.release_claim(claim)
        except Exception:  # an unreleased claim expires after its lease
            log.warning("releasing the claim of Brightpearl order %s failed", order_id)

    # ------------------------------------------------------------------------------ wording
    def _what(self, r: Record) -> str:
        reference = r.source.get("reference")
        return f"Brightpearl order {r.source_id}" + (f" ({reference})" if reference else "")

    def _fatal(self, r: Record, reason: str, problem: str) -> RecordResult:
        return RecordResult(
            "fatal",
            reason,
            f"{self._what(r)} {problem}",
            stamp=str(r.source.get("updatedOn") or ""),
        )

    @staticmethod
    def _no_currency(code: str) -> str:
        return (
            f"is in currency {code or '(none)'}, which Dynamics lacks (no transactioncurrency with "
            "that isocurrencycode); add the currency in Dynamics, then resubmit"
        )

    @staticmethod
    def _no_price_list(code: str) -> str:
        return (
            f"needs a Dynamics price list in {code}: none is active (or history.price_lists names one "
            "Dynamics lacks); create it or name it in mappings/orders.yaml history.price_lists, then resubmit"
        )
