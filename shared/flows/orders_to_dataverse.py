"""Flow orders-to-dataverse: Brightpearl fulfilment -> the Dynamics salesorder (issue 13 item 4).

Per batch of Brightpearl notices: `order` notices (`order.modified.order-status`,
`order.modified.fully-shipped`, the order-search poller), `sales-order` notices
(`sales-order.created`: a new order, copied by the order history) and `goods-out-note` notices
(`goods-out-note.modified.shipped`, `goods-out-note.modified`), whose ids are goods-out note
ids: one GET of those notes gives each note's order (`expand`; a transfer or a vanished note is
skipped). Then, for all the orders together:

1. read the orders in bulk (`GET /order-service/order/{ID-SET}`, ≤ 200 a call, reference §6.4)
   and, for those that shipped something (`shippingStatusCode` SPS or ASS), all their goods-out
   notes (`GET /warehouse-service/order/{ID-SET}/goods-note/goods-out`, ≤ 500 orders a call, §8.3);
2. find each one's Dynamics order through the `order` link (orders-to-brightpearl wrote it for
   a Dynamics-born order; no link: a Brightpearl-born order, whose Dynamics order the order
   history makes first, shared/flows/orders_history.py, mappings/orders.yaml `history:`), and
   read those Dynamics orders and, for orders that shipped, their lines in bulk (one `In`
   query per ~500 orders, as many as the URL takes);
3. work out what Dynamics should hold (`to_canonical`):
   - the state: a fully shipped order (`shippingStatusCode` ASS) is Fulfilled; otherwise its
     status maps through mappings/order_status.yaml (a status it lacks is `StatusNotMapped`);
   - the shipment, from the shipped notes: `bpi_shippedon` (the latest `shippedOn`),
     `bpi_shippingmethod` (the notes' shipping method, else the order's, by the name of the
     Dynamics `shippingmethodcode` option that orders.yaml `shipping_methods` maps to it, else
     "Brightpearl shipping method <id>"), `bpi_trackingreference` (the notes' references), and
     per line `quantityshipped`: an order row's `externalRef` is the salesorderdetail id
     orders-to-brightpearl sent (a Brightpearl-born order's lines have ids made from their
     rows' ids, `line_id`), so a row's shipped quantity lands on its own line;
   - invoicing: `bpi_invoicereference` (the order's invoice references) and `bpi_paymentstatus`
     (PAID, PARTIALLY_PAID, else NOT_PAID; nothing for an order with nothing to pay);
   - `bpi_brightpearlstatus`: the Brightpearl status name, mapped or not;
4. write only what differs, all in one `$batch` (a new `$batch` per 1,000 operations; an order's
   operations never straddle two), per order: its columns, its lines, then its state (PATCH for
   Active and Submitted; Fulfilled through the collection-bound `FulfillSalesOrder` action). An
   order reaching Fulfilled is fulfilled once: one action per order and batch, none when Dynamics
   holds Fulfilled already. Canceled and Invoiced are never written (`StateChangeNotSupported`,
   unless Dynamics holds that state already: a Dynamics cancellation coming back completes).
   Dynamics keeps orders that are not Active read-only to users (reference dataverse-api.md
   §10.5); `writeback.read_only_orders` in mappings/orders.yaml says how they are written:
   - `reopen` (default): a Submitted order is set Active (PATCH statecode 0), written, then put
     back (or fulfilled) in the same `$batch`, which continues on error so the order always goes
     back; a closed order (Fulfilled, Canceled, Invoiced) is not written: what it lacks (an
     invoice after fulfilment) is `skipped` with reason `DynamicsOrderClosed`, naming the columns;
   - `direct`: as they are, which Dynamics allows only an administrator (an application user
     with System Administrator; docs/deploy.md gives it a custom role), so an invoice after
     fulfilment still arrives.

A change Dynamics refuses is that order's dead letter with Dynamics' message (through the one
error table, shared/resilience.py), unless the order, read again, holds what was wanted: another
worker wrote it meanwhile (the shipped-note and fully-shipped notices of one shipment in two
batches at once), so it is unchanged and fulfilled once. Throttling or an outage on either side
is a retry.
Echo-safe and idempotent: Dynamics' current values are what is compared, so our own write
coming back, or a redelivered notice, writes nothing; the link's hashes belong to
orders-to-brightpearl and are not touched here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Self, Unpack

from pydantic import BaseModel

from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.events import Envelope
from shared.flows.orders_history import OrderHistory
from shared.flows.orders_spec import GOODS_OUT_ENTITY, ORDERS, SALES_ORDER_ENTITY, TO_DATAVERSE
from shared.mapping.brightpearl import parse_bp_time
from shared.mapping.orders_config import SHIPPING_METHOD_CODES, OrderMapping, load_order_mapping
from shared.mapping.orders_history import HistorySettings, amount, line_id, utc_text
from shared.mapping.orders_status import CANCELED, FULFILLED, SALESORDER_STATES, OrderStatusMapping
from shared.mapping.translation import Translation
from shared.quality.issues import QualityIssue
from shared.sync.engine import Batch, FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, fatal_description
from shared.systems import System

ORDER_GET = "/order-service/order/{ids}"
NOTES_OF_ORDERS = "/warehouse-service/order/{ids}/goods-note/goods-out"  # ≤ 500 orders a call
NOTES_BY_ID = "/warehouse-service/order/*/goods-note/goods-out/{ids}"  # ≤ 500 notes a call
BATCH_LIMIT = 1000  # operations per $batch (reference dataverse-api.md)
NOT_SUPPORTED = "StateChangeNotSupported"
CLOSED = "DynamicsOrderClosed"
NOTE_NOT_FOUND = "GoodsOutNoteNotFound"
NOTE_CREATED = "goods-out-note.created"
INVOICED = 4
ACTIVE, SUBMITTED = 0, 1
CLOSED_STATES = (CANCELED, FULFILLED, INVOICED)
REOPEN = {"statecode": ACTIVE, "statuscode": 1}  # Active / New: editable
COMPLETE = 100001  # Fulfilled / Complete: a fully shipped order
SHIPPED_SOME = ("SPS", "ASS")  # shippingStatusCode: part shipped, all shipped (reference §6.4)
ALL_SHIPPED = "ASS"
FULFIL_ACTION = "salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder"
PAYMENT_STATUSES = {
    "PAID": "PAID",
    "PARTIALLY_PAID": "PARTIALLY_PAID",
    "UNPAID": "NOT_PAID",
    "NOT_PAID": "NOT_PAID",
}
# salesorder column -> the OrderState field it holds
HEADER_COLUMNS: dict[str, str] = {
    "bpi_shippedon": "shipped_on",
    "bpi_shippingmethod": "shipping_method",
    "bpi_trackingreference": "tracking_reference",
    "bpi_invoicereference": "invoice_reference",
    "bpi_paymentstatus": "payment_status",
    "bpi_brightpearlstatus": "status_name",
}
LINES = "_lines"  # the Dynamics order's lines, as match() files them in the order's row
NOTES = "_goodsOutNotes"  # the Brightpearl order's goods-out notes, as fetch() files them


class OrderState(BaseModel):
    """What a Dynamics salesorder holds of its Brightpearl order's fulfilment: wanted or held."""

    statecode: int | None = None
    statuscode: int | None = None
    order_number: str | None = None  # Brightpearl `reference` = the Dynamics order number
    status: str = ""  # the Brightpearl status as shown in messages: 'Shipped' (id 7)
    status_name: str | None = None  # the Brightpearl status name (bpi_brightpearlstatus)
    shipped_on: str | None = None  # UTC, whole seconds: 2026-12-05T13:00:00Z
    shipping_method: str | None = None
    tracking_reference: str | None = None
    invoice_reference: str | None = None
    payment_status: str | None = None
    shipped: dict[str, Decimal] = {}  # salesorderdetail id -> quantity shipped
    has_lines: bool = False  # wanted: rows shipped, so the Dynamics lines are read
    unmatched_rows: tuple[str, ...] = ()  # shipped rows that name no Dynamics line (externalRef)


