"""Exactly once per order row and quantity (issue 18 item 1): the same orders named by several
notices on two instances of the app at once, Brightpearl answers lost after it committed a
reservation or a goods-out note (fault injection `drop`) or failing (`503`), and a worker that
died part way (its claim left behind, a reservation and a note made) before the host restarted.
Each test compares what the notes hold with what was ordered and looks for dead letters."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.fulfilment.conftest import FLOW, OFF, ON, WAREHOUSES, FulfilmentSandbox
from tests.e2e.orders.test_exactly_once import clear_faults, second_host, work_both

ORDERED = {"MUG-1": 2, "TEE-1": 1}
WRITES = "warehouse-service/order"  # the reservation and goods-out POSTs are below it


@pytest.fixture
def sandbox_settings(sandbox_settings: dict[str, str]) -> dict[str, str]:
    """A short Brightpearl read timeout: a `timeout` fault (committed, answered late) costs 0.5 s."""
    return {**sandbox_settings, "BRIGHTPEARL_READ_TIMEOUT_SECONDS": "0.5"}


def stocked_orders(box: FulfilmentSandbox, count: int) -> list[tuple[str, int]]:
    """`count` Dynamics orders of ORDERED, synced to Brightpearl, with enough stock in warehouse 2."""
    box.add_stock("MUG-1", 2 * count)
    box.add_stock("TEE-1", count)
    orders = [box.raise_order(list(ORDERED.items())) for _ in range(count)]
    box.work()
    return [(order, int(box.bp_order_of(order)["id"])) for order in orders]


def assert_noted_once(box: FulfilmentSandbox, orders: list[tuple[str, int]]) -> None:
    for order, bp_order in orders:
        assert box.noted(bp_order) == ORDERED, f"goods-out notes of order {bp_order}"
        assert box.reserved(bp_order) == 0, f"reservations left on order {bp_order}"
        assert box.line_figures(order) == {sku: (q, q) for sku, q in ORDERED.items()}
    assert box.dead_letters("brightpearl-changes", FLOW) == []


def test_the_same_orders_named_again_and_again_on_two_hosts_are_noted_once(box: FulfilmentSandbox) -> None:
    orders = stocked_orders(box, 4)
    box.bp_sim.set_webhook_faults(duplicate=20)  # every status webhook delivered twice
    with second_host(box) as other:
        for _, bp_order in orders:
            box.set_status(bp_order)
        box.host.run_timer("poll_brightpearl_orders")  # the order poller names them again
        other.run_timer("poll_brightpearl_orders")  # and the other instance's poller too
        work_both(box, other)
        for _, bp_order in orders:  # and once more after they are done
            box.set_status(bp_order, "Awaiting Payment")
            box.set_status(bp_order)
        work_both(box, other)
    assert_noted_once(box, orders)
    assert all(len(box.notes(bp_order)) == 1 for _, bp_order in orders)


def test_lost_answers_and_outages_on_the_writes_reserve_and_note_once(box: FulfilmentSandbox) -> None:
    orders = stocked_orders(box, 3)
    box.bp_sim.add_fault("drop", count=2, path=WRITES, method="POST")  # committed, answer lost
    box.bp_sim.add_fault("timeout", count=1, seconds=1.0, path=WRITES, method="POST")  # committed, late
    box.bp_sim.add_fault("503", count=2, path=WRITES, method="POST")  # not committed
    for _, bp_order in orders:
        box.set_status(bp_order)
    box.work()
    assert not [f for f in box.bp_sim.faults if f.remaining > 0], "every fault was met"
    assert_noted_once(box, orders)
    assert all(len(box.notes(bp_order)) == 1 for _, bp_order in orders)


def test_a_worker_that_died_part_way_is_taken_over_after_a_restart_and_finishes_once(
    box: FulfilmentSandbox,
) -> None:
    [(order, bp_order)] = stocked_orders(box, 1)
    # a worker claimed the order, reserved the mug, noted it, and died before the tee
    box.store.links.claim("fulfilment", "brightpearl", str(bp_order), "warehouse")
    rows = {r["productId"]: int(rid) for rid, r in box.bp_order_of(order)["orderRows"].items()}
    product = box.shop.bp_products["MUG-1"]
    mug = {"productId": product, "salesOrderRowId": rows[product]}
    reserve = f"/warehouse-service/order/{bp_order}/reservation/warehouse/2"
    box.bp.request("POST", reserve, json={"products": [{**mug, "quantity": 2}]})
    box.bp.request(
        "POST",
        f"/warehouse-service/order/{bp_order}/goods-note/goods-out",
        json={"warehouses": [{"warehouseId": 2, "products": [{**mug, "quantity": 2}]}]},
    )
    box.host.stop(grace=0.0)
    box.start_host()  # a new instance on the same bus and store
    box.set_status(bp_order)
    box.work()  # waits for the dead worker's claim to run out, then takes it over
    assert box.note_shape(bp_order) == [(2, {"MUG-1": 2}), (2, {"TEE-1": 1})]
    assert_noted_once(box, [(order, bp_order)])


def test_a_host_restart_in_the_middle_of_a_batch_notes_each_order_once(box: FulfilmentSandbox) -> None:
    """Six orders reach "Ready to ship" together; the host dies while its worker is part way through
    them (one goods-out POST committed but never answered, the rest never reach Brightpearl); a new
    host on the same bus and store takes the notices again and finishes each order once."""
    orders = stocked_orders(box, 6)
    box.bp_sim.add_fault("slow", count=100, seconds=0.2, path=WRITES, method="POST")
    for _, bp_order in orders:
        box.set_status(bp_order)
    deadline = time.monotonic() + 60
    while goods_out_posts(box) < 2:  # part way through the batch
        assert time.monotonic() < deadline, "the flow did not start noting"
        time.sleep(0.02)
    clear_faults(box)  # the first matching fault applies: these come before any other
    box.bp_sim.add_fault("drop", count=1, path=WRITES, method="POST")
    box.bp_sim.add_fault("drop-before", count=1000, path=WRITES, method="POST")
    old = box.host
    old.stop(grace=0.0)
    while old._invoker.sync_running:  # the cut-short invocation returns (its POSTs fail fast)
        assert time.monotonic() < deadline + 60, "the stopped host's worker did not return"
        time.sleep(0.02)
    clear_faults(box)
    assert any(not box.notes(bp_order) for _, bp_order in orders), "the crash came after every order"
    box.start_host()
    box.work()
    assert_noted_once(box, orders)
    assert all(len(box.notes(bp_order)) == 1 for _, bp_order in orders)


def goods_out_posts(box: FulfilmentSandbox) -> int:
    with box.bp_sim._faults_lock:
        return box.bp_sim.requests.get("POST warehouse-service/order/{id}/goods-note/goods-out", 0)


class TestLinesRefused:
    """`writeback.read_only_orders: direct` while the application user is no administrator: Dynamics
    refuses the Submitted order's lines. Brightpearl's part is done once; the lines are retried and
    written once Dynamics takes them (here: the user becomes an administrator)."""

    @pytest.fixture
    def mapping_edits(self) -> tuple[tuple[str, str], ...]:
        return ((OFF, ON), WAREHOUSES, ("read_only_orders: reopen", "read_only_orders: direct"))

    def test_refused_lines_are_retried_without_reserving_again(
        self, box: FulfilmentSandbox, dv_server: Any
    ) -> None:
        [(order, bp_order)] = stocked_orders(box, 1)
        box.set_status(bp_order)
        box.work(rounds=1)
        assert box.noted(bp_order) == ORDERED
        assert box.line_figures(order) == {"MUG-1": (None, None), "TEE-1": (None, None)}
        assert box.scheduled(), "the refused lines wait for a retry"
        config = dv_server.simulator.config
        config.application_users_are_admins = True
        try:
            box.work()
        finally:
            config.application_users_are_admins = False
        assert_noted_once(box, [(order, bp_order)])
        assert len(box.notes(bp_order)) == 1
