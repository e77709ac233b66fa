"""A line deleted in Dynamics reaches Brightpearl by webhook (issue 13 item 3).

The Delete webhook of a salesorderdetail names only the line, which no longer exists. The
Delete step registered by `syncctl webhooks register` carries a pre-entity image of the line's
`salesorderid` (DataverseTable.delete_image), so the ingress announces the order itself as
changed, and orders-to-brightpearl removes the row at once: the change-tracking backstop
(poll_dataverse_orders) is never run here.
"""

from __future__ import annotations

from shared.store import AuditResult
from tests.e2e.orders.conftest import OrderSandbox
from tests.e2e.orders.test_changes import line_of, placed, rows


def test_a_line_deleted_by_a_crm_user_leaves_the_brightpearl_order_by_webhook(orders_sandbox: OrderSandbox):
    box = orders_sandbox
    order, created = placed(box)
    assert created["orderStatus"]["name"] == "New web order"  # in the shipped editable_statuses
    mug, tee = box.shop.bp_products["MUG-1"], box.shop.bp_products["TEE-1"]
    before = rows(box, order)
    assert sorted(r[0] for r in before.values()) == sorted([mug, tee])

    box.dv.crm("PATCH", f"salesorders({order})", {"statecode": 0, "statuscode": 1})  # Active: editable
    box.work()  # the reopening's own webhook is worked off first: it cannot carry the removal
    assert rows(box, order) == before
    box.dv.crm("DELETE", f"salesorderdetails({line_of(box, order, 'TEE-1')})")
    box.work()  # webhooks only: poll_dataverse_orders never runs (ORDERS_DATAVERSE_POLL_SCHEDULE never)

    after = rows(box, order)
    assert [r[0] for r in after.values()] == [mug]
    [mug_row] = [rid for rid, r in before.items() if r[0] == mug]
    assert after[mug_row] == before[mug_row]  # the other row is untouched
    assert len(box.bp_orders_of(order)) == 1
    synced = [e for e in box.audit(order) if e.result == AuditResult.SYNCED]
    assert any("0 changed, 0 added, 1 removed" in e.description for e in synced)
    assert box.dead_lettered() == []
    deliveries = box.dv.call("GET", "webhooks/deliveries")["deliveries"]
    deletes = [d for d in deliveries if d["message"] == "Delete" and d["entity"] == "salesorderdetail"]
    assert len(deletes) == 1 and deletes[0]["ok"]
