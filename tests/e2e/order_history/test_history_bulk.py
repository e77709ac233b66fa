"""Order history in bulk (issue 14 benchmarks: <= 60 API calls per 1,000 orders): Brightpearl
orders named together become their Dynamics orders through `$batch` deep inserts, not one
`POST salesorders` each, on the Dataverse simulator with the real client: every order with its
lines, under its deterministic salesorderid, linked; a second round names them again and makes
nothing more."""

from __future__ import annotations

import pytest

from shared.flows.orders_history import salesorder_id
from shared.flows.orders_to_dataverse import OrdersToDataverse
from tests.e2e.order_history.conftest import dv_orders_of, lines_of, place_web_order
from tests.e2e.orders.conftest import TO_DV, OrderSandbox

ORDERS = 20


def dataverse_calls(box: OrderSandbox) -> dict[str, int]:
    return dict(box.dv.call("GET", "counters")["calls"])


def test_orders_named_together_are_created_in_batches_not_one_post_each(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    orders = [
        place_web_order(box, [("MUG-1", 1 + i % 3), ("TEE-1", 1)], ref=f"WEB-B{i}", announce=False)
        for i in range(ORDERS)
    ]
    box.dv.call("POST", "counters/reset")
    box.bp_sim.state.emit("sales-order.created", orders)  # one webhook naming all of them
    box.work()

    calls = dataverse_calls(box)
    assert calls.get("POST salesorders", 0) == 0, calls
    assert calls.get("POST $batch", 0) < ORDERS, calls
    for bp_id in orders:
        [copy] = dv_orders_of(box, bp_id)
        assert copy["salesorderid"] == salesorder_id(bp_id)
        assert len(lines_of(box, copy["salesorderid"])) == 2
        link = box.store.links.get("order", "brightpearl", str(bp_id))
        assert link is not None and link.is_linked and link.id_in("dataverse") == salesorder_id(bp_id)
    assert box.dead_lettered(TO_DV) == []

    box.bp_sim.state.emit("sales-order.created", orders)  # named again: linked, nothing made
    box.work()
    assert [len(dv_orders_of(box, o)) for o in orders] == [1] * ORDERS
    assert dataverse_calls(box).get("POST salesorders", 0) == 0


def test_a_batch_read_in_passes_reads_the_catalogue_once(
    orders_sandbox: OrderSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 orders in passes of 5 (as 5,000 in passes of 1,000): four passes, each read, created and
    linked, but the price lists, products and price list items are read once for the batch."""
    box = orders_sandbox
    monkeypatch.setattr(OrdersToDataverse, "records_per_pass", 5)
    orders = [
        place_web_order(box, [("MUG-1", 1), ("TEE-1", 2)], ref=f"WEB-P{i}", announce=False)
        for i in range(ORDERS)
    ]
    box.dv.call("POST", "counters/reset")
    box.bp_sim.state.emit("sales-order.created", orders)  # one webhook naming all of them
    box.work()

    calls = dataverse_calls(box)
    assert [len(dv_orders_of(box, o)) for o in orders] == [1] * ORDERS
    assert calls.get("POST $batch", 0) >= 4, calls  # a $batch of new orders per pass
    for kind in ("GET pricelevels", "GET products", "GET productpricelevels"):
        assert calls.get(kind) == 1, (kind, calls)
    assert box.dead_lettered(TO_DV) == []
