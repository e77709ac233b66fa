"""Calling user functions as the Python worker does: async ones awaited, sync ones in a thread pool."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import _abc as functions_abc

from sandbox.host.index import FunctionInfo

log = logging.getLogger("sandbox.host")


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation produced: success, the return value, or the exception raised."""

    invocation_id: str
    function_name: str
    succeeded: bool
    result: Any = None
    error: BaseException | None = None


class _TraceContext(functions_abc.TraceContext):
    def __init__(self) -> None:
        self._trace_parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(functions_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class LocalContext(func.Context):
    """The `context` argument: invocation id, function name and directory."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str):
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()
        self._trace_context = _TraceContext()
        self._retry_context = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return self._retry_context


class Invoker:
    """Runs invocations and logs them in the style of Core Tools ("Executing ... / Executed ...")."""

    def __init__(self, pool: ThreadPoolExecutor, function_directory: str, timeout: float | None = None):
        self._pool = pool
        self._timeout = timeout
        self._function_directory = function_directory
        self._sync_running = 0
        self._sync_lock = threading.Lock()

    @property
    def sync_running(self) -> int:
        """Sync functions still executing in pool threads (they cannot be interrupted)."""
        with self._sync_lock:
            return self._sync_running

    def _call_sync(self, fn: FunctionInfo, kwargs: dict[str, Any]) -> Any:
        with self._sync_lock:
            self._sync_running += 1
        try:
            return fn.user_function(**kwargs)
        finally:
            with self._sync_lock:
                self._sync_running -= 1

    async def invoke(self, fn: FunctionInfo, kwargs: dict[str, Any], reason: str) -> InvocationResult:
        invocation_id = str(uuid.uuid4())
        if fn.context_parameter:
            kwargs = {
                **kwargs,
                fn.context_parameter: LocalContext(invocation_id, fn.name, self._function_directory),
            }
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            if fn.is_async:
                running = fn.user_function(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                running = loop.run_in_executor(self._pool, functools.partial(self._call_sync, fn, kwargs))
            # host.json functionTimeout: the invocation fails (a sync function's thread cannot be
            # stopped and runs on, but its outcome no longer counts).
            result = await asyncio.wait_for(running, self._timeout)
        except Exception as exc:
            duration = (time.perf_counter() - started) * 1000
            if (
                isinstance(exc, TimeoutError)
                and self._timeout is not None
                and duration >= self._timeout * 1000
            ):
                log.error(
                    "Timeout value of %ss exceeded by function 'Functions.%s' (Id: '%s'). "
                    "Initiating cancellation.",
                    self._timeout,
                    fn.name,
                    invocation_id,
                )
            else:
                log.exception(
                    "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", fn.name, invocation_id, duration
                )
            return InvocationResult(invocation_id, fn.name, False, error=exc)
        duration = (time.perf_counter() - started) * 1000
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", fn.name, invocation_id, duration
        )
        return InvocationResult(invocation_id, fn.name, True, result=result)
