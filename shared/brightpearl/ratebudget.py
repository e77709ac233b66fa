"""A thread-safe rolling-window request budget shared by every Brightpearl caller in a process.

Brightpearl admits about 200 requests per rolling 60 s per account (reference §3) and
answers 503 beyond that. The budget keeps every caller of one account under the cap:

* a local rolling window (`limit - reserve` sends per `window_seconds`, plus a small
  safety margin because the server's window starts when a request *arrives*);
* the server's own view, read from `brightpearl-requests-remaining` and
  `brightpearl-next-throttle-period` (milliseconds) on every response: when the server
  says the reserve is reached (other apps share the pool), everybody pauses until the
  next period;
* a 503 "too many requests" pauses everybody for the throttle period.

`RateBudget.shared(key, ...)` returns the one budget of a key (account + credentials), so
all clients built in a process for that account draw from the same pool.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from shared.brightpearl.errors import BrightpearlThrottled

REQUESTS_REMAINING = "brightpearl-requests-remaining"
NEXT_THROTTLE_PERIOD = "brightpearl-next-throttle-period"


class RateBudget:
    """Rolling-window limiter plus the server's throttle signals; safe across threads."""

    _registry: ClassVar[dict[str, RateBudget]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        limit: int = 200,
        window_seconds: float = 60.0,
        *,
        reserve: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.limit = limit
        self.window = window_seconds
        self.reserve = max(0, min(reserve, limit - 1))
        # Arrival at the server lags sending by the network latency (and varies), so count a
        # send for a little longer than the window: 5% of it, at least 50 ms, at most 1 s.
        self._span = window_seconds + min(max(window_seconds * 0.05, 0.05), 1.0)
        self._clock = clock
        self._cond = threading.Condition()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self.waits = 0
        self.waited_seconds = 0.0
        self.server_pauses = 0
        self.throttle_pauses = 0

    @classmethod
    def shared(
        cls, key: str, limit: int, window_seconds: float, *, reserve: int = 0
    ) -> RateBudget:
        """The process-wide budget for `key`; created on first use."""
        with cls._registry_lock:
            budget = cls._registry.get(key)
            if budget is None or budget.limit != limit or budget.window != window_seconds:
                budget = cls(limit, window_seconds, reserve=reserve)
                cls._registry[key] = budget
            return budget

    @property
    def allowed_per_window(self) -> int:
        return self.limit - self.reserve

    def acquire(self, max_wait: float) -> float:
        """Block until one request may be sent; return seconds waited.

        Raises BrightpearlThrottled if the wait would exceed `max_wait` seconds.
        """
        started = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self._span:
                    self._sent.popleft()
                ready_at = self._paused_until
                if len(self._sent) >= self.allowed_per_window:
                    ready_at = max(ready_at, self._sent[0] + self._span)
                if ready_at <= now:
                    self._sent.append(now)
                    waited = now - started
                    if waited > 0:
                        self.waits += 1
                        self.waited_seconds += waited
                    return waited
                if (ready_at - started) > max_wait:
                    raise BrightpearlThrottled(
                        f"Brightpearl rate budget exhausted: the next slot is "
                        f"{ready_at - now:.1f}s away, more than the {max_wait:.0f}s allowed",
                        status=503,
                        retry_after=ready_at - now,
                    )
                self._cond.wait(timeout=ready_at - now)

    def observe(self, headers: dict[str, str] | object) -> None:
        """Read the throttle headers of any response and pause if the server says so."""
        get = getattr(headers, "get", None)
        if get is None:
            return
        remaining = _as_float(get(REQUESTS_REMAINING))
        period_ms = _as_float(get(NEXT_THROTTLE_PERIOD))
        if remaining is None or period_ms is None:
            return
        if remaining <= self.reserve:
            with self._cond:
                until = self._clock() + period_ms / 1000.0
                if until > self._paused_until:
                    self._paused_until = until
                    self.server_pauses += 1
                self._cond.notify_all()

    def throttled(self, period_ms: float | None) -> float:
        """A 503 over the cap: pause every caller for the throttle period; return seconds."""
        seconds = period_ms / 1000.0 if period_ms is not None and period_ms > 0 else self.window
        with self._cond:
            until = self._clock() + seconds
            self._paused_until = max(self._paused_until, until)
            self.throttle_pauses += 1
            self._cond.notify_all()
        return seconds


def _as_float(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        return None
