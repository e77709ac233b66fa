"""Sync latency through the running sandbox, both directions (issue 11 item 7).

Starts the sandbox the way the chaos run does (tests/e2e/chaos/harness.py): Azurite, both
simulators in this process with 50 ms added to every API call (their `/_sandbox/config`
knob), the local bus, and the local Functions host running function_app.py as its own
process (sandbox.up's supervisor) with the tree's own settings (local.settings.example.json:
the default poll schedules, Brightpearl's real 200 requests a minute, no contact webhooks).
The webhooks are registered against the host as `syncctl sandbox up` does.

Then it creates records on one side as a user would and times until each exists on the other:

- Brightpearl -> Dynamics: a customer created in Brightpearl (as its UI would: the simulator's
  state, not the API, so the benchmark spends none of the integration's request budget).
  Brightpearl cannot send contact webhooks, so this is the contact-search poller's cadence
  (CUSTOMERS_BRIGHTPEARL_POLL_SCHEDULE) plus the flow.
- Dynamics -> Brightpearl: a contact created by a CRM user; its webhook reaches the host's
  ingress, the bus, and the flow after host.json's batch wait (maxBatchWaitTime).

Samples are spread over time (one each way every `--interval` seconds, not all at once), so
the figures are latency, not backlog. "Exists on the other side" is checked every 50 ms (both
simulators' state, read in this process), so figures are good to about 0.1 s. The Brightpearl
rate-budget share is what the Brightpearl simulator admitted from the integration while
sampling: requests per minute against the 200 a minute, with the busiest 60 s, and the
poller's own part (polls counted in the host's log, one search each).

`--burst N` then creates N Dynamics contacts at once (a backlog): the host hands them to the
flow in full batches whatever maxBatchWaitTime says, which the Brightpearl calls per record
and the time to clear show (compare `--batch-wait 5` with the default; docs/architecture.md,
"Batches, locks and host.json").

Usage: .venv/bin/python -m benchmarks.latency [--samples 100] [--interval 3] [--latency-ms 50]
       [--batch-wait SECONDS] [--burst 40] [--keep-log PATH] [--out benchmarks/results/latency.json]

About six minutes with the defaults on 2 cores. Writes benchmarks/results/latency.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import up as sandbox_up  # noqa: E402
from sandbox.azurite import AzuriteTable, free_port  # noqa: E402
from sandbox.brightpearl import SimulatorServer as BrightpearlServer  # noqa: E402
from sandbox.customers_solution import install  # noqa: E402
from sandbox.dataverse import SimulatorConfig as DataverseConfig  # noqa: E402
from sandbox.dataverse import SimulatorServer as DataverseServer  # noqa: E402
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET  # noqa: E402
from sandbox.demo import Endpoints, crm_contact, register_webhooks, shop_address, shop_contact  # noqa: E402

BUDGET_PER_MINUTE = 200  # Brightpearl's cap per account (reference §3)
POLL_LOG = "brightpearl contact poll:"  # shared/flows/pollers.py, one line per poll
SKIP_LOG = "skipped this round"  # shared/brightpearl/ratebudget.poll_may_run
CHECK_EVERY = 0.05


# ------------------------------------------------------------------------------- the sandbox
@contextlib.contextmanager
def running_sandbox(workdir: Path, *, latency_ms: float, batch_wait: float | None) -> Iterator[Sandbox]:
    """Azurite, both simulators (in this process) and the Functions host (a child process),
    webhooks registered; everything is stopped on the way out."""
    with contextlib.ExitStack() as stack:
        azurite = stack.enter_context(AzuriteTable()).connection_string
        bp = stack.enter_context(
            BrightpearlServer(seed_contacts=0, seed_products=0, seed_orders=0, contact_webhooks=False)
        )
        dv = stack.enter_context(DataverseServer(DataverseConfig(fractional_retry_after=True)))
        install(dv.simulator)
        http = stack.enter_context(httpx.Client(timeout=60))
        for url in (bp.url, dv.url):  # the simulators' latency knob, through their admin surfaces
            http.patch(f"{url}/_sandbox/config", json={"latency_ms": latency_ms}).raise_for_status()
        sb = Sandbox(workdir, bp, dv, http, free_port(), azurite)
        settings_file = workdir / "local.settings.json"
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": sb.values}))
        env = {**sb.values, "LATENCY_HOST_LOG": str(sb.log_path)}
        if batch_wait is not None:  # an app setting overriding host.json, as in Azure
            env["AzureFunctionsJobHost__extensions__serviceBus__maxBatchWaitTime"] = (
                f"00:00:{batch_wait:06.3f}"
            )
        host = f"-m sandbox.host --settings {settings_file} --host 127.0.0.1 --port {sb.host_port}"
        service = sandbox_up.Service(
            "functions host",
            ["sh", "-c", 'exec "$@" >>"$LATENCY_HOST_LOG" 2>&1', "sh", sys.executable, *host.split()],
            sb.host_port,
            f"http://127.0.0.1:{sb.host_port}/api",
            ready_path="/api/health",
            env=env,
        )
        supervisor = sandbox_up.Supervisor([service], echo=lambda line: None)
        stack.callback(supervisor.stop)
        supervisor.start()
        register_webhooks(sb.values, Endpoints.from_settings(sb.values, sb.host_port), lambda line: None)
        yield sb


class Sandbox:
    """What the benchmark drives and reads: both simulators (in this process) and the host's log."""

    def __init__(
        self,
        workdir: Path,
        bp: BrightpearlServer,
        dv: DataverseServer,
        http: httpx.Client,
        port: int,
        azurite: str,
    ) -> None:
        self.bp_sim = bp.simulator
        self.dv_sim = dv.simulator
        self.dv_url = dv.url
        self.http = http
        self.host_port = port
        self.log_path = workdir / "host.log"
        # the tree's example settings; only addresses and paths changed
        example = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
        self.values = {k: str(v) for k, v in example.items() if v != ""} | {
            "AzureWebJobsStorage": azurite,
            "STATE_TABLE_PREFIX": f"lat{uuid.uuid4().hex[:8]}",
            "LOCAL_BUS_PATH": str(workdir / "bus.sqlite3"),
            "BRIGHTPEARL_BASE_URL": bp.url,
            "BRIGHTPEARL_ACCOUNT": bp.account,
            "DATAVERSE_URL": dv.url,
            "DATAVERSE_TOKEN_URL": dv.token_url,
            "DATAVERSE_CLIENT_ID": DEFAULT_CLIENT_ID,
            "DATAVERSE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        }

    # -- acting as users ---------------------------------------------------------------------
    def bp_create(self, person: dict[str, str]) -> None:
        """A customer entered in Brightpearl's UI (no API request, no webhook)."""
        state = self.bp_sim.state
        address = state.create_address(shop_address(person["line1"], person["city"], person["postcode"]))
        state.create_contact(
            shop_contact(person["first"], person["last"], person["email"], person["phone"], address)
        )

    def dv_create(self, person: dict[str, str]) -> None:
        """A contact created by a CRM user (its webhook goes to the host)."""
        body = {"method": "POST", "path": "contacts", "body": crm_contact(person)}
        out = self.http.post(f"{self.dv_url}/_sandbox/crm", json=body).json()
        if out["status"] >= 300:
            raise RuntimeError(f"the Dataverse simulator refused a contact: {out['body']}")

    # -- looking -----------------------------------------------------------------------------
    def bp_emails(self) -> set[str]:
        with self.bp_sim.state.lock:
            contacts = list(self.bp_sim.state.contacts.values())
        return {_bp_email(c) for c in contacts}

    def dv_emails(self) -> set[str]:
        with self.dv_sim.lock:  # in process: reading the table over HTTP every 50 ms costs CPU
            rows = list(self.dv_sim.engine.db.rows.get("contact", {}).values())
        return {str(r.get("emailaddress1") or "").lower() for r in rows}

    def bp_admitted(self) -> list[float]:
        """Times (simulator clock) of every Brightpearl API request admitted so far."""
        throttle = self.bp_sim.throttle
        with throttle._lock:
            return sorted(t for times in throttle.admitted_log.values() for t in times)

    def bp_now(self) -> float:
        return float(self.bp_sim.throttle._clock())

    def bp_by_endpoint(self) -> dict[str, int]:
        with self.bp_sim._faults_lock:
            return dict(self.bp_sim.requests)

    def log_count(self, text: str) -> int:
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(encoding="utf-8", errors="replace").count(text)


def _bp_email(contact: dict[str, Any]) -> str:
    emails = (contact.get("communication") or {}).get("emails") or {}
    return str((emails.get("PRI") or {}).get("email") or "").lower()


FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Niklaus", "Radia", "Tony")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Wirth", "Perlman", "Hoare")
_people = iter(range(1, 1_000_000))


