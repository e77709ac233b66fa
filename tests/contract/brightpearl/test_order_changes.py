"""Contract (issue 13 item 3): the client calls changes after creation makes, against the Brightpearl
simulator over HTTP - order row POST, sales-order row PUT (per-row refusals), row DELETE, the
invoiced lock, and the cancellation rule's "payments total zero" (reference §6.5, §6.2, §6.6)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError
from shared.brightpearl.models import CustomerPaymentCreate

from .test_orders_products import order_body

CANCELLED = 5  # the simulator account's cancelled sales status


def rows(client: BrightpearlClient, order_id: int) -> dict[int, tuple[object, ...]]:
    return {
        rid: (r.product_id or r.product_name, r.quantity, r.row_net, r.row_value.get("taxCode"))
        for rid, r in client.get_order(order_id).order_rows.items()
    }


def test_rows_are_added_replaced_and_deleted_until_the_order_is_invoiced(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
):
    order_id = client.create_sales_order(order_body(sim, "changes-1"))
    tracked, wrap = sorted(rows(client, order_id))
    product = rows(client, order_id)[tracked][0]

    card = client.add_order_row(
        order_id, {"name": "Card", "quantity": 3, "taxCode": "T20", "net": "0.9999", "tax": "0.2"}
    )
    assert rows(client, order_id)[card] == ("Card", Decimal(3), Decimal("1.00"), "T20")  # 2 d.p.

    change = {"productId": product, "quantity": 5, "taxCode": "T20", "net": "50", "tax": "10"}
    refused = client.put_sales_order_rows(
        order_id,
        [
            {"id": tracked, **change},
            {"id": card, "name": "Card", "quantity": 3, "taxCode": "T20", "net": "0.9999", "tax": "0.2"},
            {"id": wrap, "name": "Gift wrap", "quantity": 1, "taxCode": "NOPE", "net": "2.5", "tax": "0.5"},
        ],
    )
    assert list(refused) == [str(wrap)] and "NOPE" in refused[str(wrap)]  # judged row by row
    held = rows(client, order_id)
    assert held[tracked] == (product, Decimal(5), Decimal(50), "T20")
    assert held[card][2] == Decimal("0.9999") and held[wrap][3] == "T20"

    client.delete_order_row(order_id, wrap)
    assert sorted(rows(client, order_id)) == sorted([tracked, card])

    assert admin.post(f"/orders/{order_id}/invoice", json={}).status_code == 200
    with pytest.raises(BrightpearlValidationError, match="invoiced"):
        client.put_sales_order_rows(order_id, [{"id": tracked, **change}])
    with pytest.raises(BrightpearlValidationError, match="invoiced"):
        client.add_order_row(
            order_id, {"name": "Late", "quantity": 1, "taxCode": "T20", "net": "1", "tax": "0"}
        )
    with pytest.raises(BrightpearlValidationError, match="invoiced"):
        client.delete_order_row(order_id, card)


def pay(client: BrightpearlClient, order_id: int, kind: str, amount: str, ref: str) -> None:
    client.create_customer_payment(
        CustomerPaymentCreate.model_validate(
            {
                "transactionRef": ref,
                "paymentMethodCode": "CARD",
                "paymentType": kind,
                "orderId": order_id,
                "currencyIsoCode": "GBP",
                "amountPaid": amount,
                "paymentDate": "2026-07-01T00:00:00Z",
            }
        )
    )


def test_an_order_whose_payments_total_zero_can_be_cancelled(client: BrightpearlClient, sim: Simulator):
    refunded = client.create_sales_order(order_body(sim, "changes-refunded"))
    pay(client, refunded, "RECEIPT", "5.00", "in-1")
    with pytest.raises(BrightpearlValidationError, match="with payments"):
        client.set_order_status(refunded, CANCELLED)
    pay(client, refunded, "PAYMENT", "5.00", "out-1")  # the refund: money out
    client.set_order_status(refunded, CANCELLED, note="Cancelled in Dynamics (order ORD-1)")
    assert client.get_order(refunded).order_status.name == "Cancelled"
