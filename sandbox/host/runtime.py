"""LocalHost: the sandbox's stand-in for the Azure Functions host (HTTP, topic and timer triggers).

One background thread runs an asyncio loop with uvicorn (HTTP triggers), one dispatcher
per topic trigger (pulling from the local bus) and one scheduler per timer trigger. Sync
functions run in a thread pool, async ones on the loop. `stop()` stops taking messages,
waits for in-flight invocations up to a grace period, abandons whatever is still
unsettled (so nothing is lost), stops uvicorn and closes the bus if the host opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import uvicorn

from sandbox.host.config import (
    HostConfigError,
    HostOptions,
    apply_settings,
    load_host_json,
    load_local_settings,
    local_http_port,
)
from sandbox.host.http import FunctionKeys, build_http_app
from sandbox.host.index import (
    FunctionInfo,
    ServiceBusTriggerInfo,
    TimerTriggerInfo,
    import_app_module,
    index_functions,
)
from sandbox.host.invocation import InvocationResult, Invoker
from sandbox.host.messages import to_functions_message, to_sdk_messages
from sandbox.host.settlement import Deliveries, Delivery, LocalMessageActions
from sandbox.host.timers import Schedule, timer_request
from shared.bus.port import BusError

log = logging.getLogger("sandbox.host")

Clock = Callable[[], datetime]
DEFAULT_BUS_PATH = ".sandbox/bus.sqlite3"
DEFAULT_PORT = 7071
BUS_PATH_SETTING = "LOCAL_BUS_PATH"
THREADPOOL_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"
# A timer run that starts this much after its due time is reported as past due.
PAST_DUE_TOLERANCE = timedelta(seconds=2)


@dataclass(frozen=True)
class InFlightMessage:
    function_name: str
    message_id: str
    delivery_count: int
    locked_until: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def ensure_loopback(host: str) -> str:
    """The local host only listens on loopback; anything else is refused."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise HostConfigError(f"--host {host!r} is not an IP address; use 127.0.0.1") from exc
    if not address.is_loopback:
        raise HostConfigError(
            f"--host {host!r} is not a loopback address; the local host binds to loopback only"
        )
    return host


def _disabled(function_name: str) -> bool:
    return os.environ.get(f"AzureWebJobs.{function_name}.Disabled", "").strip().lower() in ("true", "1")