Record = SyncRecord[OrderState]


class OrdersToDataverse(RecordSync[OrderState]):
    """Brightpearl order status, shipments and invoicing -> the Dynamics salesorder and its lines.
    Hooks: expand (goods-out notes to orders), fetch (orders and their notes), skip (not a sales
    order), match (link, then the Dynamics orders and lines in bulk), write (one $batch)."""

    spec = TO_DATAVERSE
    records_per_pass = 1_000  # Brightpearl orders (about 20 KB each) read and written at a time
    link_entity = ORDERS.link_entity

    def __init__(
        self,
        *,
        statuses: OrderStatusMapping,
        shipping_methods: Mapping[int, str] | None = None,
        reopen: bool = True,
        history: HistorySettings | None = None,
        customer_attempts: int = 6,
        cancelled_status: str = "Cancelled",
        **ports: Unpack[FlowPorts],
    ) -> None:
        super().__init__(**ports)
        self.statuses = statuses
        self.shipping_methods = dict(shipping_methods or {})  # Brightpearl shippingMethodId -> name
        self.reopen = reopen  # writeback.read_only_orders: reopen (else direct)
        # Brightpearl-born orders: their Dynamics order is made first (mappings/orders.yaml history:)
        self.history = OrderHistory(
            self,
            history or HistorySettings(),
            customer_attempts=customer_attempts,
            cancelled_status=cancelled_status,
        )

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the mapping file ORDER_MAPPING_PATH names."""
        from shared.flows.orders_spec import order_mapping_path

        mapping = load_order_mapping(order_mapping_path())
        return cls(
            statuses=mapping.statuses,
            shipping_methods=shipping_method_names(mapping),
            reopen=mapping.writeback.read_only_orders == "reopen",
            history=mapping.history,
            customer_attempts=mapping.customer_wait.attempts,
            cancelled_status=mapping.changes.cancelled_status,
            **cls.runtime_ports(),
        )

    # ------------------------------------------------------------------------------ hooks
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        """A note just created has shipped nothing: nothing to read for it (the webhook is
        registered for others; its shipment comes as goods-out-note.modified.shipped)."""
        self.history.saw(envelope, record_id)
        if envelope.notice.detail.get("event") == NOTE_CREATED:
            results.set(
                record_id,
                RecordResult("skipped", None, f"goods-out note {record_id} created: nothing shipped yet"),
            )
            return
        super().sort_notice(envelope, record_id, batch, results)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        """The orders named, then the order of each goods-out note named (one GET of the notes)."""
        self.history.new_batch()
        order_ids = [*batch.changed.get("order", []), *batch.changed.get(SALES_ORDER_ENTITY, [])]
        note_ids = batch.changed.get(GOODS_OUT_ENTITY, [])
        notes: dict[str, dict[str, Any]] = {}
        if note_ids:
            for item in self.bp.get_by_ids(NOTES_BY_ID, [int(i) for i in note_ids], limit=500):
                notes.update({str(k): dict(v) for k, v in dict(item).items()})
        for note_id in note_ids:
            note = notes.get(note_id)
            order_id = str((note or {}).get("orderId") or 0)
            if note is None or order_id == "0":
                what = "no longer exists" if note is None else "is a transfer, not a sales order's"
                results.set(
                    note_id,
                    RecordResult(
                        "skipped",
                        NOTE_NOT_FOUND if note is None else None,
                        f"goods-out note {note_id} {what}",
                    ),
                )
                continue
            batch.derived.setdefault(note_id, []).append(order_id)
            order_ids.append(order_id)
        return list(dict.fromkeys(order_ids))

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The orders of the whole id set (an id Brightpearl lacks is left out), each with the
        goods-out notes of those that shipped something."""
        found = {
            str(o["id"]): dict(o) for o in self.bp.get_by_ids(ORDER_GET, [int(i) for i in ids], limit=200)
        }
        shipping = [int(i) for i, o in found.items() if o.get("shippingStatusCode") in SHIPPED_SOME]
        for order in found.values():
            order[NOTES] = []
        if shipping:
            for item in self.bp.get_by_ids(NOTES_OF_ORDERS, shipping, limit=500):
                for note_id, note in sorted(dict(item).items(), key=lambda kv: int(kv[0])):
                    owner = found.get(str(note.get("orderId")))
                    if owner is not None:
                        owner[NOTES].append({**note, "id": int(note_id)})
        return found

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        kind = source.get("orderTypeCode") or "SO"
        if kind == "SO":
            return False
        results.set(
            record_id,
            RecordResult("skipped", None, f"{self.label} {record_id} is a {kind}, not a sales order"),
        )
        return True

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[OrderState]:
        if system == "dataverse":
            return Translation(held_state(record))
        status = record.get("orderStatus") or {}
        status_id, name = status.get("orderStatusId"), status.get("name")
        shown = " ".join(p for p in (repr(name) if name else None, f"(id {status_id})") if p)
        number = record.get("reference") or None
        wanted = OrderState(
            order_number=number,
            status=shown,
            status_name=str(name)[:100] if name else None,
            **shipment(record, self.shipping_methods),
            **invoicing(record),
        )
        if record.get("shippingStatusCode") == ALL_SHIPPED:  # fully shipped: Fulfilled, whatever the status
            target = self.statuses.target(status_id, name)
            code = target.statuscode if target is not None and target.statecode == FULFILLED else COMPLETE
            return Translation(wanted.model_copy(update={"statecode": FULFILLED, "statuscode": code}))
        answer = self.statuses.dataverse_state(
            status_id, name, order_id=str(record["id"]), order_number=number
        )
        if isinstance(answer, QualityIssue):
            return Translation(wanted, [answer])
        return Translation(wanted.model_copy(update={"statecode": answer[0], "statuscode": answer[1]}))

    def content_hash(self, value: OrderState, system: System) -> str:
        return f"{value.statecode}/{value.statuscode}"

    def is_echo(self, r: Record) -> bool:
        """Never by the link: its hashes are orders-to-brightpearl's; Dynamics' values decide."""
        return False

    def unchanged_since_sync(self, link: Any, system: System, current: OrderState) -> bool:
        return False

    def decide_write(self, record: Record, current: OrderState | None) -> PlainDecision[OrderState]:
        """Write what differs. A status order_status.yaml lacks (StatusNotMapped) leaves the state
        alone but not the shipment and invoice columns: they are written, then the order is
        dead-lettered for the gap (write() settles it)."""
        wanted = record.read.value
        desired = self.content_hash(wanted, "dataverse")
        held = current or OrderState()
        changes = bool(
            header_changes(wanted, held) or line_changes(wanted, held) or state_differs(wanted, held)
        )
        return PlainDecision[OrderState](
            wanted, desired, should_write=changes, issues=list(record.read.issues)
        )

    def match(self, records: list[Record], results: BatchResults) -> None:
        """Each order's Dynamics order through its link, then those orders (and the lines of
        those that shipped) in bulk."""
        links = self.store.links.get_many(self.link_entity, "brightpearl", [r.source_id for r in records])
        linked: list[Record] = []
        unlinked: list[Record] = []
        for r in records:
            link = links.get(r.source_id)
            target = link.id_in("dataverse") if link is not None and link.is_linked else None
            if target is None:
                unlinked.append(r)
                continue
            r.link, r.target_id, r.matched_by = link, target.lower(), "link"
            linked.append(r)
        linked += self.history.create(unlinked, results)  # Brightpearl-born: made, then written back
        rows = self._dynamics_orders(linked)
        for r in linked:
            row = rows.get(r.target_id or "")
            if row is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "skipped",
                        None,
                        f"{self.label} {r.source_id}: its Dynamics order {r.target_id} no longer "
                        "exists; nothing to write",
                    ),
                )
            else:
                r.target = row

    def _dynamics_orders(self, records: list[Record]) -> dict[str, dict[str, Any]]:
        """The Dynamics orders of `records` by id (as many a query as the URL takes), each with
        its lines (`_lines`) when its Brightpearl order shipped something."""
        rows: dict[str, dict[str, Any]] = {}
        select = ["salesorderid", "ordernumber", "statecode", "statuscode", *HEADER_COLUMNS]
        for wanted in odata.in_chunks("salesorderid", [r.target_id or "" for r in records]):
            for found in self.dv.query("salesorders", select=select, filter=wanted):
                rows[str(found.values["salesorderid"]).lower()] = {**found.values, LINES: []}
        shipped = [r.target_id or "" for r in records if r.read.value.has_lines and r.target_id in rows]
        select = ["salesorderdetailid", "_salesorderid_value", "quantity", "quantityshipped"]
        for of_orders in odata.in_chunks("_salesorderid_value", shipped):
            for line in self.dv.query("salesorderdetails", select=select, filter=of_orders):
                parent = str(line.values.get("_salesorderid_value") or "").lower()
                if parent in rows:
                    rows[parent][LINES].append(dict(line.values))
        return rows

    def write(self, records: list[Record], results: BatchResults) -> None:
        """One $batch of every order's changes (per order: reopen, columns, lines, state), then
        settle each."""
        todo = self.to_write(records, results)
        groups: list[tuple[Record, list[tuple[BatchOperation, str]]]] = []
        for r in todo:
            if self._decision(r).should_write:
                ops = self._operations(r, results)
                if ops:
                    groups.append((r, ops))
        for batch in _packed(groups, BATCH_LIMIT):
            flat = [(r, op, what) for r, ops in batch for op, what in ops]
            answers = self.dv.execute_batch([op for _, op, _ in flat], continue_on_error=True)
            for (r, _, what), answer in zip(flat, answers, strict=True):
                if not answer.ok and not results.has(r.source_id):
                    results.error(r.source_id, answer.error, f"{self._what(r)} {what}")
        refused = [r for r, _ in groups if (got := results.by_id.get(r.source_id)) and got.kind == "fatal"]
        self._written_meanwhile(refused, results)
        for r in todo:
            if not results.has(r.source_id):
                self._settle_order(r, results)

    def _written_meanwhile(self, refused: list[Record], results: BatchResults) -> None:
        """Orders whose writes Dynamics refused, read again: when another worker has meanwhile
        brought one up to date (two notices of one shipment in two batches at once: the second
        finds the order fulfilled and closed), it is unchanged, not a dead letter."""
        if not refused:
            return
        rows = self._dynamics_orders(refused)
        for r in refused:
            row = rows.get(r.target_id or "")
            wanted = self._decision(r).payload
            if row is None:
                continue
            held = held_state(row)
            if not (
                header_changes(wanted, held) or line_changes(wanted, held) or state_differs(wanted, held)
            ):
                r.target = row
                results.set(
                    r.source_id,
                    RecordResult(
                        "unchanged",
                        None,
                        f"{self._what(r)} already holds this content (written meanwhile by another worker)",
                        target_id=r.target_id,
                    ),
                )

    def _settle_order(self, r: Record, results: BatchResults) -> None:
        """Synced or unchanged; or, with its columns written, dead-lettered for a status gap."""
        decision = self._decision(r)
        closed = self._held(r).statecode in CLOSED_STATES  # its state cannot change: no gap to fix
        gaps = [issue for issue in decision.issues if issue.fatal and not closed]
        if not gaps:
            self.settle(r, results, self._summary(r))
            return
        written = self._summary(r) if decision.should_write else " (nothing else to write)"
        results.set(
            r.source_id,
            RecordResult(
                "fatal",
                r.read.reason,
                f"{fatal_description(gaps)}; the state of {self._what(r)} is left as it is{written}",
                target_id=r.target_id,
                stamp=str(r.source.get(self.spec.stamp_field) or ""),
            ),
        )

    def born_columns(self, r: Record) -> dict[str, Any]:
        """The write-back's columns a Brightpearl-born order is created with (status, shipment,
        invoicing), so only its state remains to write."""
        return header_changes(r.read.value, OrderState())

    def remember(self, r: Record) -> None:
        """Nothing: Dynamics' own values are what the next batch compares with, and the link's
        hashes are orders-to-brightpearl's."""

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _decision(r: Record) -> PlainDecision[OrderState]:
        assert isinstance(r.decision, PlainDecision)
        return r.decision

    def _held(self, r: Record) -> OrderState:
        return held_state(r.target or {})

    def _what(self, r: Record) -> str:
        number = (r.target or {}).get("ordernumber") or r.read.value.order_number
        shown = f" {number}" if number else ""
        return f"Dynamics order{shown} ({r.target_id}) of {self.label} {r.source_id}"

    def _summary(self, r: Record) -> str:
        wanted, held = self._decision(r).payload, self._held(r)
        parts = [f"state {wanted.statecode}/{wanted.statuscode}"] if wanted.statecode is not None else []
        if columns := header_changes(wanted, held):
            parts.append("wrote " + ", ".join(columns))
        if lines := line_changes(wanted, held):
            parts.append(f"quantityshipped on {len(lines)} line(s)")
        unknown = [line for line in wanted.shipped if line not in held.shipped]
        if wanted.unmatched_rows or unknown:
            parts.append(
                "shipped Brightpearl rows naming no line of this order (row externalRef): "
                + ", ".join([*wanted.unmatched_rows, *unknown])
            )
        return " (" + "; ".join(parts) + ")" if parts else ""

    def _operations(self, r: Record, results: BatchResults) -> list[tuple[BatchOperation, str]]:
        """The requests that bring one Dynamics order up to date, in order (none: refused here)."""
        wanted, held = self._decision(r).payload, self._held(r)
        state, status = wanted.statecode, wanted.statuscode
        if state is None:  # status not mapped: the order keeps its state (put back after reopening)
            state, status = held.statecode or ACTIVE, held.statuscode
        stamp = str(r.source.get(self.spec.stamp_field) or "")
        if state in (CANCELED, INVOICED) and state_differs(wanted, held):
            name = SALESORDER_STATES[state or 0][0]
            results.set(
                r.source_id,
                RecordResult(
                    "fatal",
                    NOT_SUPPORTED,
                    f"{self._what(r)}: order_status.yaml maps Brightpearl status {wanted.status} to "
                    f"statecode {state} ({name}), which the status write-back does not write yet "
                    "(CancelSalesOrder / invoicing); map the status to an Active, Submitted or "
                    "Fulfilled state, then resubmit",
                    stamp=stamp,
                ),
            )
            return []
        path = odata.record_path("salesorders", r.target_id or "")
        columns = header_changes(wanted, held)
        lines = line_changes(wanted, held)
        ops: list[tuple[BatchOperation, str]] = []
        current = held.statecode or ACTIVE
        if columns or lines:
            if self.reopen and current not in (ACTIVE, SUBMITTED):
                if not state_differs(wanted, held):
                    results.set(
                        r.source_id,
                        self._closed(r, held, [*columns, *(["quantityshipped"] if lines else [])]),
                    )
                    return []
            else:
                if self.reopen and current != ACTIVE:
                    reopen = {"statecode": ACTIVE, "statuscode": status} if state == ACTIVE else REOPEN
                    ops.append((BatchOperation("PATCH", path, reopen), "reopening to write"))
                    held = held.model_copy(update=reopen)
                if columns:
                    ops.append((BatchOperation("PATCH", path, columns), "columns " + ", ".join(columns)))
                for line_id, quantity in lines.items():
                    body = {"quantityshipped": float(quantity)}
                    line_path = odata.record_path("salesorderdetails", line_id)
                    ops.append((BatchOperation("PATCH", line_path, body), f"line {line_id} quantityshipped"))
        if state == FULFILLED:
            if held.statecode != FULFILLED:
                close = {
                    "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
                    "salesorderid@odata.bind": f"/salesorders({r.target_id})",
                    "subject": f"Brightpearl order {r.source_id}: {wanted.status or 'fully shipped'}",
                }
                ops.append(
                    (
                        BatchOperation("POST", FULFIL_ACTION, {"OrderClose": close, "Status": status}),
                        "fulfilment",
                    )
                )
        elif (held.statecode, held.statuscode) != (state, status):
            change = {"statecode": state, "statuscode": status}
            ops.append((BatchOperation("PATCH", path, change), "state change"))
        return ops

    def _closed(self, r: Record, held: OrderState, columns: list[str]) -> RecordResult:
        name = SALESORDER_STATES.get(held.statecode or 0, (str(held.statecode), {}))[0]
        return RecordResult(
            "skipped",
            CLOSED,
            f"{self._what(r)} is {name} (closed), and Dynamics edits only open orders: "
            f"{', '.join(columns)} not written",
            target_id=r.target_id,
        )


