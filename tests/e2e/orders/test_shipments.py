"""Brightpearl fulfilment comes back onto the Dynamics order through the running app (issue 13
item 4): goods-out notes shipped in Brightpearl (its admin routes, as a warehouse does) reach
Dynamics as quantityshipped per line and the shipped date, carrier and tracking on the order; the
full shipment fulfils the order; the invoice reference and payment status arrive through the
order poller; every status of mappings/order_status.yaml reaches its Dynamics state."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.brightpearl.orders_admin import handle_orders_admin
from shared.store import AuditResult
from tests.e2e.customers.conftest import NEVER, ROOT
from tests.e2e.orders.conftest import OrderSandbox, order_mapping
from tests.e2e.products.conftest import product_mapping

DHL_CODE, DHL_METHOD = 2, 3  # Dynamics shippingmethodcode 2 DHL <-> Brightpearl shippingMethodId 3
STATUS_FILE = ROOT / "mappings" / "order_status.yaml"


@pytest.fixture
def read_only_orders() -> str:
    """writeback.read_only_orders of the test's mapping (a test parametrizes it to `direct`)."""
    return "reopen"


@pytest.fixture
def sandbox_settings(tmp_path: Path, read_only_orders: str) -> dict[str, str]:
    """orders.yaml mapping DHL and writing read-only orders as the test says; the shipped status
    file (it maps the sandbox account's "New web order" to Submitted, so a new order keeps it)."""
    path = order_mapping(
        tmp_path,
        ("shipping_methods: {}", f"shipping_methods: {{{DHL_CODE}: {DHL_METHOD}}}"),
        ("read_only_orders: reopen", f"read_only_orders: {read_only_orders}"),
    )
    return {
        "ORDER_MAPPING_PATH": str(path),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "ORDERS_DATAVERSE_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_ORDER_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
    }


def admin(box: OrderSandbox, path: str, body: dict[str, Any]) -> Any:
    """A Brightpearl admin route (`/_sandbox/...`, sandbox/brightpearl/orders_admin.py)."""
    answer = handle_orders_admin(box.bp_sim, "POST", path.strip("/").split("/"), body)
    assert answer is not None and answer[0] == 200, answer
    return answer[1]


def ship(box: OrderSandbox, bp_order: int, rows: dict[int, int], reference: str) -> int:
    """A goods-out note of `rows` (row id -> units), shipped by DHL with its tracking reference."""
    [note] = admin(box, f"orders/{bp_order}/goods-out", {"rows": {str(r): q for r, q in rows.items()}})[
        "goodsOutNoteIds"
    ]
    admin(box, f"goods-out/{note}/ship", {"reference": reference, "shippingMethodId": DHL_METHOD})
    return int(note)


def lines_by_sku(box: OrderSandbox, order: str) -> dict[str, dict[str, Any]]:
    skus = {v.lower(): k for k, v in box.shop.products.items()}
    out = {}
    for line in box.dv.rows("salesorderdetail"):
        if _id(line.get("salesorderid")) == order.lower():
            out[skus[_id(line.get("productid"))]] = line
    return out


def _id(lookup: Any) -> str:
    """A lookup's id as the simulator's table dump holds it ({"id": ..., "table": ...})."""
    return str(lookup.get("id") if isinstance(lookup, dict) else lookup or "").lower()


def shipped(line: dict[str, Any]) -> Decimal:
    return Decimal(str(line.get("quantityshipped") or 0))


