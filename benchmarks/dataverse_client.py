"""Benchmark: upsert N contacts by alternate key with UpsertMultiple vs one PATCH per record.

Runs the real client against the Dataverse simulator on loopback and writes
benchmarks/results/dataverse_client.json: API calls (counted by the simulator) and seconds
for each approach, and their ratios measured in the same run.

The per-user request cap (6,000 per 300 s) is lifted for this run so the naive baseline
measures request overhead rather than waiting out 429s; with the real cap the naive run would
additionally be throttled after 6,000 calls (noted in the JSON).

    .venv/bin/python benchmarks/dataverse_client.py [--contacts 10000] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox.dataverse import SimulatorConfig, SimulatorServer
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from shared.dataverse import odata
from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential

RESULTS = Path(__file__).parent / "results" / "dataverse_client.json"


def rows(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "bpi_brightpearlid": f"{prefix}{i}",
            "firstname": "Bench",
            "lastname": f"Contact {i}",
            "emailaddress1": f"bench.{prefix}{i}@example.com",
            "telephone1": "+44 20 7946 0000",
        }
        for i in range(n)
    ]


def api_calls(admin: httpx.Client) -> int:
    return int(admin.get("counters").json()["api_calls"])


def run(contacts: int, latency_ms: float, batch_size: int) -> dict[str, Any]:
    config = SimulatorConfig(request_limit=10**9, latency_ms=latency_ms)
    with (
        SimulatorServer(config) as server,
        httpx.Client(base_url=f"{server.url}/_sandbox/", timeout=600) as admin,
    ):
        credential = SandboxCredential(server.token_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        with DataverseClient(server.url, credential, bulk_batch_size=batch_size) as client:
            client.who_am_i()  # token + dop hint, outside the measurements

            before = api_calls(admin)
            started = time.perf_counter()
            result = client.upsert_multiple(
                "contacts", rows(contacts, "B"), key_columns=["bpi_brightpearlid"]
            )
            bulk_seconds = time.perf_counter() - started
            bulk_calls = api_calls(admin) - before
            assert len(result.succeeded) == contacts, result.failed[:3]

            batch = rows(contacts, "N")
            before = api_calls(admin)
            started = time.perf_counter()
            client.map_concurrent(
                lambda row: client.upsert(
                    "contacts", {"bpi_brightpearlid": row["bpi_brightpearlid"]}, row, return_id=False
                ),
                batch,
            )
            naive_seconds = time.perf_counter() - started
            naive_calls = api_calls(admin) - before
            assert client.count("contacts", odata.eq("firstname", "Bench")) == min(2 * contacts, 5000)
            concurrency = client.gate.limit
    return {
        "benchmark": "dataverse_client.upsert_contacts",
        "contacts": contacts,
        "simulator_latency_ms": latency_ms,
        "client_concurrency": concurrency,
        "bulk": {
            "method": "UpsertMultiple by bpi_brightpearlid",
            "batch_size": batch_size,
            "api_calls": bulk_calls,
            "seconds": round(bulk_seconds, 3),
        },
        "one_per_record": {
            "method": "PATCH contacts(bpi_brightpearlid=...) per record",
            "api_calls": naive_calls,
            "seconds": round(naive_seconds, 3),
        },
        "ratio_calls": round(naive_calls / bulk_calls, 1),
        "ratio_seconds": round(naive_seconds / bulk_seconds, 2) if bulk_seconds else None,
        "target_bulk_calls_at_most": 12,
        "note": "request cap lifted for the baseline; with the real 6,000/300 s cap the one-per-record run "
        "would also be throttled after 6,000 calls",
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    result = run(args.contacts, args.latency_ms, args.batch_size)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
