"""Fixtures shared by the Dataverse tests: a simulator under uvicorn on a free loopback port
(one per session, reset before each test), an admin helper, and a client wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pytest

from sandbox.dataverse import SimulatorConfig, SimulatorServer
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential


def sandbox_config() -> SimulatorConfig:
    # Sub-second Retry-After keeps throttling tests fast; everything else as the real service.
    return SimulatorConfig(fractional_retry_after=True)


class Admin:
    """The simulator's admin surface (/_sandbox/...) over HTTP."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=f"{server.url}/_sandbox/", timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(method, path, json=body)
        assert resp.status_code < 300, resp.text
        return resp.json()

    def config(self, **values: Any) -> dict[str, Any]:
        return self.call("PATCH", "config", values)

    def fault(self, **spec: Any) -> None:
        self.call("POST", "faults", spec)

    def counters(self) -> dict[str, Any]:
        return self.call("GET", "counters")

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.call("GET", f"tables/{table}")["rows"]

    def crm(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return self.call(
            "POST", "crm", {"method": method, "path": path, "body": body, "headers": headers or {}}
        )

    def drain(self) -> None:
        self.call("POST", "webhooks/drain", {"timeout": 20})


@dataclass
class Sim:
    server: SimulatorServer
    admin: Admin

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def dataverse_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(sandbox_config()) as server:
        yield server


@pytest.fixture
def sim(dataverse_server: SimulatorServer) -> Iterator[Sim]:
    admin = Admin(dataverse_server)
    defaults = asdict(sandbox_config())
    defaults.pop("clients")
    admin.call("POST", "reset", {"config": defaults})
    yield Sim(dataverse_server, admin)
    admin.http.close()


def make_client(sim: Sim, **options: Any) -> DataverseClient:
    credential = SandboxCredential(sim.server.token_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    options.setdefault("backoff_base", 0.01)
    options.setdefault("backoff_cap", 0.1)
    return DataverseClient(sim.url, credential, **options)


@pytest.fixture
def client(sim: Sim) -> Iterator[DataverseClient]:
    with make_client(sim) as c:
        yield c


class MemoryCursor:
    def __init__(self, value: str, etag: str) -> None:
        self.value = value
        self.etag: str | None = etag


class MemoryCursorStore:
    """In-memory stand-in for shared.store's CursorStore (get/save with ETags)."""

    def __init__(self) -> None:
        self.rows: dict[str, MemoryCursor] = {}
        self.version = 0
        self.saves = 0

    def get(self, name: str) -> MemoryCursor | None:
        return self.rows.get(name)

    def save(self, name: str, value: str, etag: str | None = None) -> MemoryCursor:
        current = self.rows.get(name)
        if (current is None) != (etag is None) or (current is not None and current.etag != etag):
            raise RuntimeError("cursor conflict")
        self.version += 1
        self.saves += 1
        cursor = MemoryCursor(value, f"v{self.version}")
        self.rows[name] = cursor
        return cursor


class ServeApp:
    """Run any ASGI app under uvicorn on a free loopback port in a thread (webhook receivers)."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        from sandbox.dataverse.server import free_port

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServeApp:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
