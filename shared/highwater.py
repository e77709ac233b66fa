"""The highest id seen per resource, for APIs that allocate ids in ascending order and never
reuse them (Brightpearl, reference §1.3). The API client holds one per process; a writer that
lost an answer scans upward from it (shared/sync/lost_creates.py). Kept apart from the engine so
the client does not import the engine's ports."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class IdHighWater:
    """The highest id seen per resource (thread-safe; one per API client, so per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._highest: dict[str, int] = {}

    def observe(self, resource: str, ids: Iterable[object]) -> None:
        numbers = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
        if not numbers:
            return
        with self._lock:
            self._highest[resource] = max(self._highest.get(resource, 0), *numbers)

    def highest(self, resource: str) -> int | None:
        with self._lock:
            return self._highest.get(resource)
