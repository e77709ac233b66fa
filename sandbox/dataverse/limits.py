"""Service protection: per-user sliding windows of requests and execution time, and a concurrency cap."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.errors import ODataError

THROTTLE_CODES = {
    "requests": (
        E.REQUESTS_EXCEEDED,
        "Number of requests exceeded the limit of {n} over time window of {w} seconds.",
    ),
    "execution": (
        E.EXECUTION_TIME_EXCEEDED,
        "Combined execution time of incoming requests exceeded limit of {n} milliseconds over time "
        "window of {w} seconds. Decrease number of concurrent requests or reduce the duration of "
        "requests and try again later.",
    ),
    "concurrency": (E.CONCURRENCY_EXCEEDED, "Number of concurrent requests exceeded the limit of {n}."),
}


@dataclass
class Usage:
    requests: deque[float] = field(default_factory=deque)
    execution: deque[tuple[float, float]] = field(default_factory=deque)
    in_flight: int = 0
    max_in_flight: int = 0


class ServiceProtection:
    def __init__(self, config: SimulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.users: dict[str, Usage] = {}
        self.throttled: Counter[str] = Counter()

    def reset(self) -> None:
        with self.lock:
            self.users.clear()
            self.throttled.clear()

    def _retry_after(self, seconds: float) -> str:
        if self.config.fractional_retry_after:
            return f"{max(seconds, 0.001):.3f}"
        return str(max(1, math.ceil(seconds)))

    def _error(self, facet: str, limit: float, retry_after: float) -> ODataError:
        code, template = THROTTLE_CODES[facet]
        n = f"{int(limit):,}" if facet == "execution" else str(int(limit))
        message = template.format(
            n=n,
            w=int(self.config.window_seconds)
            if self.config.window_seconds >= 1
            else self.config.window_seconds,
        )
        self.throttled[code] += 1
        return ODataError(429, code, message, {"Retry-After": self._retry_after(retry_after)})

    def admit(self, user_id: str) -> ODataError | None:
        cfg = self.config
        now = self.clock.now()
        with self.lock:
            usage = self.users.setdefault(user_id, Usage())
            if usage.in_flight >= cfg.concurrency_limit:
                return self._error(
                    "concurrency",
                    cfg.concurrency_limit,
                    1.0 if not cfg.fractional_retry_after else min(1.0, cfg.window_seconds / 10),
                )
            horizon = now - cfg.window_seconds
            while usage.requests and usage.requests[0] <= horizon:
                usage.requests.popleft()
            while usage.execution and usage.execution[0][0] <= horizon:
                usage.execution.popleft()
            if len(usage.requests) >= cfg.request_limit:
                return self._error(
                    "requests", cfg.request_limit, usage.requests[0] + cfg.window_seconds - now
                )
            spent = sum(ms for _, ms in usage.execution)
            if spent >= cfg.execution_limit_ms:
                return self._error(
                    "execution", cfg.execution_limit_ms, usage.execution[0][0] + cfg.window_seconds - now
                )
            usage.requests.append(now)
            usage.in_flight += 1
            usage.max_in_flight = max(usage.max_in_flight, usage.in_flight)
            return None

    def release(self, user_id: str, duration_ms: float) -> None:
        with self.lock:
            usage = self.users[user_id]
            usage.in_flight -= 1
            usage.execution.append((self.clock.now(), duration_ms))

    def headers(self, user_id: str) -> dict[str, str]:
        with self.lock:
            usage = self.users.get(user_id, Usage())
            spent = sum(ms for _, ms in usage.execution)
            return {
                "x-ms-ratelimit-burst-remaining-xrm-requests": str(
                    max(self.config.request_limit - len(usage.requests), 0)
                ),
                "x-ms-ratelimit-time-remaining-xrm-requests": (
                    f"{max(self.config.execution_limit_ms - spent, 0):.2f}"
                ),
                "x-ms-dop-hint": str(self.config.dop_hint),
            }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "users": {
                    uid: {
                        "requests_in_window": len(u.requests),
                        "in_flight": u.in_flight,
                        "max_in_flight": u.max_in_flight,
                        "execution_ms_in_window": round(sum(ms for _, ms in u.execution), 2),
                    }
                    for uid, u in self.users.items()
                },
                "throttled": dict(self.throttled),
            }