# ---------------------------------------------------------------------------------- translation
def shipping_method_names(mapping: OrderMapping) -> dict[int, str]:
    """Brightpearl shippingMethodId -> the name of the Dynamics option orders.yaml maps to it."""
    return {method: SHIPPING_METHOD_CODES[code] for code, method in mapping.shipping_methods.items()}


def _joined(values: Iterable[Any], limit: int) -> str | None:
    text = ", ".join(dict.fromkeys(str(v).strip() for v in values if v and str(v).strip()))
    return text[:limit] or None


def shipment(order: Mapping[str, Any], methods: Mapping[int, str]) -> dict[str, Any]:
    """What the order's shipped goods-out notes say: date, method, tracking, quantity per line."""
    notes = [n for n in order.get(NOTES) or () if (n.get("status") or {}).get("shipped")]
    if not notes:
        return {}
    dates = [d for d in (parse_bp_time((n.get("status") or {}).get("shippedOn")) for n in notes) if d]
    ids = [int((n.get("shipping") or {}).get("shippingMethodId") or 0) for n in notes]
    ids = [i for i in ids if i] or [int((order.get("delivery") or {}).get("shippingMethodId") or 0)]
    rows = order.get("orderRows") or {}
    shipped: dict[str, Decimal] = {}
    unmatched: list[str] = []
    for note in notes:
        for row_id, parts in (note.get("orderRows") or {}).items():
            ref = str((rows.get(str(row_id)) or {}).get("externalRef") or "")
            line = (ref or line_id(order.get("id") or 0, row_id)).lower()  # no ref: a Brightpearl-born line
            quantity = sum((amount(p.get("quantity")) for p in parts or ()), Decimal(0))
            if not odata.is_guid(line):
                unmatched.append(str(row_id))
                continue
            shipped[line] = shipped.get(line, Decimal(0)) + quantity
    return {
        "shipped_on": utc_text(max(dates)) if dates else None,
        "shipping_method": _joined(
            (methods.get(i, f"Brightpearl shipping method {i}") for i in ids if i), 200
        ),
        "tracking_reference": _joined(((n.get("shipping") or {}).get("reference") for n in notes), 200),
        "shipped": shipped,
        "has_lines": True,
        "unmatched_rows": tuple(dict.fromkeys(unmatched)),
    }


