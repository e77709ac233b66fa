"""Order history's rules through the running app (issue 14 item 1 and its bad input): write-in
lines for SKUs Dynamics lacks, channels left out by `history.channels`, a Dynamics-born order
not copied back, a Dynamics edit of a Brightpearl-born order not sent to Brightpearl, rows that
do not add up to the total dead-lettered naming the difference, a customer not in Dynamics yet
waited for."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from shared.store import AuditResult
from tests.e2e.order_history.conftest import (
    dv_order_of,
    dv_orders_of,
    history_audit,
    lines_of,
    lookup,
    place_web_order,
)
from tests.e2e.orders.conftest import TO_BP, TO_DV, OrderSandbox, order_mapping


@pytest.fixture
def sandbox_settings(sandbox_settings: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Orders of channel 1 (the web shop, named) are copied; channel 3's (a marketplace) are not."""
    mapping = order_mapping(
        tmp_path,
        (
            "  channels: []             # Brightpearl channel ids whose orders are copied"
            " (empty: every channel)",
            "  channels: [1]",
        ),
        ("  channel_names: {}", "  channel_names: {1: Web shop}"),
    )
    return {**sandbox_settings, "ORDER_MAPPING_PATH": str(mapping)}


def test_lines_whose_sku_dynamics_lacks_are_write_in_lines(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    box.add_brightpearl_product("SOCK-9")  # in Brightpearl only
    bp_id = place_web_order(
        box,
        [("MUG-1", 1), ("SOCK-9", 1)],
        write_ins=[("Gift wrap", Decimal("3.50"), 2)],
        prices={"SOCK-9": Decimal("4.00")},
    )
    box.work()

    order = dv_order_of(box, bp_id)
    assert order["bpi_channel"] == "Web shop"
    lines = lines_of(box, order["salesorderid"])
    assert lookup(lines[0].get("productid")) == box.shop.products["MUG-1"].lower()
    write_ins = [
        (line["productdescription"], Decimal(str(line["priceperunit"])), line["quantity"])
        for line in lines[1:]
    ]
    assert write_ins == [("SOCK-9 - Product SOCK-9", Decimal("4.00"), 1), ("Gift wrap", Decimal("3.50"), 2)]
    assert all(line["isproductoverridden"] for line in lines[1:])
    assert Decimal(str(order["totalamount"])) == (Decimal("12.50") + 7 + 4) * Decimal("1.2")
    assert box.dead_lettered(TO_DV) == []


def test_an_order_of_a_channel_not_included_is_not_copied(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    bp_id = place_web_order(box, channel=3, ref="AMZ-77")
    box.work()

    assert dv_orders_of(box, bp_id) == []
    [(result, reason, description)] = history_audit(box, bp_id)
    assert (result, reason) == ("skipped", "ChannelNotIncluded")
    assert "channel 3" in description and "history.channels" in description


def test_an_order_raised_in_dynamics_is_not_copied_back(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    before = len(box.dv.rows("salesorder"))
    order = box.raise_order([("MUG-1", 1)])
    box.work()

    bp_id = int(box.bp_order_of(order)["id"])
    assert [o["salesorderid"] for o in dv_orders_of(box, bp_id)] == [order.lower()]  # its own, only
    assert len(box.dv.rows("salesorder")) == before + 1
    assert box.dv_order(order).get("bpi_origin") in (None, "")
    # the sales-order.created it raised reached orders-to-dataverse: linked or named by externalRef
    assert {reason for _, reason, _ in history_audit(box, bp_id)} <= {None, "FromDynamics"}
    assert box.dead_lettered(TO_DV) == []


def test_a_dynamics_edit_of_a_brightpearl_order_does_not_flow_back(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    bp_id = place_web_order(box, [("MUG-1", 2)])
    box.work()
    order = dv_order_of(box, bp_id)
    rows_before = box.bp_sim.state.orders[bp_id]["orderRows"]
    [line] = lines_of(box, order["salesorderid"])

    # a CRM user reopens the order and changes the quantity
    box.dv.crm("PATCH", f"salesorders({order['salesorderid']})", {"statecode": 0, "statuscode": 1})
    box.dv.crm("PATCH", f"salesorderdetails({line['salesorderdetailid']})", {"quantity": 5})
    box.dv.crm("PATCH", f"salesorders({order['salesorderid']})", {"statecode": 1, "statuscode": 3})
    box.work()

    assert box.bp_sim.state.orders[bp_id]["orderRows"] == rows_before
    assert len(box.bp_orders()) == 1
    audited = box.audited(order["salesorderid"], TO_BP)
    assert audited and set(audited) == {(AuditResult.SKIPPED, "BrightpearlOwned")}
    [entry, *_] = box.audit(order["salesorderid"], TO_BP)
    assert f"Brightpearl order {bp_id}" in entry.description and "not sent back" in entry.description
    assert box.dead_lettered(TO_BP) == []


def test_an_order_whose_rows_do_not_add_up_is_dead_lettered_naming_the_difference(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    bp_id = place_web_order(box, [("TEE-1", 1)], announce=False)  # 20.00 + 4.00 tax
    with box.bp_sim.state.lock:  # its total says 30.00 (a row lost on the way, a bad import)
        box.bp_sim.state.orders[bp_id]["totalValue"].update(total="30.00", baseTotal="30.00")
    box.bp_sim.state.emit("sales-order.created", [bp_id])
    box.work()

    assert dv_orders_of(box, bp_id) == []
    [letter] = box.dead_lettered(TO_DV)
    assert letter.dead_letter_reason == "OrderTotalsMismatch"
    said = letter.dead_letter_error_description
    assert f"Brightpearl order {bp_id}" in said
    assert "total: rows 24.00, order 30.00, difference 6.00 GBP" in said


def test_an_order_whose_customer_is_not_in_dynamics_yet_waits_for_it(orders_sandbox: OrderSandbox) -> None:
    """The order waits (retried, CustomerNotLinked) and asks for its customer: customers-to-dataverse
    syncs the Brightpearl contact (nothing else announces it here: contacts raise no webhook and
    the contact poller does not run), and the retry finds it linked."""
    box = orders_sandbox
    contact = {
        "firstName": "Wendy",
        "lastName": "Webshopper",
        "communication": {"emails": {"PRI": {"email": "wendy.webshopper@example.com"}}},
        "relationshipToAccount": {"isCustomer": True, "isSupplier": False, "isStaff": False},
    }
    customer = int(box.bp.request("POST", "/contact-service/contact/", json=contact).response)
    bp_id = place_web_order(box, [("CAP-1", 1)], customer=customer)
    box.work()

    order = dv_order_of(box, bp_id)
    link = box.store.links.get("customer", "brightpearl", str(customer))
    assert link is not None and link.is_linked
    assert lookup(order["customerid"]) == str(link.id_in("dataverse")).lower()
    assert ("synced", None) in [(result, reason) for result, reason, _ in history_audit(box, bp_id)]
    assert box.dead_lettered(TO_DV) == []


def test_an_order_cancelled_before_it_reached_dynamics_is_not_copied(orders_sandbox: OrderSandbox) -> None:
    """Dynamics would show it open (the write-back does not cancel orders): it is left out."""
    box = orders_sandbox
    bp_id = place_web_order(box, [("CAP-1", 1)], ref="WEB-CXL", announce=False)
    box.bp_sim.state.set_order_status(bp_id, {"orderStatusId": 5})  # Cancelled (its webhook goes)
    box.work()

    assert dv_orders_of(box, bp_id) == []
    reasons = {(result, reason) for result, reason, _ in history_audit(box, bp_id)}
    assert reasons == {("skipped", "CancelledInBrightpearl")}
    assert box.dead_lettered(TO_DV) == []