def test_a_partial_then_a_full_shipment_fulfil_the_dynamics_order_with_quantities_shipped(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()
    created = box.bp_order_of(order)
    rows = {int(r["productId"]): int(rid) for rid, r in created["orderRows"].items()}
    mug, tee = rows[box.shop.bp_products["MUG-1"]], rows[box.shop.bp_products["TEE-1"]]

    before = datetime.now(UTC).replace(microsecond=0)
    ship(box, created["id"], {mug: 1}, "TRK-PART")
    box.work()
    head = box.dv_order(order)
    lines = lines_by_sku(box, order)
    assert (shipped(lines["MUG-1"]), shipped(lines["TEE-1"])) == (1, 0)
    assert head["bpi_trackingreference"] == "TRK-PART" and head["bpi_shippingmethod"] == "DHL"
    assert datetime.fromisoformat(head["bpi_shippedon"].replace("Z", "+00:00")) >= before
    assert head["statecode"] == 1  # partly shipped: Submitted still, not fulfilled

    ship(box, created["id"], {mug: 1, tee: 1}, "TRK-REST")
    box.work()
    head = box.dv_order(order)
    lines = lines_by_sku(box, order)
    assert (shipped(lines["MUG-1"]), shipped(lines["TEE-1"])) == (2, 1)
    assert (head["statecode"], head["statuscode"]) == (3, 100001)  # Fulfilled / Complete
    assert head["bpi_trackingreference"] == "TRK-PART, TRK-REST"
    closes = [r for r in box.dv.rows("orderclose") if _id(r.get("salesorderid")) == order.lower()]
    assert len(closes) == 1  # fulfilled once
    # invoiced after fulfilment: Dynamics keeps the closed order as it is, and the audit says so
    admin(box, f"orders/{created['id']}/invoice", {"invoiceReference": "SI-AFTER"})
    box.host.run_timer("poll_brightpearl_orders")
    box.work()
    head = box.dv_order(order)
    assert "bpi_invoicereference" not in head and head["statecode"] == 3
    entries = box.store.audit.for_record("order", "brightpearl", str(created["id"]))
    closed = [e for e in entries if e.reason_code == "DynamicsOrderClosed"]
    assert [e.result for e in closed] == [AuditResult.SKIPPED]
    assert "bpi_invoicereference" in closed[0].description
    assert box.dead_lettered("orders-to-dataverse") == [] and box.dead_lettered() == []
    # reopening and restoring the order to write it is no change orders-to-brightpearl acts on
    assert {result for result, _ in box.audited(order)} <= {AuditResult.SYNCED, AuditResult.SKIPPED}


def test_the_invoice_reference_and_payment_status_reach_dynamics_through_the_order_poller(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    order = box.raise_order([("CAP-1", 1)])
    box.work()
    created = box.bp_order_of(order)
    admin(box, f"orders/{created['id']}/invoice", {"invoiceReference": "SI-4711"})
    total = Decimal(box.bp_order_of(order)["totalValue"]["total"])
    box.bp.create_customer_payment(
        {
            "paymentMethodCode": "CARD",
            "paymentType": "RECEIPT",
            "orderId": created["id"],
            "currencyIsoCode": "GBP",
            "amountPaid": str(total),
            "paymentDate": datetime.now(UTC).isoformat(),
        }
    )
    box.host.run_timer("poll_brightpearl_orders")  # invoices and payments raise no webhook
    box.work()
    head = box.dv_order(order)
    assert (head["bpi_invoicereference"], head["bpi_paymentstatus"]) == ("SI-4711", "PAID")
    assert (head["statecode"], head["statuscode"]) == (1, 3)  # its state is left as it was


def test_every_mapped_status_reaches_its_dynamics_state(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    mapped = yaml.safe_load(STATUS_FILE.read_text())["statuses"]
    with box.bp_sim.state.lock:
        statuses = box.bp_sim.state.order_status_settings()["statuses"]
    known = {s["name"].lower(): int(s["statusId"]) for s in statuses if s["orderTypeCode"] == "SO"}
    for name, target in mapped.items():
        status_id = target.get("id") or known.get(name.lower())
        if status_id is None:  # a status this account lacks: added as a Brightpearl user would
            body = {"name": name, "orderTypeCode": "SO"}
            status_id = int(box.bp.request("POST", "/order-service/order-status", json=body).response)
        order = box.raise_order([("MUG-1", 1)])
        box.work()
        box.bp.set_order_status(box.bp_order_of(order)["id"], status_id)
        box.work()
        head = box.dv_order(order)
        assert (head["statecode"], head["statuscode"]) == (target["statecode"], target["statuscode"]), name
        assert head["bpi_brightpearlstatus"] == name
    assert box.dead_lettered("orders-to-dataverse") == []


@pytest.mark.parametrize("read_only_orders", ["direct"])
def test_with_direct_writes_an_invoice_after_fulfilment_reaches_the_fulfilled_order(
    orders_sandbox: OrderSandbox, dv_server: Any, read_only_orders: str
) -> None:
    """For an application user with System Administrator, which Dynamics lets edit read-only
    orders (the simulator's application_users_are_admins)."""
    box = orders_sandbox
    config = dv_server.simulator.config
    config.application_users_are_admins = True
    try:
        order = box.raise_order([("TEE-1", 2)])
        box.work()
        created = box.bp_order_of(order)
        [row] = [int(rid) for rid in created["orderRows"]]
        ship(box, created["id"], {row: 2}, "TRK-ALL")
        box.work()
        assert (box.dv_order(order)["statecode"], shipped(lines_by_sku(box, order)["TEE-1"])) == (3, 2)
        admin(box, f"orders/{created['id']}/invoice", {"invoiceReference": "SI-DIRECT"})
        box.host.run_timer("poll_brightpearl_orders")
        box.work()
        head = box.dv_order(order)
        assert (head["bpi_invoicereference"], head["statecode"], head["statuscode"]) == (
            "SI-DIRECT",
            3,
            100001,
        )
        assert box.dead_lettered("orders-to-dataverse") == []
    finally:
        config.application_users_are_admins = False