def person(tag: str) -> dict[str, str]:
    """A distinct customer as a user types it: unique e-mail (how it is found on the other
    side), surname and postcode, so no two samples look like likely duplicates of each other."""
    i = next(_people)
    return {
        "first": FIRST[i % len(FIRST)],
        "last": f"{LAST[i // len(FIRST) % len(LAST)]}-{tag}{i}",
        "email": f"lat.{tag}.{i}.{uuid.uuid4().hex[:6]}@example.org",
        "phone": f"0117 496 {i % 10000:04d}",
        "line1": f"{i} Latency Row",
        "city": "Bristol",
        "postcode": f"BS{i // 1000 + 1} {i % 1000:03d}X",
    }


# ------------------------------------------------------------------------------- measuring
@dataclass
class Watch:
    """Times, from creation, until each e-mail is seen on the other side."""

    look: Callable[[], set[str]]
    started: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, email: str) -> None:
        with self.lock:
            self.started[email] = time.monotonic()

    def check(self) -> None:
        with self.lock:
            waiting = [e for e in self.started if e not in self.seen]
        if not waiting:
            return
        present = self.look()
        now = time.monotonic()
        with self.lock:
            for email in waiting:
                if email in present:
                    self.seen[email] = now - self.started[email]

    def pending(self) -> int:
        with self.lock:
            return len(self.started) - len(self.seen)


