"""State-store batching: requests and time of batched vs one-at-a-time calls, against Azurite.

Starts an in-memory Azurite on a free loopback port, seeds N links, and measures for each pair
of operations the HTTP requests sent (counted by an azure-core response hook) and the elapsed
time: get() per record vs get_many(), from the origin side and from the mirror side;
Ledger.seen() per key vs seen_many(); AuditLog.record() per entry vs record_many(). Writes
benchmarks/results/store.json; ratios compare the two modes within the same run.

    python -m benchmarks.store [--records 300]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient

from sandbox.azurite import AzuriteTable
from shared.store import AuditEntry, AuditResult, StateStore

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


class RequestCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, response: Any) -> None:
        self.count += 1


def measure(counter: RequestCounter, action: Callable[[], object]) -> dict[str, float]:
    before = counter.count
    started = time.perf_counter()
    action()
    return {"requests": counter.count - before, "seconds": round(time.perf_counter() - started, 4)}


def compare(
    name: str, counter: RequestCounter, single: Callable[[], object], batched: Callable[[], object]
) -> dict[str, Any]:
    one = measure(counter, single)
    many = measure(counter, batched)
    return {
        "operation": name,
        "one_at_a_time": one,
        "batched": many,
        "request_ratio": round(one["requests"] / max(many["requests"], 1), 2),
        "speedup": round(one["seconds"] / max(many["seconds"], 1e-9), 2),
    }


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        flow="customers-to-dataverse",
        entity="contact",
        source_system="brightpearl",
        source_id=str(n),
        target_system="dataverse",
        target_id=f"dv-{n}",
        result=AuditResult.SYNCED,
        duration_ms=12,
    )


def run(records: int) -> dict[str, Any]:
    counter = RequestCounter()
    with AzuriteTable() as azurite:
        service = TableServiceClient.from_connection_string(
            azurite.connection_string, raw_response_hook=counter
        )
        store = StateStore(service, table_prefix="bench")
        store.ensure_tables()
        for n in range(records):
            store.links.link("contact", "brightpearl", n, "dataverse", f"dv-{n}", source_hash="h")
            store.ledger.record(f"msg-{n}")
        ids = list(range(records))
        dv_ids = [f"dv-{n}" for n in ids]
        keys = [f"msg-{n}" for n in ids]
        results = [
            compare(
                "links from the origin side",
                counter,
                lambda: [store.links.get("contact", "brightpearl", n) for n in ids],
                lambda: store.links.get_many("contact", "brightpearl", ids),
            ),
            compare(
                "links from the mirror side",
                counter,
                lambda: [store.links.get("contact", "dataverse", i) for i in dv_ids],
                lambda: store.links.get_many("contact", "dataverse", dv_ids),
            ),
            compare(
                "ledger lookups",
                counter,
                lambda: [store.ledger.seen(k) for k in keys],
                lambda: store.ledger.seen_many(keys),
            ),
            compare(
                "audit writes",
                counter,
                lambda: [store.audit.record(entry(n)) for n in ids],
                lambda: store.audit.record_many([entry(n) for n in ids]),
            ),
        ]
        store.close()
    return {
        "benchmark": "store",
        "at": datetime.now(UTC).isoformat(),
        "records": records,
        "backend": "Azurite 3.35.0 in memory (request counts carry over to Azure; times do not)",
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    args = parser.parse_args()
    result = run(args.records)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "store.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
