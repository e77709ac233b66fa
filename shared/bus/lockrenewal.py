"""Keeps the message locks of a batch alive while a flow works on it (issue 17 item 3).

The Service Bus extension renews locks only for single-message functions
(`maxAutoLockRenewalDuration` does not apply to `cardinality="many"`; azure-platform.md §3.2),
and our flows take batches. A batch that waits on the Brightpearl rate budget can run longer
than the subscription's lockDuration (1 minute): its settlements then fail with a lost lock
and the whole batch is redone, and repeated that ends in MaxDeliveryCountExceeded.

`LockRenewal` is a context manager around one invocation: a background thread renews the lock
of every message of the batch through the settlement object (`renew_message_lock`, the same
method on the extension's ServiceBusMessageActions and the local host's LocalMessageActions)
every `every` seconds, until the block ends. A message that can no longer be renewed (already
settled, or its lock is gone) is dropped from the set. Time comes from an injectable clock so
tests move it without sleeping; `tick` is how often (real seconds) the thread looks at it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.events import now_utc

log = logging.getLogger("shared.bus.lockrenewal")


class RenewsLocks(Protocol):
    def renew_message_lock(self, message: Any) -> Any: ...


class LockRenewal:
    """Renew the locks of `messages` every `every` seconds while the `with` block runs."""

    def __init__(
        self,
        messages: Sequence[Any],
        actions: RenewsLocks,
        *,
        every: float,
        clock: Callable[[], datetime] = now_utc,
        tick: float = 1.0,
    ) -> None:
        if every <= 0:
            raise ValueError("every must be positive (seconds between lock renewals)")
        self._pending = list(messages)
        self._actions = actions
        self._every = timedelta(seconds=every)
        self._clock = clock
        self._tick = min(tick, every)
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.rounds = 0  # completed renewal rounds
        self.renewed = 0  # successful renewals, all messages
        self.dropped = 0  # messages no longer renewable (settled or lock lost)

    def __enter__(self) -> LockRenewal:
        if self._pending:
            self._thread = threading.Thread(target=self._run, name="lock-renewal", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def wait_rounds(self, rounds: int, timeout: float) -> bool:
        """Block until `rounds` renewal rounds are done (for tests and probes)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.rounds >= rounds, timeout)

    def _run(self) -> None:
        last = self._clock()
        while not self._stop.wait(self._tick):
            now = self._clock()
            if now - last < self._every:
                continue
            self._renew_all()
            last = now
            if not self._pending:
                return

    def _renew_all(self) -> None:
        kept = []
        for message in self._pending:
            if self._stop.is_set():
                kept.append(message)
                continue
            try:
                self._actions.renew_message_lock(message)
            except Exception as exc:  # settled meanwhile, or the lock is gone: stop renewing it
                self.dropped += 1
                log.info(
                    "lock of message %s not renewed (%s); no further renewals for it",
                    getattr(message, "message_id", "?"),
                    type(exc).__name__,
                )
                continue
            self.renewed += 1
            kept.append(message)
        self._pending = kept
        with self._changed:
            self.rounds += 1
            self._changed.notify_all()
