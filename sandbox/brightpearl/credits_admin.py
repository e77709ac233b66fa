"""Admin routes for sales credits (returns), as a Brightpearl user or the accounting side changes
them (issue 14 item 8; docs/sandbox-brightpearl.md). Each goes through the same state code as the
public API, so it bumps the credit's `updatedOn` (the sales-credit poller's order-search sees it)
and raises the same events (`order.modified`, `order.modified.order-status`):

- `POST /_sandbox/sales-credits/{id}/refund`: a customer payment of type PAYMENT (money out,
  reference §9) on the credit, through the public customer-payment POST rules: `amount`
  (default: the credit's total less the refunds already paid), `paymentMethodCode` (default
  CARD), `transactionRef`, `paymentDate` (default now). The credit's `orderPaymentStatus`
  becomes PAID once the refunds cover its total. Answers `{"paymentId": ...}`.
- `POST /_sandbox/sales-credits/{id}/cancel`: moves the credit to a cancelled status through
  the public status PUT: `statusId`, or by default the SC status named "Credit cancelled",
  which is added to the account's statuses (as `POST order-service/order-status` would) when it
  has none. Answers `{"statusId": ..., "updatedOn": ...}`.

An id that is not a sales credit is refused (400).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.brightpearl.errors import bad

if TYPE_CHECKING:
    from sandbox.brightpearl.app import Simulator

CANCELLED_CREDIT = "Credit cancelled"


def handle_credits_admin(
    sim: Simulator, method: str, parts: list[str], body: dict[str, Any]
) -> tuple[int, Any] | None:
    """The answer of a sales-credit admin route, or None when `parts` names none of them."""
    if method != "POST" or len(parts) != 3 or parts[0] != "sales-credits" or not parts[1].isdigit():
        return None
    credit_id, action = int(parts[1]), parts[2]
    if action == "refund":
        return 200, {"paymentId": sim.state.create_payment(_refund_body(sim, credit_id, body))}
    if action == "cancel":
        status = _cancel_status(sim, credit_id, body)
        sim.state.set_order_status(credit_id, {"orderStatusId": status})
        with sim.state.lock:
            return 200, {"statusId": status, "updatedOn": sim.state.orders[credit_id]["updatedOn"]}
    return None


def _credit(sim: Simulator, credit_id: int) -> dict[str, Any]:
    credit = sim.state.order(credit_id)
    if credit["orderTypeCode"] != "SC":
        raise bad(f"order {credit_id} is a {credit['orderTypeCode']}, not a sales credit", "ORDC-070")
    return credit


def _refund_body(sim: Simulator, credit_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """The public customer-payment POST body (reference §9) of a refund of the credit."""
    state = sim.state
    with state.lock:
        credit = _credit(sim, credit_id)
        amount = body.get("amount")
        if amount is None:
            refunded = sum(
                (
                    Decimal(p["amountPaid"])
                    for p in state.payments.values()
                    if p["orderId"] == credit_id and p["paymentType"] == "PAYMENT"
                ),
                Decimal(0),
            )
            amount = Decimal(credit["totalValue"]["total"]) - refunded
        out = {
            "paymentMethodCode": body.get("paymentMethodCode", "CARD"),
            "paymentType": "PAYMENT",
            "orderId": credit_id,
            "currencyIsoCode": credit["currency"]["orderCurrencyCode"],
            "amountPaid": str(amount),
            "paymentDate": body.get("paymentDate") or datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if body.get("transactionRef"):
            out["transactionRef"] = body["transactionRef"]
        return out


def _cancel_status(sim: Simulator, credit_id: int, body: dict[str, Any]) -> int:
    """`statusId`, else the account's "Credit cancelled" SC status (added when missing)."""
    state = sim.state
    with state.lock:
        _credit(sim, credit_id)
        if body.get("statusId") is not None:
            return int(body["statusId"])
        for status in state.order_statuses.values():
            if status["orderTypeCode"] == "SC" and status["name"] == CANCELLED_CREDIT:
                return int(status["statusId"])
    return state.create_order_status({"name": CANCELLED_CREDIT, "orderTypeCode": "SC", "state": "cancelled"})
