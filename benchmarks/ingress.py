"""Ingress throughput: accepted Brightpearl webhooks per second through the local host.

Starts the local Functions host (`python -m sandbox.host`) in a child process on a free
loopback port with a fresh local bus, fires N webhook deliveries from C concurrent clients,
and writes benchmarks/results/ingress.json: accepted requests per second, the host's CPU
seconds per request (user+system of the host process only, measured with psutil), latency
percentiles, and the notices that reached the bus (to show nothing was lost).

    python -m benchmarks.ingress [--requests 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_env(bus_path: Path) -> dict[str, str]:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    env = {**os.environ, **values}
    env.update(LOCAL_BUS_PATH=str(bus_path), LOG_LEVEL="WARNING")
    return env


async def fire(url: str, key: str, secret: str, account: str, count: int, concurrency: int) -> list[float]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    statuses: dict[int, int] = {}

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = {
                "accountCode": account, "resourceType": "contact", "id": f"{i + 1}",
                "lifecycleEvent": "modified", "fullEvent": "contact.modified",
                "raisedOn": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                "brightpearlVersion": "4.95.2647", "secret": secret,
            }
            t0 = time.perf_counter()
            response = await client.post(url, params={"code": key}, json=body)
            latencies.append(time.perf_counter() - t0)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    fire.statuses = statuses  # type: ignore[attr-defined]
    return latencies


def run(requests: int, concurrency: int) -> dict:
    from shared.bus.local import LocalBus
    from shared.bus.topology import load_topology

    with tempfile.TemporaryDirectory() as tmp:
        bus_path = Path(tmp) / "bus.sqlite3"
        env = settings_env(bus_path)
        port = free_port()
        log_path = Path(tmp) / "host.log"  # a file, not a pipe: an undrained pipe would stall the host
        log_file = log_path.open("wb")
        host = subprocess.Popen(
            [sys.executable, "-m", "sandbox.host", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}/api"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    if host.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("local host did not start:\n" + log_path.read_text()) from None
                    time.sleep(0.2)
            proc = psutil.Process(host.pid)
            url = f"{base}/webhooks/brightpearl"
            key, secret = env["LOCAL_FUNCTION_KEY"], env["BRIGHTPEARL_WEBHOOK_SECRET"]
            account = env["BRIGHTPEARL_ACCOUNT"]
            asyncio.run(fire(url, key, secret, account, min(200, requests), concurrency))  # warm-up
            cpu0 = sum(proc.cpu_times()[:2])
            t0 = time.perf_counter()
            latencies = asyncio.run(fire(url, key, secret, account, requests, concurrency))
            elapsed = time.perf_counter() - t0
            cpu = sum(proc.cpu_times()[:2]) - cpu0
            statuses = fire.statuses  # type: ignore[attr-defined]
        finally:
            host.terminate()
            host.wait(timeout=30)
            log_file.close()
        bus = LocalBus(bus_path, load_topology())
        try:
            counts = bus.counts("brightpearl-changes", "customers-to-dataverse")
        finally:
            bus.close()
    accepted = statuses.get(202, 0)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "benchmark": "ingress",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "requests": requests,
        "concurrency": concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "accepted_per_second": round(accepted / elapsed, 1),
        "host_cpu_ms_per_request": round(1000 * cpu / requests, 3),
        "latency_ms": {"p50": round(1000 * quantiles[49], 2), "p95": round(1000 * quantiles[94], 2),
                       "p99": round(1000 * quantiles[98], 2)},
        # Warm-up deliveries repeat the first ones exactly: duplicate detection drops them,
        # so every distinct delivery is on the bus exactly once.
        "notices_on_bus": counts.active,
        "target_accepted_per_second": 500,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    result = run(args.requests, args.concurrency)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingress.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
