"""Named cursors of the pollers: `updatedOn` watermarks and Dataverse change-tracking delta links.

Table `cursors`, one partition (there are only a few cursors), RowKey = the escaped name.
Every write is conditional: `save(name, value)` without an ETag only creates a cursor that does
not exist yet, and with the ETag of a `get()` only replaces the version that was read. So two
poller instances cannot both advance the same cursor; the slower gets StoreConflictError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict

from shared.store.errors import StoreConflictError
from shared.store.tables import (
    MAX_STRING_PROPERTY_CHARS,
    Clock,
    escape_key,
    etag_of,
    get_row,
    to_utc,
    translate_errors,
    unescape_key,
    utc_now,
)

PARTITION = "cursor"


class Cursor(BaseModel):
    """A stored cursor value and the ETag to pass back when advancing it."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    updated_at: datetime
    etag: str


class CursorStore:
    """Poller watermarks and delta links with ETag-conditional saves."""

    def __init__(self, table: TableClient, *, clock: Clock = utc_now, partition: str = PARTITION) -> None:
        """`partition`: the cursors' own by default; another keeps other small named values in
        the same table, out of the pollers' and the console's sight (shared/anomaly/state.py)."""
        self.table = table
        self._clock = clock
        self.partition = partition

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def get(self, name: str) -> Cursor | None:
        row = get_row(self.table, self.partition, escape_key(name, field="cursor name"), "read cursor")
        if row is None:
            return None
        return Cursor(
            name=unescape_key(str(row["RowKey"])),
            value=str(row["value"]),
            updated_at=to_utc(row["updated_at"]),
            etag=etag_of(row),
        )

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor:
        """Create (etag None) or advance (etag of the version read) a cursor.

        Raises StoreConflictError when the cursor exists although etag is None, or when it was
        changed or deleted since the version with `etag` was read.
        """
        if not isinstance(value, str):
            raise ValueError(f"cursor {name!r}: value must be a string, got {type(value).__name__}")
        if len(value) > MAX_STRING_PROPERTY_CHARS:
            raise ValueError(
                f"cursor {name!r}: value is {len(value)} characters, the limit is {MAX_STRING_PROPERTY_CHARS}"
            )
        rk = escape_key(name, field="cursor name")
        now = self._clock()
        row = {"PartitionKey": self.partition, "RowKey": rk, "value": value, "updated_at": now}
        action = "create cursor" if etag is None else "advance cursor"
        with translate_errors(self.table_name, action, self.partition, rk, missing_row_is_conflict=True):
            if etag is None:
                meta = self.table.create_entity(row)
            else:
                meta = self.table.update_entity(
                    row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        return Cursor(name=name, value=value, updated_at=now, etag=str(meta["etag"]))

    def delete(self, name: str, etag: str | None = None) -> None:
        """Remove a cursor (e.g. an expired delta link), conditional on `etag` when given."""
        rk = escape_key(name, field="cursor name")
        with translate_errors(self.table_name, "delete cursor", self.partition, rk):
            if etag is None:
                self.table.delete_entity(self.partition, rk)
            else:
                self.table.delete_entity(
                    self.partition, rk, etag=etag, match_condition=MatchConditions.IfNotModified
                )


class _Cursors(Protocol):
    def get(self, name: str) -> Cursor | None: ...

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor: ...


def keep_latest(cursors: _Cursors, name: str, text: str, what: str) -> None:
    """Store `text` as cursor `name`, replacing any previous value (ETag-conditional, retried when
    another writer got in between: the latest writer wins). `what` names it in the error."""
    for _ in range(3):
        current = cursors.get(name)
        try:
            cursors.save(name, text, etag=current.etag if current is not None else None)
            return
        except StoreConflictError:
            continue
    raise StoreConflictError(f"{what} kept changing while it was saved")