def invoicing(order: Mapping[str, Any]) -> dict[str, Any]:
    """The invoice references and payment status of a Brightpearl order (reference §6.4)."""
    references = (i.get("invoiceReference") for i in order.get("invoices") or () if isinstance(i, dict))
    return {
        "invoice_reference": _joined(references, 100),
        "payment_status": PAYMENT_STATUSES.get(str(order.get("orderPaymentStatus") or "").upper()),
    }


def held_state(row: Mapping[str, Any]) -> OrderState:
    """What a Dynamics salesorder row (with its `_lines`) holds."""
    return OrderState(
        statecode=row.get("statecode"),
        statuscode=row.get("statuscode"),
        order_number=row.get("ordernumber"),
        shipped_on=utc_text(row.get("bpi_shippedon")),
        shipping_method=row.get("bpi_shippingmethod") or None,
        tracking_reference=row.get("bpi_trackingreference") or None,
        invoice_reference=row.get("bpi_invoicereference") or None,
        payment_status=row.get("bpi_paymentstatus") or None,
        status_name=row.get("bpi_brightpearlstatus") or None,
        shipped={
            str(line.get("salesorderdetailid")).lower(): amount(line.get("quantityshipped"))
            for line in row.get(LINES) or ()
        },
    )


def header_changes(wanted: OrderState, held: OrderState) -> dict[str, Any]:
    """The salesorder columns whose value differs: column -> the value to write."""
    out: dict[str, Any] = {}
    for column, name in HEADER_COLUMNS.items():
        value = getattr(wanted, name)
        if name in ("shipped_on", "shipping_method", "tracking_reference") and not wanted.has_lines:
            continue  # nothing shipped (or the notes were not read): leave shipment columns alone
        if value != getattr(held, name):
            out[column] = value
    return out


