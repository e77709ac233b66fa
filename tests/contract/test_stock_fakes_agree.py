"""The fake answers the stock flow's and stock poller's Brightpearl calls as the simulator does
(the same checks against FakeBrightpearl and the simulator over loopback through the real
client), so the fast tests in tests/unit/flows/stock stay honest: product-availability by id
set (only stock-tracked products, only warehouses holding them, per warehouse and total) and
goods-movement-search by updatedOn naming the products whose stock moved; in Dataverse, the
stock sweep's page (products with a Brightpearl id after the cursor, in string order, $top) and
the flow's UpdateMultiple of bpi_availablestock by productid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.dataverse import odata
from shared.sync.fakes import FakeBrightpearl
from shared.sync.ports import BrightpearlPort, DataversePort
from tests.contract import test_product_fakes_agree as product_fakes_agree
from tests.contract.test_fakes_agree import bp_server, brightpearl, dataverse
from tests.contract.test_product_fakes_agree import dv_server

__all__ = ["bp_server", "brightpearl", "dataverse", "dv_server"]
KEY = "bpi_brightpearlid"


def new_product(bp: BrightpearlPort, *, tracked: bool = True) -> int:
    return product_fakes_agree.new_product(bp, f"SKU-{uuid.uuid4().hex[:8]}", tracked=tracked)


def correct(bp: BrightpearlPort, product_id: int, warehouse_id: int, quantity: int) -> None:
    """A stock correction: the fake's helper, or the documented POST (reference §8.4)."""
    if isinstance(bp, FakeBrightpearl):
        bp.move_stock(product_id, warehouse_id, quantity)
        return
    line = {"productId": product_id, "quantity": quantity, "reason": "Stock take", "locationId": 2}
    if quantity > 0:
        line["cost"] = {"currency": "GBP", "value": 1}
    bp.request(
        "POST", f"/warehouse-service/warehouse/{warehouse_id}/stock-correction", json={"corrections": [line]}
    )


def test_availability_by_id_set_only_tracked_products_per_warehouse(brightpearl: BrightpearlPort) -> None:
    a, b, untracked = (
        new_product(brightpearl),
        new_product(brightpearl),
        new_product(brightpearl, tracked=False),
    )
    correct(brightpearl, a, 2, 5)
    correct(brightpearl, a, 3, 2)
    correct(brightpearl, b, 2, 1)

    found = brightpearl.get_product_availability([a, b, untracked])

    assert set(found) == {a, b}
    assert found[a].total.on_hand == 7 and found[a].total.in_stock == 7
    assert (found[a].warehouses[2].on_hand, found[a].warehouses[3].on_hand) == (5, 2)
    assert set(found[b].warehouses) == {2}  # only warehouses holding it


def test_goods_movements_since_a_time_name_the_products_that_moved(brightpearl: BrightpearlPort) -> None:
    before = new_product(brightpearl)
    correct(brightpearl, before, 2, 1)
    since = datetime.now(UTC) + timedelta(milliseconds=5)
    moved = new_product(brightpearl)
    while datetime.now(UTC) <= since:
        pass
    correct(brightpearl, moved, 2, 4)
    correct(brightpearl, moved, 2, -1)

    rows = list(brightpearl.search_goods_movements(updated_since=since, columns=["productId", "updatedOn"]))

    assert [r["productId"] for r in rows] == [moved, moved]
    assert all(set(r) == {"productId", "updatedOn"} and r["updatedOn"] for r in rows)


def test_the_sweep_pages_dynamics_products_by_brightpearl_id_in_string_order(
    dataverse: DataversePort,
) -> None:
    prefix = f"9{uuid.uuid4().int % 10**8:08d}"  # ids of this test only, after every other
    ids = [f"{prefix}{n}" for n in ("1", "10", "2", "3")]
    for product_id in ids:
        dataverse.upsert_multiple(
            "products",
            [{KEY: product_id, "name": f"Mug {product_id}", "productnumber": f"S-{product_id}"}],
            key_columns=[KEY],
        )

    def page(after: str, top: int) -> list[str]:
        rows = dataverse.query(
            "products",
            select=[KEY],
            filter=odata.all_of(odata.ne(KEY, None), odata.gt(KEY, after)),
            orderby=[f"{KEY} asc"],
            top=top,
        )
        return [str(r.get(KEY)) for r in rows]

    assert page(prefix, 3) == sorted(ids)[:3]  # "...1" < "...10" < "...2"
    assert page(sorted(ids)[2], 3) == sorted(ids)[3:]

    [row] = dataverse.query("products", select=["productid"], filter=odata.eq(KEY, ids[0]))
    result = dataverse.update_multiple(
        "products", [{"productid": row.get("productid"), "bpi_availablestock": 7}]
    )
    assert all(o.ok for o in result.outcomes)
    [after] = dataverse.query("products", select=["bpi_availablestock"], filter=odata.eq(KEY, ids[0]))
    assert float(after.get("bpi_availablestock")) == 7
