"""Flow fulfilment-to-brightpearl: allocation and goods-out notes on a configured trigger (issue 18 item 1).

Configured by the `fulfilment:` section of mappings/orders.yaml (shared/mapping/fulfilment_config.py);
off by default, when every notice completes at once and nothing is read or written. When on, per
batch of Brightpearl notices (shared/flows/fulfilment_spec.py):

1. the orders: those `order` / `sales-order` notices name, and those waiting for stock of the
   products `product-stock` notices name (the waiting index below); read in bulk
   (`GET /order-service/order/{ID-SET}`, ≤ 200 a call, reference §6.4);
2. each order is checked: a sales order, not cancelled (orders.yaml `changes.cancelled_status`),
   of a channel `fulfilment.channels` lists and of a warehouse `fulfilment.order_warehouses` lists
   (empty: any), that has reached the trigger (its status
   is one of `trigger.statuses`, it is paid in full, or at once); otherwise it is `skipped`
   (reason `FulfilmentNotTriggered`, `ChannelNotFulfilled`, `OrderCancelled`); one a stock notice
   brought leaves the waiting index;
3. exactly once per order row and quantity: the flow claims each order (LinkStore.claim on
   entity `fulfilment`: one worker per order at a time; another waits without spending a retry),
   then reads what Brightpearl holds — the orders' goods-out notes (one GET for ≤ 500 orders,
   §8.3), each order's reservations (`GET /warehouse-service/order/{id}/reservation`, §6.10) —
   and the availability of their products (`onHand` per warehouse, one GET for ≤ 200 products,
   §8.1), and does only the difference:
   - a row's open quantity (ordered, less reserved in any warehouse, less on goods-out notes) is
     reserved from the warehouses `fulfilment.warehouses` lists (or the channel's, or the order's
     own), in that order, as far as `onHand` goes: one reservation POST per warehouse
     (`{"products":[{productId, salesOrderRowId, quantity}]}`); products that are not stock-tracked
     (absent from availability) are not reserved;
   - then (`goods_out_notes`, default on) one goods-out POST makes one note per warehouse for
     everything reserved and not yet on a note; a note consumes its reservation;
   - a row stock cannot cover waits: the order goes into the waiting index, a state-store row per
     product (`fulfilment-waiting-<product id>`: the order ids) and one per order
     (`fulfilment-order-<order id>`: its products), so the next `product-stock` notice of one of
     those products (a stock correction or goods-in raises `product.modified.on-hand-modified`;
     the stock poller's goods movements) brings the order back. Nothing is polled in a loop.
   A retry, a duplicate notice, a lost answer (the write landed, its answer did not) or a host
   restart (its claim's lease runs out, the next worker takes it over) reads Brightpearl again
   first, so nothing is reserved or noted twice.
4. the Dynamics order lines show it: `bpi_quantityreserved` (units allocated to the line: still
   reserved plus on goods-out notes) and `bpi_quantityreleased` (on goods-out notes), for the rows
   whose `externalRef` is their salesorderdetail id (orders-to-brightpearl sends it). The lines are
   read in bulk and only those that differ are written, all in one `$batch`; a Submitted order is
   reopened and put back in the same `$batch` (orders.yaml `writeback.read_only_orders`, as the
   write-back does), a closed one is left alone (named in the audit).

A reservation Brightpearl refuses (someone took the stock meanwhile, `ReservationRefused`) and a
line write Dynamics refuses (`DynamicsLinesRefused`) are retried with the usual backoff; throttling
and outages on either side are retries (shared/resilience.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Self, Unpack

from pydantic import BaseModel

from shared.brightpearl.errors import BrightpearlNotFound, BrightpearlValidationError
from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.events import Envelope
from shared.flows.fulfilment_spec import FULFILMENT, SALES_ORDER_ENTITY, TO_BRIGHTPEARL
from shared.flows.stock_spec import STOCK_ENTITY, SWEEP
from shared.mapping.fulfilment_config import FulfilmentSettings
from shared.mapping.orders_config import load_order_mapping
from shared.mapping.translation import Translation
from shared.outcomes import Completed, Outcome
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.store.links import Claim
from shared.sync.engine import Batch, FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, waiting_on_claim
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("flows.fulfilment")

ORDER_GET = "/order-service/order/{ids}"  # ≤ 200 a call
NOTES_OF_ORDERS = "/warehouse-service/order/{ids}/goods-note/goods-out"  # ≤ 500 orders a call
RESERVATIONS = "/warehouse-service/order/{order}/reservation"
RESERVE = "/warehouse-service/order/{order}/reservation/warehouse/{warehouse}"
GOODS_OUT = "/warehouse-service/order/{order}/goods-note/goods-out"
CLAIM_ENTITY, CLAIM_TARGET = "fulfilment", "warehouse"  # one worker per order (LinkStore claim)
WAITING = "fulfilment-waiting-"  # state-store row: product id -> the orders waiting for its stock
WAITS_FOR = "fulfilment-order-"  # state-store row: order id -> the products it waits for
BATCH_LIMIT = 1000  # operations per $batch
NOT_TRIGGERED = "FulfilmentNotTriggered"
CHANNEL_OFF = "ChannelNotFulfilled"
WAREHOUSE_OFF = "WarehouseNotFulfilled"
CANCELLED = "OrderCancelled"
WAITING_FOR_STOCK = "WaitingForStock"
REFUSED = "ReservationRefused"
LINES_REFUSED = "DynamicsLinesRefused"
ACTIVE, SUBMITTED = 0, 1
REOPEN = {"statecode": ACTIVE, "statuscode": 1}


class OrderRow(BaseModel):
    row_id: str
    product_id: int
    quantity: int
    line: str | None = None  # the Dynamics salesorderdetail id (the row's externalRef), if any


class OrderToFulfil(BaseModel):
    """What the flow reads of a Brightpearl sales order."""

    order_id: str
    order_type: str = "SO"
    status: str | None = None
    payment_status: str | None = None
    channel_id: int | None = None
    warehouse_id: int | None = None
    shipping_method_id: int | None = None
    rows: list[OrderRow] = []


Record = SyncRecord[OrderToFulfil]


@dataclass
class Done:
    """What one order's pass did, and what its Dynamics lines should show."""

    reserved: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  # warehouse -> (row, units)
    notes: list[str] = field(default_factory=list)  # goods-out note ids made
    waiting: dict[str, int] = field(default_factory=dict)  # row -> units stock could not cover
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)  # line id -> (reserved, released)


