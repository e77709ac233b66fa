"""Changes after creation (issue 13 item 3) through the running app: a CRM user edits the lines of an
order already in Brightpearl, or cancels it, and the Dataverse webhooks bring the change to
orders-to-brightpearl. While the Brightpearl order's status is editable (mappings/orders.yaml
`changes.editable_statuses`) the edit reaches its rows; otherwise the order is audited
needs-review OrderLocked and Brightpearl is not written; a cancellation moves the Brightpearl
order to `changes.cancelled_status`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from shared.store import AuditResult
from tests.e2e.customers.test_operator_loop import cli
from tests.e2e.orders.conftest import SKUS, TO_BP, TO_DV, OrderSandbox

__all__ = ["cli"]

PARTIALLY_SHIPPED = 11  # a status of the simulator's account outside the editable set
AWAITING_PAYMENT = 3  # one in the shipped editable_statuses


def placed(box: OrderSandbox) -> tuple[str, dict[str, Any]]:
    """A submitted order of 2 mugs and a tee, created in Brightpearl; the Dynamics id and order."""
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()
    return order, box.bp_order_of(order)


def rows(box: OrderSandbox, order: str) -> dict[str, tuple[Any, ...]]:
    """Brightpearl's rows of the order: row id -> (product id or name, quantity, net)."""
    held = box.bp_order_of(order)["orderRows"]
    return {
        rid: (
            row["productId"] or row["productName"],
            Decimal(row["quantity"]["magnitude"]),
            Decimal(row["rowValue"]["rowNet"]["value"]),
        )
        for rid, row in held.items()
    }


def _id(value: Any) -> str:
    """A lookup as the Dataverse simulator stores it ({"id": ...}) or as a plain GUID."""
    return str((value or {}).get("id") if isinstance(value, dict) else value or "").lower()


def line_of(box: OrderSandbox, order: str, sku: str) -> str:
    product = box.shop.products[sku].lower()
    return next(
        str(r["salesorderdetailid"])
        for r in box.dv.rows("salesorderdetail")
        if _id(r.get("salesorderid")) == order.lower() and _id(r.get("productid")) == product
    )


def reopen_and_edit(box: OrderSandbox, order: str) -> None:
    """As a CRM user: back to Active (Dynamics edits only Active orders), 5 mugs instead of 2, one
    cap added."""
    box.dv.crm("PATCH", f"salesorders({order})", {"statecode": 0, "statuscode": 1})
    box.dv.crm("PATCH", f"salesorderdetails({line_of(box, order, 'MUG-1')})", {"quantity": 5})
    box.add_line(order, "CAP-1", 1)


def test_a_line_edit_while_editable_reaches_only_the_changed_brightpearl_rows(orders_sandbox: OrderSandbox):
    box = orders_sandbox
    order, created = placed(box)
    assert created["orderStatus"]["name"] == "New web order"  # in the shipped editable_statuses
    before = rows(box, order)
    mug, tee = box.shop.bp_products["MUG-1"], box.shop.bp_products["TEE-1"]

    reopen_and_edit(box, order)
    box.work()

    after = rows(box, order)
    [mug_row] = [rid for rid, r in before.items() if r[0] == mug]
    [tee_row] = [rid for rid, r in before.items() if r[0] == tee]
    assert after[mug_row] == (mug, 5, SKUS["MUG-1"] * 5)  # the same row, changed
    assert after[tee_row] == before[tee_row]  # untouched
    added = [r for rid, r in after.items() if rid not in before]
    assert added == [(box.shop.bp_products["CAP-1"], 1, SKUS["CAP-1"])]
    assert len(box.bp_orders_of(order)) == 1
    synced = [e for e in box.audit(order) if e.result == AuditResult.SYNCED]
    assert any("rows: 1 changed, 1 added, 0 removed" in e.description for e in synced)
    assert box.dead_lettered() == []


def test_a_line_edit_while_locked_is_needs_review_order_locked_and_not_written(orders_sandbox: OrderSandbox):
    box = orders_sandbox
    order, created = placed(box)
    box.bp.set_order_status(created["id"], PARTIALLY_SHIPPED)  # a Brightpearl user moves it on
    box.work()
    before = rows(box, order)

    reopen_and_edit(box, order)
    box.work()

    assert rows(box, order) == before  # never a silent overwrite
    locked = [e for e in box.audit(order) if e.reason_code == "OrderLocked"]
    assert locked and all(e.result == AuditResult.NEEDS_REVIEW for e in locked)
    assert "'Partially Shipped' is not in changes.editable_statuses" in locked[-1].description
    assert box.dv_order(order)["ordernumber"] in locked[-1].description
    assert box.dead_lettered() == []


