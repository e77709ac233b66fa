"""Changes after creation (issue 13 item 3): Dynamics orders that already have a Brightpearl order.

orders-to-brightpearl hands its linked orders (the `order` link, else `bpi_brightpearlid`) to
`OrderChanges`. Per batch:

- an order whose content (`order_hash`: header and lines, not its state) is what the link
  recorded at the last sync, and that is not canceled, is unchanged with no Brightpearl call:
  our own `bpi_brightpearlid` write-back, a redelivered notice, a state the write-back flow set;
- the Brightpearl orders of the others are read in bulk (order GET, ≤ 200 a call, reference
  §6.4): status, invoices, payment status, rows. Each under a lease (a ledger key that
  expires after LEASE): a second worker changing the same order meanwhile waits (StateConflict,
  no retry spent), then reads it afresh, so two workers never add the same row.

Line edits. The rows Dynamics wants are built exactly as the create builds them (lines, the
discount row, the shipping row) and compared with Brightpearl's by content: product (a
free-text row by name), quantity, net, tax (to the cent Brightpearl keeps) and tax code. Rows
pair by the line's salesorderdetailid (the row's externalRef), then by identical content, then
by the same product or name. When they all match nothing is written and the new hash is
recorded. Otherwise, only while the Brightpearl status is one of `changes.editable_statuses`
and the order is not invoiced:

- new rows: an order row POST each (§6.5; 2 d.p., finer amounts are set by the PUT below);
- changed rows: ONE sales-order row PUT (§6.2) with only those rows;
- rows no Dynamics line accounts for: a row DELETE each. Dynamics owns the rows of the orders
  it created while they are editable: a row added by hand in Brightpearl is removed by the
  next Dynamics edit of that order.

Any other status, or an invoiced order: needs-review `OrderLocked`, nothing written. A row
change Brightpearl refuses (a row on goods-out notes, an order invoiced meanwhile) is
needs-review `OrderLocked` with Brightpearl's message. The hash is recorded only once the rows
match, so a later notice or `syncctl backfill orders` tries again; a retry after throttling
or a lost answer compares again and writes only what is still missing (no row twice).

Cancellation (Dynamics statecode 2, e.g. CancelSalesOrder): the order moves to
`changes.cancelled_status` (status PUT, §6.6, with a note naming the Dynamics order). The
reference's rule - no goods-out notes, not invoiced, no payments - is Brightpearl's: an
invoiced or (partly) paid order is refused without a call, a refusal of the PUT (goods-out
notes) likewise; both are needs-review `CancelRefused`. An order already in that status is
unchanged. A name the account does not have dead-letters `CancelledStatusUnknown`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol, cast

from shared.brightpearl import errors as bp_errors
from shared.brightpearl.models import Order as BrightpearlOrder
from shared.brightpearl.models import OrderRow, SalesOrderCreate
from shared.flows.orders_to_dataverse import ORDER_GET
from shared.mapping.brightpearl import bp_id
from shared.mapping.orders_config import OrderMapping
from shared.model.order import Order
from shared.sync.engine import SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult
from shared.sync.ports import BrightpearlPort, StateStorePort
from shared.sync.spec import FlowSpec
from shared.telemetry import get_logger


class OrderFlow(Protocol):
    """What the changes need of the orders-to-brightpearl flow (OrdersToBrightpearl; a Protocol,
    so this module does not import the flow that imports it)."""

    bp: BrightpearlPort
    store: StateStorePort
    mapping: OrderMapping
    _customers: dict[str, int]

    @property
    def spec(self) -> FlowSpec: ...

    def is_echo(self, r: SyncRecord[Order]) -> bool: ...
    def echo_result(self, r: SyncRecord[Order]) -> RecordResult: ...
    def to_write(
        self, records: list[SyncRecord[Order]], results: BatchResults
    ) -> list[SyncRecord[Order]]: ...
    def settle(self, r: SyncRecord[Order], results: BatchResults, extra: str = "") -> None: ...
    def remember(self, r: SyncRecord[Order]) -> None: ...


class OrderDecision(Protocol):
    """The decision of an order (orders_to_brightpearl.OrderDecision): its write can be called off."""

    should_write: bool


ORDER_LOCKED = "OrderLocked"
CANCEL_REFUSED = "CancelRefused"
CANCELLED_STATUS_UNKNOWN = "CancelledStatusUnknown"
ORDER_MISSING = "BrightpearlOrderMissing"
LEASE = timedelta(seconds=120)  # a worker that died holding an order's lease blocks it this long
LEASE_WAIT_SECONDS = 30.0
CANCELED = 2  # Dynamics salesorder statecode Canceled
PAID = {"PAID", "PARTIALLY_PAID"}
CENTS = Decimal("0.01")
Record = SyncRecord[Order]
log = get_logger("flows.orders_changes")
Content = tuple[tuple[str, Any], Decimal, Decimal, Decimal, str | None]


def is_canceled(record: Record) -> bool:
    return record.read.value.statecode == CANCELED


def _lease_key(order_id: int) -> str:
    return f"orders-changes|lease|{order_id}"


def _order_id(record: Record) -> int:
    """The linked Brightpearl order id (0: not a Brightpearl id, e.g. a mistyped bpi_brightpearlid)."""
    return int(bp_id(record.target_id) or 0)


def _cents(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENTS, rounding=ROUND_HALF_UP)


def wanted_content(row: Mapping[str, Any]) -> Content:
    """A sales-order row (wire form) as compared: identity, quantity, net, tax, tax code."""
    product = row.get("productId")
    identity = ("product", int(product)) if product else ("name", row.get("name") or "")
    return identity, Decimal(row["quantity"]), Decimal(row["net"]), _cents(row["tax"]), row.get("taxCode")


def held_content(row: OrderRow) -> Content:
    """A Brightpearl order row (order GET) as compared."""
    identity = ("product", row.product_id) if row.product_id else ("name", row.product_name or "")
    return (
        identity,
        row.quantity or Decimal(0),
        row.row_net or Decimal(0),
        _cents(row.row_tax),
        row.row_value.get("taxCode"),
    )


@dataclass
class RowPlan:
    """What makes Brightpearl's rows equal the wanted ones: rows to add (wire form), rows to put
    (`id` plus wire form) and row ids to delete."""

    add: list[dict[str, Any]] = field(default_factory=list)
    put: list[dict[str, Any]] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.put or self.delete)

    def summary(self) -> str:
        return f"{len(self.put)} changed, {len(self.add)} added, {len(self.delete)} removed"


def plan_rows(wanted: Sequence[Mapping[str, Any]], held: Mapping[int, OrderRow]) -> RowPlan:
    """Pair wanted rows with Brightpearl's (externalRef, then identical content, then the same
    product or name); unpaired wanted rows are added, unpaired held rows deleted. Bundle
    component rows are Brightpearl's own and left alone."""
    free = {
        rid: row
        for rid, row in sorted(held.items())
        if not (row.model_extra or {}).get("composition", {}).get("bundleChild")
    }
    pairs: list[tuple[Mapping[str, Any], int]] = []
    left = list(wanted)
    rules = (
        lambda w, row: bool(w.get("externalRef")) and row.external_ref == w.get("externalRef"),
        lambda w, row: held_content(row) == wanted_content(w),
        lambda w, row: held_content(row)[0] == wanted_content(w)[0],
    )
    for same in rules:
        for w in list(left):
            rid = next((rid for rid, row in free.items() if same(w, row)), None)
            if rid is not None:
                pairs.append((w, rid))
                left.remove(w)
                del free[rid]
    plan = RowPlan(add=[dict(w) for w in left], delete=list(free))
    plan.put = [{"id": rid, **w} for w, rid in pairs if held_content(held[rid]) != wanted_content(w)]
    return plan


