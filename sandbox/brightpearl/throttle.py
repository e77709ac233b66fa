"""The simulator's request cap: a rolling window per pool, with a record of every admission.

A pool is the account for private apps and account x developer for OAuth/public apps
(reference §3). `brightpearl-next-throttle-period` is the milliseconds until the oldest
request in the window leaves it (a slot frees); with an empty window, the full window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    admitted: bool
    remaining: int
    next_period_ms: int


class Throttle:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._live: dict[str, deque[float]] = {}
        self.admitted_log: dict[str, list[float]] = {}
        self.rejected = 0

    def configure(self, limit: int, window_seconds: float) -> None:
        with self._lock:
            self.limit = limit
            self.window = window_seconds

    def reset(self) -> None:
        with self._lock:
            self._live.clear()
            self.admitted_log.clear()
            self.rejected = 0

    def admit(self, pool: str) -> Admission:
        with self._lock:
            now = self._clock()
            live = self._live.setdefault(pool, deque())
            while live and live[0] <= now - self.window:
                live.popleft()
            if len(live) >= self.limit:
                self.rejected += 1
                return Admission(False, 0, self._period_ms(live, now))
            live.append(now)
            self.admitted_log.setdefault(pool, []).append(now)
            return Admission(True, max(0, self.limit - len(live)), self._period_ms(live, now))

    def peek(self, pool: str) -> tuple[int, int]:
        """(remaining, next period ms) of a pool without admitting anything."""
        with self._lock:
            now = self._clock()
            live = self._live.get(pool, deque())
            count = sum(1 for t in live if t > now - self.window)
            return max(0, self.limit - count), self._period_ms(
                deque(t for t in live if t > now - self.window), now
            )

    def _period_ms(self, live: deque[float], now: float) -> int:
        if not live:
            return int(self.window * 1000)
        return max(0, int((live[0] + self.window - now) * 1000))

    def max_in_any_window(self, pool: str | None = None) -> int:
        """Largest number of admissions inside any window-long interval (from the log)."""
        with self._lock:
            logs = [self.admitted_log.get(pool, [])] if pool else list(self.admitted_log.values())
            window = self.window
        best = 0
        for times in logs:
            start = 0
            for end, t in enumerate(times):
                while times[start] <= t - window:
                    start += 1
                best = max(best, end - start + 1)
        return best

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            pools = {k: len(v) for k, v in self.admitted_log.items()}
            limit, window, rejected = self.limit, self.window, self.rejected
        return {
            "limit": limit,
            "windowSeconds": window,
            "admittedByPool": pools,
            "admitted": sum(pools.values()),
            "throttled": rejected,
            "maxInAnyWindow": self.max_in_any_window(),
        }
