"""The whole sandbox for the customer flows: both simulators on free loopback ports (the
Dataverse one with the integration's solution columns), Azurite tables (unique prefix per
test), a local bus, and the local Functions host running function_app.py with a fake clock.

Pollers and the flows run for real; time moves only when a test moves the fake clock, so
"30 seconds of activity" or a retry back-off costs no real waiting.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from sandbox.customers_solution import install
from sandbox.dataverse import SimulatorConfig as DataverseConfig
from sandbox.dataverse import SimulatorServer as DataverseServer
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from sandbox.host import LocalHost
from shared import runtime
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.ratebudget import RateBudget
from shared.bus.local import LocalBus
from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential
from shared.settings import load_settings
from shared.store import StateStore

ROOT = Path(__file__).resolve().parents[3]
BP_TOPIC, DV_TOPIC = "brightpearl-changes", "dataverse-changes"
TO_DV, TO_BP = "customers-to-dataverse", "customers-to-brightpearl"
NEVER = "0 0 0 1 1 *"  # timers run only when a test runs them
CLAIM_TIMEOUT = 30  # seconds of fake time before an interrupted creation claim may be taken over


class FakeClock:
    def __init__(self) -> None:
        self._now = datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def bp_server() -> Iterator[BrightpearlServer]:
    with BrightpearlServer(seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=100_000) as server:
        yield server


@pytest.fixture(scope="session")
def dv_server() -> Iterator[DataverseServer]:
    with DataverseServer(DataverseConfig(fractional_retry_after=True)) as server:
        install(server.simulator)
        yield server


class DataverseAdmin:
    def __init__(self, server: DataverseServer) -> None:
        self.http = httpx.Client(base_url=f"{server.url}/_sandbox/", timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, path, json=body)
        assert resp.status_code < 300, resp.text
        return resp.json()

    def crm(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """Act as an interactive CRM user (change tracking and webhooks see it)."""
        out = self.call("POST", "crm", {"method": method, "path": path, "body": body})
        assert out["status"] < 300, out
        return out

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.call("GET", f"tables/{table}")["rows"]

    def api_calls(self) -> int:
        return int(self.call("GET", "counters")["api_calls"])

    def writes(self) -> int:
        calls = self.call("GET", "counters")["calls"]
        return sum(v for k, v in calls.items() if not k.startswith("GET"))


@dataclass
class Sandbox:
    host: LocalHost
    bus: LocalBus
    clock: FakeClock
    store: StateStore
    bp_sim: Any  # sandbox.brightpearl.app.Simulator (in-process: seed, change, faults)
    dv: DataverseAdmin
    bp: BrightpearlClient
    dvc: DataverseClient
    values: dict[str, str]

    # -- driving ------------------------------------------------------------------------
    def poll_brightpearl(self) -> None:
        self.host.run_timer("poll_brightpearl_contacts")

    def poll_dataverse(self) -> None:
        self.host.run_timer("poll_dataverse_customers")

    def settle(self, rounds: int = 6, timeout: float = 120.0) -> None:
        """Poll both sides and drain both subscriptions until nothing new happens: until a
        round writes nothing to either system. (Drained queues alone are not enough: a round's
        writes are changes the next polls must see, e.g. when the read-back of a contact just
        created in Brightpearl failed, its default price list reaches Dataverse a round later.)"""
        for _ in range(rounds):
            before = (self.bp_writes(), self.dv.writes())
            self.poll_brightpearl()
            self.poll_dataverse()
            self.host.wait_idle(timeout=timeout)
            if not self.pending() and (self.bp_writes(), self.dv.writes()) == before:
                break

    def pending(self) -> int:
        return sum(self.bus.counts(t, s).active for t, s in ((BP_TOPIC, TO_DV), (DV_TOPIC, TO_BP)))

    def run_retries(self, timeout: float = 120.0, max_rounds: int = 60) -> None:
        """Move the fake clock past every scheduled retry copy (back-off or a server's throttle
        period, at most a minute) until none is left."""
        for _ in range(max_rounds):
            scheduled = sum(
                self.bus.counts(t, s).scheduled for t, s in ((BP_TOPIC, TO_DV), (DV_TOPIC, TO_BP))
            )
            if not scheduled:
                return
            self.clock.advance(61)
            self.host.wait_idle(timeout=timeout)
        raise AssertionError("retry copies still scheduled")

    # -- looking -------------------------------------------------------------------------
    def bp_contacts(self) -> dict[int, dict[str, Any]]:
        with self.bp_sim.state.lock:
            return {k: json.loads(json.dumps(v, default=str)) for k, v in self.bp_sim.state.contacts.items()}

    def bp_address(self, address_id: int) -> dict[str, Any]:
        return dict(self.bp_sim.state.addresses[int(address_id)])

    def dv_contacts(self) -> list[dict[str, Any]]:
        return self.dv.rows("contact")

    def dv_accounts(self) -> list[dict[str, Any]]:
        return [a for a in self.dv.rows("account") if a.get("bpi_brightpearlid") or a.get("name")]

    def dead_letters(self, topic: str, sub: str) -> list[Any]:
        return list(self.bus.peek_dead_letters(topic, sub, max_messages=10_000))

    def bp_requests(self) -> int:
        with self.bp_sim._faults_lock:
            return sum(self.bp_sim.requests.values())

    def bp_writes(self) -> int:
        with self.bp_sim._faults_lock:
            return sum(v for k, v in self.bp_sim.requests.items() if not k.startswith("GET"))


def sandbox_values(
    bp: BrightpearlServer, dv: DataverseServer, azurite: str, tmp: Path, prefix: str
) -> dict[str, str]:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    values = {k: v for k, v in values.items() if v != ""}  # blank = not set
    values.update(
        AzureWebJobsStorage=azurite,
        STATE_TABLE_PREFIX=prefix,
        LOCAL_BUS_PATH=str(tmp / "bus.sqlite3"),
        BRIGHTPEARL_BASE_URL=bp.url,
        BRIGHTPEARL_ACCOUNT=bp.account,
        BRIGHTPEARL_APP_REF="sandbox-app",
        BRIGHTPEARL_ACCOUNT_TOKEN="sandbox-account-token",
        BRIGHTPEARL_RETRY_BASE_DELAY_SECONDS="0.01",
        BRIGHTPEARL_RETRY_MAX_DELAY_SECONDS="0.05",
        BRIGHTPEARL_MAX_RETRIES="2",
        BRIGHTPEARL_RATE_LIMIT="100000",
        DATAVERSE_URL=dv.url,
        DATAVERSE_TOKEN_URL=dv.token_url,
        DATAVERSE_CLIENT_ID=DEFAULT_CLIENT_ID,
        DATAVERSE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        DATAVERSE_MAX_RETRIES="2",
        CUSTOMERS_BRIGHTPEARL_POLL_SCHEDULE=NEVER,
        CUSTOMERS_DATAVERSE_POLL_SCHEDULE=NEVER,
        CUSTOMERS_POLL_INITIAL_LOOKBACK_HOURS="2000",
        RETRY_MAX_ATTEMPTS="20",
        LINK_CLAIM_TIMEOUT_SECONDS=str(CLAIM_TIMEOUT),
        RETRY_BASE_DELAY_SECONDS="5",
        RETRY_MAX_DELAY_SECONDS="20",
    )
    # host.json gathers batches of at least 10 for up to 0.5 s of real time; these tests run on a
    # fake clock and hand over every message at once instead (host.json's own numbers are checked
    # in tests/unit/host/test_host_json.py and shown in tests/unit/host/test_topic_triggers.py).
    values["AzureFunctionsJobHost__extensions__serviceBus__minMessageBatchSize"] = "1"
    return values


@pytest.fixture
def sandbox_settings() -> dict[str, str]:
    """App settings a folder's tests add to the sandbox's (tests/e2e/products: its mapping)."""
    return {}


@pytest.fixture
def sandbox(
    bp_server: BrightpearlServer,
    dv_server: DataverseServer,
    azurite: str,
    tmp_path: Path,
    sandbox_settings: dict[str, str],
) -> Iterator[Sandbox]:
    bp_sim = bp_server.simulator
    bp_sim.configure(
        seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=100_000, contact_webhooks=False
    )
    bp_sim.reset()
    with bp_sim._faults_lock:
        bp_sim.faults.clear()
        bp_sim.requests.clear()
    dv_server.simulator.reset()
    prefix = f"c{uuid.uuid4().hex[:10]}"
    values = {**sandbox_values(bp_server, dv_server, azurite, tmp_path, prefix), **sandbox_settings}
    settings = load_settings(values)
    clock = FakeClock()
    store = StateStore.from_connection_string(
        azurite, table_prefix=prefix, clock=clock, claim_timeout=timedelta(seconds=CLAIM_TIMEOUT)
    )
    store.ensure_tables()
    bus = LocalBus(tmp_path / "bus.sqlite3", clock=clock)
    bp = BrightpearlClient.from_settings(
        settings.brightpearl,
        budget=RateBudget(100_000, 60.0, reserve=0, clock=lambda: clock().timestamp()),  # fake time
        sleep=lambda s: None,
    )
    dvc = DataverseClient(
        dv_server.url,
        SandboxCredential(dv_server.token_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        backoff_base=0.01,
        backoff_cap=0.05,
        max_retries=2,
        sleep=lambda s: None,
    )
    admin = DataverseAdmin(dv_server)
    try:
        with runtime.override(
            settings=settings, publisher=bus, clock=clock, state_store=store, brightpearl=bp, dataverse=dvc
        ):
            host = LocalHost(
                "function_app",
                settings=values,
                bus=bus,
                port=0,
                clock=clock,
                project_root=ROOT,
                poll_interval=0.02,
            )
            with host:
                box = Sandbox(host, bus, clock, store, bp_sim, admin, bp, dvc, values)
                box.poll_dataverse()  # first run records the delta links
                yield box
    finally:
        bp.close()
        dvc.close()
        admin.http.close()
        bus.close()
        store.drop_tables()
        store.close()
