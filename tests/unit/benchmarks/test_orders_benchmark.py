"""benchmarks/orders.py at a tiny size (10 orders): the JSON it writes has every section and
target, the real flows create each order exactly once through the simulators, and the atomic
mode uses fewer calls per order than the naive per-row mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import orders

pytestmark = pytest.mark.slow


def test_a_tiny_run_writes_every_section_and_atomic_beats_naive(tmp_path: Path) -> None:
    out = tmp_path / "orders.json"
    argv = ["--orders", "10", "--lines", "5", "--naive", "3", "--quick", "--skip-latency", "--out", str(out)]
    assert orders.main(argv) == 0

    result = json.loads(out.read_text())
    section = result["atomic_vs_naive"]
    atomic, naive = section["atomic"], section["naive"]
    # every Dynamics order became exactly one Brightpearl order with all its rows
    assert (atomic["brightpearl_orders"], atomic["orders_with_all_rows"]) == (10, 10)
    assert atomic["dynamics_orders_with_more_than_one"] == 0
    assert atomic["outcomes"] == {"Completed": 10}
    assert atomic["brightpearl_calls_by_route"] == {"POST order-service/sales-order": 10}  # one atomic POST
    assert naive["brightpearl_calls_per_order_created"] == 6.0  # header + 5 rows
    for key in ("brightpearl_calls_per_order_created", "dataverse_calls_per_order"):
        assert atomic[key] < naive[key]
        assert section["ratios_naive_over_atomic"][key] > 1

    limited = result["rate_limited"]
    assert limited["quick"] is True and limited["rate_window_seconds"] == orders.QUICK_WINDOW
    assert limited["brightpearl_orders"] == 10
    assert limited["rate_limit_bound_seconds"] > 0 and limited["seconds_over_bound"] > 0

    status = result["status_writeback"]
    for shape in ("one_id_per_notice", "id_sets"):
        assert status[shape]["status_changes"] == 10
        assert status[shape]["dynamics_orders_in_wanted_state"] == 10
    assert "submit_latency" not in result  # skipped

    targets = result["targets"]
    assert {
        "atomic_vs_naive.brightpearl_calls_per_order",
        "rate_limited.seconds_over_bound",
        "status_writeback.dataverse_calls_per_1000_id_sets",
    } <= set(targets)
    assert targets["atomic_vs_naive.exactly_one_order_each"] is True
    for name, figure in targets.items():
        assert isinstance(figure, bool), name
