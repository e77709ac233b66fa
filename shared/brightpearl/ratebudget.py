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

Low-priority callers (the contact-search poller, which only shortens the latency of changes
Brightpearl has no webhook for) ask `has_room_for_poll()` first: a cheap, non-blocking look
that takes no slot and says no while anybody is paused or waiting, or when the request would
leave fewer than `flow_reserve` slots of the window (a quarter by default) to the flows. A
skipped round loses nothing: the poller's watermark makes the next round read the same changes.
`poll_may_run()` wraps it for pollers: it logs the skip at INFO (counts, never data) and counts
it in the `bpsync.polls_skipped` metric.

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
from shared.telemetry import get_logger, polls_skipped

REQUESTS_REMAINING = "brightpearl-requests-remaining"
NEXT_THROTTLE_PERIOD = "brightpearl-next-throttle-period"
# Share of the window a low-priority request must leave free for the flows.
FLOW_SHARE = 0.25

log = get_logger("brightpearl.ratebudget")


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
        flow_reserve: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.limit = limit
        self.window = window_seconds
        self.reserve = max(0, min(reserve, limit - 1))
        # Slots of the window a low-priority request must leave to the flows (has_room_for_poll).
        if flow_reserve is None:
            flow_reserve = int((limit - self.reserve) * FLOW_SHARE)
        if flow_reserve < 0:
            raise ValueError("flow_reserve must not be negative")
        self.flow_reserve = flow_reserve
        # Count a send a little longer than the window (margin_of: network latency).
        self._span = window_seconds + margin_of(window_seconds)
        self._clock = clock
        self._cond = threading.Condition()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._waiting = 0  # callers blocked in acquire()
        # The server's last word: requests remaining (other apps included) and until when it holds.
        self._server_remaining: float | None = None
        self._server_seen_at = 0.0
        self._server_until = 0.0
        self.waits = 0
        self.waited_seconds = 0.0
        self.server_pauses = 0
        self.throttle_pauses = 0

    @classmethod
    def shared(cls, key: str, limit: int, window_seconds: float, *, reserve: int = 0) -> RateBudget:
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
                self._expire(now)
                ready_at = self._paused_until
                if len(self._sent) >= self.allowed_per_window:
                    ready_at = max(ready_at, self._sent[0] + self._span)
                if ready_at <= now:
                    return self._sent_now(now, started)
                if (ready_at - started) > max_wait:
                    raise BrightpearlThrottled(
                        f"Brightpearl rate budget exhausted: the next slot is "
                        f"{ready_at - now:.1f}s away, more than the {max_wait:.0f}s allowed",
                        status=503,
                        retry_after=ready_at - now,
                    )
                self._waiting += 1
                try:
                    self._cond.wait(timeout=ready_at - now)
                finally:
                    self._waiting -= 1

    def _sent_now(self, now: float, started: float) -> float:
        """Record a send at `now` (the caller holds the lock); return and count the wait."""
        self._sent.append(now)
        waited = now - started
        if waited > 0:
            self.waits += 1
            self.waited_seconds += waited
        return waited

    def has_room_for_poll(self, requests: int = 1) -> bool:
        """May a low-priority caller send `requests` requests now and still leave `flow_reserve`
        slots of the window to the flows? Non-blocking, takes no slot.

        No while the budget is paused (server signal or 503) or a caller is waiting for a slot;
        otherwise the free slots are the local window's, capped by what the server last said
        remains (less our own sends since then) while that word is current.
        """
        with self._cond:
            now = self._clock()
            if self._paused_until > now or self._waiting:
                return False
            self._expire(now)
            free = self.allowed_per_window - len(self._sent)
            if self._server_remaining is not None and now < self._server_until:
                since = sum(1 for sent in self._sent if sent > self._server_seen_at)
                free = min(free, int(self._server_remaining) - since - self.reserve)
            return free - requests >= self.flow_reserve

    def used_in_window(self) -> int:
        """Requests this process sent in the current window."""
        with self._cond:
            self._expire(self._clock())
            return len(self._sent)

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self._span:
            self._sent.popleft()

    def observe(self, headers: dict[str, str] | object) -> None:
        """Read the throttle headers of any response and pause if the server says so."""
        get = getattr(headers, "get", None)
        if get is None:
            return
        remaining = _as_float(get(REQUESTS_REMAINING))
        period_ms = _as_float(get(NEXT_THROTTLE_PERIOD))
        if remaining is None or period_ms is None:
            return
        with self._cond:
            now = self._clock()
            self._server_remaining = remaining
            self._server_seen_at = now
            self._server_until = now + max(period_ms, 0.0) / 1000.0
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


def margin_of(window_seconds: float) -> float:
    """Seconds a send is counted beyond the window: arrival at the server lags sending by the
    network latency (and varies), so 5 % of the window, at least 50 ms, at most 1 s."""
    return min(max(window_seconds * 0.05, 0.05), 1.0)


def poll_may_run(budget: RateBudget | None, poller: str, requests: int = 1) -> bool:
    """Before a low-priority poll: True to poll now; False when the shared budget is short, so
    the caller skips this round (logged at INFO without data, counted in bpsync.polls_skipped).
    No budget (a client without one): always True."""
    if budget is None or budget.has_room_for_poll(requests):
        return True
    log.info(
        "%s skipped this round: Brightpearl rate budget short (%d of %d requests of the window "
        "used, %d kept for the flows)",
        poller,
        budget.used_in_window(),
        budget.allowed_per_window,
        budget.flow_reserve,
    )
    polls_skipped.add(1, {"poller": poller, "reason": "rate_budget"})
    return False


def _as_float(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        return None
