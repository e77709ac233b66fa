"""Runs a Simulator under uvicorn in a background thread (tests, benchmarks, `sandbox up`)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import SimulatorConfig
from sandbox.dataverse.schema import Schema


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SimulatorServer:
    """`with SimulatorServer() as server: server.url ...` - loopback only, stops on exit."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        schema: Schema | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the simulator binds to loopback only, not {host!r}")
        self.host = host
        self.port = port or free_port(host)
        self.simulator = Simulator(config, schema)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.simulator,
                host=host,
                port=self.port,
                log_level="warning",
                access_log=False,
                timeout_keep_alive=30,
                limit_concurrency=None,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, name=f"dataverse-sim-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.simulator.config.tenant_id}/oauth2/v2.0/token"

    def start(self) -> SimulatorServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Dataverse simulator did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.simulator.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
