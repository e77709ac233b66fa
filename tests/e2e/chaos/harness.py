"""The chaos run of issue 17: the sandbox driven as a black box through faults and a crash.

What one run does (all on loopback, everything started here is stopped here):

1. Starts Azurite, both simulators (Brightpearl with its real 200-requests-a-minute budget and
   no contact webhooks, as the real service; Dataverse with the integration's solution) and the
   local Functions host as a separate process through the sandbox's supervisor
   (`sandbox.up`), so it can be SIGKILLed. The host's log goes to `host.log`.
2. Registers the webhooks against a small loopback proxy in front of the host that posts about
   2 % of the webhook bodies twice.
3. Turns the faults on: about 10 % of the API requests on both sides fail (429 / 503
   throttles, 500 / 502 / 503, timeouts longer than the clients wait, connections dropped
   before or after the server applied the request).
4. Seeds N customers on each side: some the same person typed differently on both sides
   (e-mail case and spaces, phone and postcode formatting, country names), about 1 % invalid
   on purpose (bad e-mail; unknown country in Dynamics). Dynamics contacts are created as a
   CRM user, so their webhooks reach the host; Brightpearl has no contact webhooks.
5. Runs both backfills with `syncctl backfill customers --from brightpearl|dataverse`.
6. SIGKILLs the host mid-run; the sandbox's supervisor restarts it as the platform restarts a
   crashed worker (in trees whose supervisor cannot, the harness restarts it 16 s later, as the
   issue's outside run did). Then both backfills run again, as an operator would after a crash.
7. Turns the faults off and waits for convergence, then counts.

The result (`ChaosReport`) holds exact counts and the figures the issue asks for: time to
converge after the faults stop (and to 95 % of the waiting records), settlements that failed
because the message lock was lost (counted in the host's log), double dead letters, orphaned
Brightpearl postal addresses, unsettled messages per subscription.

Run it from the test (`tests/e2e/chaos/test_chaos.py`, CHAOS_SCALE) or standalone:

    .venv/bin/python -m tests.e2e.chaos.harness --scale 2000 --json chaos.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

import syncctl.main  # noqa: F401  (first: sandbox.demo's webhook registration imports syncctl.webhooks)
from sandbox import up as sandbox_up
from sandbox.azurite import AzuriteTable, free_port
from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from sandbox.customers_solution import install
from sandbox.dataverse import SimulatorConfig as DataverseConfig
from sandbox.dataverse import SimulatorServer as DataverseServer
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from sandbox.demo import Endpoints, crm_contact, register_webhooks, shop_address, shop_contact
from shared.bus.local import LocalBus
from shared.bus.topology import load_topology
from shared.store import StateStore
from tests.e2e.customers.conftest import DataverseAdmin
from tests.e2e.customers.test_faults_at_scale import person

ROOT = sandbox_up.ROOT  # the tree under test (its sandbox, function app and settings example)
SUBSCRIPTIONS = (
    ("brightpearl-changes", "customers-to-dataverse"),
    ("dataverse-changes", "customers-to-brightpearl"),
)
BP_INVALID_BASE, DV_BAD_EMAIL_BASE, DV_BAD_COUNTRY_BASE = 100_000, 200_000, 300_000
# (kind, weight) of the injected API faults; timeouts wait longer than the clients do.
BACKFILL_PATIENCE = 150.0  # seconds a backfill is re-run for (longer than a Brightpearl throttle window)
BP_FAULTS = (("throttle", 30), ("503", 15), ("500", 20), ("drop", 15), ("drop-before", 12), ("timeout", 8))
DV_FAULTS = (("429", 35), ("503", 15), ("502", 15), ("drop", 20), ("timeout", 15))


@dataclass(frozen=True)
class ChaosConfig:
    scale: int  # customers on each side, invalid ones included
    fault_rate: float = 0.10
    duplicate_rate: float = 0.02
    kill_at_progress: float = 0.3  # SIGKILL the host when this share of valid customers converged ...
    kill_deadline: float = 30.0  # ... or this many seconds after the backfills, whichever first
    restart_after: float = 16.0  # only where the sandbox does not restart the host itself
    fault_seconds: float = 60.0  # faults stay on at most this long after the backfills start
    faults_off_progress: float = 0.6  # ... or until this share converged (after the restart) ...
    fault_min_seconds: float = 40.0  # ... but at least this long
    converge_timeout: float = 150.0  # seconds after the faults stop
    check_every: float = 2.0
    poll_schedule_bp: str = "*/30 * * * * *"
    poll_schedule_dv: str = "15/30 * * * * *"
    seed: int = 17

    @classmethod
    def for_scale(cls, scale: int) -> ChaosConfig:
        if scale >= 500:
            return cls(
                scale,
                kill_deadline=300.0,
                fault_seconds=600.0,
                fault_min_seconds=120.0,
                converge_timeout=float(os.environ.get("CHAOS_CONVERGE_TIMEOUT", "2400")),
                check_every=10.0,
            )
        return cls(scale, converge_timeout=float(os.environ.get("CHAOS_CONVERGE_TIMEOUT", "150")))

    @property
    def invalid(self) -> int:
        return max(self.scale // 100, 2)

    @property
    def overlap(self) -> int:
        return max(self.scale // 20, 2)

    @property
    def unique(self) -> int:
        return self.scale - self.invalid - self.overlap

    def budget_seconds(self) -> float:
        """Wall-clock ceiling of a whole run (for the test's timeout)."""
        return (
            60
            + self.kill_deadline
            + self.restart_after
            + self.fault_seconds
            + self.converge_timeout
            + 300
            + 2 * BACKFILL_PATIENCE  # backfills re-run through a throttle window
        )


@dataclass
class ChaosReport:
    scale: int
    root: str
    converged: bool = False
    seconds_to_converge_after_faults_off: float | None = None
    seconds_to_95_percent_after_faults_off: float | None = None
    waiting_at_faults_off: int = 0
    lock_lost_settlements: int = 0
    max_delivery_count_dead_letters: int = 0
    double_dead_letters: int = 0
    orphaned_addresses: int = 0  # must be 0, lost answers included
    orphaned_address_ids: list[int] = field(default_factory=list)  # the first 50
    # For information: address-creating writes whose answer a fault swallowed (dropped connection
    # or timeout after Brightpearl applied it), which the flow has to find again instead of
    # posting twice, and how many of the orphans (if any) such a write created.
    lost_address_answers: int = 0
    orphaned_after_lost_answers: int = 0
    unsettled: dict[str, dict[str, int]] = field(default_factory=dict)
    valid_customers: int = 0
    valid_not_exactly_once: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)
    expected_contacts: int = 0
    linked_in_dynamics: int = 0
    distinct_links: int = 0
    dead_letters: dict[str, dict[str, int]] = field(default_factory=dict)
    invalid_records: dict[str, int] = field(default_factory=dict)
    missing_dead_letters: list[str] = field(default_factory=list)
    wrong_reason_dead_letters: list[str] = field(default_factory=list)
    unexpected_dead_letters: list[str] = field(default_factory=list)
    host_restarts: int = 0
    host_killed_at_progress: float | None = None
    host_down_seconds: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    timeline: list[tuple[float, int, int]] = field(default_factory=list)  # (s, customers waiting, messages)
    api_requests: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)
    fault_window: dict[str, int] = field(default_factory=dict)
    # API requests from the faults' end to convergence (Brightpearl's 200 a minute bound this phase)
    requests_while_converging: dict[str, int] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    retries_scheduled: int = 0
    notes: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        """Every broken invariant, one readable line each (empty = the run passed)."""
        out = []
        if not self.converged:
            out.append(f"did not converge within the timeout after the faults stopped ({self.notes[-1:]})")
        if self.valid_not_exactly_once:
            sample = dict(list(self.valid_not_exactly_once.items())[:5])
            out.append(
                f"{len(self.valid_not_exactly_once)} valid customers not exactly once on each side "
                f"(e.g. {sample})"
            )
        for side, count in self.contacts.items():
            if count != self.expected_contacts:
                out.append(f"{side} holds {count} contacts, expected {self.expected_contacts}")
        if self.linked_in_dynamics != self.valid_customers or self.distinct_links != self.linked_in_dynamics:
            out.append(
                f"{self.linked_in_dynamics} Dynamics contacts linked to {self.distinct_links} Brightpearl "
                f"contacts, expected {self.valid_customers} one to one"
            )
        if self.double_dead_letters:
            out.append(
                f"{self.double_dead_letters} extra dead letters for an invalid record already dead-lettered"
            )
        if self.missing_dead_letters:
            out.append(f"invalid records without a dead letter: {self.missing_dead_letters[:10]}")
        if self.wrong_reason_dead_letters:
            out.append(f"dead letters with the wrong reason: {self.wrong_reason_dead_letters[:10]}")
        if self.unexpected_dead_letters:
            out.append(f"dead letters for valid records: {self.unexpected_dead_letters[:10]}")
        if self.orphaned_addresses:
            out.append(
                f"{self.orphaned_addresses} Brightpearl postal addresses no contact references "
                f"({self.orphaned_after_lost_answers} of them created by writes whose answer was lost; "
                f"ids {self.orphaned_address_ids[:10]})"
            )
        busy = {k: v for k, v in self.unsettled.items() if any(v.values())}
        if busy:
            out.append(f"unsettled messages at the end: {busy}")
        return out


