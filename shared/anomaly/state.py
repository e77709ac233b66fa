"""What the watches remember between batches (recent order values, e-mail change counts, hourly
dead-letter and deletion counts): small JSON values in the state store's cursors table.

The rows live in their own partition (`anomaly`), so the console's cursor list and the pollers
never see them. Saves are ETag-conditional like the cursors': two workers updating the same
value retry on the newer version instead of losing a count. In the in-memory fakes the store's
cursors stand in for the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from shared.store.cursors import Cursor, CursorStore
from shared.store.errors import StoreConflictError

PARTITION = "anomaly"
ATTEMPTS = 4  # tries of one read-modify-write before giving up on a busy value


class Values(Protocol):
    def get(self, name: str) -> Cursor | None: ...

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor: ...


def values_of(store: Any) -> Values:
    """Where the watches keep their values in `store`: the `anomaly` partition of its cursors
    table (StateStore), or its cursors themselves (the in-memory fakes)."""
    table = getattr(store.cursors, "table", None)
    return CursorStore(table, partition=PARTITION) if table is not None else store.cursors


def read(values: Values, name: str) -> Any:
    cursor = values.get(name)
    return None if cursor is None else json.loads(cursor.value)


def update(values: Values, name: str, change: Callable[[Any], Any]) -> Any:
    """Read `name`, apply `change` (None when absent) and save the result conditionally, retrying
    on a concurrent save; returns what was saved."""
    for _ in range(ATTEMPTS):
        cursor = values.get(name)
        new = change(None if cursor is None else json.loads(cursor.value))
        try:
            values.save(name, json.dumps(new, separators=(",", ":")), None if cursor is None else cursor.etag)
        except StoreConflictError:
            continue
        return new
    raise StoreConflictError(
        f"anomaly value {name} kept changing meanwhile",
        table="cursors",
        partition_key=PARTITION,
        row_key=name,
    )
