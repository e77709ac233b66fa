"""Operations console page load against a large audit table (issue 15: 1,000,000 audit rows).

Starts an Azurite Table service on a free loopback port, writes `--rows` audit rows for four
flows spread evenly over the 90 days of retention (90 % synced, 5 % skipped, 3 % needs-review,
2 % dead-lettered, with reason codes and latencies), then times what the console does for one
page: every panel's figures (`shared.ops.console.overview`) and the HTML, for windows of 1 and
6 hours (audit rows: a key-range query per flow over the window), 24 hours, 7 and 90 days
(hourly rollups), each loaded twice: the first load of a long window counts the hours that
have no rollup yet from their rows (at most 50,000 rows per flow) and stores their rollups,
the second reads them. The HTTP requests sent to the table service are counted by an
azure-core response hook.

Rows are written in the audit's own flow-partition layout (`f|<flow>|<inverted day>`,
inverted-time RowKeys) with the AuditLog's key functions; the per-record index copies, which
the console never reads, are not written (they would double the seeding time only).

    python -m benchmarks.console [--rows 1000000] [--workers 4]

Writes benchmarks/results/console.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient

from benchmarks.store import RequestCounter
from sandbox.azurite import AzuriteTable
from shared.bus.backlog import Backlog
from shared.ops import console, metrics, runbook
from shared.ops.console_html import Links, render_overview
from shared.store import StateStore
from shared.store.audit import _INVERTED_BASE, _flow_partition, _micros
from shared.store.state import REQUEST_TIMEOUTS
from shared.store.tables import write_in_transactions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FLOWS = ("customers-to-dataverse", "customers-to-brightpearl", "products-to-dataverse", "stock-to-dataverse")
OUTCOMES = (
    (0.90, "synced", None),
    (0.05, "skipped", None),
    (0.03, "needs-review", "LikelyDuplicate"),
    (0.02, "dead-lettered", "InvalidEmail"),
)
RETENTION = timedelta(days=90)


def _outcome(rng: random.Random) -> tuple[str, str | None]:
    pick = rng.random()
    for share, result, reason in OUTCOMES:
        if pick < share:
            return result, reason
        pick -= share
    return OUTCOMES[0][1], OUTCOMES[0][2]


def rows_of_day(flow: str, day: int, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` audit rows of `flow` in the day `day` days before NOW, as AuditLog writes them."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=day + 1)
    rows = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.uniform(0, 86_399))
        result, reason = _outcome(rng)
        row_key = f"{_INVERTED_BASE - _micros(at):017d}_{uuid.UUID(int=rng.getrandbits(128)).hex}"
        record = str(rng.randint(1, 500_000))
        rows.append(
            {
                "PartitionKey": _flow_partition(flow, at),
                "RowKey": row_key,
                "flow": flow,
                "entity": "customer",
                "source_system": "brightpearl",
                "source_id": record,
                "target_system": "dataverse",
                "result": result,
                "reason_code": reason,
                "description": f"brightpearl record {record}" + (f": {reason}" if reason else ""),
                "duration_ms": rng.randint(20, 900),
                "message_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "attempt": 1,
                "at": at,
                "observed_at": at - timedelta(seconds=rng.uniform(0.3, 4.0)),
            }
        )
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def seed(store: StateStore, total: int, workers: int) -> float:
    days = RETENTION.days
    per_day = total // (len(FLOWS) * days)
    jobs = [(flow, day) for flow in FLOWS for day in range(days)]
    store.audit._register_flows(set(FLOWS))
    started = time.perf_counter()

    def write(job: tuple[str, int]) -> int:
        flow, day = job
        rows = rows_of_day(flow, day, per_day, hash(job) & 0xFFFF)
        return write_in_transactions(store.audit.table, "create", rows, "seed audit")

    written = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for count in pool.map(write, jobs):
            written += count
            if written // 100_000 != (written - count) // 100_000:
                print(f"  {written:,} rows after {time.perf_counter() - started:.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    print(f"seeded {written:,} audit rows in {elapsed:.0f} s ({written / elapsed:,.0f} rows/s)", flush=True)
    return elapsed


def page_load(store: StateStore, counter: RequestCounter, hours: float) -> dict[str, Any]:
    window = metrics.Window.last(hours, NOW)
    before = counter.count
    started = time.perf_counter()
    ov = console.overview(
        store,
        window,
        flows=list(FLOWS),
        backlog=lambda: [Backlog("topic", f, 0, 0, 0, 0, 0) for f in FLOWS],
        budget=lambda: None,
        dataverse=lambda: None,
        now=NOW,
    )
    html = render_overview(ov, Links("/api/ops", "key"), hours, runbook.fixes())
    seconds = time.perf_counter() - started
    return {
        "window_hours": hours,
        "seconds": round(seconds, 3),
        "requests": counter.count - before,
        "audit_rows_covered": sum(f.rows for f in ov.flows),
        "truncated_flows": [f.flow for f in ov.flows if f.truncated],
        "hours_from_rollups": sum(f.hours_from_rollups for f in ov.flows),
        "html_bytes": len(html.encode()),
        "errors": ov.flows_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    counter = RequestCounter()
    with AzuriteTable() as azurite:
        service = TableServiceClient.from_connection_string(
            azurite.connection_string, raw_response_hook=counter, **REQUEST_TIMEOUTS
        )
        store = StateStore(service, table_prefix="bench", clock=lambda: NOW)
        store.ensure_tables()
        seeding = seed(store, args.rows, args.workers)
        # each window twice: the first load of a long window also stores its hourly rollups
        loads = [
            {**page_load(store, counter, hours), "load": load}
            for hours in (1, 6, 24, 168, 2160)
            for load in ("first", "again")
        ]
        for load in loads:
            print(json.dumps(load), flush=True)
    result = {
        "benchmark": "console",
        "audit_rows": args.rows,
        "flows": len(FLOWS),
        "days": RETENTION.days,
        "seed_seconds": round(seeding, 1),
        "page_loads": loads,
        "note": "Azurite evaluates table filters over its in-memory collection; Azure Table Storage "
        "serves the same key-range queries from its partition index.",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "console.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
