"""What the sandbox's local services share: loopback only, free ports, start/stop as a context.

`Service` is the start/stop life cycle (`with service: ...`) of the Azurite process and both
simulators; `BackgroundServer` runs an ASGI app under uvicorn in a daemon thread, and
`SimulatorServer` runs one simulator that way (the Brightpearl and Dataverse simulators in
tests, benchmarks and `syncctl sandbox`).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Service:
    """Something the sandbox starts and stops; `with service:` starts it and stops it on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BackgroundServer(Service):
    """An ASGI app (`asgi_app()`) under uvicorn in a daemon thread on a loopback port."""

    label = "server"  # names it in errors and in its thread's name

    def __init__(self, host: str, port: int | None, **uvicorn_options: Any) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the simulator binds to loopback only, not {host!r}")
        self.host = host
        self.port = port or free_port(host)
        self._options = uvicorn_options
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def asgi_app(self) -> Any:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> Self:
        import uvicorn  # a dev dependency: only the sandbox runs servers

        config = uvicorn.Config(
            self.asgi_app(),
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            **self._options,
        )
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(
            target=server.run, name=f"{self.label}-{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.label} did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class SimulatorServer(BackgroundServer):
    """One simulator (`simulator_class(config, **options)`) served on loopback.

    `with Server(config) as server: server.url ...`; a subclass names its simulator class, its
    uvicorn lifespan mode and how its ASGI app is reached.
    """

    simulator_class: Any
    lifespan = "auto"  # uvicorn's: "on" for an app whose startup must run

    def __init__(
        self, config: Any = None, *, host: str = "127.0.0.1", port: int | None = None, **options: Any
    ) -> None:
        super().__init__(host, port, lifespan=self.lifespan)
        self.simulator = self.simulator_class(config, **options)

    def asgi_app(self) -> Any:
        return self.simulator
