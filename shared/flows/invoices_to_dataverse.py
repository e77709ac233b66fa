"""Flow invoices-to-dataverse: Brightpearl invoices and payments -> Dynamics invoices (issue 14 item 3).

Per batch of Brightpearl `order` notices (order webhooks, the order-search poller, and the
customer-payment poller, shared/flows/invoices_poller.py):

1. read the orders in bulk (`GET /order-service/order/{ID-SET}`, ≤ 200 a call, reference §6.4),
   the payments of the invoiced ones (`customer-payment-search` by `orderId`, §9) and the
   Dynamics currencies (`transactioncurrencies`: `currencyprecision`, one query);
2. leave alone what is not an invoiced sales order (`skipped`): a credit, an order without
   `invoices[]`;
3. check the amounts: each row's net and tax, quantised to the currency's precision
   (ROUND_HALF_EVEN), must add up to the order's `totalValue.total` within rounding (half a unit
   of the last place); otherwise the order is dead-lettered (`InvoiceTotalsMismatch`) naming the
   rows' sum, the total and the difference. A residue within rounding goes on the last line's
   discount, so the Dynamics `totalamount` equals the Brightpearl total exactly;
4. find the Dynamics salesorder through the `order` link (orders-to-brightpearl writes it for
   Dynamics-born orders, the history flow for Brightpearl-born ones). No link yet: the order is
   retried (`OrderNotInDynamics`, transient), because the history flow receives the same notice
   and brings the order first; after the usual attempts it is dead-lettered;
5. write what differs, per order one atomic change set, in this order (every order's change set
   in as few `$batch`es of ≤ 1,000 operations as hold them, `execute_change_sets`):
   - the invoice, created once under a deterministic primary key (uuid5 of the Brightpearl order
     id and invoice reference) with `If-None-Match: *`, so duplicates and a host restart can never
     make two: `name`, `bpi_brightpearlid` (the invoice reference, alternate key
     `bpi_invoice_brightpearlid`), the salesorder (`salesorderid`), its customer and price list,
     the Brightpearl order's currency and `bpi_amountpaid`;
   - its lines, each under its own deterministic key (uuid5 of the invoice id and the row id):
     write-in lines (`productdescription` "SKU name") with `quantity`, `priceperunit` (the row's
     unit price), `manualdiscountamount` (what makes price x quantity the row's net) and `tax`,
     so each line's amount is the row's net plus tax to the currency's precision;
   - `bpi_amountpaid`: receipts and captures less refunds (PAYMENT) of the order, to the
     currency's precision (with no payment rows, a `PAID` order counts as paid in full);
   - the state: Paid / Complete (statecode 2, statuscode 100001) when paid in full, Paid /
     Partial (2, 100002) when paid in part, else Active. Dynamics sets an invoice's state by
     PATCH of statecode/statuscode (SetState; reference dataverse-api.md §10.11); a Paid invoice
     is read-only, so a change of its amount or lines reopens it (Active) first and closes it
     again right after, in the same `$batch`.
   Dynamics' current values are what is compared, so a repeat writes nothing. A new invoice's
   create that finds it already there (412: another worker made it meanwhile) rolls its change
   set back and is retried, which then brings it up to date. 1,000 new invoices of 5 lines take
   about 8 `$batch` calls and 31 queries.

Amounts are Decimal throughout; the currency precision is Dynamics' (`currencyprecision`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, Self, Unpack, cast

from pydantic import BaseModel

from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.flows.invoices_spec import INVOICES, TO_DATAVERSE
from shared.mapping.orders_history import amount
from shared.mapping.orders_translate import CUSTOMER_KIND
from shared.mapping.translation import Translation
from shared.sync.engine import FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked
from shared.systems import System

ORDER_GET = "/order-service/order/{ids}"
PAYMENT_SEARCH = "/accounting-service/customer-payment-search"
ORDER_LINK = "order"  # the salesorder <-> Brightpearl order link (contracts)
PAYMENT_CHUNK = 200  # orders per customer-payment-search (an id set of 200 fits the URL)
BATCH_LIMIT = 1000  # operations per $batch (reference dataverse-api.md §4)
NOT_IN_DYNAMICS = "OrderNotInDynamics"
TOTALS_MISMATCH = "InvoiceTotalsMismatch"
CURRENCY_MISSING = "CurrencyNotInDynamics"
WRITTEN_MEANWHILE = "InvoiceWrittenMeanwhile"
NAMESPACE = uuid.UUID("6f1d4a52-9a43-4f0e-8d0b-6c1f3e0b7a21")  # invoice / invoicedetail keys
ACTIVE, PAID = 0, 2
NEW, COMPLETE, PARTIAL = 1, 100001, 100002
MONEY_IN = {"RECEIPT": Decimal(1), "CAPTURE": Decimal(1), "PAYMENT": Decimal(-1)}  # §9
PRICE_PLACES = Decimal("0.0001")  # priceperunit: pricing precision, at most 4 places
CURRENT = "_invoice"  # the Dynamics invoice as match() files it in the salesorder row
LINE_IDS = "_lineids"
SALESORDER = "_salesorder"
PAYMENTS = "_payments"  # the order's customer payments, as fetch() files them


class PaymentSearch(Protocol):
    """The Brightpearl client's `*-search` reader (shared/brightpearl/client.py)."""

    def search(
        self,
        path: str,
        *,
        filters: dict[str, Any] | None = None,
        columns: list[str] | None = None,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> Iterable[dict[str, Any]]: ...


class InvoiceLine(BaseModel):
    id: str  # invoicedetailid (deterministic)
    row_id: str
    description: str
    quantity: Decimal
    price: Decimal
    discount: Decimal
    tax: Decimal


class InvoiceState(BaseModel):
    """What a Dynamics invoice should hold (wanted) or holds (read back)."""

    invoice_id: str = ""
    reference: str = ""
    currency: str = ""
    total: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    statecode: int | None = None
    statuscode: int | None = None
    lines: list[InvoiceLine] = []
    line_ids: tuple[str, ...] = ()  # held: the invoicedetail ids Dynamics has


Record = SyncRecord[InvoiceState]


def invoice_key(order_id: str, reference: str) -> str:
    """The invoiceid of a Brightpearl order's invoice: the same on every run and every worker."""
    return str(uuid.uuid5(NAMESPACE, f"brightpearl-order/{order_id}/invoice/{reference}"))


def line_key(invoice_id: str, row_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{invoice_id}/row/{row_id}"))


def unit(precision: int) -> Decimal:
    return Decimal(1).scaleb(-precision)


def quantised(value: Decimal, precision: int) -> Decimal:
    return value.quantize(unit(precision), rounding=ROUND_HALF_EVEN)


def amount_paid(payments: Iterable[Mapping[str, Any]]) -> Decimal:
    """Money in (RECEIPT, CAPTURE) less money out (PAYMENT: a refund), reference §9."""
    return sum(
        (
            MONEY_IN[str(p.get("paymentType"))] * amount(p.get("amountPaid"))
            for p in payments
            if str(p.get("paymentType")) in MONEY_IN
        ),
        Decimal(0),
    )


def state_for(paid: Decimal, total: Decimal) -> tuple[int, int | None]:
    """The invoice state of an amount paid: Paid Complete, Paid Partial, else Active (status kept)."""
    if total > 0 and paid >= total:
        return PAID, COMPLETE
    if paid > 0:
        return PAID, PARTIAL
    return ACTIVE, None


class TotalsMismatch(ValueError):
    pass


def invoice_lines(order: Mapping[str, Any], invoice_id: str, precision: int) -> list[InvoiceLine]:
    """The order's rows as invoice lines whose amounts (price x quantity - discount + tax) are
    the rows' net plus tax to `precision`; TotalsMismatch when the rows do not add up to the
    order total beyond rounding."""
    rows = order.get("orderRows") or {}
    exact = Decimal(0)
    lines: list[InvoiceLine] = []
    for row_id in sorted(rows, key=lambda r: (int(amount((rows[r] or {}).get("orderRowSequence"))), int(r))):
        row = rows[row_id] or {}
        value = row.get("rowValue") or {}
        net, tax = amount(value.get("rowNet")), amount(value.get("rowTax"))
        exact += net + tax
        net_q, tax_q = quantised(net, precision), quantised(tax, precision)
        quantity = amount(row.get("quantity"))
        if quantity <= 0:  # a row without a quantity: one unit at its net
            quantity = Decimal(1)
        price = amount(row.get("productPrice")).quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN)
        if quantised(price * quantity, precision) < net_q:  # the net is above the list price
            price = (net_q / quantity).quantize(PRICE_PLACES, rounding=ROUND_CEILING)
        discount = quantised(price * quantity, precision) - net_q
        sku, name = str(row.get("productSku") or "").strip(), str(row.get("productName") or "").strip()
        description = " ".join(p for p in (sku, name) if p) or f"Brightpearl order row {row_id}"
        lines.append(
            InvoiceLine(
                id=line_key(invoice_id, str(row_id)),
                row_id=str(row_id),
                description=description[:500],
                quantity=quantity,
                price=price,
                discount=discount,
                tax=tax_q,
            )
        )
    total = amount((order.get("totalValue") or {}).get("total"))
    if abs(exact - total) > unit(precision) / 2:
        raise TotalsMismatch(
            f"its rows add up to {exact.normalize():f} (net plus tax) but its totalValue.total is "
            f"{total.normalize():f}: a difference of {(exact - total).normalize():f} "
            f"{(order.get('currency') or {}).get('orderCurrencyCode') or ''}".rstrip()
        )
    residue = sum(
        (quantised(ln.price * ln.quantity, precision) - ln.discount + ln.tax for ln in lines), Decimal(0)
    ) - quantised(total, precision)
    if residue and lines:  # per-row rounding: the last line takes it, so the totals agree exactly
        last = lines[-1]
        if last.discount + residue >= 0:
            lines[-1] = last.model_copy(update={"discount": last.discount + residue})
        else:
            lines[-1] = last.model_copy(update={"tax": last.tax - residue})
    return lines


class InvoicesToDataverse(RecordSync[InvoiceState]):
    """Brightpearl invoiced orders and their payments -> Dynamics invoices (module docstring).
    Hooks: fetch (orders, payments, currencies), skip (not invoiced; amounts), to_canonical,
    match (order link, salesorder, existing invoice), write (packed `$batch`es)."""

    spec = TO_DATAVERSE
    records_per_pass = 1_000  # Brightpearl orders (about 20 KB each) read and written at a time
    link_entity = INVOICES.link_entity

    def __init__(self, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.currencies: dict[str, tuple[str, int]] = {}  # ISO code -> (transactioncurrencyid, precision)

    @classmethod
    def from_runtime(cls) -> Self:
        return cls(**cls.runtime_ports())

    # ------------------------------------------------------------------------------ hooks
    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found = {
            str(o["id"]): dict(o) for o in self.bp.get_by_ids(ORDER_GET, [int(i) for i in ids], limit=200)
        }
        invoiced = [
            int(i) for i, o in found.items() if o.get("invoices") and (o.get("orderTypeCode") or "SO") == "SO"
        ]
        for order in found.values():
            order[PAYMENTS] = []
        searcher = cast(PaymentSearch, self.bp)
        for chunk in chunked(invoiced, PAYMENT_CHUNK):
            rows = searcher.search(
                PAYMENT_SEARCH,
                filters={"orderId": list(chunk)},
                columns=["paymentId", "orderId", "paymentType", "amountPaid", "currencyCode"],
                sort="paymentId.ASC",
            )
            for row in rows:
                owner = found.get(str(row.get("orderId")))
                if owner is not None:
                    owner[PAYMENTS].append(dict(row))
        if invoiced and not self.currencies:
            for currency in self.dv.query(
                "transactioncurrencies",
                select=["transactioncurrencyid", "isocurrencycode", "currencyprecision"],
            ):
                code = str(currency.get("isocurrencycode") or "").upper()
                precision = currency.get("currencyprecision")
                self.currencies[code] = (
                    str(currency.get("transactioncurrencyid")),
                    int(precision) if precision is not None else 2,
                )
        return found

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        kind = source.get("orderTypeCode") or "SO"
        if kind != "SO":
            results.set(
                record_id,
                RecordResult("skipped", None, f"{self.label} {record_id} is a {kind}, not a sales order"),
            )
            return True
        if not self._reference(source):
            results.set(
                record_id, RecordResult("skipped", None, f"{self.label} {record_id} is not invoiced yet")
            )
            return True
        code = self._currency_code(source)
        if code not in self.currencies:
            results.set(
                record_id,
                RecordResult(
                    "fatal",
                    CURRENCY_MISSING,
                    f"{self.label} {record_id} is in currency {code or '(none)'}, which Dynamics has no "
                    "transactioncurrency for (isocurrencycode); add the currency in Dynamics, then resubmit",
                    stamp=str(source.get(self.spec.stamp_field) or ""),
                ),
            )
            return True
        try:
            invoice_lines(source, "", self.currencies[code][1])
        except TotalsMismatch as exc:
            results.set(
                record_id,
                RecordResult(
                    "fatal",
                    TOTALS_MISMATCH,
                    f"{self.label} {record_id} (invoice {self._reference(source)}): {exc}; no Dynamics "
                    "invoice is written until the order's rows and total agree in Brightpearl",
                    stamp=str(source.get(self.spec.stamp_field) or ""),
                ),
            )
            return True
        return False

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[InvoiceState]:
        if system == "dataverse":
            return Translation(held_state(record))
        reference = self._reference(record)
        code = self._currency_code(record)
        precision = self.currencies[code][1]
        invoice_id = invoice_key(str(record["id"]), reference)
        total = quantised(amount((record.get("totalValue") or {}).get("total")), precision)
        payments = record.get(PAYMENTS) or []
        paid = quantised(amount_paid(payments), precision)
        if not payments and str(record.get("orderPaymentStatus") or "").upper() == "PAID":
            paid = total  # no payment rows to read: the order's payment status says paid in full
        state, status = state_for(paid, total)
        return Translation(
            InvoiceState(
                invoice_id=invoice_id,
                reference=reference,
                currency=code,
                total=total,
                paid=max(paid, Decimal(0)),
                statecode=state,
                statuscode=status,
                lines=invoice_lines(record, invoice_id, precision),
            )
        )

    def content_hash(self, value: InvoiceState, system: System) -> str:
        return f"{value.invoice_id}/{value.paid}/{value.statecode}/{value.statuscode}/{len(value.lines)}"

    def is_echo(self, r: Record) -> bool:
        return False  # Dynamics' own values decide (module docstring)

    def unchanged_since_sync(self, link: Any, system: System, current: InvoiceState) -> bool:
        return False

    def decide_write(self, record: Record, current: InvoiceState | None) -> PlainDecision[InvoiceState]:
        wanted = record.read.value
        held = current if record.target and record.target.get(CURRENT) else None
        return PlainDecision[InvoiceState](
            wanted, self.content_hash(wanted, "dataverse"), should_write=bool(operations(wanted, held, {}))
        )

    def match(self, records: list[Record], results: BatchResults) -> None:
        """The salesorder through the `order` link (none yet: retried), then the salesorders and
        the invoices already made, in bulk."""
        links = self.store.links.get_many(ORDER_LINK, "brightpearl", [r.source_id for r in records])
        linked: list[Record] = []
        for r in records:
            link = links.get(r.source_id)
            target = link.id_in("dataverse") if link is not None and link.is_linked else None
            if target is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        NOT_IN_DYNAMICS,
                        f"{NOT_IN_DYNAMICS}: {self.label} {r.source_id} (invoice "
                        f"{r.read.value.reference}) has no Dynamics order yet (no `order` link): "
                        "retried until the order is in Dynamics",
                    ),
                )
                continue
            r.target_id = r.read.value.invoice_id
            r.target = {"salesorderid": target.lower()}
            linked.append(r)
        orders: dict[str, Any] = {}
        order_ids = [r.target["salesorderid"] for r in linked if r.target]
        for of_orders in odata.in_chunks("salesorderid", order_ids):
            for row in self.dv.query(
                "salesorders",
                select=["salesorderid", "name", "ordernumber", "_customerid_value", "_pricelevelid_value"],
                filter=of_orders,
                annotations=True,
            ):
                orders[str(row.get("salesorderid")).lower()] = row
        invoices: dict[str, dict[str, Any]] = {}
        select = [
            "invoiceid",
            "statecode",
            "statuscode",
            "bpi_amountpaid",
            "bpi_brightpearlid",
            "totalamount",
        ]
        for of_invoices in odata.in_chunks("invoiceid", [r.read.value.invoice_id for r in linked]):
            for row in self.dv.query("invoices", select=select, filter=of_invoices):
                invoices[str(row.get("invoiceid")).lower()] = {**row.values, LINE_IDS: []}
        for lines_of in odata.in_chunks("_invoiceid_value", list(invoices)):
            for line in self.dv.query(
                "invoicedetails", select=["invoicedetailid", "_invoiceid_value"], filter=lines_of
            ):
                parent = str(line.get("_invoiceid_value") or "").lower()
                if parent in invoices:
                    invoices[parent][LINE_IDS].append(str(line.get("invoicedetailid")).lower())
        for r in linked:
            assert r.target is not None
            order = orders.get(r.target["salesorderid"])
            if order is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        NOT_IN_DYNAMICS,
                        f"{NOT_IN_DYNAMICS}: {self.label} {r.source_id}: its Dynamics order "
                        f"{r.target['salesorderid']} (the `order` link) no longer exists: retried",
                    ),
                )
                continue
            kind = order.annotations.get(CUSTOMER_KIND)
            r.target[SALESORDER] = {
                **order.values,
                "customer_kind": kind,
            }
            current = invoices.get(r.read.value.invoice_id)
            if current is not None:
                r.target.update(current)
                r.target[CURRENT] = True
                r.matched_by = "key"

    def write(self, records: list[Record], results: BatchResults) -> None:
        """Every order's change set in as few `$batch`es as hold them (≤ 1,000 operations each; an
        order's operations never straddle two), then settle each order."""
        groups: list[tuple[Record, list[tuple[BatchOperation, str]], bool]] = []
        for r in self.to_write(records, results):
            if not self._decision(r).should_write:
                self.settle(r, results)
                continue
            held = held_state(r.target) if r.target and r.target.get(CURRENT) else None
            groups.append((r, operations(self._decision(r).payload, held, self._header(r)), held is None))
        batch: list[tuple[Record, list[tuple[BatchOperation, str]], bool]] = []
        for group in groups:
            if batch and sum(len(g[1]) for g in batch) + len(group[1]) > BATCH_LIMIT:
                self._send(batch, results)
                batch = []
            batch.append(group)
        if batch:
            self._send(batch, results)

    def _send(
        self, groups: list[tuple[Record, list[tuple[BatchOperation, str]], bool]], results: BatchResults
    ) -> None:
        """One `$batch` of these orders' operations, each order's an atomic change set (reopen,
        write and close again all happen or none). A new invoice's create answered 412
        (If-None-Match: the row exists) means another worker made it meanwhile: retried, the
        retry brings it up to date. Any other refusal is the order's error."""
        answers = self.dv.execute_change_sets([[op for op, _ in ops] for _, ops, _ in groups])
        for (r, ops, creating), got in zip(groups, answers, strict=True):
            failed = [(a, what) for a, (_, what) in zip(got, ops, strict=True) if not a.ok]
            if not failed:
                self.settle(r, results, f" ({'; '.join(what for _, what in ops)})")
            elif creating and got[0].status == 412:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        WRITTEN_MEANWHILE,
                        f"Dynamics invoice {r.target_id} of {self.label} {r.source_id} was created "
                        "meanwhile (another worker): retried to bring it up to date",
                    ),
                )
            else:
                answer, what = failed[0]
                results.error(
                    r.source_id,
                    answer.error,
                    f"Dynamics invoice {r.target_id} of {self.label} {r.source_id}: {what}",
                )

    def remember(self, r: Record) -> None:
        """Nothing: the invoice's key is deterministic (invoice_key) and Dynamics' own values are
        what the next batch compares with."""

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _decision(r: Record) -> PlainDecision[InvoiceState]:
        assert isinstance(r.decision, PlainDecision)
        return r.decision

    @staticmethod
    def _reference(order: Mapping[str, Any]) -> str:
        for invoice in order.get("invoices") or ():
            if isinstance(invoice, dict) and str(invoice.get("invoiceReference") or "").strip():
                return str(invoice["invoiceReference"]).strip()
        return ""

    @staticmethod
    def _currency_code(order: Mapping[str, Any]) -> str:
        return str((order.get("currency") or {}).get("orderCurrencyCode") or "").upper()

    def _header(self, r: Record) -> dict[str, Any]:
        """The new invoice's columns: name, key, salesorder, customer, price list, currency."""
        assert r.target is not None
        wanted = r.read.value
        order = r.target.get(SALESORDER) or {}
        number = order.get("ordernumber") or order.get("name") or r.target["salesorderid"]
        body: dict[str, Any] = {
            "name": f"Invoice {wanted.reference} for order {number}"[:300],
            "bpi_brightpearlid": wanted.reference,
            "salesorderid@odata.bind": odata.bind("salesorders", r.target["salesorderid"]),
            "transactioncurrencyid@odata.bind": odata.bind(
                "transactioncurrencies", self.currencies[wanted.currency][0]
            ),
        }
        customer, kind = order.get("_customerid_value"), order.get("customer_kind")
        if customer and kind in ("contact", "account"):
            body[f"customerid_{kind}@odata.bind"] = odata.bind(f"{kind}s", str(customer))
        if order.get("_pricelevelid_value"):
            body["pricelevelid@odata.bind"] = odata.bind("pricelevels", str(order["_pricelevelid_value"]))
        return body


