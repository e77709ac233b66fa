"""Dynamics sales orders submitted by a CRM user become Brightpearl sales orders through the
running app (Dataverse webhooks, local host, bus, orders-to-brightpearl), exactly once, with
their lines, and the Brightpearl id comes back onto the Dynamics order."""

from __future__ import annotations

from decimal import Decimal

from shared.store import AuditResult
from tests.e2e.orders.conftest import SKUS, OrderSandbox


def test_a_submitted_order_becomes_one_brightpearl_order_with_its_lines(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()

    created = box.bp_order_of(order)  # exactly one
    assert len(box.dv_lines(order)) == len(created["orderRows"]) == 2
    in_order = [int(created["orderRows"][k]["productId"]) for k in sorted(created["orderRows"], key=int)]
    assert in_order == [box.shop.bp_products["MUG-1"], box.shop.bp_products["TEE-1"]]  # as added
    by_product = {int(r["productId"]): r for r in created["orderRows"].values()}
    assert set(by_product) == {box.shop.bp_products["MUG-1"], box.shop.bp_products["TEE-1"]}
    mug = by_product[box.shop.bp_products["MUG-1"]]
    assert Decimal(str(mug["quantity"]["magnitude"])) == 2
    assert Decimal(str(mug["rowValue"]["rowNet"]["value"])) == SKUS["MUG-1"] * 2
    assert created["parties"]["customer"]["contactId"] == box.shop.bp_customer
    assert created["reference"] == box.dv_order(order)["ordernumber"]
    assert box.dv_order(order)["bpi_brightpearlid"] == str(created["id"])
    audited = box.audited(order)
    assert audited.count((AuditResult.SYNCED, None)) == 1  # created once
    # the rest: the echoes of writing the id back (reopen, write, put back), nothing written
    assert {result for result, _ in audited} == {AuditResult.SYNCED, AuditResult.SKIPPED}
    assert (box.dv_order(order)["statecode"], box.dv_order(order)["statuscode"]) == (1, 3)  # Submitted again


def test_an_order_saved_but_not_submitted_stays_in_dynamics(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    order = box.raise_order([("CAP-1", 3)], submit=False)
    box.work()
    assert box.bp_orders_of(order) == []
    box.submit(order)
    box.work()
    assert len(box.bp_orders_of(order)) == 1


def test_an_order_whose_webhooks_were_lost_is_found_by_the_change_tracking_poll(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    box.host.run_timer("poll_dataverse_orders")  # the first run records the delta links
    box.host.wait_idle(timeout=60)
    box.dv.call("POST", "webhooks/fail", {"count": 100})  # every delivery of the order is lost
    order = box.raise_order([("MUG-1", 1)])
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})
    box.dv.call("POST", "webhooks/fail", {"count": 0})
    box.work()
    assert box.bp_orders_of(order) == []  # no webhook: nothing yet

    box.host.run_timer("poll_dataverse_orders")
    box.work()
    assert len(box.bp_orders_of(order)) == 1
    box.host.run_timer("poll_dataverse_orders")  # nothing new: nothing more
    box.work()
    assert len(box.bp_orders_of(order)) == 1
