"""Fulfilment automation through the running app (issue 18 item 1): a Dynamics order synced to
Brightpearl is reserved and noted when a Brightpearl user moves it to "Ready to ship", one
goods-out note per warehouse, partial when stock is short, completed when stock arrives (a stock
correction's on-hand webhook), and the Dynamics lines show what is reserved and released."""

from __future__ import annotations

from tests.e2e.fulfilment.conftest import FLOW, FulfilmentSandbox


def test_an_order_reaching_ready_to_ship_is_reserved_and_noted_and_dynamics_shows_it(
    box: FulfilmentSandbox,
) -> None:
    box.add_stock("MUG-1", 5)
    box.add_stock("TEE-1", 4)
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()
    bp_order = box.bp_order_of(order)["id"]
    assert box.notes(bp_order) == []  # "New web order": not at the trigger yet
    assert set(box.flow_audit(bp_order)) == {("skipped", "FulfilmentNotTriggered")}
    box.set_status(bp_order)
    box.work()

    assert box.note_shape(bp_order) == [(2, {"MUG-1": 2, "TEE-1": 1})]  # one note, warehouse 2
    assert box.reserved(bp_order) == 0  # the note consumed the reservation
    assert box.line_figures(order) == {"MUG-1": (2, 2), "TEE-1": (1, 1)}
    assert box.dv_order(order)["statecode"] == 1  # reopened to write the lines, put back Submitted
    assert ("synced", None) in box.flow_audit(bp_order)
    with box.bp_sim.state.lock:
        level = box.bp_sim.state.availability(box.shop.bp_products["MUG-1"])
    assert level is not None and level["warehouses"]["2"]["allocated"] == 2
    assert level["warehouses"]["2"]["onHand"] == 3
    assert box.dead_letters("brightpearl-changes", FLOW) == []

    box.set_status(bp_order, "Awaiting Payment")  # moves on and back: nothing more to do
    box.set_status(bp_order)
    box.work()
    assert len(box.notes(bp_order)) == 1


def test_short_stock_gives_partial_notes_per_warehouse_completed_when_stock_arrives(
    box: FulfilmentSandbox,
) -> None:
    box.add_stock("MUG-1", 1, warehouse=2)
    box.add_stock("MUG-1", 1, warehouse=3)
    order = box.raise_order([("MUG-1", 3), ("TEE-1", 1)])  # TEE-1: none in stock
    box.work()
    bp_order = box.bp_order_of(order)["id"]
    box.set_status(bp_order)
    box.work()

    assert box.note_shape(bp_order) == [(2, {"MUG-1": 1}), (3, {"MUG-1": 1})]  # partial, per warehouse
    assert box.line_figures(order) == {"MUG-1": (2, 2), "TEE-1": (0, 0)}
    assert box.store.cursors.get(f"fulfilment-order-{bp_order}") is not None  # waiting for stock

    box.add_stock("TEE-1", 2)  # goods in: the on-hand webhook brings the order back
    box.work()
    assert box.noted(bp_order) == {"MUG-1": 2, "TEE-1": 1}
    box.add_stock("MUG-1", 5)
    box.work()
    assert box.noted(bp_order) == {"MUG-1": 3, "TEE-1": 1}  # complete, never more than ordered
    assert len(box.notes(bp_order)) == 4
    assert box.line_figures(order) == {"MUG-1": (3, 3), "TEE-1": (1, 1)}
    assert box.store.cursors.get(f"fulfilment-order-{bp_order}") is None  # no longer waiting
    box.add_stock("MUG-1", 1)  # more stock later: nothing more for this order
    box.work()
    assert len(box.notes(bp_order)) == 4
    assert box.dead_letters("brightpearl-changes", FLOW) == []
