"""FakeBrightpearl answers the calls of changes after creation (issue 13 item 3) as the Brightpearl
simulator does through the real client, so tests/unit/flows/orders/test_changes.py stays honest:
order GET rows keyed by row id with their externalRef, row POST (2 d.p.), row PUT with per-row
refusals, row DELETE, the invoiced lock, and the cancelled status with its rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from shared.brightpearl.errors import BrightpearlValidationError
from shared.brightpearl.models import Order, SalesOrderCreate
from shared.flows.orders_to_dataverse import ORDER_GET
from shared.sync.fakes import FakeBrightpearl
from shared.sync.ports import BrightpearlPort
from tests.contract.test_fakes_agree import bp_server, brightpearl, new_customer, unique

__all__ = ["bp_server", "brightpearl"]

NEW, CANCELLED = 2, 5  # the simulator account's default and cancelled sales statuses


@pytest.fixture
def shop(brightpearl: BrightpearlPort) -> BrightpearlPort:
    if isinstance(brightpearl, FakeBrightpearl):  # the account's statuses, as the simulator's
        brightpearl.order_statuses = {NEW: "New web order", CANCELLED: "Cancelled"}
        brightpearl.cancelled_status = CANCELLED
    return brightpearl


def place(bp: BrightpearlPort) -> int:
    body: dict[str, Any] = {
        "customer": {"id": new_customer(bp, f"changes.{unique()}@example.org")},
        "externalRef": f"so-{unique()}",
        "statusId": NEW,
        "currency": {"code": "GBP"},
        "rows": [
            {
                "name": "Gift wrap",
                "quantity": 1,
                "taxCode": "T20",
                "net": "2.50",
                "tax": "0.50",
                "externalRef": "l1",
            },
            {
                "name": "Card",
                "quantity": 2,
                "taxCode": "T20",
                "net": "3.00",
                "tax": "0.60",
                "externalRef": "l2",
            },
        ],
    }
    return bp.create_sales_order(SalesOrderCreate.model_validate(body))


def order(bp: BrightpearlPort, order_id: int) -> Order:
    [found] = bp.get_by_ids(ORDER_GET, [order_id])
    return Order.model_validate(found)


def content(bp: BrightpearlPort, order_id: int) -> list[tuple[Any, ...]]:
    return [
        (r.product_name, r.quantity, r.row_net, r.row_tax, r.row_value.get("taxCode"), r.external_ref or None)
        for _, r in sorted(order(bp, order_id).order_rows.items())
    ]


def invoice(bp: BrightpearlPort, order_id: int, request: pytest.FixtureRequest) -> None:
    if isinstance(bp, FakeBrightpearl):
        bp.sales_orders[order_id]["invoices"] = [{"invoiceReference": f"SI-{order_id}"}]
        return
    server: BrightpearlServer = request.getfixturevalue("bp_server")
    server.simulator.state.invoice_order(order_id, {})


def test_rows_change_as_the_simulator_changes_them(shop: BrightpearlPort, request: pytest.FixtureRequest):
    order_id = place(shop)
    wrap, card = sorted(order(shop, order_id).order_rows)
    assert content(shop, order_id) == [
        ("Gift wrap", 1, Decimal("2.5"), Decimal("0.5"), "T20", "l1"),
        ("Card", 2, Decimal(3), Decimal("0.6"), "T20", "l2"),
    ]
    added = shop.add_order_row(
        order_id, {"name": "Bow", "quantity": 3, "taxCode": "T0", "net": "0.9999", "tax": "0"}
    )
    refused = shop.put_sales_order_rows(
        order_id,
        [
            {"id": card, "name": "Card", "quantity": 4, "taxCode": "T20", "net": "6", "tax": "1.2"},
            {"id": added + 1000, "name": "Ghost", "quantity": 1, "taxCode": "T20", "net": "1", "tax": "0"},
        ],
    )
    assert list(refused) == [str(added + 1000)]
    shop.delete_order_row(order_id, wrap)
    assert content(shop, order_id) == [
        ("Card", 4, Decimal(6), Decimal("1.2"), "T20", None),  # the PUT did not carry externalRef
        ("Bow", 3, Decimal("1.00"), Decimal(0), "T0", None),  # POSTed to 2 d.p., no externalRef
    ]

    invoice(shop, order_id, request)
    for call in (
        lambda: shop.put_sales_order_rows(
            order_id, [{"id": card, "name": "Card", "quantity": 1, "taxCode": "T20", "net": "1", "tax": "0"}]
        ),
        lambda: shop.add_order_row(
            order_id, {"name": "Late", "quantity": 1, "taxCode": "T20", "net": "1", "tax": "0"}
        ),
        lambda: shop.delete_order_row(order_id, card),
        lambda: shop.set_order_status(order_id, CANCELLED),
    ):
        with pytest.raises(BrightpearlValidationError, match="invoiced"):
            call()


def test_the_cancelled_status_is_named_and_set_with_a_note(shop: BrightpearlPort):
    order_id = place(shop)
    names = {s.status_id: s.name for s in shop.get_order_statuses() if s.order_type_code == "SO"}
    assert names[CANCELLED] == "Cancelled"
    shop.set_order_status(order_id, CANCELLED, note="Cancelled in Dynamics (order ORD-1)")
    assert order(shop, order_id).order_status.name == "Cancelled"
