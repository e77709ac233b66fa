"""Contract (issue 14 item 3): invoicing and payments in the Brightpearl simulator over HTTP -
Sales Order Close (path UNCONFIRMED, reference §6.9), the admin pay route, customer-payment-search
by order and by `createdOn` (§4.2, §9), and the order payment status from receipts less refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError
from shared.brightpearl.search import period

from .test_order_changes import pay
from .test_orders_products import order_body


def test_sales_order_close_invoices_the_order_once(client: BrightpearlClient, sim: Simulator) -> None:
    order = client.create_sales_order(order_body(sim, "close-1"))
    answer = client.request("POST", f"/order-service/sales-order/{order}/close", json={}).response
    assert [i["invoiceReference"] for i in answer] == [f"SI-{order}"]
    assert (
        client.get_order(order).model_dump(by_alias=True)["invoices"][0]["invoiceReference"] == f"SI-{order}"
    )
    with pytest.raises(BrightpearlValidationError, match="already invoiced"):
        client.request("POST", f"/order-service/sales-order/{order}/close", json={})


def test_a_refund_lowers_the_payment_status_and_payments_are_searchable(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
) -> None:
    order = client.create_sales_order(order_body(sim, "pay-1"))  # total 27.00
    started = datetime.now(UTC) - timedelta(seconds=1)
    answer = admin.post(f"/orders/{order}/pay", json={"transactionRef": "in-all"})
    assert answer.status_code == 200, answer.text
    assert client.get_order(order).order_payment_status == "PAID"
    pay(client, order, "PAYMENT", "5.00", "out-1")  # a refund: money out
    assert client.get_order(order).order_payment_status == "PARTIALLY_PAID"
    rows = list(
        client.search(
            "/accounting-service/customer-payment-search",
            filters={"orderId": [order], "createdOn": period(started)},
            columns=["paymentId", "orderId", "paymentType", "amountPaid"],
        )
    )
    assert [(r["orderId"], r["paymentType"], r["amountPaid"]) for r in rows] == [
        (order, "RECEIPT", "27.00"),
        (order, "PAYMENT", "5.00"),
    ]
