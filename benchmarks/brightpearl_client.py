"""Benchmark of the Brightpearl client against the simulator: API calls and seconds to fetch
10,000 contacts by id set and by search, and the client's own overhead per call.

    .venv/bin/python -m benchmarks.brightpearl_client [--records 10000] [--out PATH]

Writes benchmarks/results/brightpearl_client.json. Figures are ratios within one run (calls
per record versus one call per record; client time versus a bare httpx call of the same
URL on the same kind of connection); absolute seconds depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from sandbox.brightpearl import SimulatorServer
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.ratebudget import RateBudget
from shared.brightpearl.settings import BrightpearlSettings

DEFAULT_OUT = Path(__file__).parent / "results" / "brightpearl_client.json"
HEADERS = {"brightpearl-app-ref": "sandbox-app", "brightpearl-account-token": "sandbox-account-token"}


def _client(url: str, budget: RateBudget, **env: str) -> BrightpearlClient:
    settings = BrightpearlSettings.model_validate(
        {
            "BRIGHTPEARL_ACCOUNT": "sandbox",
            "BRIGHTPEARL_BASE_URL": url,
            "BRIGHTPEARL_APP_REF": "sandbox-app",
            "BRIGHTPEARL_ACCOUNT_TOKEN": "sandbox-account-token",
            **env,
        }
    )
    return BrightpearlClient.from_settings(settings, budget=budget)


def fetch_by_id(url: str, ids: list[int]) -> dict[str, Any]:
    # Real limits: 200 requests per rolling minute; the run stays inside them.
    with _client(url, RateBudget(200, 60.0, reserve=2)) as client:
        started = time.perf_counter()
        contacts = client.get_contacts(ids)
        seconds = time.perf_counter() - started
        assert len(contacts) == len(ids), "every seeded contact must come back"
        return _reading(client.stats.calls, seconds, len(contacts))


def fetch_by_search(url: str, expected: int) -> dict[str, Any]:
    with _client(url, RateBudget(200, 60.0, reserve=2)) as client:
        started = time.perf_counter()
        rows = list(
            client.search_contacts(
                columns=["contactId", "primaryEmail", "firstName", "lastName", "updatedOn"]
            )
        )
        seconds = time.perf_counter() - started
        assert len(rows) == expected, "the search must page through every contact"
        return _reading(client.stats.calls, seconds, len(rows))


def _reading(calls: int, seconds: float, records: int) -> dict[str, Any]:
    return {
        "calls": calls,
        "seconds": round(seconds, 3),
        "records": records,
        "records_per_call": round(records / calls, 1),
    }


def overhead_over_loopback(url: str, contact_id: int, n: int) -> dict[str, Any]:
    """Median time per call: the client (budget, auth, retry wrapper, decode, pydantic) vs bare httpx."""
    path = f"/public-api/sandbox/contact-service/contact/{contact_id}"
    raw_times, client_times = [], []
    with (
        httpx.Client(base_url=url, headers=HEADERS) as http,
        _client(url, RateBudget(1_000_000, 60.0)) as client,
    ):
        for _ in range(20):  # warm both connections
            http.get(path).raise_for_status()
            client.get_contacts([contact_id])
        for _ in range(n):
            t0 = time.perf_counter()
            http.get(path).json()
            t1 = time.perf_counter()
            client.get_contacts([contact_id])
            t2 = time.perf_counter()
            raw_times.append(t1 - t0)
            client_times.append(t2 - t1)
    raw, full = statistics.median(raw_times), statistics.median(client_times)
    return {
        "calls": n,
        "raw_httpx_ms": round(raw * 1000, 3),
        "client_ms": round(full * 1000, 3),
        "overhead_ms": round((full - raw) * 1000, 3),
        "ratio": round(full / raw, 2),
    }


def overhead_in_process(contact: dict[str, Any], n: int) -> dict[str, Any]:
    """The same comparison without a network: both sides answered by httpx.MockTransport."""
    body = json.dumps({"response": [contact]}).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=body,
            headers={
                "content-type": "application/json",
                "brightpearl-requests-remaining": "150",
                "brightpearl-next-throttle-period": "30000",
            },
        )

    mock = httpx.MockTransport(answer)
    settings = BrightpearlSettings.model_validate(
        {
            "BRIGHTPEARL_ACCOUNT": "sandbox",
            "BRIGHTPEARL_BASE_URL": "http://bench.invalid",
            "BRIGHTPEARL_APP_REF": "a",
            "BRIGHTPEARL_ACCOUNT_TOKEN": "t",
        }
    )
    client = BrightpearlClient.from_settings(
        settings, http=httpx.Client(transport=mock), budget=RateBudget(1_000_000, 60.0)
    )
    http = httpx.Client(transport=mock, base_url="http://bench.invalid")
    cid = contact["contactId"]
    t0 = time.perf_counter()
    for _ in range(n):
        http.get(f"/public-api/sandbox/contact-service/contact/{cid}", headers=HEADERS).json()
    t1 = time.perf_counter()
    for _ in range(n):
        client.get_contacts([cid])
    t2 = time.perf_counter()
    raw, full = (t1 - t0) / n, (t2 - t1) / n
    return {
        "calls": n,
        "raw_httpx_ms": round(raw * 1000, 3),
        "client_ms": round(full * 1000, 3),
        "overhead_ms": round((full - raw) * 1000, 3),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--overhead-calls", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    with SimulatorServer(
        seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=200, rate_window_seconds=60.0
    ) as server:
        seeded_at = time.perf_counter()
        server.simulator.state.seed(contacts=args.records)
        seed_seconds = time.perf_counter() - seeded_at
        ids = sorted(server.simulator.state.contacts)
        by_id = fetch_by_id(server.url, ids)
        by_search = fetch_by_search(server.url, len(ids))
        server.simulator.configure(rate_limit=1_000_000)  # overhead runs would otherwise wait on the cap
        loopback = overhead_over_loopback(server.url, ids[0], args.overhead_calls)
        raw_contact = json.loads(
            server.simulator.dumps(
                server.simulator.render_contact(server.simulator.state.contacts[ids[0]], None)
            )
        )
    in_process = overhead_in_process(raw_contact, args.overhead_calls * 10)

    result = {
        "benchmark": "brightpearl_client",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "records": len(ids),
        "seed_seconds": round(seed_seconds, 2),
        "target": {"max_calls": 60, "min_records_per_call": 170},
        "naive_calls_one_per_record": len(ids),
        "by_id": by_id,
        "by_search": by_search,
        "call_reduction_vs_naive": {
            "by_id": round(len(ids) / by_id["calls"], 1),
            "by_search": round(len(ids) / by_search["calls"], 1),
        },
        "meets_target": by_id["calls"] <= 60 and by_search["calls"] <= 60,
        "client_overhead_per_call": {"loopback": loopback, "in_process": in_process},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
