"""What every resource store shares: the lock, the clock, id counters and webhook events.

All access goes through one re-entrant lock. Times are kept in UTC and rendered with the
configured account offset by the HTTP layer.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from faker import Faker

from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.errors import ApiError

EventSink = Callable[[str, list[int], datetime], None]


_Key = TypeVar("_Key")
_Record = TypeVar("_Record")


def existing(table: dict[_Key, _Record], key: _Key, message: str) -> _Record:
    """The record under `key`, or 404 CMNC-404 with the message."""
    record = table.get(key)
    if record is None:
        raise ApiError(404, "CMNC-404", message)
    return record


class StateCore:
    """The base of every resource store (see `sandbox.brightpearl.state.SimState`)."""

    config: SimulatorConfig
    lock: threading.RLock
    faker: Faker
    rng: random.Random
    _emit: EventSink
    _last_time: datetime
    _seed_clock: datetime | None
    _seed_clock_next: datetime
    _counters: dict[str, int]

    def _reset_core(self) -> None:
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self._seed_clock = None
        self._seed_clock_next = datetime(2000, 1, 1, tzinfo=UTC)
        self._counters = {}

    def set_event_sink(self, emit: EventSink) -> None:
        self._emit = emit

    def emit(self, event: str, ids: list[int]) -> None:
        if event.startswith("contact.") and not self.config.contact_webhooks:
            return
        if event == "order.created" and not self.config.order_created_webhooks:
            return
        self._emit(event, ids, self.now())

    def now(self) -> datetime:
        """Strictly increasing UTC time (ms resolution), so every change moves updatedOn."""
        if self._seed_clock is not None:
            return self._seed_time()
        real = datetime.now(UTC)
        now = real.replace(microsecond=(real.microsecond // 1000) * 1000)
        if now <= self._last_time:
            now = self._last_time + timedelta(milliseconds=1)
        self._last_time = now
        return now

    @contextlib.contextmanager
    def seeding(self) -> Iterator[None]:
        """While seeding, `now` runs on the seed clock; the next seeding continues from it."""
        start = max(self._seed_clock_next, datetime.now(UTC) - timedelta(days=60))
        self._seed_clock = start
        try:
            yield
        finally:
            self._seed_clock_next = self._seed_clock or start
            self._seed_clock = None

    def _seed_time(self) -> datetime:
        """Seeded records get history: time stamps spread over the 60 days before seeding."""
        assert self._seed_clock is not None
        step = timedelta(seconds=self.rng.randint(1, 30))
        limit = datetime.now(UTC) - timedelta(minutes=1)
        if self._seed_clock + step > limit:
            step = timedelta(milliseconds=1)
        self._seed_clock += step
        return self._seed_clock

    def next_id(self, kind: str, start: int = 1) -> int:
        value = self._counters.get(kind, start)
        self._counters[kind] = value + 1
        return value
