"""Ingress throughput: accepted Brightpearl webhooks per second through the local host.

Starts the local Functions host (`python -m sandbox.host`) in a child process on a free
loopback port with a fresh local bus, fires N webhook deliveries from C concurrent clients,
and writes benchmarks/results/ingress.json: accepted requests per second, the host's CPU
seconds per request (user+system of the host process only, measured with psutil), latency
percentiles, and the notices that reached the bus (to show nothing was lost).

    python -m benchmarks.ingress [--concurrency 32] [--load wrk|httpx] [--seconds 10] [--requests 3000]

wrk (Debian package `wrk`) is used when installed: it is a C load generator, so on a small
machine the measurement is not dominated by the client's own CPU. Without it, an asyncio
httpx client sends --requests deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
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


INGRESS_FUNCTIONS = ("brightpearl_webhook", "health")


def other_functions(env: dict[str, str]) -> list[str]:
    """Every function of the app except the ingress under test (flows, pollers)."""
    code = (
        "import json, function_app;"
        "print(json.dumps([f.get_function_name() for f in function_app.app.get_functions()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return [name for name in json.loads(out.strip().splitlines()[-1]) if name not in INGRESS_FUNCTIONS]


def settings_env(bus_path: Path) -> dict[str, str]:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    env = {**os.environ, **values}
    env.update(LOCAL_BUS_PATH=str(bus_path), LOG_LEVEL="WARNING")
    # Measure the ingress alone: flows would consume the notices (and the CPU) meanwhile.
    for name in other_functions(env):
        env[f"AzureWebJobs.{name}.Disabled"] = "true"
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
                "accountCode": account,
                "resourceType": "contact",
                "id": f"{i + 1}",
                "lifecycleEvent": "modified",
                "fullEvent": "contact.modified",
                "raisedOn": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
                "brightpearlVersion": "4.95.2647",
                "secret": secret,
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


WRK_SCRIPT = r"""
local counter = 0
local tid = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
end
function request()
  counter = counter + 1
  local id = tid * 10000000 + counter
  local body = string.format(
    '{"accountCode":"%s","resourceType":"contact","id":"%d","lifecycleEvent":"modified",' ..
    '"fullEvent":"contact.modified","raisedOn":"2026-11-01T00:00:00.%03dZ",' ..
    '"brightpearlVersion":"4.95.2647","secret":"%s"}',
    os.getenv("BENCH_ACCOUNT"), id, counter % 1000, os.getenv("BENCH_SECRET"))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def fire_wrk(
    url: str, key: str, secret: str, account: str, seconds: int, concurrency: int, tmp: Path
) -> dict:
    """Drive the ingress with wrk (a C load generator, so the client costs little CPU)."""
    script = tmp / "ingress.lua"
    script.write_text(WRK_SCRIPT)
    threads = max(1, min(2, concurrency))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"{url}?code={key}",
        ],
        env={**os.environ, "BENCH_SECRET": secret, "BENCH_ACCOUNT": account},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.MULTILINE))
    return {"total": total, "failed": int(non2xx.group(1)) if non2xx else 0, "latency": latency, "raw": out}


def wait_until_up(base: str, host: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.HTTPError:
            if host.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("local host did not start:\n" + log_path.read_text()) from None
            time.sleep(0.2)


def run(requests: int, concurrency: int, load: str, seconds: int) -> dict:
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
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}/api"
            wait_until_up(base, host, log_path)
            proc = psutil.Process(host.pid)
            url = f"{base}/webhooks/brightpearl"
            key, secret = env["LOCAL_FUNCTION_KEY"], env["BRIGHTPEARL_WEBHOOK_SECRET"]
            account = env["BRIGHTPEARL_ACCOUNT"]
            # Warm-up deliveries repeat the first ones of the httpx run exactly (same raisedOn),
            # so duplicate detection drops them when the measured run sends them again.
            asyncio.run(fire(url, key, secret, account, min(200, requests), concurrency))
            cpu0 = sum(proc.cpu_times()[:2])
            t0 = time.perf_counter()
            if load == "wrk":
                result = fire_wrk(url, key, secret, account, seconds, concurrency, Path(tmp))
                sent, failed = result["total"], result["failed"]
                latency = {f"p{k}": v for k, v in result["latency"].items()}
            else:
                latencies = asyncio.run(fire(url, key, secret, account, requests, concurrency))
                statuses = fire.statuses  # type: ignore[attr-defined]
                sent, failed = len(latencies), len(latencies) - statuses.get(202, 0)
                q = statistics.quantiles(latencies, n=100)
                latency = {
                    "p50": f"{1000 * q[49]:.2f}ms",
                    "p90": f"{1000 * q[89]:.2f}ms",
                    "p99": f"{1000 * q[98]:.2f}ms",
                }
            elapsed = time.perf_counter() - t0
            cpu = sum(proc.cpu_times()[:2]) - cpu0
        finally:
            host.terminate()
            host.wait(timeout=30)
            log_file.close()
        bus = LocalBus(bus_path, load_topology())
        try:
            on_bus = bus.counts("brightpearl-changes", "customers-to-dataverse").active
        finally:
            bus.close()
    accepted = sent - failed
    return {
        "benchmark": "ingress",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_generator": load,
        "concurrency": concurrency,
        "requests_sent": sent,
        "requests_failed": failed,
        "seconds": round(elapsed, 2),
        "accepted_per_second": round(accepted / elapsed, 1),
        "host_cpu_ms_per_request": round(1000 * cpu / max(sent, 1), 3),
        "latency": latency,
        # Every accepted delivery is a distinct change and must be on the bus once: with wrk
        # that is requests_sent + 200 warm-up deliveries + the few still in flight when wrk
        # stopped counting (at most `concurrency`).
        "notices_on_bus": on_bus,
        "target_accepted_per_second": 500,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--load",
        choices=("wrk", "httpx"),
        default=None,
        help="load generator (default: wrk when installed, else httpx)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of a wrk run")
    args = parser.parse_args()
    load = args.load or ("wrk" if shutil.which("wrk") else "httpx")
    result = run(args.requests, args.concurrency, load, args.seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingress.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
