"""The Dataverse simulator's lookup index (sandbox/dataverse/store.py): the rows pointing at a
record (an order's lines, for totals and line numbers) come from an index, not a table scan, so
a large history backfill does not slow down with every line; they must be exactly the rows a scan
finds, in the same order, through creates, a line moved to another order, deletes and a change
set rolled back."""

from __future__ import annotations

import time
from typing import Any

from sandbox.dataverse.app import Simulator
from sandbox.dataverse.inprocess import in_process_client
from shared.dataverse.models import BatchOperation


def _scan(sim: Simulator, table: str, column: str, target: str) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.engine.db.rows[table].values()
        if isinstance(r.get(column), dict) and r[column]["id"] == target
    ]


def _order(client: Any, name: str, lines: int) -> str:
    return client.create(
        "salesorders",
        {
            "name": name,
            "order_details": [
                {
                    "isproductoverridden": True,
                    "productdescription": f"{name} {j}",
                    "quantity": 1,
                    "priceperunit": 10,
                }
                for j in range(lines)
            ],
        },
    )


def test_the_lines_of_an_order_are_what_a_scan_finds_in_the_same_order() -> None:
    sim = Simulator()
    with in_process_client(sim) as client:
        a, b = _order(client, "A", 3), _order(client, "B", 2)
        lines_a = [r["salesorderdetailid"] for r in _scan(sim, "salesorderdetail", "salesorderid", a)]
        # a line moves to B, another is deleted, and a change set adding a line to A rolls back
        client.update("salesorderdetails", lines_a[0], {"salesorderid@odata.bind": f"/salesorders({b})"})
        client.delete("salesorderdetails", lines_a[1])
        client.execute_batch(
            [
                BatchOperation(
                    "POST",
                    "salesorderdetails",
                    {
                        "salesorderid@odata.bind": f"/salesorders({a})",
                        "productdescription": "x",
                        "quantity": 1,
                    },
                ),
                BatchOperation("POST", "salesorderdetails", {"quantity": "not a number"}),
            ],
            change_set=True,
        )
        client.create(
            "salesorderdetails",
            {
                "salesorderid@odata.bind": f"/salesorders({b})",
                "isproductoverridden": True,
                "productdescription": "B late",
                "quantity": 2,
                "priceperunit": 5,
            },
        )
        engine = sim.engine
        for order in (a, b):
            found = engine.referencing("salesorderdetail", "salesorderid", order)
            assert found == _scan(sim, "salesorderdetail", "salesorderid", order)
        assert len(engine.referencing("salesorderdetail", "salesorderid", a)) == 1
        b_lines = engine.referencing("salesorderdetail", "salesorderid", b)
        assert len(b_lines) == 4
        # the moved line keeps its number; the late one goes after the highest
        assert sorted(r["sequencenumber"] for r in b_lines) == [1, 1, 2, 3]
        [row] = [r for r in sim.engine.db.rows["salesorder"].values() if r["salesorderid"] == b]
        assert float(row["totallineitemamount"]) == 10 * 3 + 10  # the moved line counts for B


def test_adding_lines_does_not_get_slower_as_the_table_grows() -> None:
    sim = Simulator()
    with in_process_client(sim) as client:
        t = time.perf_counter()
        for n in range(100):
            _order(client, f"first {n}", 5)
        first = time.perf_counter() - t
        for n in range(900):
            _order(client, f"middle {n}", 5)
        t = time.perf_counter()
        for n in range(100):
            _order(client, f"last {n}", 5)
        last = time.perf_counter() - t
    # a scan per line made the last hundred orders ~10x slower than the first (5,000 lines more)
    assert last < first * 4, (first, last)