def held_state(row: Mapping[str, Any]) -> InvoiceState:
    """What a Dynamics invoice row (with its line ids) holds."""
    return InvoiceState(
        invoice_id=str(row.get("invoiceid") or "").lower(),
        reference=str(row.get("bpi_brightpearlid") or ""),
        paid=amount(row.get("bpi_amountpaid")),
        statecode=row.get("statecode"),
        statuscode=row.get("statuscode"),
        line_ids=tuple(row.get(LINE_IDS) or ()),
    )


def operations(
    wanted: InvoiceState, held: InvoiceState | None, header: Mapping[str, Any]
) -> list[tuple[BatchOperation, str]]:
    """The requests that bring the Dynamics invoice to `wanted`, in order (none: up to date)."""
    path = odata.record_path("invoices", wanted.invoice_id)
    create_only = {"If-None-Match": "*"}
    ops: list[tuple[BatchOperation, str]] = []
    state = ACTIVE if held is None else (held.statecode or ACTIVE)
    status = NEW if held is None else held.statuscode
    have = set() if held is None else set(held.line_ids)
    missing = [line for line in wanted.lines if line.id not in have]
    paid_differs = held is not None and held.paid != wanted.paid
    if held is None:  # created with its amount paid; Active until its lines are in
        body = {**header, "bpi_amountpaid": float(wanted.paid)}
        ops.append((BatchOperation("PATCH", path, body, create_only), "invoice created"))
    if (missing or paid_differs) and state != ACTIVE:
        ops.append(
            (BatchOperation("PATCH", path, {"statecode": ACTIVE, "statuscode": NEW}), "reopened to write")
        )
        state, status = ACTIVE, NEW
    for line in missing:
        body = {
            "invoiceid@odata.bind": odata.bind("invoices", wanted.invoice_id),
            "isproductoverridden": True,
            "productdescription": line.description,
            "quantity": float(line.quantity),
            "priceperunit": float(line.price),
            "manualdiscountamount": float(line.discount),
            "tax": float(line.tax),
        }
        line_path = odata.record_path("invoicedetails", line.id)
        ops.append((BatchOperation("PATCH", line_path, body, create_only), f"line {line.row_id}"))
    if paid_differs:
        ops.append(
            (
                BatchOperation("PATCH", path, {"bpi_amountpaid": float(wanted.paid)}),
                f"amount paid {wanted.paid}",
            )
        )
    want_state, want_status = wanted.statecode or ACTIVE, wanted.statuscode
    if want_state != state or (want_status is not None and want_status != status):
        change = {"statecode": want_state, "statuscode": want_status if want_status is not None else NEW}
        name = {COMPLETE: "Paid (Complete)", PARTIAL: "Paid (Partial)"}.get(change["statuscode"], "Active")
        ops.append((BatchOperation("PATCH", path, change), f"state {name}"))
    return ops
