"""Order history through the running app (issue 14 item 1): a web order placed in Brightpearl
(`sales-order.created` webhook, orders-to-dataverse) appears in Dynamics as a salesorder with its
lines, customer, totals, currency, channel and status, marked bpi_origin Brightpearl."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.order_history.conftest import (
    dv_order_of,
    dv_orders_of,
    history_audit,
    lines_of,
    lookup,
    place_web_order,
)
from tests.e2e.orders.conftest import OrderSandbox
from tests.e2e.orders.test_shipments import ship


def test_a_web_order_placed_in_brightpearl_appears_in_dynamics(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    bp_id = place_web_order(box, [("MUG-1", 2), ("TEE-1", 1)], ref="WEB-2001")
    box.work()

    order = dv_order_of(box, bp_id)
    assert order["bpi_origin"] == "Brightpearl"
    assert order["bpi_channel"] == "Brightpearl channel 1"
    assert lookup(order["customerid"]) == box.shop.customer.lower()
    assert lookup(order["transactioncurrencyid"]) == box.shop.refs.currencies["GBP"].lower()
    assert (order["statecode"], order["statuscode"]) == (1, 3)  # New web order -> Submitted
    assert order["bpi_brightpearlstatus"] == "New web order"
    assert "WEB-2001" in order["name"]
    assert order["bpi_placedon"]
    lines = lines_of(box, order["salesorderid"])
    assert [lookup(line.get("productid")) for line in lines] == [
        box.shop.products["MUG-1"].lower(),
        box.shop.products["TEE-1"].lower(),
    ]
    assert [Decimal(str(line["quantity"])) for line in lines] == [2, 1]
    net = Decimal("12.50") * 2 + Decimal("20.00")
    assert Decimal(str(order["totallineitemamount"])) == net
    assert Decimal(str(order["totaltax"])) == (net * Decimal("0.2")).quantize(Decimal("0.01"))
    assert Decimal(str(order["totalamount"])) == net * Decimal("1.2")
    link = box.store.links.get("order", "brightpearl", str(bp_id))
    assert link is not None and link.is_linked and link.id_in("dataverse") == order["salesorderid"]
    assert link.source.system == "brightpearl"
    assert ("synced", None) in [(result, reason) for result, reason, _ in history_audit(box, bp_id)]
    assert box.dead_lettered("orders-to-dataverse") == []
    assert len(dv_orders_of(box, bp_id)) == 1


def test_a_brightpearl_order_shipped_in_full_fulfils_its_dynamics_copy_line_by_line(
    orders_sandbox: OrderSandbox,
) -> None:
    """The copy's lines carry ids made from the rows' ids, so the write-back finds each shipped
    row's line (quantityshipped) and fulfils the order."""
    box = orders_sandbox
    bp_id = place_web_order(box, [("MUG-1", 2), ("TEE-1", 1)], ref="WEB-2002")
    box.work()
    rows = {int(r["productId"]): int(k) for k, r in box.bp_sim.state.orders[bp_id]["orderRows"].items()}

    ship(
        box, bp_id, {rows[box.shop.bp_products["MUG-1"]]: 2, rows[box.shop.bp_products["TEE-1"]]: 1}, "TRK-1"
    )
    box.work()

    order = dv_order_of(box, bp_id)
    assert (order["statecode"], order["statuscode"]) == (3, 100001)  # Fulfilled / Complete
    assert order["bpi_trackingreference"] == "TRK-1"
    shipped = {
        lookup(line.get("productid")): line.get("quantityshipped")
        for line in lines_of(box, order["salesorderid"])
    }
    assert shipped == {box.shop.products["MUG-1"].lower(): 2, box.shop.products["TEE-1"].lower(): 1}
    assert box.dead_lettered("orders-to-dataverse") == []