def line_changes(wanted: OrderState, held: OrderState) -> dict[str, Decimal]:
    """salesorderdetail id -> quantityshipped, for the lines of the order whose value differs."""
    if not wanted.has_lines:
        return {}
    return {
        line_id: wanted.shipped.get(line_id, Decimal(0))
        for line_id, quantity in held.shipped.items()
        if wanted.shipped.get(line_id, Decimal(0)) != quantity
    }


def state_differs(wanted: OrderState, held: OrderState) -> bool:
    if wanted.statecode is None:
        return False
    if wanted.statecode == FULFILLED and held.statecode == FULFILLED:
        return False  # fulfilled once: Complete or Partial, it stays as it is
    return (wanted.statecode, wanted.statuscode) != (held.statecode, held.statuscode)


def _packed(
    groups: list[tuple[Record, list[tuple[BatchOperation, str]]]], limit: int
) -> Iterable[list[tuple[Record, list[tuple[BatchOperation, str]]]]]:
    """Groups of operations in batches of at most `limit` operations; a group is never split."""
    batch: list[tuple[Record, list[tuple[BatchOperation, str]]]] = []
    size = 0
    for group in groups:
        if batch and size + len(group[1]) > limit:
            yield batch
            batch, size = [], 0
        batch.append(group)
        size += len(group[1])
    if batch:
        yield batch
