"""benchmarks/history.py at a tiny size (40 orders, 6 credits, 30 payments, --quick): the JSON it
writes has every section and target, the real flows copy each Brightpearl order to Dynamics exactly
once, open one case per credit and one invoice per invoiced order, and every call is counted per
flow and in the totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import history

pytestmark = pytest.mark.slow


def test_a_tiny_backfill_writes_every_section_and_counts_each_flows_calls(tmp_path: Path) -> None:
    out = tmp_path / "history.json"
    argv = ["--orders", "40", "--credits", "6", "--payments", "30", "--quick", "--out", str(out)]
    assert history.main(argv) == 0

    result = json.loads(out.read_text())
    seeded, holds = result["seeded"], result["dynamics_holds"]
    assert (seeded["orders"], seeded["credits"], seeded["payments"]) == (40, 6, 30)
    # each Brightpearl order once in Dynamics with its lines; a case per credit; an invoice per invoiced one
    assert holds["salesorders_from_brightpearl"] == holds["distinct_brightpearl_ids"] == 40
    assert holds["salesorderdetails"] == 40 * 5
    assert holds["write_in_lines"] > 0  # rows whose SKU Dynamics lacks
    assert holds["cases"] == 6 and holds["cases_resolved"] == 3  # half the credits refunded
    assert holds["invoices"] == seeded["invoiced_orders"]
    assert holds["contacts_with_lifetime_value"] > 0

    backfill = result["backfill"]
    assert backfill["flows_not_built"] == {}
    per_flow = backfill["per_flow"]
    assert {"orders-to-dataverse", "invoices-to-dataverse", "returns-to-dataverse"} <= set(per_flow)
    listed = sum(sum(p["listing_brightpearl_calls_by_route"].values()) for p in backfill["phases"].values())
    flows_bp = sum(f["brightpearl_calls"] for f in per_flow.values())
    flows_dv = sum(f["dataverse_calls"] for f in per_flow.values())
    assert backfill["brightpearl_calls"] == flows_bp + listed  # every call is some flow's or a listing's
    assert backfill["dataverse_calls"] == flows_dv
    assert backfill["phases"]["orders"]["ids"] == 40 and backfill["phases"]["credits"]["ids"] == 6

    rate = result["rate"]
    assert rate["mode"].startswith("quick: SCALED") and rate["rate_window_seconds"] == history.QUICK_WINDOW
    assert rate["orders_per_second"] > 0 and rate["brightpearl_bound_seconds"] > 0
    assert backfill["memory"]["peak_rss_mb"] > 0
    targets = result["targets"]
    assert set(targets) == {
        "calls_per_1000_orders",
        "peak_memory_mb",
        "every_order_once_in_dynamics",
        "invoices_paid_by_the_backfill",
        "payments_again_change_nothing",
    }
    assert targets["every_order_once_in_dynamics"]["pass"] is True
    # the orders' backfill brings their payments: every invoice with a receipt is Paid, and the
    # payment poller announcing them all again afterwards changes nothing in Dynamics
    assert targets["invoices_paid_by_the_backfill"]["pass"] is True
    paid = seeded["receipts_in_full"] + seeded["receipts_in_part"]
    assert backfill["dynamics_holds"]["invoices_paid"] == paid
    assert targets["payments_again_change_nothing"]["pass"] is True
    again = backfill["payments_again"]
    assert again["listing"]["ids"] > 0 and again["calls_per_1000_payments"] > 0
    for name, figure in targets.items():
        assert isinstance(figure["pass"], bool), name
