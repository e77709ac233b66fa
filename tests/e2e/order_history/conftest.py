"""The orders sandbox (tests/e2e/orders/conftest.py) seen from the order history: web orders
placed in the Brightpearl simulator (POST /order-service/sales-order/, which raises
`sales-order.created`) for the shop's customer, and the Dynamics orders they become."""

# ruff: noqa: F401 - pytest fixtures imported from the orders sandbox are used by name
from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.e2e.orders.conftest import (
    SKUS,
    TO_DV,
    OrderSandbox,
    bp_server,
    dv_server,
    order_mapping,
    orders_sandbox,
    sandbox,
    sandbox_settings,
)

TAX = Decimal("0.20")  # T20


def place_web_order(
    box: OrderSandbox,
    lines: list[tuple[str, int]] = (("MUG-1", 2), ("TEE-1", 1)),  # type: ignore[assignment]
    *,
    write_ins: list[tuple[str, Decimal, int]] = (),  # type: ignore[assignment]
    channel: int = 1,
    customer: int | None = None,
    ref: str = "WEB-1001",
    announce: bool = True,
    prices: dict[str, Decimal] | None = None,
) -> int:
    """A web shop's order in Brightpearl (rows at the shop's prices with 20 % tax); its id."""
    rows: list[dict[str, Any]] = []
    for sku, quantity in lines:
        net = {**SKUS, **(prices or {})}[sku] * quantity
        rows.append(
            {
                "productId": box.shop.bp_products[sku],
                "quantity": str(quantity),
                "taxCode": "T20",
                "net": str(net),
                "tax": str((net * TAX).quantize(Decimal("0.01"))),
            }
        )
    for name, price, quantity in write_ins:
        net = price * quantity
        rows.append(
            {
                "name": name,
                "quantity": str(quantity),
                "taxCode": "T20",
                "net": str(net),
                "tax": str((net * TAX).quantize(Decimal("0.01"))),
            }
        )
    body = {
        "customer": {"id": customer or box.shop.bp_customer},
        "ref": ref,
        "currency": {"code": "GBP"},
        "channelId": channel,
        "rows": rows,
    }
    if not announce:  # as if its webhook were lost: only a poll or a backfill finds it
        return box.bp_sim.state.create_sales_order(body, "SO", quiet=True)
    return int(box.bp.request("POST", "/order-service/sales-order/", json=body).response)


def dv_orders_of(box: OrderSandbox, bp_id: int) -> list[dict[str, Any]]:
    """The Dynamics orders holding Brightpearl order `bp_id` (bpi_brightpearlid)."""
    return [r for r in box.dv.rows("salesorder") if r.get("bpi_brightpearlid") == str(bp_id)]


def dv_order_of(box: OrderSandbox, bp_id: int) -> dict[str, Any]:
    [order] = dv_orders_of(box, bp_id)
    return order


def lines_of(box: OrderSandbox, salesorderid: str) -> list[dict[str, Any]]:
    def parent(row: dict[str, Any]) -> str:
        value = row.get("salesorderid")
        return str(value.get("id") if isinstance(value, dict) else value or "").lower()

    rows = [r for r in box.dv.rows("salesorderdetail") if parent(r) == salesorderid.lower()]
    return sorted(rows, key=lambda r: int(r.get("sequencenumber") or 0))


def history_audit(box: OrderSandbox, bp_id: int) -> list[tuple[str, str | None, str]]:
    entries = box.store.audit.for_record("order", "brightpearl", str(bp_id))
    return [(str(e.result), e.reason_code, e.description) for e in entries if e.flow == TO_DV]


def lookup(value: Any) -> str:
    return str(value.get("id") if isinstance(value, dict) else value or "").lower()
