"""Admin routes for orders (`/_sandbox/...`): what a Brightpearl user or warehouse does to an
order outside the API. Each change goes through the same store methods as the public API, so
it bumps `updatedOn` and raises the same webhooks (`goods-out-note.created`,
`goods-out-note.modified.shipped`, `order.modified.fully-shipped`, `order.modified.order-status`).

- `GET|PUT /_sandbox/order-statuses`: the account's statuses, cancelled, invoiced and default ids.
- `POST /_sandbox/orders/{id}/goods-out`: a goods-out note; `rows` {rowId: quantity} (default:
  every stock-tracked row's unnoted quantity), `warehouseId` (default the order's),
  `shippingMethodId`.
- `POST /_sandbox/goods-out/{id}/events`: `events` ["PRI", "PIC", ...].
- `POST /_sandbox/goods-out/{id}/ship`: `reference` (tracking), `shippingMethodId`, then SHW.
- `POST /_sandbox/orders/{id}/invoice`: `invoiceReference`, `taxDate`, `statusId`.
- `POST /_sandbox/orders/{id}/pay`: a customer payment through the public POST (§9): `amount`
  (default what is left to pay), `paymentType` (default RECEIPT; PAYMENT is a refund),
  `paymentMethodCode` (default CARD), `transactionRef`, `paymentDate` (default now).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.brightpearl.errors import ApiError

if TYPE_CHECKING:
    from sandbox.brightpearl.app import Simulator

STAFF_CONTACT_ID = 4  # the seeded staff user that admin-driven events are recorded against


def handle_orders_admin(
    sim: Simulator, method: str, parts: list[str], body: dict[str, Any]
) -> tuple[int, Any] | None:
    """The answer of an orders admin route, or None when `parts` names none of them."""
    state = sim.state
    if parts == ["order-statuses"]:
        if method == "GET":
            with state.lock:
                return 200, state.order_status_settings()
        if method == "PUT":
            return 200, state.configure_order_statuses(body)
    if method != "POST" or len(parts) != 3 or not parts[1].isdigit():
        return None
    kind, ident, action = parts[0], int(parts[1]), parts[2]
    if (kind, action) == ("orders", "goods-out"):
        return 200, {"goodsOutNoteIds": state.create_goods_out(ident, _goods_out_body(sim, ident, body))}
    if (kind, action) == ("orders", "invoice"):
        return 200, state.invoice_order(ident, body)
    if (kind, action) == ("orders", "pay"):
        return 200, {"paymentId": state.create_payment(_payment_body(sim, ident, body))}
    if (kind, action) == ("goods-out", "events"):
        codes = body.get("events")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            raise ValueError('events must be a non-empty list of event codes such as ["PRI", "PIC"]')
        state.goods_out_events(ident, {"events": [_event(c) for c in codes]}, None)
        return 200, _note_summary(sim, ident)
    if (kind, action) == ("goods-out", "ship"):
        shipping = {k: body[k] for k in ("reference", "shippingMethodId") if k in body}
        with state.lock:  # tracking and the shipped event land together
            if shipping:
                state.update_goods_out(ident, {"shipping": shipping})
            state.goods_out_events(ident, {"events": [_event("SHW")]}, None)
            return 200, _note_summary(sim, ident)
    return None


def _event(code: str) -> dict[str, Any]:
    return {
        "eventCode": code,
        "occured": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventOwnerId": STAFF_CONTACT_ID,
    }


def _payment_body(sim: Simulator, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """The public customer-payment POST body (reference §9) for an admin payment of an order."""
    state = sim.state
    with state.lock:
        order = state.order(order_id)
        amount = body.get("amount")
        if amount is None:
            amount = Decimal(order["totalValue"]["total"]) - state._payments_total(order_id)
        out = {
            "paymentMethodCode": body.get("paymentMethodCode", "CARD"),
            "paymentType": body.get("paymentType", "RECEIPT"),
            "orderId": order_id,
            "currencyIsoCode": order["currency"]["orderCurrencyCode"],
            "amountPaid": str(amount),
            "paymentDate": body.get("paymentDate") or datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if body.get("transactionRef"):
            out["transactionRef"] = body["transactionRef"]
        return out


def _goods_out_body(sim: Simulator, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """The public goods-out POST body (reference §8.3) for the rows asked for."""
    state = sim.state
    with state.lock:
        order = state.order(order_id)
        wanted = body.get("rows")
        if wanted is None:
            wanted = {
                rid: Decimal(row["quantity"]["magnitude"]) - state._noted(order_id, rid)
                for rid, row in order["orderRows"].items()
                if row["_stockTracked"]
            }
            wanted = {rid: qty for rid, qty in wanted.items() if qty > 0}
            if not wanted:
                raise ApiError(
                    400, "WHSB-036", f"order {order_id} has no stock-tracked quantity left to put on a note"
                )
        if not isinstance(wanted, dict) or not wanted:
            raise ValueError('rows must be an object of row id to quantity, e.g. {"81": 2}')
        products = []
        for rid, qty in wanted.items():
            row = order["orderRows"].get(str(rid))
            if row is None:
                raise ApiError(404, "CMNC-404", f"Order row {rid} not found on order {order_id}")
            products.append(
                {"productId": row["productId"], "salesOrderRowId": int(rid), "quantity": int(qty)}
            )
        out: dict[str, Any] = {
            "warehouses": [
                {"warehouseId": body.get("warehouseId", order["warehouseId"]), "products": products}
            ]
        }
        if "shippingMethodId" in body:
            out["shippingMethodId"] = body["shippingMethodId"]
        return out


def _note_summary(sim: Simulator, note_id: int) -> dict[str, Any]:
    with sim.state.lock:
        note = sim.state.goods_out[note_id]
        order = sim.state.orders.get(note["orderId"]) or {}
        return {
            "goodsOutNoteId": note_id,
            "status": dict(note["status"]),
            "shipping": dict(note["shipping"]),
            "lastEventVersion": note["lastEventVersion"],
            "orderShippingStatusCode": order.get("shippingStatusCode"),
        }
