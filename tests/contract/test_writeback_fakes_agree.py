"""FakeBrightpearl's goods-out notes, shipping status and order-search answer as the Brightpearl
simulator does through the real client, as orders-to-dataverse reads them (issue 13 item 4), so
the fast tests in tests/unit/flows/orders/test_writeback_shipments.py stay honest: a goods-out
note names its order, the shipped notes of an order give the same shipment (date, method,
tracking, quantity per Dynamics line by the row's externalRef), SPS then ASS, and order-search by
updatedOn finds the order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from sandbox.brightpearl.orders_admin import handle_orders_admin
from shared.flows.orders_to_dataverse import OrdersToDataverse, shipment
from shared.mapping.orders_status import parse_order_status_mapping
from shared.sync.engine import Batch
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from shared.sync.outcomes import BatchResults
from shared.sync.ports import BrightpearlPort
from tests.contract.test_fakes_agree import bp_server, brightpearl, new_customer, unique
from tests.contract.test_product_fakes_agree import new_product

__all__ = ["bp_server", "brightpearl"]

LINE_1, LINE_2 = str(uuid.uuid4()), str(uuid.uuid4())
DHL = 3


def ship(
    bp: BrightpearlPort, request: pytest.FixtureRequest, order_id: int, rows: dict[int, int], ref: str
) -> int:
    """A shipped goods-out note of `rows` (row id -> units) with its tracking reference: the
    fake's helper, or the simulator's admin routes (as a warehouse ships)."""
    if isinstance(bp, FakeBrightpearl):
        return bp.ship(order_id, rows, reference=ref, shipping_method_id=DHL)
    server: BrightpearlServer = request.getfixturevalue("bp_server")

    def admin(path: str, body: dict[str, Any]) -> Any:
        answer = handle_orders_admin(server.simulator, "POST", path.split("/"), body)
        assert answer is not None and answer[0] == 200, answer
        return answer[1]

    body = {"rows": {str(r): q for r, q in rows.items()}, "shippingMethodId": DHL}
    [note] = admin(f"orders/{order_id}/goods-out", body)["goodsOutNoteIds"]
    admin(f"goods-out/{note}/ship", {"reference": ref, "shippingMethodId": DHL})
    return int(note)


def flow(bp: BrightpearlPort) -> OrdersToDataverse:
    return OrdersToDataverse(
        statuses=parse_order_status_mapping({"statuses": {}}),
        shipping_methods={DHL: "DHL"},
        brightpearl=bp,
        dataverse=FakeDataverse(),
        store=MemoryStateStore(),
        publish=lambda _: None,
    )


def test_shipments_read_the_same_from_the_fake_and_the_simulator(
    brightpearl: BrightpearlPort, request: pytest.FixtureRequest
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    customer = new_customer(brightpearl, f"ship.{unique()}@example.org")
    mug, tee = new_product(brightpearl, f"MUG-{unique()}"), new_product(brightpearl, f"TEE-{unique()}")
    rows = [
        {
            "productId": mug,
            "quantity": 2,
            "taxCode": "T20",
            "net": "20.00",
            "tax": "4.00",
            "externalRef": LINE_1,
        },
        {
            "productId": tee,
            "quantity": 1,
            "taxCode": "T20",
            "net": "10.00",
            "tax": "2.00",
            "externalRef": LINE_2,
        },
    ]
    body = {"customer": {"id": customer}, "ref": "ORD-1", "externalRef": f"so-{unique()}", "rows": rows}
    order_id = brightpearl.create_sales_order(body)
    sync = flow(brightpearl)
    [order] = sync.fetch([str(order_id)]).values()
    row_of = {r["externalRef"]: int(rid) for rid, r in order["orderRows"].items()}
    assert set(row_of) == {LINE_1, LINE_2}  # rows keep the Dynamics line ids

    note = ship(brightpearl, request, order_id, {row_of[LINE_1]: 1}, "TRK-1")
    batch, results = Batch(), BatchResults()
    batch.add("goods-out-note", str(note))
    assert sync.expand(batch, results) == [str(order_id)] and not results.by_id  # the note names its order
    [order] = sync.fetch([str(order_id)]).values()
    assert order["shippingStatusCode"] == "SPS"
    part = shipment(order, sync.shipping_methods)
    assert (part["shipping_method"], part["tracking_reference"]) == ("DHL", "TRK-1")
    assert part["shipped"] == {LINE_1.lower(): Decimal(1)} and part["shipped_on"] is not None

    ship(brightpearl, request, order_id, {row_of[LINE_1]: 1, row_of[LINE_2]: 1}, "TRK-2")
    [order] = sync.fetch([str(order_id)]).values()
    assert order["shippingStatusCode"] == "ASS"
    whole = shipment(order, sync.shipping_methods)
    assert whole["shipped"] == {LINE_1.lower(): Decimal(2), LINE_2.lower(): Decimal(1)}
    assert whole["tracking_reference"] == "TRK-1, TRK-2"

    found = brightpearl.search_orders(
        updated_since=started, columns=["orderId", "updatedOn"], sort="updatedOn.ASC", orderTypeId=1
    )
    assert order_id in [int(r["orderId"]) for r in found]
