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

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode

from shared.store.cursors import Cursor
from shared.store.errors import StoreConflictError
from shared.store.tables import escape_key, etag_of, get_row, to_utc, translate_errors, utc_now

PARTITION = "anomaly"
ATTEMPTS = 4  # tries of one read-modify-write before giving up on a busy value


class Values(Protocol):
    def get(self, name: str) -> Cursor | None: ...

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor: ...


class AnomalyRows:
    """Named values in partition `anomaly` of the cursors table (same contract as CursorStore)."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def get(self, name: str) -> Cursor | None:
        row = get_row(self.table, PARTITION, escape_key(name, field="anomaly value"), "read anomaly value")
        if row is None:
            return None
        return Cursor(
            name=name, value=str(row["value"]), updated_at=to_utc(row["updated_at"]), etag=etag_of(row)
        )

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor:
        rk = escape_key(name, field="anomaly value")
        now = utc_now()
        row = {"PartitionKey": PARTITION, "RowKey": rk, "value": value, "updated_at": now}
        with translate_errors(
            self.table.table_name, "save anomaly value", PARTITION, rk, missing_row_is_conflict=True
        ):
            if etag is None:
                meta = self.table.create_entity(row)
            else:
                meta = self.table.update_entity(
                    row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        return Cursor(name=name, value=value, updated_at=now, etag=str(meta["etag"]))


def values_of(store: Any) -> Values:
    """Where the watches keep their values in `store`: the `anomaly` partition of its cursors
    table (StateStore), or its cursors themselves (the in-memory fakes)."""
    table = getattr(store.cursors, "table", None)
    return AnomalyRows(table) if table is not None else store.cursors


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