def test_a_dynamics_cancellation_moves_the_brightpearl_order_to_cancelled(orders_sandbox: OrderSandbox):
    box = orders_sandbox
    order, created = placed(box)
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
        "salesorderid@odata.bind": f"/salesorders({order})",
        "subject": "Customer cancelled",
    }
    box.dv.crm("POST", "CancelSalesOrder", {"OrderClose": close, "Status": 4})
    box.work()

    assert box.dv_order(order)["statecode"] == 2
    cancelled = box.bp_order_of(order)
    assert cancelled["id"] == created["id"] and cancelled["orderStatus"]["name"] == "Cancelled"
    with box.bp_sim.state.lock:
        notes = [n["text"] for n in box.bp_sim.state.order_notes.get(created["id"], [])]
    assert any(text.startswith("Cancelled in Dynamics") for text in notes)
    assert any("moved to status 'Cancelled'" in e.description for e in box.audit(order))
    assert box.dead_lettered() == []
    assert box.dead_lettered(TO_DV) == []  # the status coming back finds Dynamics Canceled already


def test_a_removed_line_leaves_the_brightpearl_order_through_the_change_tracking_backstop(
    orders_sandbox: OrderSandbox,
):
    """When the line's Delete webhook is lost (its pre-image names the order, so normally the
    webhook brings it: tests/e2e/orders/test_line_delete.py), the order comes through change
    tracking: its totals moved. The backstop poller brings it; its row is removed."""
    box = orders_sandbox
    box.host.run_timer("poll_dataverse_orders")  # the first run records the delta links
    order, _ = placed(box)
    box.host.run_timer("poll_dataverse_orders")
    box.work()
    tee = box.shop.bp_products["TEE-1"]
    assert any(r[0] == tee for r in rows(box, order).values())

    box.dv.crm("PATCH", f"salesorders({order})", {"statecode": 0, "statuscode": 1})
    box.work()  # the reopening's own webhook, delivered
    box.dv.call("POST", "webhooks/fail", {"count": 100})  # the Delete's webhook is lost
    box.dv.crm("DELETE", f"salesorderdetails({line_of(box, order, 'TEE-1')})")
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})
    box.dv.call("POST", "webhooks/fail", {"count": 0})
    box.work()
    assert any(r[0] == tee for r in rows(box, order).values())  # no webhook: the row stays
    box.host.run_timer("poll_dataverse_orders")
    box.work()

    assert [r for r in rows(box, order).values() if r[0] == tee] == []
    assert [r[0] for r in rows(box, order).values()] == [box.shop.bp_products["MUG-1"]]
    assert box.dead_lettered() == []


def test_the_operator_reviews_a_locked_edit_makes_the_order_editable_and_accepts_it(
    orders_sandbox: OrderSandbox,
    cli,  # type: ignore[no-untyped-def]
):
    """`syncctl review list` shows the OrderLocked order with what to check; once the Brightpearl
    order is back in an editable status, `review accept` runs it again and the edit goes through."""
    box = orders_sandbox
    order, created = placed(box)
    box.bp.set_order_status(created["id"], PARTIALLY_SHIPPED)
    box.work()
    box.clock.advance(5)  # the audit orders a record's rows by time: the edit comes after the sync
    reopen_and_edit(box, order)
    box.work()
    [item] = [i for i in json.loads(cli("review", "list", "--json")) if i["recordId"] == order]
    assert item["key"] == f"{TO_BP}/{order}" and item["reason"] == "OrderLocked"

    box.bp.set_order_status(created["id"], AWAITING_PAYMENT)  # the operator decides Dynamics is right
    box.work()
    box.clock.advance(5)
    cli("review", "accept", item["key"])
    box.work()

    mug = box.shop.bp_products["MUG-1"]
    assert (mug, 5, SKUS["MUG-1"] * 5) in rows(box, order).values()
    assert [i for i in json.loads(cli("review", "list", "--json")) if i["recordId"] == order] == []
