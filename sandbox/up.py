"""Starts the whole sandbox in the foreground and stops all of it on Ctrl-C.

Azurite (Table Storage), the Brightpearl and Dataverse simulators and the local Functions
host run as child processes in their own process groups; this supervisor waits until each
answers, prints the URLs, and on Ctrl-C / SIGTERM stops them in reverse order, so no process
is left behind.

When the Functions host dies (a crash, an out-of-memory kill, a SIGKILL), the supervisor
restarts it as the Functions platform restarts a crashed worker: a log line with the exit
code and the restart count, a short back-off that grows while it keeps crashing, and the
simulators and Azurite (and their state) untouched. Its messages are still on the local bus
(durable on disk); locks the dead host held run out and the bus redelivers them. Any other
child dying still stops the sandbox (a simulator's data lives in its memory).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".sandbox"


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    url: str
    ready_path: str | None = None  # HTTP path that answers when ready; None: port open is enough
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    restart: bool = False  # restarted when it dies, like a crashed Functions worker
    restarts: int = 0


def load_local_settings(root: Path = ROOT) -> tuple[Path, dict[str, str]]:
    """local.settings.json if present, else the example; real environment variables win."""
    path = root / "local.settings.json"
    if not path.exists():
        path = root / "local.settings.example.json"
    values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    merged = {k: str(v) for k, v in values.items()}
    merged.update({k: v for k, v in os.environ.items() if k in merged})
    return path, merged


def table_port(settings: dict[str, str]) -> int:
    conn = settings.get("AzureWebJobsStorage", "")
    if conn.strip() == "UseDevelopmentStorage=true":
        return 10002
    for part in conn.split(";"):
        if part.startswith("TableEndpoint="):
            port = urlparse(part.split("=", 1)[1]).port
            if port:
                return port
    raise SystemExit("AzureWebJobsStorage must point at a loopback TableEndpoint for the sandbox")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def plan(settings: dict[str, str], *, host_port: int = 7071) -> list[Service]:
    python = sys.executable
    services = [
        Service(
            "azurite",
            [
                python,
                "-m",
                "sandbox.azurite",
                "--port",
                str(table_port(settings)),
                "--location",
                str(STATE_DIR / "azurite"),
            ],
            table_port(settings),
            f"http://127.0.0.1:{table_port(settings)}/devstoreaccount1",
        )
    ]
    # the Dataverse simulator runs with the integration's solution columns (sandbox.customers_solution)
    for name, module, port in (
        ("brightpearl", "sandbox.brightpearl", 8101),
        ("dataverse", "sandbox.customers_solution", 8102),
    ):
        if importlib.util.find_spec(module) is not None:
            services.append(
                Service(
                    f"{name} simulator",
                    [python, "-m", module, "--host", "127.0.0.1", "--port", str(port)],
                    port,
                    f"http://127.0.0.1:{port}",
                )
            )
    services.append(
        Service(
            "functions host",
            [python, "-m", "sandbox.host", "--host", "127.0.0.1", "--port", str(host_port)],
            host_port,
            f"http://127.0.0.1:{host_port}/api",
            ready_path="/api/health",
            restart=True,
        )
    )
    return services


# Back-off before restarting a crashed host: 1 s, doubling per crash in a row, at most 30 s;
# a host that ran this long since its last start counts as healthy again.
RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0
RESTART_HEALTHY_AFTER = 60.0


@dataclass(eq=False, repr=False)
class Supervisor:
    services: list[Service]
    _: KW_ONLY
    echo: Callable[[str], None] = print
    ready_timeout: float = 90.0
    check_interval: float = 0.5
    _stopping: bool = field(default=False, init=False)

    def start(self, ready_timeout: float = 90.0) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            if port_open(service.port):
                raise SystemExit(
                    f"port {service.port} for {service.name} is already in use; "
                    "stop the other process (an earlier sandbox?) and retry"
                )
            self.echo(f"starting {service.name} …")
            self._spawn(service)
            self._wait_ready(service, ready_timeout)

    def _spawn(self, service: Service) -> None:
        service.process = subprocess.Popen(
            service.argv, cwd=ROOT, env={**os.environ, **service.env}, start_new_session=True
        )

    def _wait_ready(self, service: Service, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert service.process is not None
            if service.process.poll() is not None:
                code = service.process.returncode
                raise SystemExit(f"{service.name} exited with code {code} while starting")
            if port_open(service.port):
                if service.ready_path is None:
                    return
                with contextlib.suppress(httpx.HTTPError):
                    response = httpx.get(f"http://127.0.0.1:{service.port}{service.ready_path}", timeout=2)
                    if response.status_code == 200:
                        return
            time.sleep(0.2)
        raise SystemExit(f"{service.name} did not become ready within {timeout:.0f}s")

    def wait(self) -> int:
        """Block until a signal arrives or a child that is not restarted dies; return the exit code.

        A restartable child (the Functions host) that dies is started again (see the module
        docstring); the others keep running with their state.
        """
        started = {id(s): time.monotonic() for s in self.services}
        crashes_in_a_row = {id(s): 0 for s in self.services}
        while not self._stopping:
            for service in self.services:
                if service.process is None or service.process.poll() is None:
                    continue
                code = service.process.returncode
                if not service.restart:
                    self.echo(f"{service.name} exited with code {code}; stopping")
                    return 1
                if time.monotonic() - started[id(service)] >= RESTART_HEALTHY_AFTER:
                    crashes_in_a_row[id(service)] = 0
                delay = min(RESTART_BACKOFF_FIRST * 2 ** crashes_in_a_row[id(service)], RESTART_BACKOFF_MAX)
                crashes_in_a_row[id(service)] += 1
                service.restarts += 1
                self.echo(
                    f"{service.name} exited with code {code}; restarting it in {delay:.0f}s "
                    f"(restart {service.restarts}); the other services keep running"
                )
                if self._sleep(delay):
                    return 0
                started[id(service)] = time.monotonic()
                self._spawn(service)
                try:
                    self._wait_ready(service, self.ready_timeout)
                except SystemExit as exc:  # it died again while starting: the next round retries
                    self.echo(str(exc))
                    continue
                self.echo(f"{service.name} is back (restart {service.restarts})")
            self._sleep(self.check_interval)
        return 0

    def _sleep(self, seconds: float) -> bool:
        """Sleep in small steps; True if a stop was requested meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
        return self._stopping

    def stop(self, grace: float = 15.0) -> None:
        self._stopping = True
        for service in reversed(self.services):
            proc = service.process
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            self.echo(f"stopped {service.name}")


