"""The Brightpearl simulator's reservation and goods-out rules (issue 18 item 4) through the real
client: reservations per warehouse and row move availability (allocated up, onHand down), are
refused beyond what the warehouse has on hand or the row still has open, in Brightpearl's error
envelope; a goods-out note of an order holding reservations is bounded by its row's reservation in
the note's warehouse and consumes it; cancelling the order drops its reservations."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError
from tests.contract.brightpearl.conftest import bp_server, client, make_client, sim
from tests.contract.brightpearl.test_orders_products import order_body

__all__ = ["bp_server", "client", "make_client", "sim"]


def reserve(
    client: BrightpearlClient, order: int, warehouse: int, row: int, product: int, units: int
) -> None:
    body = {"products": [{"productId": product, "salesOrderRowId": row, "quantity": units}]}
    client.request("POST", f"/warehouse-service/order/{order}/reservation/warehouse/{warehouse}", json=body)


def reservations(client: BrightpearlClient, order: int) -> list[dict[str, Any]]:
    return list(client.request("GET", f"/warehouse-service/order/{order}/reservation").response)


def levels(client: BrightpearlClient, product: int, warehouse: int) -> tuple[int, int, int]:
    """(inStock, allocated, onHand) of the product in the warehouse."""
    level = client.get_product_availability([product])[product].warehouses[warehouse]
    return level.in_stock, level.allocated, level.on_hand


def note(client: BrightpearlClient, order: int, warehouse: int, row: int, product: int, units: int) -> int:
    lines = [{"productId": product, "salesOrderRowId": row, "quantity": units}]
    return client.create_goods_out_note(order, [{"warehouseId": warehouse, "products": lines}])


def test_reservations_move_availability_and_bound_the_goods_out_notes(
    client: BrightpearlClient, sim: Simulator
) -> None:
    order = client.ensure_sales_order(order_body(sim, "fulfil-1", qty=3))[0]
    row, product = next(
        (int(k), int(r.product_id)) for k, r in client.get_order(order).order_rows.items() if r.product_id
    )
    client.create_stock_correction(
        2, [{"productId": product, "quantity": 5, "reason": "Goods in", "locationId": 2}]
    )
    in_stock, allocated, on_hand = levels(client, product, 2)
    assert reservations(client, order) == []

    with pytest.raises(BrightpearlValidationError, match="only 3 of its 3 units"):
        reserve(client, order, 2, row, product, 4)  # more than the row's open quantity
    reserve(client, order, 2, row, product, 2)
    assert levels(client, product, 2) == (in_stock, allocated + 2, on_hand - 2)
    assert reservations(client, order) == [
        {"warehouseId": 2, "products": [{"productId": product, "salesOrderRowId": row, "quantity": 2}]}
    ]
    with pytest.raises(BrightpearlValidationError, match="only 1 of its 3 units"):
        reserve(client, order, 3, row, product, 2)  # 2 reserved already, in any warehouse
    with pytest.raises(BrightpearlValidationError, match="in warehouse 4: 0 on hand"):
        reserve(client, order, 4, row, product, 1)  # nothing on hand there

    with pytest.raises(BrightpearlValidationError, match="only 0 reserved there"):
        note(client, order, 3, row, product, 1)  # not reserved in warehouse 3
    with pytest.raises(BrightpearlValidationError, match="only 2 reserved there"):
        note(client, order, 2, row, product, 3)
    note(client, order, 2, row, product, 2)  # consumes the reservation; still allocated, on the note
    assert reservations(client, order) == []
    assert levels(client, product, 2) == (in_stock, allocated + 2, on_hand - 2)
    with pytest.raises(BrightpearlValidationError, match="only 0 reserved there"):
        note(client, order, 2, row, product, 1)  # a second note needs a reservation again


def test_cancelling_an_order_drops_its_reservations(client: BrightpearlClient, sim: Simulator) -> None:
    order = client.ensure_sales_order(order_body(sim, "fulfil-2", qty=2))[0]
    row, product = next(
        (int(k), int(r.product_id)) for k, r in client.get_order(order).order_rows.items() if r.product_id
    )
    client.create_stock_correction(
        2, [{"productId": product, "quantity": 2, "reason": "Goods in", "locationId": 2}]
    )
    before = levels(client, product, 2)
    reserve(client, order, 2, row, product, 2)
    client.set_order_status(order, sim.state.cancelled_status or 5)
    assert reservations(client, order) == []
    assert levels(client, product, 2) == before