@contextlib.contextmanager
def watching(*watches: Watch) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            for watch in watches:
                with contextlib.suppress(httpx.HTTPError):
                    watch.check()
            stop.wait(CHECK_EVERY)

    thread = threading.Thread(target=loop, name="latency-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def wait_for(watches: tuple[Watch, ...], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(w.pending() for w in watches) and time.monotonic() < deadline:
        time.sleep(0.2)


def figures(watch: Watch) -> dict[str, Any]:
    values = sorted(watch.seen.values())
    out: dict[str, Any] = {"samples": len(watch.started), "arrived": len(values)}
    in_order = [round(watch.seen[e], 2) if e in watch.seen else None for e in watch.started]
    if values:
        out.update(
            p50_seconds=round(statistics.median(values), 2),
            p95_seconds=round(_percentile(values, 95), 2),
            max_seconds=round(values[-1], 2),
            mean_seconds=round(statistics.fmean(values), 2),
        )
    out["seconds_in_creation_order"] = in_order
    return out


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def budget_share(admitted: list[float], start: float, end: float, polls: int, skipped: int) -> dict[str, Any]:
    inside = [t for t in admitted if start <= t <= end]
    minutes = max(end - start, 1e-9) / 60
    busiest, first = 0, 0
    for last, t in enumerate(inside):
        while inside[first] <= t - 60:
            first += 1
        busiest = max(busiest, last - first + 1)
    per_minute = len(inside) / minutes
    return {
        "budget_requests_per_minute": BUDGET_PER_MINUTE,
        "requests": len(inside),
        "minutes": round(minutes, 2),
        "requests_per_minute": round(per_minute, 1),
        "share": round(per_minute / BUDGET_PER_MINUTE, 4),
        "busiest_60s_requests": busiest,
        "busiest_60s_share": round(busiest / BUDGET_PER_MINUTE, 4),
        "poller_polls": polls,
        "poller_requests_per_minute": round(polls / minutes, 2),
        "poller_share": round(polls / minutes / BUDGET_PER_MINUTE, 4),
        "poller_rounds_skipped": skipped,
    }


def warm_up(sb: Sandbox, timeout: float = 120.0) -> None:
    """One record each way first: tokens, metadata, the first poll (its cursor) are not latency."""
    to_dv, to_bp = Watch(sb.dv_emails), Watch(sb.bp_emails)
    with watching(to_dv, to_bp):
        a, b = person("bp"), person("dv")
        sb.bp_create(a)
        to_dv.add(a["email"])
        sb.dv_create(b)
        to_bp.add(b["email"])
        wait_for((to_dv, to_bp), timeout)
    if to_dv.pending() or to_bp.pending():
        raise RuntimeError(f"warm-up records did not sync within {timeout:.0f}s; see {sb.log_path}")


def sample(sb: Sandbox, samples: int, interval: float, drain: float) -> dict[str, Any]:
    to_dv, to_bp = Watch(sb.dv_emails), Watch(sb.bp_emails)
    polls0, skipped0 = sb.log_count(POLL_LOG), sb.log_count(SKIP_LOG)
    endpoints0 = sb.bp_by_endpoint()
    start = sb.bp_now()
    began = time.monotonic()
    with watching(to_dv, to_bp):
        for n in range(samples):
            due = began + n * interval
            time.sleep(max(0.0, due - time.monotonic()))
            a = person("bp")
            sb.bp_create(a)
            to_dv.add(a["email"])
            time.sleep(max(0.0, due + interval / 2 - time.monotonic()))  # the other way half a step later
            b = person("dv")
            sb.dv_create(b)
            to_bp.add(b["email"])
        wait_for((to_dv, to_bp), drain)
    end = sb.bp_now()
    endpoints = {
        k: v - endpoints0.get(k, 0) for k, v in sb.bp_by_endpoint().items() if v - endpoints0.get(k, 0)
    }
    return {
        "brightpearl_to_dynamics": figures(to_dv),
        "dynamics_to_brightpearl": figures(to_bp),
        "brightpearl_rate_budget": budget_share(
            sb.bp_admitted(),
            start,
            end,
            sb.log_count(POLL_LOG) - polls0,
            sb.log_count(SKIP_LOG) - skipped0,
        ),
        "brightpearl_requests_by_endpoint": dict(sorted(endpoints.items())),
        "sampling_seconds": round(time.monotonic() - began, 1),
    }


def burst(sb: Sandbox, records: int, timeout: float) -> dict[str, Any]:
    """N Dynamics contacts at once: how the host batches a backlog. Starts once the last 60 s
    used less than a quarter of the Brightpearl budget (at most a minute's wait), so the
    sampling before it does not slow it down."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = sb.bp_now()
        if sum(1 for t in sb.bp_admitted() if t > now - 60) < BUDGET_PER_MINUTE // 4:
            break
        time.sleep(1)
    watch = Watch(sb.bp_emails)
    before = len(sb.bp_admitted())
    began = time.monotonic()
    with watching(watch):
        for _ in range(records):
            b = person("burst")
            sb.dv_create(b)
            watch.add(b["email"])
        wait_for((watch,), timeout)
    seconds = time.monotonic() - began
    used = len(sb.bp_admitted()) - before
    out = figures(watch)
    out.update(
        seconds_to_clear=round(seconds, 1),
        brightpearl_requests=used,
        brightpearl_requests_per_record=round(used / max(len(watch.seen), 1), 2),
    )
    return out


def host_json_batch(batch_wait: float | None) -> dict[str, Any]:
    sb = json.loads((ROOT / "host.json").read_text())["extensions"]["serviceBus"]
    keys = ("maxMessageBatchSize", "minMessageBatchSize", "maxBatchWaitTime")
    out = {k: sb.get(k) for k in keys}
    if batch_wait is not None:
        out["maxBatchWaitTime"] = f"{batch_wait:g} s (overridden by --batch-wait)"
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="latency-") as tmp,
        running_sandbox(Path(tmp), latency_ms=args.latency_ms, batch_wait=args.batch_wait) as sb,
    ):
        schedule = sb.values.get("CUSTOMERS_BRIGHTPEARL_POLL_SCHEDULE")
        print(f"sandbox up (host log {sb.log_path}); warming up …", flush=True)
        warm_up(sb)
        print(f"sampling {args.samples} each way, one every {args.interval:g} s …", flush=True)
        result: dict[str, Any] = {
            "benchmark": "sync latency through the sandbox (benchmarks/latency.py), both directions",
            "python": platform.python_version(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": {
                "api_latency_ms_per_call": args.latency_ms,
                "brightpearl_poll_schedule": schedule,
                "host_json_service_bus": host_json_batch(args.batch_wait),
                "samples_each_way": args.samples,
                "seconds_between_samples": args.interval,
            },
            "notes": [
                "latency = from the record's creation on one side until the other side has it "
                "(checked every 50 ms)",
                "Brightpearl -> Dynamics has no webhook (Brightpearl offers no contact events): "
                "the contact-search poll's cadence plus the flow",
                "Dynamics -> Brightpearl: webhook -> ingress -> bus -> host batch wait -> flow",
                "rate budget: every Brightpearl API request the simulator admitted while sampling "
                "(the flows, the poller, echo checks) against 200 a minute; samples are created in "
                "Brightpearl's state directly (a user in its UI), not through the API",
            ],
        }
        result.update(sample(sb, args.samples, args.interval, args.drain))
        print(json.dumps({k: result[k] for k in ("brightpearl_to_dynamics", "dynamics_to_brightpearl")}))
        if args.burst:
            print(f"burst of {args.burst} Dynamics contacts …", flush=True)
            result["dynamics_burst"] = burst(sb, args.burst, args.drain * 3)
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        if args.keep_log:
            shutil.copyfile(sb.log_path, args.keep_log)
        errors = re.findall(r"^.*(?:Traceback|ERROR).*$", sb.log_path.read_text(errors="replace"), re.M)
        result["host_log_error_lines"] = len(errors)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=100, help="records each way (default 100)")
    parser.add_argument(
        "--interval", type=float, default=3.0, help="seconds between samples (each way; default 3)"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every simulated API call")
    parser.add_argument(
        "--batch-wait",
        type=float,
        default=None,
        help="override host.json's maxBatchWaitTime (seconds), e.g. 5 for the earlier setting",
    )
    parser.add_argument(
        "--burst", type=int, default=40, help="Dynamics contacts created at once afterwards (0: none)"
    )
    parser.add_argument("--drain", type=float, default=90.0, help="seconds to wait for the last samples")
    parser.add_argument("--keep-log", type=Path, help="copy the host's log here at the end")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency.json")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.interval <= 0:
        parser.error("--samples must be at least 1 and --interval positive")
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