class LocalHost:
    """Programmatic local Functions host. Use as a context manager or call start()/stop().

    app_module: module name (imported fresh, as a new worker would) or an imported module.
    port: HTTP port (None = Host.LocalHttpPort of the settings file, else 7071; 0 = any free).
    settings: app settings (None = local.settings.json, else local.settings.example.json,
        under project_root). They are added to os.environ without overriding variables that
        are already set (as Core Tools does) and removed again by stop().
    bus: a LocalBus to drive topic triggers from (None = open LOCAL_BUS_PATH; the host then
        owns and closes it). clock: time source shared with the bus (tests pass a fake one).
    host_json: path or dict (None = project_root/host.json if present, else defaults).
    topology: for a bus the host opens itself: a Topology or path (None =
        project_root/infra/topology.json, else the project's default).
    poll_interval: seconds between polls of an empty subscription / timer checks.
    shutdown_grace: seconds stop() waits for running invocations before releasing messages.
    """

    def __init__(
        self,
        app_module: str | ModuleType = "function_app",
        *,
        settings: Mapping[str, str] | None = None,
        settings_path: Path | None = None,
        bus: Any | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        clock: Clock | None = None,
        host_json: Path | Mapping[str, Any] | None = None,
        project_root: Path | str | None = None,
        topology: Any | None = None,
        poll_interval: float = 0.5,
        shutdown_grace: float = 30.0,
    ) -> None:
        self.project_root = Path(project_root or os.getcwd()).resolve()
        self.host = ensure_loopback(host)
        self.clock: Clock = clock or _utc_now
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        if settings is None:
            values, source = load_local_settings(self.project_root, settings_path)
            self.settings_source: Path | None = source
            if port is None:
                port = local_http_port(source)
        else:
            values, self.settings_source = dict(settings), None
        self.port = DEFAULT_PORT if port is None else port
        self._added_env = apply_settings(values)
        try:
            self._init_app(app_module, bus, host_json, topology)
        except BaseException:
            self._restore_env()
            raise

    def _init_app(
        self,
        app_module: str | ModuleType,
        bus: Any | None,
        host_json: Path | Mapping[str, Any] | None,
        topology: Any | None,
    ) -> None:
        if host_json is None and (self.project_root / "host.json").is_file():
            host_json = self.project_root / "host.json"
        self.options: HostOptions = load_host_json(host_json)
        if str(self.project_root) not in sys.path:
            sys.path.insert(0, str(self.project_root))
        self.module = import_app_module(app_module)
        indexed = index_functions(self.module, os.environ)
        # As in Azure: app setting AzureWebJobs.<name>.Disabled=true turns a function off.
        self.disabled = [f.name for f in indexed if _disabled(f.name)]
        self.functions: list[FunctionInfo] = [f for f in indexed if f.name not in self.disabled]
        self._by_name = {f.name: f for f in self.functions}
        self._keys = FunctionKeys(os.environ, self.functions)
        self._schedules = {
            f.name: Schedule.parse(f.trigger.schedule, f.name)
            for f in self.functions
            if isinstance(f.trigger, TimerTriggerInfo)
        }
        topic_functions = [f for f in self.functions if isinstance(f.trigger, ServiceBusTriggerInfo)]
        self._owns_bus = False
        if bus is None and topic_functions:
            from shared.bus.local import LocalBus
            from shared.bus.topology import load_topology

            if topology is None or isinstance(topology, str | Path):
                default = self.project_root / "infra" / "topology.json"
                topology = load_topology(topology or default) if (topology or default.is_file()) else None
            path = Path(os.environ.get(BUS_PATH_SETTING) or DEFAULT_BUS_PATH)
            bus = LocalBus(
                path if path.is_absolute() else self.project_root / path, topology, clock=self.clock
            )
            self._owns_bus = True
        self.bus = bus
        self._warn_inert_service_bus_settings(topic_functions)
        try:
            for f in topic_functions:
                self._check_subscription(f)
        except BaseException:
            self._close_bus()
            raise
        self._deliveries = (
            Deliveries(self.bus, lambda op, *a, **k: op(*a, **k)) if self.bus is not None else None
        )
        self.message_actions = LocalMessageActions(self._deliveries) if self._deliveries else None

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._invocations: set[asyncio.Task[Any]] = set()
        self._timer_locks: dict[str, asyncio.Lock] = {}
        self._timer_last: dict[str, datetime] = {}
        self._busy = 0
        self._deliveries_started = 0
        self._stopped = False
        threads = int(os.environ.get(THREADPOOL_SETTING) or min(32, (os.cpu_count() or 1) + 4))
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="sandbox-host-fn")
        self._bus_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-host-bus")
        timeout = self.options.function_timeout
        self._invoker = Invoker(
            self._pool, str(self.project_root), timeout.total_seconds() if timeout else None
        )

    def _warn_inert_service_bus_settings(self, topic_functions: list[FunctionInfo]) -> None:
        """Say which host.json extensions.serviceBus values the extension would ignore here:
        single-message settings when every trigger takes batches, and maxBatchWaitTime while
        minMessageBatchSize is 1 (azure-platform.md §3.2)."""
        raw = (self.options.raw or {}).get("extensions", {})
        section = next((v for k, v in raw.items() if k.lower() == "servicebus"), None)
        if not isinstance(section, dict) or not topic_functions:
            return
        keys = {k.lower(): k for k in section}
        inert = []
        if all(isinstance(f.trigger, ServiceBusTriggerInfo) and f.trigger.many for f in topic_functions):
            inert += [keys[k] for k in ("maxconcurrentcalls", "maxautolockrenewalduration") if k in keys]
        if "maxbatchwaittime" in keys and self.options.service_bus.min_message_batch_size <= 1:
            inert.append(keys["maxbatchwaittime"] + " (minMessageBatchSize is 1)")
        for key in inert:
            log.warning("host.json extensions.serviceBus.%s has no effect on this app's triggers", key)

    def _check_subscription(self, fn: FunctionInfo) -> None:
        trigger = fn.trigger
        assert isinstance(trigger, ServiceBusTriggerInfo)
        topology = getattr(self.bus, "topology", None)
        if (
            topology is not None
            and (trigger.topic, trigger.subscription) not in topology.subscription_names()
        ):
            raise HostConfigError(
                f"function {fn.name!r}: topic {trigger.topic!r} / subscription {trigger.subscription!r} "
                "is not in the bus topology (infra/topology.json)"
            )
        conn = trigger.connection
        if conn and not any(k == conn or k.startswith(conn + "__") for k in os.environ):
            log.warning(
                "function %s: connection setting %r is not set (the local bus does not need it, Azure does)",
                fn.name,
                conn,
            )

    # ------------------------------------------------------------------ public API
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        prefix = self.options.route_prefix
        return f"{self.base_url}/{prefix}" if prefix else self.base_url

    def describe(self) -> list[str]:
        """The start-up listing: one line per function with its route, topic or schedule."""
        lines = [f.describe(self.base_url, self.options.route_prefix) for f in self.functions]
        return lines + [f"{name}: disabled (AzureWebJobs.{name}.Disabled)" for name in self.disabled]

    def start(self) -> LocalHost:
        if self._thread is not None:
            raise RuntimeError("the local host was already started")
        self._socket = self._bind()
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._run_loop, name="sandbox-host-loop", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            self._cleanup_after_loop()
            raise self._start_error
        log.info("Functions:\n%s", "\n".join(f"        {line}" for line in self.describe()))
        log.info("Host started: %s", self.base_url)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown (idempotent); see the module docstring."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None and self._loop is not None and self._thread.is_alive():
            grace_s = self.shutdown_grace if grace is None else grace
            future = asyncio.run_coroutine_threadsafe(self._shutdown(grace_s), self._loop)
            try:
                future.result()
            finally:
                self._thread.join()
        self._cleanup_after_loop()

    def serve_forever(self, on_started: Callable[[LocalHost], None] | None = None) -> None:
        """Start (if needed) and serve until SIGINT or SIGTERM, then stop gracefully.

        Must be called from the main thread (signal handlers); used by the CLI and syncctl.
        `on_started` runs once the host listens (e.g. to print the URLs).
        """
        stop = threading.Event()

        def request_stop(signum: int, _frame: object) -> None:
            log.info("received %s", signal.Signals(signum).name)
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self._thread is None:
                self.start()
            if on_started is not None:
                on_started(self)
            while not stop.wait(0.5):
                if self._thread is not None and not self._thread.is_alive():
                    log.error("the local host stopped unexpectedly")
                    break
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> LocalHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_timer(self, name: str, timeout: float | None = 60.0) -> InvocationResult:
        """Run a timer function now (waits while a scheduled run of it is in progress)."""
        fn = self._by_name.get(name)
        if fn is None or not isinstance(fn.trigger, TimerTriggerInfo):
            raise KeyError(f"no timer function named {name!r}")
        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(self._fire_timer(fn, due=None, reason="manual run"), loop)
        return future.result(timeout)

    def in_flight(self) -> list[InFlightMessage]:
        """Messages handed to functions and not yet settled, with their current lock expiry."""
        if self._deliveries is None:
            return []
        return [
            InFlightMessage(d.function_name, d.message.message_id, d.message.delivery_count, d.locked_until)
            for d in self._deliveries.open_deliveries()
        ]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every subscription the host listens to has no active messages and nothing runs.

        Raises TimeoutError naming what is still busy.
        """
        self._require_loop()
        subs = sorted(
            {
                (f.trigger.topic, f.trigger.subscription)
                for f in self.functions
                if isinstance(f.trigger, ServiceBusTriggerInfo)
            }
        )
        deadline = time.monotonic() + timeout
        while True:
            started, busy = self._deliveries_started, self._busy
            pending: list[str] = []
            if busy:
                pending.append(f"{busy} invocation(s) or receive(s) running")
            else:
                for topic, sub in subs:
                    active = self.bus.counts(topic, sub).active
                    if active:
                        pending.append(f"{active} active message(s) on {topic}/{sub}")
                if not pending and self._busy == 0 and self._deliveries_started == started:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError("local host not idle: " + "; ".join(pending or ["work started meanwhile"]))
            time.sleep(min(self.poll_interval, 0.05))

    # ------------------------------------------------------------------ loop thread
    def _bind(self) -> socket.socket:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP; without it every response waits for delayed ACKs (about 40 ms per request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise HostConfigError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        sock.listen(128)
        sock.set_inheritable(True)
        return sock

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # start-up failure: report to start()
            if not self._started.is_set():
                self._start_error = exc
                self._started.set()
            else:
                log.exception("local host loop failed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        app = build_http_app(
            self.functions, self.options.route_prefix, self._keys, self._invoke_http, self._admin_invoke
        )
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="none",
            timeout_graceful_shutdown=int(self.shutdown_grace) or 1,
        )
        self._server = uvicorn.Server(config)
        assert self._socket is not None
        server_task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="uvicorn")
        while not self._server.started:
            if server_task.done():
                server_task.result()
                raise HostConfigError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        for fn in self.functions:
            if isinstance(fn.trigger, ServiceBusTriggerInfo):
                runner = self._run_batches if fn.trigger.many else self._run_single
                self._tasks.append(
                    asyncio.create_task(self._supervised(runner, fn), name=f"dispatch-{fn.name}")
                )
            elif isinstance(fn.trigger, TimerTriggerInfo):
                self._timer_locks[fn.name] = asyncio.Lock()
                armed_at = self.clock()  # occurrences after start() count, even if the loop starts later
                self._tasks.append(
                    asyncio.create_task(self._run_timer(fn, armed_at), name=f"timer-{fn.name}")
                )
        self._started.set()
        await server_task

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._thread is None or not self._thread.is_alive() or self._stopped:
            raise RuntimeError("the local host is not running")
        return self._loop

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the host stops."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _bus_call(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._bus_pool, lambda: operation(*args, **kwargs))

    async def _invoke_http(self, fn: FunctionInfo, kwargs: dict[str, Any], reason: str) -> InvocationResult:
        self._busy += 1
        try:
            return await self._invoker.invoke(fn, kwargs, reason)
        finally:
            self._busy -= 1

    async def _admin_invoke(self, name: str) -> tuple[int, dict[str, Any]]:
        """POST /admin/functions/{name}: run a timer function now (in the background)."""
        fn = next((f for f in self.functions if f.name.lower() == name.lower()), None)
        if fn is None:
            return 404, {"error": f"no function named {name!r}"}
        if not isinstance(fn.trigger, TimerTriggerInfo):
            return 400, {"error": "the local host runs only timer functions through the admin API"}
        assert self._stopping is not None
        if self._stopping.is_set():
            return 503, {"error": "the host is stopping"}
        self._busy += 1  # counted from now, so wait_idle() cannot miss the run

        async def run() -> None:
            try:
                await self._fire_timer_logged(fn, due=None, reason="admin API")
            finally:
                self._busy -= 1

        task = asyncio.create_task(run())
        self._invocations.add(task)
        task.add_done_callback(self._invocations.discard)
        return 202, {}

    # ------------------------------------------------------------------ topic triggers
    async def _receive(self, fn: FunctionInfo, max_messages: int) -> list[Any]:
        trigger = fn.trigger
        assert isinstance(trigger, ServiceBusTriggerInfo)
        try:
            messages = await self._bus_call(
                self.bus.receive, trigger.topic, trigger.subscription, max_messages
            )
        except BusError as exc:
            log.error(
                "function %s: receiving from %s/%s failed: %s",
                fn.name,
                trigger.topic,
                trigger.subscription,
                exc,
            )
            return []
        self._deliveries_started += len(messages)
        return messages

    def _track(self, fn: FunctionInfo, message: Any) -> Delivery:
        assert self._deliveries is not None
        now = self.clock()
        until = message.locked_until or now
        trigger = fn.trigger
        assert isinstance(trigger, ServiceBusTriggerInfo)
        topology = getattr(self.bus, "topology", None)
        if topology is not None:
            lock_s = topology.topic(trigger.topic).subscription(trigger.subscription).lock.total_seconds()
        else:
            lock_s = max((until - now).total_seconds(), 1.0)
        delivery = Delivery(
            message=message,
            function_name=fn.name,
            received_at=now,
            lock_duration_s=lock_s,
            locked_until=until,
        )
        self._deliveries.add(delivery)
        return delivery

    async def _supervised(self, runner: Callable[[FunctionInfo], Any], fn: FunctionInfo) -> None:
        """Keep a dispatcher running: an unexpected error is logged and the loop restarts."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                await runner(fn)
                return
            except Exception:
                log.exception("dispatcher of %s failed; restarting it", fn.name)
                await self._sleep(max(self.poll_interval, 1.0))

    async def _run_single(self, fn: FunctionInfo) -> None:
        """cardinality one: up to maxConcurrentCalls invocations at a time."""
        assert self._stopping is not None
        limit = self.options.service_bus.max_concurrent_calls
        running: set[asyncio.Task[Any]] = set()
        while not self._stopping.is_set():
            free = limit - len(running)
            if free <= 0:
                stop_wait = asyncio.create_task(self._stopping.wait())
                await asyncio.wait({*running, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                continue
            self._busy += 1
            try:
                messages = await self._receive(fn, free)
                deliveries = [self._track(fn, m) for m in messages]
                if self._stopping.is_set():
                    await self._release_all(deliveries, "host stopping")
                    break
                for delivery in deliveries:
                    self._busy += 1
                    task = asyncio.create_task(self._process([delivery], fn), name=f"invoke-{fn.name}")
                    running.add(task)
                    self._invocations.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(self._invocations.discard)
            finally:
                self._busy -= 1
            if not messages:
                await self._sleep(self.poll_interval)

    async def _run_batches(self, fn: FunctionInfo) -> None:
        """cardinality many: one batch at a time, up to maxMessageBatchSize, waiting up to
        maxBatchWaitTime for minMessageBatchSize once a first message has arrived."""
        assert self._stopping is not None
        opts = self.options.service_bus
        while not self._stopping.is_set():
            batch: list[Delivery] = []
            task: asyncio.Task[Any] | None = None
            self._busy += 1
            try:
                deadline: float | None = None
                while not self._stopping.is_set():
                    messages = await self._receive(fn, opts.max_message_batch_size - len(batch))
                    batch.extend(self._track(fn, m) for m in messages)
                    if batch and deadline is None:
                        deadline = time.monotonic() + opts.max_batch_wait_time.total_seconds()
                    if len(batch) >= opts.min_message_batch_size or len(batch) >= opts.max_message_batch_size:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    if not batch:
                        break
                    await self._sleep(self.poll_interval)
                if self._stopping.is_set():
                    await self._release_all(batch, "host stopping")
                    break
                if batch:
                    self._busy += 1
                    task = asyncio.create_task(self._process(batch, fn), name=f"invoke-{fn.name}")
                    self._invocations.add(task)
                    task.add_done_callback(self._invocations.discard)
            finally:
                self._busy -= 1
            if task is not None:
                await asyncio.wait({task})
            else:
                await self._sleep(self.poll_interval)

    async def _process(self, batch: list[Delivery], fn: FunctionInfo) -> None:
        """Invoke the function for one message (or one batch), renew locks, settle what is left."""
        trigger = fn.trigger
        assert isinstance(trigger, ServiceBusTriggerInfo) and self._deliveries is not None
        renewals: list[asyncio.Task[Any]] = []
        done = asyncio.Event()
        succeeded = False
        try:
            messages = [d.message for d in batch]
            try:
                if trigger.sdk_type:
                    argument = to_sdk_messages(messages, many=trigger.many)
                else:
                    converted = [to_functions_message(m) for m in messages]
                    argument = converted if trigger.many else converted[0]
            except Exception:
                log.exception("function %s: could not build the trigger message(s); abandoning", fn.name)
                return
            kwargs: dict[str, Any] = {fn.trigger_parameter: argument}
            for name in trigger.actions_parameters:
                kwargs[name] = self.message_actions
            # The Service Bus extension renews locks of single-message functions only.
            if not trigger.many:
                renewals = [asyncio.create_task(self._renew_while_running(d, done)) for d in batch]
            reason = (
                f"New ServiceBus message detected on '{trigger.topic}/Subscriptions/{trigger.subscription}'."
            )
            for d in batch:
                m = d.message
                log.info(
                    "Trigger Details: MessageId: %s, SequenceNumber: %s, DeliveryCount: %s, "
                    "EnqueuedTimeUtc: %s, LockedUntilUtc: %s",
                    m.message_id,
                    m.sequence_number,
                    m.delivery_count,
                    m.enqueued_time_utc.isoformat(),
                    d.locked_until.isoformat(),
                )
            outcome = await self._invoker.invoke(fn, kwargs, reason)
            succeeded = outcome.succeeded
        finally:
            done.set()
            if renewals:
                await asyncio.gather(*renewals, return_exceptions=True)
            auto = (
                trigger.auto_complete
                if trigger.auto_complete is not None
                else self.options.service_bus.auto_complete_messages
            )
            for delivery in batch:
                if not delivery.open:
                    continue
                if not auto and succeeded:
                    log.warning(
                        "function %s returned without settling message %s (autoCompleteMessages is false); "
                        "abandoning it",
                        fn.name,
                        delivery.message.message_id,
                    )
                why = "function succeeded" if succeeded else "function failed"
                await self._bus_call(self._deliveries.release, delivery, succeeded and auto, why)
            for delivery in batch:
                self._deliveries.discard(delivery)
            self._busy -= 1

    async def _renew_while_running(self, delivery: Delivery, done: asyncio.Event) -> None:
        """Renew the lock at about half its duration until the function returns or the
        maxAutoLockRenewalDuration is used up."""
        assert self._deliveries is not None
        limit = self.options.service_bus.max_auto_lock_renewal_duration
        half = timedelta(seconds=delivery.lock_duration_s / 2)
        while not done.is_set() and delivery.open:
            now = self.clock()
            if now >= delivery.locked_until - half:
                if limit is not None and now - delivery.received_at >= limit:
                    log.info(
                        "message %s: maxAutoLockRenewalDuration reached; lock renewal stops",
                        delivery.message.message_id,
                    )
                    return
                try:
                    await self._bus_call(self._deliveries.renew, delivery)
                except BusError as exc:
                    if delivery.open or delivery.outcome == "lock-lost":
                        log.warning("message %s: lock renewal failed: %s", delivery.message.message_id, exc)
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=self.poll_interval)

    async def _release_all(self, deliveries: list[Delivery], why: str) -> None:
        assert self._deliveries is not None
        for delivery in deliveries:
            if delivery.open:
                await self._bus_call(self._deliveries.release, delivery, False, why)
            self._deliveries.discard(delivery)

    # ------------------------------------------------------------------ timers
    async def _run_timer(self, fn: FunctionInfo, armed_at: datetime) -> None:
        assert isinstance(fn.trigger, TimerTriggerInfo) and self._stopping is not None
        schedule = self._schedules[fn.name]
        if fn.trigger.run_on_startup:
            await self._fire_timer_logged(fn, due=None, reason="RunOnStartup")
        next_due = schedule.next_after(armed_at)
        while not self._stopping.is_set():
            now = self.clock()
            if now >= next_due:
                # Busy until the next occurrence is armed, so wait_idle() means "scheduled again".
                # Occurrences that pass while the function runs are skipped, as in the Functions host.
                self._busy += 1
                try:
                    await self._fire_timer_logged(fn, due=next_due, reason="Timer fired")
                    next_due = schedule.next_after(max(self.clock(), next_due))
                finally:
                    self._busy -= 1
                continue
            await self._sleep(min(self.poll_interval, max((next_due - now).total_seconds(), 0.01)))

    async def _fire_timer_logged(self, fn: FunctionInfo, *, due: datetime | None, reason: str) -> None:
        try:
            await self._fire_timer(fn, due=due, reason=reason)
        except Exception:
            log.exception("timer %s could not run", fn.name)

    async def _fire_timer(self, fn: FunctionInfo, *, due: datetime | None, reason: str) -> InvocationResult:
        """One timer invocation; runs of the same function never overlap."""
        schedule = self._schedules[fn.name]
        self._busy += 1
        try:
            async with self._timer_locks[fn.name]:
                now = self.clock()
                past_due = due is not None and (
                    now >= schedule.next_after(due) or now - due > PAST_DUE_TOLERANCE
                )
                request = timer_request(
                    past_due=past_due,
                    last=self._timer_last.get(fn.name),
                    next_due=schedule.next_after(now),
                    now=now,
                )
                self._timer_last[fn.name] = now
                return await self._invoker.invoke(fn, {fn.trigger_parameter: request}, reason)
        finally:
            self._busy -= 1

    # ------------------------------------------------------------------ shutdown
    async def _shutdown(self, grace: float) -> None:
        assert self._stopping is not None
        log.info("Stopping the local host: no new messages; waiting up to %ss for running invocations", grace)
        self._stopping.set()
        # Dispatchers and timers end their loops; a timer in the middle of a run finishes it.
        waiting = [*self._tasks, *self._invocations]
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=max(grace, 0.0))
        else:
            pending = set()
        if self._deliveries is not None:
            for delivery in self._deliveries.open_deliveries():
                log.warning(
                    "releasing message %s of %s: still running at shutdown",
                    delivery.message.message_id,
                    delivery.function_name,
                )
                await self._bus_call(self._deliveries.release, delivery, False, "host stopped")
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            self._server.should_exit = True

    def _cleanup_after_loop(self) -> None:
        # A sync function still running after the grace period keeps its pool thread until it
        # returns (Python cannot interrupt it); otherwise every pool thread is joined here.
        stuck = self._invoker.sync_running
        if stuck:
            log.warning(
                "%d sync function(s) still running after shutdown; their threads end when they return", stuck
            )
        self._pool.shutdown(wait=not stuck, cancel_futures=True)
        self._bus_pool.shutdown(wait=True)
        if self._socket is not None:
            self._socket.close()
        self._close_bus()
        self._restore_env()

    def _close_bus(self) -> None:
        if self._owns_bus and self.bus is not None:
            self.bus.close()
            self._owns_bus = False

    def _restore_env(self) -> None:
        for key in self._added_env:
            os.environ.pop(key, None)
        self._added_env = []