# ------------------------------------------------------------------------------- pieces
class DuplicatingProxy:
    """Loopback HTTP proxy in front of the host: forwards each webhook POST and posts about
    `rate` of the bodies a second time (as a sender that retries after a lost answer would)."""

    def __init__(self, target: str, rate: float, rng: random.Random) -> None:
        self.target = target.rstrip("/")
        self.rate = rate
        self.rng = rng
        self.posts = 0
        self.duplicates = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                status, content = proxy.forward(self.path, body, headers)
                with proxy._lock:
                    proxy.posts += 1
                    again = proxy.rng.random() < proxy.rate
                if again:
                    with proxy._lock:
                        proxy.duplicates += 1
                    proxy.forward(self.path, body, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-proxy", daemon=True)

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            resp = self._client.post(f"{self.target}{path}", content=body, headers=headers)
            return resp.status_code, resp.content
        except httpx.HTTPError:
            with self._lock:
                self.failed += 1
            return 502, b'{"error":"the host did not answer"}'

    def __enter__(self) -> DuplicatingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._client.close()


class FaultFeeder:
    """Keeps about `rate` of each simulator's API requests failing: every tick it queues as many
    one-shot faults (random kinds) as `rate` x the requests since the last tick."""

    def __init__(self, bp_sim: Any, dv_sim: Any, rate: float, rng: random.Random, values: dict[str, str]):
        self.bp_sim, self.dv_sim, self.rate, self.rng = bp_sim, dv_sim, rate, rng
        self.bp_timeout = float(values.get("BRIGHTPEARL_READ_TIMEOUT_SECONDS", "30")) + 1
        self.dv_timeout = float(values.get("DATAVERSE_TIMEOUT_SECONDS", "10")) + 1
        self.added: Counter[str] = Counter()
        self.unfired = 0  # queued when the faults were turned off (so never fired)
        self.requests_at: dict[str, tuple[int, int]] = {}  # (Brightpearl, Dataverse) requests at start/stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bp_requests(self) -> int:
        with self.bp_sim._faults_lock:
            return sum(self.bp_sim.requests.values())

    def dv_requests(self) -> int:
        with self.dv_sim.lock:
            return sum(self.dv_sim.counters.values())

    def start(self) -> None:
        self.requests_at["start"] = (self.bp_requests(), self.dv_requests())
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop adding faults and drop every fault still queued: from now on both APIs answer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if "stop" in self.requests_at:
            return
        self.requests_at["stop"] = (self.bp_requests(), self.dv_requests())
        with self.bp_sim._faults_lock:
            self.unfired += sum(f.remaining for f in self.bp_sim.faults)
            self.bp_sim.faults.clear()
        self.unfired += sum(f["remaining"] for f in self.dv_sim.faults.snapshot()["pending"])
        self.dv_sim.faults.clear()

    def _pick(self, kinds: tuple[tuple[str, int], ...]) -> str:
        return self.rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]

    def _run(self) -> None:
        last_bp, last_dv = self.bp_requests(), self.dv_requests()
        owed_bp = owed_dv = 0.0
        while not self._stop.wait(0.2):
            bp, dv = self.bp_requests(), self.dv_requests()
            owed_bp += (bp - last_bp) * self.rate
            owed_dv += (dv - last_dv) * self.rate
            last_bp, last_dv = bp, dv
            while owed_bp >= 1:
                kind = self._pick(BP_FAULTS)
                seconds = self.bp_timeout if kind == "timeout" else 0.0
                # a third of them wait for a write: creates are where a failure between steps hurts
                method = "POST" if self.rng.random() < 1 / 3 else None
                self.bp_sim.add_fault(kind, 1, seconds, None, method)
                self.added[f"brightpearl {kind}"] += 1
                owed_bp -= 1
            while owed_dv >= 1:
                kind = self._pick(DV_FAULTS)
                spec: dict[str, Any] = {"kind": kind, "count": 1, "retry_after": 1.0}
                if kind == "timeout":
                    spec["delay_seconds"] = self.dv_timeout
                self.dv_sim.faults.add(spec)
                self.added[f"dataverse {kind}"] += 1
                owed_dv -= 1