class OrderChanges:
    """Line edits and cancellations of linked orders, for one orders-to-brightpearl flow."""

    def __init__(self, flow: OrderFlow) -> None:
        self.flow = flow
        self.bp = flow.bp
        self.settings = flow.mapping.changes
        self._orders: dict[int, BrightpearlOrder] = {}
        self._cancelled_id: int | None = None
        self._leased: set[int] = set()  # Brightpearl orders this batch holds the lease of

    # ------------------------------------------------------------------------------ matching
    def match(self, records: list[Record], results: BatchResults) -> None:
        """Linked orders: unchanged since the last sync (and not canceled) -> no call; for the
        others the lease of their Brightpearl order is taken (another worker changing it: wait),
        then they are read in bulk and their customers noted for the rows."""
        todo = []
        for r in records:
            if not is_canceled(r) and self.flow.is_echo(r):
                results.set(r.source_id, self.flow.echo_result(r))
            elif self._lease(_order_id(r)):
                todo.append(r)
            else:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        "StateConflict",
                        f"Dataverse order {r.source_id}: Brightpearl order {r.target_id} is being changed "
                        "by another worker",
                        retry_after=LEASE_WAIT_SECONDS,
                        waiting=True,
                    ),
                )
        ids = sorted({_order_id(r) for r in todo} - {0})
        found = self.bp.get_by_ids(ORDER_GET, ids, limit=200) if ids else []
        self._orders = {o.id: o for o in (BrightpearlOrder.model_validate(item) for item in found)}
        for r in todo:
            order = self._orders.get(_order_id(r))
            if order is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "needs-review",
                        ORDER_MISSING,
                        f"Dataverse order {r.source_id} is linked to Brightpearl order {r.target_id}, "
                        "which no longer exists: its changes are not synced",
                        target_id=r.target_id,
                    ),
                )
            elif order.customer_id:
                self.flow._customers[r.read.value.order_id] = order.customer_id

    # ------------------------------------------------------------------------------ writing
    def write(self, records: list[Record], results: BatchResults) -> None:
        try:
            for r in self.flow.to_write(records, results):
                order = self._orders[_order_id(r)]
                what = f"change of Dataverse order {r.source_id} in Brightpearl order {order.id}"
                try:
                    if is_canceled(r):
                        self._cancel(r, order, results)
                    else:
                        self._edit(r, order, results)
                except bp_errors.BrightpearlError as exc:
                    results.error(r.source_id, exc, what)
        finally:
            self._release()

    # ------------------------------------------------------------------------------ the lease
    def _lease(self, order_id: int) -> bool:
        """Take the lease of a Brightpearl order (a ledger key that expires): one worker at a
        time reads and changes an order's rows, so two never add the same row. An order this
        batch holds already, or no Brightpearl id at all, needs none."""
        if not order_id or order_id in self._leased:
            return True
        if not self.flow.store.ledger.record(_lease_key(order_id), ttl=LEASE):
            return False
        self._leased.add(order_id)
        return True

    def _release(self) -> None:
        for order_id in sorted(self._leased):
            try:
                self.flow.store.ledger.forget(_lease_key(order_id))
            except Exception:  # the lease expires by itself
                log.warning("releasing the lease of Brightpearl order %s failed", order_id)
        self._leased.clear()

    def _needs_review(self, r: Record, reason: str, why: str, results: BatchResults) -> None:
        order = r.read.value
        results.set(
            r.source_id,
            RecordResult(
                "needs-review",
                reason,
                f"Dynamics {order.reference} (Dataverse order {r.source_id}), Brightpearl order "
                f"{r.target_id}: {why}",
                target_id=r.target_id,
            ),
        )

    def _edit(self, r: Record, order: BrightpearlOrder, results: BatchResults) -> None:
        assert r.decision is not None
        body: SalesOrderCreate = r.decision.payload
        plan = plan_rows([row.wire() for row in body.rows], order.order_rows)
        if not plan:
            cast("OrderDecision", r.decision).should_write = False
            self.flow.remember(r)
            self.flow.settle(r, results)
            return
        status = order.order_status.name
        invoices = (order.model_extra or {}).get("invoices") or []
        locked = None
        if invoices:
            locked = "it is invoiced, so its rows cannot change"
        elif not self.settings.editable(status):
            editable = ", ".join(self.settings.editable_statuses) or "none"
            locked = f"its status {status!r} is not in changes.editable_statuses ({editable})"
        if locked:
            self._needs_review(
                r, ORDER_LOCKED, f"the line edit ({plan.summary()} rows) was not sent: {locked}", results
            )
            return
        try:
            self._apply(order.id, plan)
        except bp_errors.BrightpearlValidationError as exc:
            self._needs_review(
                r,
                ORDER_LOCKED,
                f"Brightpearl refused the line edit ({exc}); rows may be partly changed",
                results,
            )
            return
        self.flow.remember(r)
        self.flow.settle(r, results, f" (rows: {plan.summary()})")

    def _apply(self, order_id: int, plan: RowPlan) -> None:
        """POST new rows (then PUT the exact amounts of those the 2 d.p. POST rounded), one PUT
        of the changed rows, DELETE the rest. Raises BrightpearlValidationError on a refusal."""
        put = list(plan.put)
        for row in plan.add:
            row_id = self.bp.add_order_row(order_id, row)
            if _cents(row["net"]) != Decimal(row["net"]):
                put.append({"id": row_id, **row})
        if put:
            refused = self.bp.put_sales_order_rows(order_id, put)
            if refused:
                text = "; ".join(f"row {k}: {v}" for k, v in sorted(refused.items()))
                raise bp_errors.BrightpearlValidationError(text, status=400)
        for row_id in plan.delete:
            with suppress(bp_errors.BrightpearlNotFound):  # gone already: a retried DELETE
                self.bp.delete_order_row(order_id, row_id)

    def _cancel(self, r: Record, order: BrightpearlOrder, results: BatchResults) -> None:
        assert r.decision is not None
        target = self.settings.cancelled_status
        if self.settings.is_cancelled(order.order_status.name):
            cast("OrderDecision", r.decision).should_write = False
            self.flow.settle(r, results, f": already in status {target!r}")
            return
        invoices = (order.model_extra or {}).get("invoices") or []
        refused = None
        if invoices:
            refused = f"it is invoiced ({invoices[0].get('invoiceReference') or 'invoice'})"
        elif (order.order_payment_status or "").upper() in PAID:
            refused = f"it has payments ({order.order_payment_status})"
        if refused is None:
            status_id = self._cancelled_status_id()
            if status_id is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "fatal",
                        CANCELLED_STATUS_UNKNOWN,
                        f"changes.cancelled_status {target!r} is not a sales order status of this "
                        f"Brightpearl account (Dynamics {r.read.value.reference} was canceled)",
                        stamp=str(r.source.get(self.flow.spec.stamp_field) or ""),
                    ),
                )
                return
            try:
                note = f"Cancelled in Dynamics ({r.read.value.reference})"
                self.bp.set_order_status(order.id, status_id, note=note)
            except bp_errors.BrightpearlValidationError as exc:
                refused = f"Brightpearl refused it: {exc}"
        if refused is not None:
            why = f"the Dynamics cancellation was not carried to status {target!r}: {refused}"
            self._needs_review(r, CANCEL_REFUSED, why, results)
            return
        self.flow.settle(r, results, f" (moved to status {target!r})")

    def _cancelled_status_id(self) -> int | None:
        """The id of changes.cancelled_status among the account's sales order statuses (read
        once per flow instance)."""
        if self._cancelled_id is None:
            for status in self.bp.get_order_statuses():
                if status.order_type_code == "SO" and self.settings.is_cancelled(status.name):
                    self._cancelled_id = status.status_id
        return self._cancelled_id