class FulfilmentToBrightpearl(RecordSync[OrderToFulfil]):
    """Brightpearl sales orders -> reservations and goods-out notes (and the Dynamics lines' figures).
    Hooks: expand (waiting orders of products), fetch (orders), skip (trigger, channel), write (the
    claimed difference per order in Brightpearl, then one Dynamics $batch)."""

    spec = TO_BRIGHTPEARL
    records_per_pass = 1_000  # Brightpearl orders (about 20 KB each) read and written at a time
    link_entity = FULFILMENT.link_entity

    def __init__(
        self,
        *,
        settings: FulfilmentSettings,
        cancelled_status: str = "Cancelled",
        reopen: bool = True,
        **ports: Unpack[FlowPorts],
    ) -> None:
        super().__init__(**ports)
        self.settings = settings
        self.cancelled_status = cancelled_status.casefold()
        self.reopen = reopen
        self.done: dict[str, Done] = {}
        self.woken: set[str] = set()  # orders this batch took from the waiting index

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the order mapping (its `fulfilment:` section)."""
        from shared.flows.orders_spec import order_mapping_path

        mapping = load_order_mapping(order_mapping_path())
        return cls(
            settings=mapping.fulfilment,
            cancelled_status=mapping.changes.cancelled_status,
            reopen=mapping.writeback.read_only_orders == "reopen",
            **cls.runtime_ports(),
        )

    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        if not self.settings.enabled:  # off (the default): nothing is read, written or audited
            return [Completed() for _ in envelopes]
        self.done, self.woken = {}, set()
        return super().handle(envelopes)

    # ------------------------------------------------------------------------------ hooks
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        """The stock sweep's re-reads are no news of arriving stock (webhooks and the goods-movement
        poller are): they are left alone."""
        if envelope.notice.entity == STOCK_ENTITY and envelope.notice.detail.get(SWEEP):
            return
        super().sort_notice(envelope, record_id, batch, results)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        """The orders named, then the orders waiting for the products whose stock changed."""
        orders = [*batch.changed.get("order", []), *batch.changed.get(SALES_ORDER_ENTITY, [])]
        for product_id in batch.changed.get(STOCK_ENTITY, []):
            waiting = self._index(WAITING, product_id)
            if waiting:
                batch.derived.setdefault(product_id, []).extend(waiting)
                orders.extend(waiting)
                self.woken.update(waiting)
        return list(dict.fromkeys(orders))

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        items = self.bp.get_by_ids(ORDER_GET, [int(i) for i in ids], limit=200)
        return {str(o["id"]): dict(o) for o in items}

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[OrderToFulfil]:
        rows = []
        for row_id, row in (record.get("orderRows") or {}).items():
            product = int(row.get("productId") or 0)
            quantity = _units((row.get("quantity") or {}).get("magnitude"))
            if product and quantity > 0:
                ref = str(row.get("externalRef") or "").lower()
                rows.append(
                    OrderRow(
                        row_id=str(row_id),
                        product_id=product,
                        quantity=quantity,
                        line=ref if odata.is_guid(ref) else None,
                    )
                )
        current = (record.get("assignment") or {}).get("current") or {}
        status = record.get("orderStatus") or {}
        return Translation(
            OrderToFulfil(
                order_id=str(record["id"]),
                order_type=str(record.get("orderTypeCode") or "SO"),
                status=status.get("name"),
                payment_status=record.get("orderPaymentStatus"),
                channel_id=int(current.get("channelId") or 0) or None,
                warehouse_id=int(record.get("warehouseId") or 0) or None,
                shipping_method_id=int((record.get("delivery") or {}).get("shippingMethodId") or 0) or None,
                rows=sorted(rows, key=lambda r: int(r.row_id)),
            )
        )

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        order = self.to_canonical("brightpearl", source).value
        why = self._not_fulfilled(order)
        if why is None:
            return False
        reason, text = why
        if record_id in self.woken:  # it no longer waits for stock (an order notice costs no read)
            self._set_waiting(record_id, set())
        results.set(record_id, RecordResult("skipped", reason, f"{self.label} {record_id} {text}"))
        return True

    def _not_fulfilled(self, order: OrderToFulfil) -> tuple[str | None, str] | None:
        if order.order_type != "SO":
            return None, f"is a {order.order_type}, not a sales order"
        if order.status and order.status.casefold() == self.cancelled_status:
            return CANCELLED, f"is cancelled ({order.status!r}): nothing is reserved for it"
        if not self.settings.applies_to(order.channel_id):
            listed = ", ".join(map(str, self.settings.channels))
            return CHANNEL_OFF, f"is of channel {order.channel_id}; fulfilment.channels lists {listed}"
        if not self.settings.ships_from(order.warehouse_id):
            listed = ", ".join(map(str, self.settings.order_warehouses))
            return WAREHOUSE_OFF, (
                f"is an order of warehouse {order.warehouse_id}; fulfilment.order_warehouses lists {listed}"
            )
        if not self.settings.trigger.reached(order.status, order.payment_status):
            return NOT_TRIGGERED, (
                f"has not reached the fulfilment trigger ({self.settings.trigger.describe()}; status "
                f"{order.status!r}, payment {order.payment_status or 'none'})"
            )
        return None

    # ------------------------------------------------------------------------------ the pass
    def match(self, records: list[Record], results: BatchResults) -> None:
        """Nothing to match: the order is its own target (its reservations and notes)."""

    def content_hash(self, value: OrderToFulfil, system: System) -> str:
        return ""  # never compared: Brightpearl's reservations and notes are what is compared

    def decide_write(self, record: Record, current: OrderToFulfil | None) -> PlainDecision[OrderToFulfil]:
        """Always look: what to do is the difference with what Brightpearl holds, read under the claim."""
        return PlainDecision[OrderToFulfil](payload=record.read.value, desired_hash="", should_write=True)

    def remember(self, r: Record) -> None:
        """Nothing: Brightpearl's reservations and notes are the record of what was done."""

    def write(self, records: list[Record], results: BatchResults) -> None:
        """Claim each order, do the difference in Brightpearl, then one Dynamics $batch."""
        records = self.to_write(records, results)
        claims = self._claim(records, results)
        claimed = [r for r in records if r.source_id in claims]
        if not claimed:
            return
        try:
            with self.store.links.keep(claims.values()):
                self._fulfil(claimed, results)
        finally:
            for claim in claims.values():
                try:
                    self.store.links.release_claim(claim)
                except StoreConflictError as exc:  # taken over meanwhile: its new holder re-reads
                    log.info(
                        "fulfilment claim of order %s not released: %s", claim.source_id, type(exc).__name__
                    )
        self._show_in_dynamics(claimed, results)

    def _claim(self, records: list[Record], results: BatchResults) -> dict[str, Claim]:
        """One worker per order: another holding it makes this one wait (no retry spent)."""
        claims: dict[str, Claim] = {}
        for r in records:
            try:
                claims[r.source_id] = self.store.links.claim(
                    CLAIM_ENTITY, "brightpearl", r.source_id, CLAIM_TARGET
                )
            except ClaimTaken as taken:
                results.set(r.source_id, waiting_on_claim(f"{self.label} {r.source_id} (fulfilment)", taken))
        return claims

    def _fulfil(self, records: list[Record], results: BatchResults) -> None:
        """Read what Brightpearl holds for the claimed orders, then do the difference, oldest first."""
        notes = self._notes([int(r.source_id) for r in records])
        products = sorted({row.product_id for r in records for row in r.read.value.rows})
        availability = self.bp.get_product_availability(products) if products else {}
        free = {
            product: {int(w): int(level.on_hand) for w, level in found.warehouses.items()}
            for product, found in availability.items()
        }
        for r in sorted(records, key=lambda r: int(r.source_id)):
            try:
                self._fulfil_order(r, notes.get(r.source_id, []), free, results)
            except BrightpearlValidationError as exc:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        REFUSED,
                        f"Brightpearl refused a reservation or goods-out note of {self.label} "
                        f"{r.source_id} (stock or the order changed meanwhile; read again on retry): {exc}",
                    ),
                )
            except Exception as exc:
                results.error(r.source_id, exc, f"fulfilment of {self.label} {r.source_id}")

    def _notes(self, order_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for item in self.bp.get_by_ids(NOTES_OF_ORDERS, order_ids, limit=500):
            for note_id, note in dict(item).items():
                out.setdefault(str(note.get("orderId")), []).append({**note, "id": int(note_id)})
        return out

    def _reservations(self, order_id: int) -> dict[str, dict[int, int]]:
        """Row id -> warehouse -> units the order holds reserved."""
        try:
            answer = self.bp.request("GET", RESERVATIONS.format(order=order_id)).response
        except BrightpearlNotFound:  # an order holding nothing may answer 404 (reference §1.6)
            return {}
        held: dict[str, dict[int, int]] = {}
        for warehouse in _as_list(answer):
            wid = int(warehouse.get("warehouseId") or 0)
            for line in warehouse.get("products") or ():
                row = held.setdefault(str(line.get("salesOrderRowId")), {})
                row[wid] = row.get(wid, 0) + _units(line.get("quantity"))
        return held

    def _fulfil_order(
        self, r: Record, notes: list[dict[str, Any]], free: dict[int, dict[int, int]], results: BatchResults
    ) -> None:
        order = r.read.value
        oid = int(order.order_id)
        reserved = self._reservations(oid)
        noted: dict[str, int] = {}
        for note in notes:
            for row_id, parts in (note.get("orderRows") or {}).items():
                noted[str(row_id)] = noted.get(str(row_id), 0) + sum(
                    _units(p.get("quantity")) for p in parts or ()
                )
        done = self.done[r.source_id] = Done()
        warehouses = self.settings.warehouses_for(order.channel_id, order.warehouse_id)
        tracked = [row for row in order.rows if row.product_id in free]
        wanted: dict[int, list[dict[str, int]]] = {}
        for row in tracked:
            open_units = row.quantity - noted.get(row.row_id, 0) - sum(reserved.get(row.row_id, {}).values())
            stock = free[row.product_id]
            for warehouse in warehouses:
                take = min(open_units, max(stock.get(warehouse, 0), 0))
                if take <= 0:
                    continue
                wanted.setdefault(warehouse, []).append(
                    {"productId": row.product_id, "salesOrderRowId": int(row.row_id), "quantity": take}
                )
                stock[warehouse] = stock.get(warehouse, 0) - take
                open_units -= take
            if open_units > 0:
                done.waiting[row.row_id] = open_units
        for warehouse, lines in wanted.items():
            self.bp.request("POST", RESERVE.format(order=oid, warehouse=warehouse), json={"products": lines})
            for line in lines:
                row_id = str(line["salesOrderRowId"])
                held = reserved.setdefault(row_id, {})
                held[warehouse] = held.get(warehouse, 0) + line["quantity"]
                done.reserved.setdefault(warehouse, []).append((row_id, line["quantity"]))
        if self.settings.goods_out_notes:
            self._release(order, reserved, noted, done)
        products = {row.product_id for row in tracked if row.row_id in done.waiting}
        self._set_waiting(r.source_id, products)
        for row in tracked:
            if row.line is not None:
                released = noted.get(row.row_id, 0)
                done.lines[row.line] = (released + sum(reserved.get(row.row_id, {}).values()), released)
        results.set(r.source_id, self._result(r, done))

    def _release(
        self, order: OrderToFulfil, reserved: dict[str, dict[int, int]], noted: dict[str, int], done: Done
    ) -> None:
        """One goods-out POST: a note per warehouse for what is reserved and not yet on a note."""
        products = {row.row_id: row.product_id for row in order.rows}
        per_warehouse: dict[int, list[dict[str, int]]] = {}
        for row_id, held in sorted(reserved.items(), key=lambda kv: int(kv[0])):
            for warehouse, units in held.items():
                if units > 0 and row_id in products:
                    per_warehouse.setdefault(warehouse, []).append(
                        {"productId": products[row_id], "salesOrderRowId": int(row_id), "quantity": units}
                    )
        if not per_warehouse:
            return
        body: dict[str, Any] = {
            "warehouses": [
                {"warehouseId": warehouse, "transfer": False, "products": lines}
                for warehouse, lines in sorted(per_warehouse.items())
            ],
            "priority": False,
        }
        if order.shipping_method_id:
            body["shippingMethodId"] = order.shipping_method_id
        answer = self.bp.request("POST", GOODS_OUT.format(order=order.order_id), json=body).response
        done.notes.extend(str(n) for n in _as_list(answer))
        for lines in per_warehouse.values():
            for line in lines:
                row_id = str(line["salesOrderRowId"])
                noted[row_id] = noted.get(row_id, 0) + line["quantity"]
        for held in reserved.values():  # the notes consumed the reservations
            for warehouse in held:
                held[warehouse] = 0

    def _result(self, r: Record, done: Done) -> RecordResult:
        parts = []
        for warehouse, rows in sorted(done.reserved.items()):
            units = sum(q for _, q in rows)
            parts.append(
                f"reserved {units} unit(s) in warehouse {warehouse} (rows {', '.join(i for i, _ in rows)})"
            )
        if done.notes:
            parts.append(f"goods-out note(s) {', '.join(done.notes)}")
        if done.waiting:
            shown = ", ".join(f"row {row} {units}" for row, units in done.waiting.items())
            parts.append(f"waiting for stock: {shown}")
        what = f"{self.label} {r.source_id}"
        if done.reserved or done.notes:
            # no target_id: the target is the same Brightpearl order (one audit index row, not two)
            return RecordResult("synced", None, f"{what}: " + "; ".join(parts))
        if done.waiting:
            return RecordResult(
                "skipped", WAITING_FOR_STOCK, f"{what}: nothing in stock to reserve; {parts[-1]}"
            )
        return RecordResult("unchanged", None, f"{what}: already reserved and on goods-out notes")

    # ------------------------------------------------------------------------------ waiting index
    def _index(self, prefix: str, key: str) -> list[str]:
        cursor = self.store.cursors.get(f"{prefix}{key}")
        return [str(i) for i in json.loads(cursor.value)] if cursor is not None else []

    def _set_waiting(self, order_id: str, products: set[int]) -> None:
        """Keep the index in step: `order_id` waits for exactly `products` (none: it leaves)."""
        name = f"{WAITS_FOR}{order_id}"
        cursor = self.store.cursors.get(name)
        before = {int(p) for p in json.loads(cursor.value)} if cursor is not None else set()
        if before == products:
            return
        for product in sorted(products - before):
            self._edit_index(str(product), order_id, add=True)
        for product in sorted(before - products):
            self._edit_index(str(product), order_id, add=False)
        if products:  # the order is claimed: only this worker writes its own row
            self.store.cursors.save(name, json.dumps(sorted(products)), cursor.etag if cursor else None)
        elif cursor is not None:
            self.store.cursors.delete(name)

    def _edit_index(self, product: str, order_id: str, *, add: bool) -> None:
        """Add or remove one order in a product's row; conditional on its ETag (other orders' workers
        edit it too), read again on a conflict."""
        name = f"{WAITING}{product}"
        for attempt in range(5):
            cursor = self.store.cursors.get(name)
            orders = [str(i) for i in json.loads(cursor.value)] if cursor is not None else []
            changed = sorted({*orders, order_id}, key=int) if add else [o for o in orders if o != order_id]
            if changed == orders:
                return
            try:
                if changed:
                    self.store.cursors.save(name, json.dumps(changed), cursor.etag if cursor else None)
                elif cursor is not None:
                    self.store.cursors.delete(name, cursor.etag)
                return
            except StoreConflictError:
                if attempt == 4:
                    raise

    # ------------------------------------------------------------------------------ Dynamics
    def _show_in_dynamics(self, records: list[Record], results: BatchResults) -> None:
        """bpi_quantityreserved / bpi_quantityreleased on the lines that differ, in one $batch."""
        owner: dict[str, str] = {}
        wanted: dict[str, tuple[int, int]] = {}
        for r in records:
            got = results.by_id.get(r.source_id)
            if got is None or got.kind in ("transient", "fatal") or r.source_id not in self.done:
                continue
            for line, figures in self.done[r.source_id].lines.items():
                owner[line], wanted[line] = r.source_id, figures
        if not wanted:
            return
        held: dict[str, dict[str, Any]] = {}
        select = ["salesorderdetailid", "_salesorderid_value", "bpi_quantityreserved", "bpi_quantityreleased"]
        for of_lines in odata.in_chunks("salesorderdetailid", sorted(wanted)):
            for row in self.dv.query("salesorderdetails", select=select, filter=of_lines):
                held[str(row.values["salesorderdetailid"]).lower()] = dict(row.values)
        changes: dict[str, dict[str, tuple[int, int]]] = {}  # Dynamics order -> line -> figures
        for line, figures in wanted.items():
            found = held.get(line)
            if found is None:
                continue  # the Dynamics line is gone: nothing to show
            current = (_units(found.get("bpi_quantityreserved")), _units(found.get("bpi_quantityreleased")))
            if current != figures or found.get("bpi_quantityreserved") is None:
                parent = str(found.get("_salesorderid_value") or "").lower()
                changes.setdefault(parent, {})[line] = figures
        if not changes:
            return
        states = self._order_states(list(changes))
        batches: list[list[tuple[str, BatchOperation]]] = [[]]  # an order's operations never straddle two
        for parent, lines in changes.items():
            ops = self._line_operations(parent, lines, states.get(parent), results, owner)
            if batches[-1] and len(batches[-1]) + len(ops) > BATCH_LIMIT:
                batches.append([])
            batches[-1].extend((owner[next(iter(lines))], op) for op in ops)
        for flat in batches:
            if not flat:
                continue
            answers = self.dv.execute_batch([op for _, op in flat], continue_on_error=True)
            for (source_id, op), answer in zip(flat, answers, strict=True):
                if not answer.ok and results.by_id[source_id].kind not in ("transient", "fatal"):
                    self._refused(source_id, op, answer.error, results)

    def _refused(
        self, source_id: str, op: BatchOperation, error: Exception | None, results: BatchResults
    ) -> None:
        """A line write Dynamics refused. Brightpearl is done already; a refusal (typically the
        order closed meanwhile by another worker reopening and putting it back) is retried, so the
        next pass, which finds nothing to do in Brightpearl, writes the lines again; after the
        usual attempts it is dead-lettered with Dynamics' message."""
        what = f"Dynamics {op.method} {op.path} of {self.label} {source_id}"
        results.error(source_id, error, what)
        got = results.by_id[source_id]
        if got.kind == "fatal":
            results.set(
                source_id,
                RecordResult(
                    "transient",
                    LINES_REFUSED,
                    f"{got.description} (the reservations and notes are made; the lines are written on "
                    "retry)",
                ),
            )

    def _order_states(self, orders: list[str]) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for of_orders in odata.in_chunks("salesorderid", orders):
            for row in self.dv.query(
                "salesorders", select=["salesorderid", "statecode", "statuscode"], filter=of_orders
            ):
                values = row.values
                out[str(values["salesorderid"]).lower()] = (
                    int(values["statecode"]),
                    int(values["statuscode"]),
                )
        return out

    def _line_operations(
        self,
        parent: str,
        lines: dict[str, tuple[int, int]],
        state: tuple[int, int] | None,
        results: BatchResults,
        owner: dict[str, str],
    ) -> list[BatchOperation]:
        """PATCH each line; a Submitted order reopened first and put back after (reopen mode); a
        closed order is not written (the audit says so)."""
        ops = [
            BatchOperation(
                "PATCH",
                odata.record_path("salesorderdetails", line),
                {"bpi_quantityreserved": reserved, "bpi_quantityreleased": released},
            )
            for line, (reserved, released) in sorted(lines.items())
        ]
        statecode, statuscode = state or (ACTIVE, 1)
        if not self.reopen or statecode == ACTIVE:
            return ops
        path = odata.record_path("salesorders", parent)
        if statecode == SUBMITTED:
            back = {"statecode": statecode, "statuscode": statuscode}
            return [BatchOperation("PATCH", path, REOPEN), *ops, BatchOperation("PATCH", path, back)]
        source_id = owner[next(iter(lines))]
        got = results.by_id[source_id]
        results.set(
            source_id,
            RecordResult(
                got.kind,
                got.reason,
                f"{got.description} (its Dynamics order {parent} is closed, statecode {statecode}: "
                "bpi_quantityreserved and bpi_quantityreleased not written)",
                target_id=got.target_id,
            ),
        )
        return []


def _units(value: Any) -> int:
    """A quantity as whole units (Brightpearl sends "2.0000", Dynamics 2.0)."""
    if isinstance(value, dict):
        value = value.get("magnitude")
    try:
        return int(Decimal(str(value))) if value not in (None, "") else 0
    except InvalidOperation:
        return 0


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
