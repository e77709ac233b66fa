"""Run the simulator with uvicorn in a background thread (tests, benchmarks, syncctl)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from sandbox.brightpearl.app import Simulator
from sandbox.brightpearl.config import SimulatorConfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SimulatorServer:
    """`with SimulatorServer(rate_limit=20) as server: server.url ...` — starts and stops."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        **overrides: Any,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the simulator binds to loopback only, not {host!r}")
        self.simulator = Simulator(config, **overrides)
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.simulator.app,
                host=host,
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_keep_alive=30,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def account(self) -> str:
        return self.simulator.config.accounts[0]

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        self._thread = threading.Thread(target=self._server.run, name="bp-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"Brightpearl simulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