@dataclass
class Population:
    """Who was seeded where, and what each side must hold at the end."""

    valid_emails: list[str]
    bp_invalid: dict[str, str]  # Brightpearl contact id -> expected dead-letter reason
    dv_invalid: dict[str, str]  # Dynamics contact id -> expected dead-letter reason


def seed(sb: SandboxProcesses, config: ChaosConfig) -> Population:
    u, o, k = config.unique, config.overlap, config.invalid
    people = [person(i) for i in range(2 * u + o)]
    bp_only, dv_only, both = people[:u], people[u : 2 * u], people[2 * u :]
    state = sb.bp_sim.state

    def bp_contact(p: dict[str, str], email: str) -> int:
        with state.lock:
            address = state.create_address(shop_address(p["line1"], p["city"], p["postcode"]))
            return state.create_contact(
                shop_contact(p["first"], p["last"], email, p["phone"], address), quiet=True
            )

    for p in bp_only + both:
        bp_contact(p, p["email"])
    bp_invalid = {
        str(bp_contact(person(BP_INVALID_BASE + i), f"broken{i}@@bp.example.org")): "InvalidEmail"
        for i in range(k)
    }
    dv_invalid: dict[str, str] = {}
    for p in dv_only:
        sb.dv_create(crm_contact(p))
    for p in both:  # the same person as a CRM user types them
        sb.dv_create(
            crm_contact(p)
            | {
                "firstname": f" {p['first']}",
                "emailaddress1": f" {p['email'].upper()} ",
                "telephone1": "(" + p["phone"].replace(" ", ") ", 1).replace(" ", "-"),
                "address1_postalcode": p["postcode"].lower().replace(" ", ""),
                "address1_country": "UK",
            }
        )
    for i in range(k // 2):
        bad = crm_contact(person(DV_BAD_EMAIL_BASE + i)) | {"emailaddress1": f"broken{i}@@example.org"}
        dv_invalid[sb.dv_create(bad)] = "InvalidEmail"
    for i in range(k - k // 2):
        dv_invalid[
            sb.dv_create(crm_contact(person(DV_BAD_COUNTRY_BASE + i)) | {"address1_country": "Atlantis"})
        ] = "UnknownCountry"
    return Population([p["email"].lower() for p in people], bp_invalid, dv_invalid)


# ------------------------------------------------------------------------------- the sandbox
class SandboxProcesses:
    """Azurite, the simulators, the proxy and the host process of one chaos run."""

    def __init__(self, config: ChaosConfig, workdir: Path, azurite: str | None = None) -> None:
        self.config = config
        self.workdir = workdir
        self.azurite_cs = azurite
        self.rng = random.Random(config.seed)
        self.log_path = workdir / "host.log"
        self._own_restarts = 0
        self._stack = contextlib.ExitStack()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SandboxProcesses:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        stack = self._stack
        if self.azurite_cs is None:
            self.azurite_cs = stack.enter_context(AzuriteTable()).connection_string
        self.bp_server = stack.enter_context(
            BrightpearlServer(
                seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=200, contact_webhooks=False
            )
        )
        self.bp_sim = self.bp_server.simulator
        self.dv_server = stack.enter_context(DataverseServer(DataverseConfig(fractional_retry_after=True)))
        self.dv_sim = self.dv_server.simulator
        install(self.dv_sim)
        self.dv = DataverseAdmin(self.dv_server)
        stack.callback(self.dv.http.close)
        self.host_port = free_port()
        self.values = self._values()
        store = StateStore.from_connection_string(
            self.azurite_cs, table_prefix=self.values["STATE_TABLE_PREFIX"]
        )
        stack.callback(store.close)
        stack.callback(store.drop_tables)  # the run's tables go with it (a shared Azurite stays clean)
        self.settings_file = self.workdir / "local.settings.json"
        self.settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": self.values}))
        self.proxy = stack.enter_context(
            DuplicatingProxy(f"http://127.0.0.1:{self.host_port}", self.config.duplicate_rate, self.rng)
        )
        self.service = self._host_service()
        self.supervisor = sandbox_up.Supervisor([self.service], echo=self._echo)
        # the sandbox restarts a crashed host in Supervisor.wait() (trees since issue 17)
        self.sandbox_restarts = hasattr(self.service, "restart")
        self._watcher = threading.Thread(target=self.supervisor.wait, name="chaos-supervisor", daemon=True)
        stack.callback(lambda: self._watcher.is_alive() and self._watcher.join(timeout=30))
        stack.callback(self.supervisor.stop)
        self.supervisor.start()
        if self.sandbox_restarts:
            self.service.restart = True  # type: ignore[attr-defined]
            self._watcher.start()
        self.bus = LocalBus(
            Path(self.values["LOCAL_BUS_PATH"]), load_topology(ROOT / "infra" / "topology.json")
        )
        stack.callback(self.bus.close)
        self.faults = FaultFeeder(self.bp_sim, self.dv_sim, self.config.fault_rate, self.rng, self.values)
        stack.callback(self.faults.stop)

    def _echo(self, line: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"[chaos] {line}\n")

    def _values(self) -> dict[str, str]:
        """The tree's own example settings; only addresses, paths and poll schedules changed."""
        values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
        values = {k: str(v) for k, v in values.items() if v != ""}
        values.update(
            AzureWebJobsStorage=str(self.azurite_cs),
            STATE_TABLE_PREFIX=f"chaos{uuid.uuid4().hex[:8]}",
            LOCAL_BUS_PATH=str(self.workdir / "bus.sqlite3"),
            BRIGHTPEARL_BASE_URL=self.bp_server.url,
            BRIGHTPEARL_ACCOUNT=self.bp_server.account,
            DATAVERSE_URL=self.dv_server.url,
            DATAVERSE_TOKEN_URL=self.dv_server.token_url,
            DATAVERSE_CLIENT_ID=DEFAULT_CLIENT_ID,
            DATAVERSE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
            CUSTOMERS_BRIGHTPEARL_POLL_SCHEDULE=self.config.poll_schedule_bp,
            CUSTOMERS_DATAVERSE_POLL_SCHEDULE=self.config.poll_schedule_dv,
        )
        return values

    def _host_service(self) -> sandbox_up.Service:
        argv = [
            sys.executable, "-m", "sandbox.host", "--settings", str(self.settings_file),
            "--host", "127.0.0.1", "--port", str(self.host_port), "--project-root", str(ROOT),
        ]  # fmt: skip
        return sandbox_up.Service(
            "functions host",
            ["sh", "-c", 'exec "$@" >>"$CHAOS_HOST_LOG" 2>&1', "sh", *argv],
            self.host_port,
            f"http://127.0.0.1:{self.host_port}/api",
            ready_path="/api/health",
            env={**self.values, "CHAOS_HOST_LOG": str(self.log_path)},
        )

    @property
    def host_process(self) -> subprocess.Popen[bytes]:
        process = self.service.process
        assert process is not None
        return process

    def kill_host(self) -> None:
        """SIGKILL the host's whole process group: no shutdown, locks stay until they expire."""
        self._echo("SIGKILL functions host")
        os.killpg(self.host_process.pid, signal.SIGKILL)
        self.host_process.wait(timeout=10)

    @property
    def restarts(self) -> int:
        return int(getattr(self.service, "restarts", self._own_restarts))

    def await_restart(self, before: int) -> None:
        """Wait until the sandbox has the host back (or restart it here after `restart_after`)."""
        if not self.sandbox_restarts:
            time.sleep(self.config.restart_after)
            self._own_restarts += 1
            self._echo(f"restarting functions host (restart {self._own_restarts})")
            self.supervisor.start()
            return
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.restarts > before and self._healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the sandbox did not restart the host within 180 s; see {self.log_path}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.host_port}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # -- driving ---------------------------------------------------------------------------
    def dv_create(self, columns: dict[str, str]) -> str:
        out = self.dv.crm("POST", "contacts", columns)
        return str(out["headers"]["OData-EntityId"]).rsplit("(", 1)[1].rstrip(")")

    def register_webhooks(self) -> None:
        register_webhooks(self.values, Endpoints.from_settings(self.values, self.proxy.port), self._echo)

    def backfill(self, source: str) -> None:
        """`syncctl backfill customers --from <source>`; an interrupted run is resumed (its cursor)."""
        args = [sys.executable, "-m", "syncctl", "backfill", "customers", "--from", source,
                "--settings", str(self.settings_file)]  # fmt: skip
        env = {**os.environ, **self.values}
        # as an operator would: run it again until it finishes. A Brightpearl throttle fault holds
        # the shared rate budget for up to a minute, and the CLI will not wait more than 20 s for
        # a slot (it says so and exits 1), so keep trying for longer than a throttle window.
        deadline = time.monotonic() + BACKFILL_PATIENCE
        attempt = 0
        while True:
            done = subprocess.run(
                [*args, *(["--restart"] if attempt == 0 else [])],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            attempt += 1
            if done.returncode == 0:
                return
            self._echo(
                f"backfill from {source} failed (attempt {attempt}): "
                f"{done.stdout[-500:]} {done.stderr[-1500:]}"
            )
            if time.monotonic() > deadline:
                break
            time.sleep(3)
        raise RuntimeError(f"backfill from {source} did not finish; see {self.log_path}")

    # -- looking ------------------------------------------------------------------------------
    def bp_contacts(self) -> dict[int, dict[str, Any]]:
        with self.bp_sim.state.lock:
            return {k: json.loads(json.dumps(v, default=str)) for k, v in self.bp_sim.state.contacts.items()}

    def lost_answer_addresses(self) -> tuple[int, set[int]]:
        """Writes that created postal addresses but whose answer a fault swallowed, and those ids."""
        answers = getattr(self.bp_sim, "lost_answers", [])  # older trees' simulators keep none
        lost = [a.created_ids("contact-service/postal-address") for a in answers]
        return sum(1 for ids in lost if ids), {i for ids in lost for i in ids}

    def orphaned_addresses(self) -> list[int]:
        """Ids of Brightpearl postal addresses that no contact references."""
        state = self.bp_sim.state
        with state.lock:
            used = {int(a) for c in state.contacts.values() for a in (c.get("postAddressIds") or {}).values()}
            return sorted(int(aid) for aid in state.addresses if int(aid) not in used)

    def dv_contacts(self) -> list[dict[str, Any]]:
        return self.dv.rows("contact")

    def bus_counts(self) -> dict[str, dict[str, int]]:
        """Active (locked or not), scheduled, locked and deferred messages per subscription."""
        out = {}
        for topic, sub in SUBSCRIPTIONS:
            counts = self.bus.counts(topic, sub)
            locked = getattr(counts, "locked", None)  # the bus counts them since `syncctl bus status`
            if locked is None:  # older trees: ask the bus file
                with contextlib.closing(sqlite3.connect(self.values["LOCAL_BUS_PATH"], timeout=30)) as conn:
                    locked = conn.execute(
                        "SELECT count(*) FROM entries WHERE topic = ? AND subscription = ? "
                        "AND queue = 'active' AND lock_token IS NOT NULL",
                        (topic, sub),
                    ).fetchone()[0]
            out[sub] = {
                "active": counts.active,
                "scheduled": counts.scheduled,
                "locked": int(locked),
                "deferred": counts.deferred,
            }
        return out

    def dead_letters(self) -> dict[str, list[tuple[str, str]]]:
        """(record id, reason) of every dead letter, per subscription."""
        out: dict[str, list[tuple[str, str]]] = {}
        for topic, sub in SUBSCRIPTIONS:
            rows = []
            for m in self.bus.peek_dead_letters(topic, sub, max_messages=100_000):
                try:
                    ids = json.loads(m.body)["data"]["ids"]
                except (ValueError, KeyError, TypeError):
                    ids = ["<malformed>"]
                rows += [(str(i), m.dead_letter_reason or "") for i in ids]
            out[sub] = rows
        return out


# ------------------------------------------------------------------------------- the run
def _email(value: Any) -> str:
    return str(value or "").strip().lower()


def progress(sb: SandboxProcesses, pop: Population) -> tuple[set[str], dict[str, Any]]:
    """The valid customers not yet exactly once on each side (and linked), and the raw views."""
    bp = sb.bp_contacts()
    dv = sb.dv_contacts()
    bp_emails = Counter(
        _email(((c.get("communication") or {}).get("emails") or {}).get("PRI", {}).get("email"))
        for c in bp.values()
    )
    dv_emails = Counter(_email(r.get("emailaddress1")) for r in dv)
    dv_linked = {_email(r.get("emailaddress1")) for r in dv if r.get("bpi_brightpearlid")}
    waiting = {e for e in pop.valid_emails if bp_emails[e] != 1 or dv_emails[e] != 1 or e not in dv_linked}
    return waiting, {"bp": bp, "dv": dv, "bp_emails": bp_emails, "dv_emails": dv_emails}


def host_log_figures(log_path: Path) -> dict[str, int]:
    """Counts from the host's log: settlements refused because the lock was lost (one per log
    record that mentions a lost lock), MaxDeliveryCountExceeded, scheduled retries."""
    if not log_path.exists():
        return {"lock_lost": 0, "retries_scheduled": 0}
    records: list[str] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if re.match(r"^(\d{4}-\d{2}-\d{2}[ T]|\[chaos\]|\{)", line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    lost = re.compile(r"MessageLockLost|lock lost|lock was lost|LockLost", re.IGNORECASE)
    return {
        "lock_lost": sum(1 for r in records if lost.search(r)),
        "retries_scheduled": sum(1 for r in records if "retry " in r and " scheduled in " in r),
    }


def finish(sb: SandboxProcesses, pop: Population, config: ChaosConfig, report: ChaosReport) -> None:
    waiting, views = progress(sb, pop)
    report.valid_customers = len(pop.valid_emails)
    report.valid_not_exactly_once = {
        e: int(views["bp_emails"][e]) * 10 + int(views["dv_emails"][e]) for e in sorted(waiting)
    }  # e.g. 11 = once on each side but not linked, 10 = only in Brightpearl, 21 = twice in Brightpearl
    report.expected_contacts = config.scale + config.unique
    report.contacts = {"brightpearl": len(views["bp"]), "dynamics": len(views["dv"])}
    linked = [r["bpi_brightpearlid"] for r in views["dv"] if r.get("bpi_brightpearlid")]
    report.linked_in_dynamics, report.distinct_links = len(linked), len(set(linked))
    orphans = sb.orphaned_addresses()
    report.orphaned_addresses, report.orphaned_address_ids = len(orphans), orphans[:50]
    report.lost_address_answers, lost_ids = sb.lost_answer_addresses()
    report.orphaned_after_lost_answers = len(set(orphans) & lost_ids)
    report.unsettled = sb.bus_counts()
    expected = {"customers-to-dataverse": pop.bp_invalid, "customers-to-brightpearl": pop.dv_invalid}
    report.invalid_records = {sub: len(ids) for sub, ids in expected.items()}
    for sub, rows in sb.dead_letters().items():
        report.dead_letters[sub] = dict(Counter(reason for _, reason in rows))
        per_id = Counter(record_id for record_id, _ in rows)
        for record_id, reason in rows:
            want = expected[sub].get(record_id)
            if want is None:
                report.unexpected_dead_letters.append(f"{sub}:{record_id}:{reason}")
            elif reason != want:
                report.wrong_reason_dead_letters.append(f"{sub}:{record_id}:{reason} (expected {want})")
        report.double_dead_letters += sum(
            n - 1 for rid, n in per_id.items() if rid in expected[sub] and n > 1
        )
        report.missing_dead_letters += [f"{sub}:{rid}" for rid in expected[sub] if rid not in per_id]
        report.max_delivery_count_dead_letters += sum(1 for _, r in rows if r == "MaxDeliveryCountExceeded")
    figures = host_log_figures(sb.log_path)
    report.lock_lost_settlements = figures["lock_lost"]
    report.retries_scheduled = figures["retries_scheduled"]
    report.host_restarts = sb.restarts
    report.api_requests = {"brightpearl": sb.faults.bp_requests(), "dataverse": sb.faults.dv_requests()}
    report.faults_injected = dict(sb.faults.added)
    (bp0, dv0), (bp1, dv1) = sb.faults.requests_at["start"], sb.faults.requests_at["stop"]
    report.fault_window = {
        "brightpearl_requests": bp1 - bp0,
        "dataverse_requests": dv1 - dv0,
        "faults_fired": sum(sb.faults.added.values()) - sb.faults.unfired,
    }
    report.webhooks = {
        "posts": sb.proxy.posts,
        "posted_twice": sb.proxy.duplicates,
        "host_down": sb.proxy.failed,
    }


def run_chaos(
    config: ChaosConfig, workdir: Path, *, azurite: str | None = None, echo: Any = print
) -> ChaosReport:
    report = ChaosReport(scale=config.scale, root=str(ROOT))
    t0 = time.monotonic()

    def mark(name: str) -> float:
        report.seconds[name] = round(time.monotonic() - t0, 1)
        echo(f"[chaos {report.seconds[name]:7.1f}s] {name}")
        return time.monotonic()

    with SandboxProcesses(config, workdir, azurite) as sb:
        mark("sandbox up")
        sb.register_webhooks()
        sb.faults.start()
        mark("faults on")
        pop = seed(sb, config)
        mark("seeded")
        start = time.monotonic()
        sb.backfill("brightpearl")
        sb.backfill("dataverse")
        mark("backfills published")
        total = len(pop.valid_emails)

        def look() -> tuple[int, int]:
            """Valid customers not yet converged, messages active or scheduled; a timeline entry
            (and a progress line) every 30 s."""
            waiting, _ = progress(sb, pop)
            busy = sum(v["active"] + v["scheduled"] for v in sb.bus_counts().values())
            at = round(time.monotonic() - t0, 1)
            if not report.timeline or at - report.timeline[-1][0] >= 30:
                report.timeline.append((at, len(waiting), busy))
                echo(
                    f"[chaos {at:7.1f}s] {len(waiting)} of {total} customers waiting, "
                    f"{busy} messages on the bus"
                )
            return len(waiting), busy

        # SIGKILL mid-run, restart, then faults off
        while True:
            done = 1 - look()[0] / total
            if done >= config.kill_at_progress or time.monotonic() - start > config.kill_deadline:
                break
            time.sleep(config.check_every)
        report.host_killed_at_progress = round(done, 3)
        restarts = sb.restarts
        sb.kill_host()
        killed = mark("host killed")
        sb.await_restart(restarts)
        restarted = mark("host restarted")
        report.host_down_seconds = round(restarted - killed, 1)
        # the operator runs both backfills again after the crash: every record version gets a
        # second notice, which must complete (or meet the dead-letter ledger), not be redone
        sb.backfill("brightpearl")
        sb.backfill("dataverse")
        mark("backfills run again")
        while time.monotonic() - start < config.fault_seconds:
            done = 1 - look()[0] / total
            if (
                done >= config.faults_off_progress
                and time.monotonic() - restarted > 10
                and time.monotonic() - start >= config.fault_min_seconds
            ):
                break
            time.sleep(config.check_every)
        sb.faults.stop()
        off = mark("faults off")

        # convergence: every valid customer once on each side and linked, nothing left on the bus
        report.waiting_at_faults_off = look()[0]
        deadline = off + config.converge_timeout
        while True:
            waiting, busy = look()
            now = time.monotonic()
            if (
                report.seconds_to_95_percent_after_faults_off is None
                and waiting <= 0.05 * report.waiting_at_faults_off
            ):
                report.seconds_to_95_percent_after_faults_off = round(now - off, 1)
            if not waiting and not busy:
                report.converged = True
                report.seconds_to_converge_after_faults_off = round(now - off, 1)
                (bp0, dv0), bp1, dv1 = (
                    sb.faults.requests_at["stop"],
                    sb.faults.bp_requests(),
                    sb.faults.dv_requests(),
                )
                report.requests_while_converging = {"brightpearl": bp1 - bp0, "dataverse": dv1 - dv0}
                break
            if now > deadline:
                report.notes.append(
                    f"after {config.converge_timeout:.0f}s: {waiting} customers waiting, "
                    f"{busy} messages on the bus"
                )
                break
            time.sleep(config.check_every)
        mark("converged" if report.converged else "gave up waiting")
        if report.converged:  # let both pollers run once more, then wait for the bus to be idle
            time.sleep(35)
            quiet_by = time.monotonic() + 120
            while time.monotonic() < quiet_by and any(any(c.values()) for c in sb.bus_counts().values()):
                time.sleep(1)
        finish(sb, pop, config, report)
        mark("counted")
    return report


@contextlib.contextmanager
def _workdir(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=int(os.environ.get("CHAOS_SCALE", "2000")))
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--workdir", help="keep the bus file and host log here (default: a temp folder)")
    args = parser.parse_args(argv)
    config = ChaosConfig.for_scale(args.scale)
    with _workdir(args.workdir) as workdir:
        report = run_chaos(config, workdir)
    out = asdict(report) | {"failures": report.failures()}
    text = json.dumps(out, indent=2, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