def clear_state(settings: dict[str, str], echo: Callable[[str], None]) -> list[Path]:
    """Remove the state an earlier `sandbox up` left: Azurite's tables (links, cursors, audit) and
    the local bus file. The simulators keep their records in memory and are seeded anew on every
    start, so an earlier run's links would point at records that no longer exist, or at ids the
    new seed reuses for other records (a new customer "already linked to another record")."""
    bus = Path(settings.get("LOCAL_BUS_PATH") or STATE_DIR / "bus.sqlite3")
    bus = bus if bus.is_absolute() else ROOT / bus
    cleared = []
    for path in (
        STATE_DIR / "azurite",
        bus,
        bus.with_name(bus.name + "-wal"),
        bus.with_name(bus.name + "-shm"),
    ):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        cleared.append(path)
    if cleared:
        echo(
            "starting fresh: the simulators are seeded anew, so the earlier run's state is cleared ("
            + ", ".join(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in cleared)
            + "; --keep-state keeps it)"
        )
    return cleared


def run(
    host_port: int = 7071,
    echo: Callable[[str], None] = print,
    prepare: bool = True,
    catalogue: int | None = None,
    keep_state: bool = False,
) -> int:
    """`syncctl sandbox up` / `make run`: start everything, print URLs, register webhooks against the
    local host, seed the customer base and backfill it (`prepare`), seed the catalogue (`catalogue`
    products, default sandbox.catalogue_demo.catalogue_size; 0: none) and bring it into Dynamics,
    stop on Ctrl-C. The state of an earlier run is cleared first unless `keep_state`."""
    settings_path, settings = load_local_settings()
    from sandbox.orders_demo import demo_settings

    settings = demo_settings(settings)  # fulfilment automation on for the demo (sandbox/orders_demo.py)
    supervisor = Supervisor(plan(settings, host_port=host_port), echo=echo)
    # a sandbox still running owns these files: leave them (start() then names the busy port)
    if not keep_state and not any(port_open(service.port) for service in supervisor.services):
        clear_state(settings, echo)
    if "ORDER_MAPPING_PATH" in settings:  # the host reads its settings file itself: a variable wins
        for service in supervisor.services:
            service.env.setdefault("ORDER_MAPPING_PATH", settings["ORDER_MAPPING_PATH"])

    def on_signal(signum: int, _frame: object) -> None:
        supervisor._stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        supervisor.start()
        echo(f"\nsandbox is up (settings: {settings_path.name}):")
        for service in supervisor.services:
            echo(f"  {service.name:<22} {service.url}")
        echo(f"  {'health':<22} http://127.0.0.1:{host_port}/api/health")
        echo(
            f"  {'brightpearl webhook':<22} POST http://127.0.0.1:{host_port}/api/webhooks/brightpearl"
            "?code=<LOCAL_FUNCTION_KEY>"
        )
        echo(f"  {'operations console':<22} {console_url(settings, host_port)}")
        if prepare:
            from sandbox.demo import prepare as prepare_customers

            try:
                prepare_customers(settings, host_port, echo)
            except Exception as exc:  # the sandbox itself is up; say what did not work
                echo(f"customer base not prepared: {exc}")
            prepare_catalogue(settings, host_port, echo, catalogue)
        echo("press Ctrl-C to stop")
        code = supervisor.wait()
    except SystemExit as exc:
        echo(str(exc))
        code = 1
    finally:
        supervisor.stop()
    return code


def console_url(settings: dict[str, str], host_port: int) -> str:
    """The operations console's URL with the sandbox's admin key (LOCAL_MASTER_KEY)."""
    key = settings.get("LOCAL_MASTER_KEY") or "<LOCAL_MASTER_KEY>"
    return f"http://127.0.0.1:{host_port}/api/ops?code={quote(key)}"


def prepare_catalogue(
    settings: dict[str, str], host_port: int, echo: Callable[[str], None], products: int | None
) -> None:
    """The catalogue part of `sandbox up` (sandbox/catalogue_demo.py); a failure is only reported."""
    from sandbox.catalogue_demo import catalogue_size
    from sandbox.catalogue_demo import prepare_catalogue as seed_catalogue

    try:
        count = catalogue_size(settings, products)
        if count:
            seed_catalogue(
                settings,
                echo,
                host=f"http://127.0.0.1:{host_port}/api",
                master_key=settings.get("LOCAL_MASTER_KEY", ""),
                products=count,
            )
    except Exception as exc:  # the sandbox itself is up; say what did not work
        echo(f"catalogue not prepared: {exc}")
