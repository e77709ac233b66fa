"""Reconciliation of customers: Brightpearl and Dataverse requests, time and peak memory.

Reconciles `--size` customers (default 100,000) against both simulators over loopback with the
real reconciler (shared/reconcile: CustomerReconcile + Reconciler), the way `syncctl reconcile
customers` runs it. The issue's target: the Brightpearl requests stay under 1 % of a day's budget
(200 a minute * 1,440 = 288,000 requests).

Set-up (not measured): the customers are seeded in the Brightpearl simulator's state and in
Dataverse with UpsertMultiple (1,000 rows a request), each Dynamics contact carrying its
Brightpearl id; the links, with the content hash of each side, are made from one read of both
systems, in memory (shared/sync/fakes.py MemoryLinks: the Brightpearl budget is what is
measured, and Azurite would make the seeding of 200,000 link rows dominate the run). Then drift
is injected: a last name changed in Brightpearl and a first name in Dynamics for 0.1 % each,
ten links deleted and ten customers never synced, so the run does the per-field reads too.

Measured: one `Reconciler.run()` (report only), with tracemalloc on (peak Python memory; it
slows the run, so the time is an upper bound): requests per simulator, by route, seconds, peak
MB, findings. With `--size` below 100,000 the request counts are also extrapolated linearly to
100,000 (every read is paged or chunked by a fixed size, so requests grow linearly).

Usage: .venv/bin/python -m benchmarks.reconcile [--size 100000]
Writes benchmarks/results/reconcile.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.customers import Rig, _delta, person  # noqa: E402
from sandbox.demo import crm_contact  # noqa: E402
from shared.flows.customers_spec import CUSTOMERS  # noqa: E402
from shared.mapping import load_customer_mapping  # noqa: E402
from shared.reconcile.customers import CustomerReconcile  # noqa: E402
from shared.reconcile.engine import Reconciler  # noqa: E402
from shared.sync.outcomes import chunked  # noqa: E402

DAY_BUDGET = 200 * 1440  # Brightpearl: 200 requests a minute, all day
TARGET = 100_000
RESULTS = ROOT / "benchmarks" / "results" / "reconcile.json"


def seed(rig: Rig, size: int) -> tuple[list[str], dict[str, str]]:
    """`size` customers in both systems; returns the Brightpearl ids and Brightpearl -> Dataverse id."""
    bp_ids: list[str] = []
    for chunk in chunked(list(range(size)), 5000):
        bp_ids += rig.seed_brightpearl([person(i) for i in chunk])
    for chunk in chunked(list(zip(bp_ids, range(size), strict=True)), 1000):
        rows = [{**crm_contact(person(i)), "bpi_brightpearlid": bp_id} for bp_id, i in chunk]
        result = rig.dv.upsert_multiple("contacts", rows, key_columns=["bpi_brightpearlid"])
        assert all(o.ok for o in result.outcomes), "seeding Dataverse failed"
    pairs = {
        str(r.values["bpi_brightpearlid"]): str(r.id).lower()
        for r in rig.dv.query("contacts", select=["contactid", "bpi_brightpearlid"], page_size=5000)
    }
    return bp_ids, pairs


def link_all(rig: Rig, entity: CustomerReconcile, pairs: dict[str, str]) -> None:
    """The links the flows would have left: both ids and each side's content hash."""
    bp: dict[str, str | None] = {}
    dv: dict[str, str | None] = {}
    for page in entity.pages("brightpearl", None):
        bp.update({k: v.content_hash for k, v in page.items()})
    for page in entity.pages("dataverse", None):
        dv.update({k: v.content_hash for k, v in page.items()})
    for bp_id, dv_id in pairs.items():
        rig.store.links.link(
            "customer", "brightpearl", bp_id, "dataverse", dv_id, source_hash=bp[bp_id], target_hash=dv[dv_id]
        )


def inject(rig: Rig, bp_ids: list[str], pairs: dict[str, str], size: int) -> dict[str, int]:
    """Drift behind the integration's back; returns the counts a reconcile must find."""
    k = max(1, size // 1000)
    state = rig.bp_server.simulator.state
    with state.lock:
        for bp_id in bp_ids[:k]:
            state.contacts[int(bp_id)]["lastName"] = "Renamed"
    edits = [{"contactid": pairs[b], "firstname": "Edited"} for b in bp_ids[k : 2 * k]]
    assert all(o.ok for o in rig.dv.update_multiple("contacts", edits).outcomes)
    for bp_id in bp_ids[2 * k : 2 * k + 10]:
        rig.store.links.unlink("customer", "brightpearl", bp_id)
    rig.seed_brightpearl([person(size + i) for i in range(10)])
    return {"drift": 2 * k, "unlinked": 10, "missing_in_dataverse": 10}


def measure(size: int) -> dict[str, Any]:
    rig = Rig(None, realistic=False)
    try:
        started = time.monotonic()
        bp_ids, pairs = seed(rig, size)
        entity = CustomerReconcile(
            brightpearl=rig.bp, dataverse=rig.dv, store=rig.store, mapping=load_customer_mapping()
        )
        link_all(rig, entity, pairs)
        expected = inject(rig, bp_ids, pairs, size)
        setup_seconds = time.monotonic() - started
        reconciler = Reconciler(
            CUSTOMERS,
            entity,
            links=rig.store.links,
            cursors=rig.store.cursors,
            publish={"brightpearl": lambda envs: None, "dataverse": lambda envs: None},
            clock=lambda: datetime.now(UTC),
            sources={"brightpearl": "/brightpearl/bench", "dataverse": "/dataverse/bench"},
        )
        bp_before, dv_before = rig.calls()
        tracemalloc.start()
        started = time.monotonic()
        report = reconciler.run()
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        bp_after, dv_after = rig.calls()
    finally:
        rig.close()
    bp_calls, dv_calls = _delta(bp_after, bp_before), _delta(dv_after, dv_before)
    bp_total, dv_total = sum(bp_calls.values()), sum(dv_calls.values())
    found = {k: v for k, v in report.counts.items() if v}
    out: dict[str, Any] = {
        "size": size,
        "setup_seconds": round(setup_seconds, 1),
        "seconds": round(seconds, 1),
        "peak_memory_mb": round(peak / 1e6, 1),
        "brightpearl_requests": bp_total,
        "brightpearl_requests_by_route": bp_calls,
        "dataverse_requests": dv_total,
        "dataverse_requests_by_kind": dv_calls,
        "brightpearl_share_of_day_budget_percent": round(100 * bp_total / DAY_BUDGET, 3),
        "findings": found,
        "findings_expected": expected,
        "findings_as_expected": found == expected,
    }
    if size < TARGET:
        factor = TARGET / size
        out["extrapolated_to_100000"] = {
            "brightpearl_requests": math.ceil(bp_total * factor),
            "dataverse_requests": math.ceil(dv_total * factor),
            "brightpearl_share_of_day_budget_percent": round(100 * bp_total * factor / DAY_BUDGET, 3),
            "how": "linear: every read is paged or chunked by a fixed size",
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=TARGET, help="customers in each system")
    args = parser.parse_args()
    result = measure(args.size)
    result["machine"] = {"python": platform.python_version(), "cpus": platform.machine()}
    result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
