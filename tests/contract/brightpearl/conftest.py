"""Fixtures: one Brightpearl simulator per module (uvicorn on 127.0.0.1, a free port, a
background thread), reset before every test, and clients of it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.brightpearl import SimulatorConfig, SimulatorServer
from sandbox.brightpearl.app import Simulator
from sandbox.brightpearl.server import free_port
from shared.brightpearl.auth import MemoryTokenStore
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.ratebudget import RateBudget
from shared.brightpearl.settings import BrightpearlSettings

DEFAULTS = SimulatorConfig().model_dump()


@pytest.fixture(scope="module")
def bp_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(seed_contacts=50, seed_products=20, seed_orders=10) as server:
        yield server


@pytest.fixture
def sim(bp_server: SimulatorServer) -> Simulator:
    """The simulator, back to its defaults and seeded data (seed 42)."""
    simulator = bp_server.simulator
    simulator.configure(**dict(DEFAULTS, seed_contacts=50, seed_products=20, seed_orders=10))
    simulator.reset()
    return simulator


def settings_for(server: SimulatorServer, **env: Any) -> BrightpearlSettings:
    values = {
        "BRIGHTPEARL_ACCOUNT": server.account,
        "BRIGHTPEARL_BASE_URL": server.url,
        "BRIGHTPEARL_APP_REF": "sandbox-app",
        "BRIGHTPEARL_ACCOUNT_TOKEN": "sandbox-account-token",
        "BRIGHTPEARL_DEV_REF": "sandbox-dev",
        "BRIGHTPEARL_RETRY_BASE_DELAY_SECONDS": "0.01",
        "BRIGHTPEARL_RETRY_MAX_DELAY_SECONDS": "0.05",
        "BRIGHTPEARL_READ_TIMEOUT_SECONDS": "5",
    }
    values.update({k: str(v) for k, v in env.items()})
    return BrightpearlSettings.model_validate(values)


@pytest.fixture
def make_client(bp_server: SimulatorServer, sim: Simulator) -> Iterator[Callable[..., BrightpearlClient]]:
    """Build clients with settings overrides (env names); each has its own rate budget."""
    made: list[BrightpearlClient] = []

    def build(token_store: MemoryTokenStore | None = None, **env: Any) -> BrightpearlClient:
        settings = settings_for(bp_server, **env)
        budget = RateBudget(settings.rate_limit, settings.rate_window_seconds, reserve=settings.rate_reserve)
        client = BrightpearlClient.from_settings(settings, budget=budget, token_store=token_store)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., BrightpearlClient]) -> BrightpearlClient:
    return make_client()


@pytest.fixture
def admin(bp_server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{bp_server.url}/_sandbox", timeout=10) as http:
        yield http


class Receiver:
    """A loopback HTTP server that records webhook requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []  # statuses to answer, in order; then 200
        self._lock = threading.Lock()
        self.port = free_port()
        app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            status = self.script.pop(0) if self.script else 200
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "headers": dict(request.headers),
                    "body": body,
                    "status": status,
                }
            )
        return Response(status_code=status)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def start(self) -> Receiver:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("receiver did not start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate` (an event, not a time limit: the timeout only stops a hung test)."""
    event = threading.Event()
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            return False
        event.wait(0.02)
        waited += 0.02
    return True
