"""In-memory record store with row versions, a deletion log and transactions with rollback."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sandbox.dataverse.schema import Schema


@dataclass
class Event:
    """A committed operation, as a plug-in step would see it."""

    message: str  # Create | Update | Delete
    table: str
    record_id: str
    attributes: dict[str, Any]  # the Target's attributes (raw stored values)
    user_id: str
    pre_image: dict[str, Any] | None = None
    post_image: dict[str, Any] | None = None
    correlation_id: str | None = None


@dataclass
class _Tx:
    journal: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    deletions_len: int = 0
    events: list[Event] = field(default_factory=list)


class Database:
    """Rows per table: {logical name: {id: record}}. Records keep raw values; lookups as
    {"id": guid, "table": logical}. Every write takes a new global version (the ETag)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.rows: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in schema.tables}
        self.version = 1000
        self.seq = 0
        self.deletions: list[tuple[int, str, str]] = []  # (version, table, id)
        self._tx: _Tx | None = None
        self._depth = 0
        self.on_commit: Callable[[list[Event]], None] | None = None
        self.after_commit: Callable[[list[Event]], None] | None = None
        # alternate-key indexes: {table: {key name: {normalised values: id}}}
        self.key_index: dict[str, dict[str, dict[tuple[str, ...], str]]] = {
            name: {key: {} for key in table.alternate_keys} for name, table in schema.tables.items()
        }
        # lookup index, so finding the rows that point at a record (an order's lines) does not
        # scan the table: {(table, lookup column): {target id: {record id: None}}}; `_order`
        # numbers each row as the rows dict orders it (insertion; a re-inserted row goes last)
        self.ref_index: dict[tuple[str, str], dict[str, dict[str, None]]] = {}
        self._order: dict[str, dict[str, int]] = {}
        self._placed = 0

    # -- alternate-key index ----------------------------------------------------------------------
    @staticmethod
    def key_value(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return str(value.get("id"))
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).lower()

    def _key_entries(self, table: str, record: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
        entries = []
        for key, columns in self.schema.tables[table].alternate_keys.items():
            values = tuple(self.key_value(record.get(c)) for c in columns)
            if all(v is not None for v in values):
                entries.append((key, values))  # type: ignore[arg-type]
        return entries

    def _index(self, table: str, record_id: str, record: dict[str, Any] | None, add: bool) -> None:
        if record is None:
            return
        indexes = self.key_index[table]
        for key, values in self._key_entries(table, record):
            index = indexes.setdefault(key, {})
            if add:
                index[values] = record_id
            elif index.get(values) == record_id:
                del index[values]

    def build_key_index(self, table: str, key: str, columns: list[str]) -> bool:
        """Index existing rows for a new alternate key; False (nothing indexed) on duplicates."""
        index: dict[tuple[str, ...], str] = {}
        for record_id, record in self.rows[table].items():
            values = tuple(self.key_value(record.get(c)) for c in columns)
            if any(v is None for v in values):
                continue
            if values in index:  # type: ignore[comparison-overlap]
                return False
            index[values] = record_id  # type: ignore[index]
        self.key_index[table][key] = index
        return True

    def find_by_key(self, table: str, key: dict[str, Any]) -> str | None:
        for name, columns in self.schema.tables[table].alternate_keys.items():
            if set(columns) == set(key):
                values = tuple(self.key_value(key[c]) for c in columns)
                return self.key_index[table].get(name, {}).get(values)  # type: ignore[arg-type]
        return None

    def key_owner(self, table: str, record: dict[str, Any]) -> tuple[str, str] | None:
        """(key name, id) of another row holding one of `record`'s alternate-key values."""
        own = record.get(self.schema.tables[table].primary_id)
        for key, values in self._key_entries(table, record):
            holder = self.key_index[table].get(key, {}).get(values)
            if holder is not None and holder != own:
                return key, holder
        return None

    # -- lookup index -----------------------------------------------------------------------------
    @staticmethod
    def _targets(record: dict[str, Any] | None) -> dict[str, str]:
        if record is None:
            return {}
        return {
            column: str(value["id"])
            for column, value in record.items()
            if isinstance(value, dict) and "id" in value and "table" in value
        }

    def _reindex(
        self, table: str, record_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        """Keep the lookup index and the row order up to date when a row goes from `old` to `new`."""
        before, after = self._targets(old), self._targets(new)
        for column, target in before.items():
            if after.get(column) != target:
                self.ref_index.get((table, column), {}).get(target, {}).pop(record_id, None)
        for column, target in after.items():
            if before.get(column) != target:
                self.ref_index.setdefault((table, column), {}).setdefault(target, {})[record_id] = None
        order = self._order.setdefault(table, {})
        if new is None:
            order.pop(record_id, None)
        elif old is None:
            self._placed += 1
            order[record_id] = self._placed

    def referencing_ids(self, table: str, column: str, target: str) -> list[str]:
        """Ids of the `table` rows whose lookup `column` points at `target`, in the rows' order."""
        ids = self.ref_index.get((table, column), {}).get(target)
        if not ids:
            return []
        order = self._order.get(table, {})
        return sorted(ids, key=lambda i: order.get(i, 0))

    # -- versions ------------------------------------------------------------------------------
    def next_version(self) -> int:
        self.version += 1
        return self.version

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- writes ----------------------------------------------------------------------------------
    def put(self, table: str, record_id: str, record: dict[str, Any]) -> None:
        old = self.rows[table].get(record_id)
        if self._tx is not None:
            self._tx.journal.append((table, record_id, copy.deepcopy(old) if old is not None else None))
        self._index(table, record_id, old, add=False)
        self.rows[table][record_id] = record
        self._index(table, record_id, record, add=True)
        self._reindex(table, record_id, old, record)

    def remove(self, table: str, record_id: str) -> None:
        old = self.rows[table].pop(record_id, None)
        if old is None:
            return
        self._index(table, record_id, old, add=False)
        self._reindex(table, record_id, old, None)
        if self._tx is not None:
            self._tx.journal.append((table, record_id, copy.deepcopy(old)))
        self.deletions.append((self.next_version(), table, record_id))

    def emit(self, event: Event) -> None:
        if self._tx is not None:
            self._tx.events.append(event)
        else:  # pragma: no cover - every write path opens a transaction
            self._deliver([event])

    # -- transactions ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing unit; nested calls join the outer one. Events are delivered on commit;
        `on_commit` (synchronous webhook steps) may raise to roll the whole unit back."""
        outer = self._tx is None
        if outer:
            self._tx = _Tx(deletions_len=len(self.deletions))
        self._depth += 1
        try:
            yield
            if outer and self._tx is not None and self.on_commit is not None and self._tx.events:
                self.on_commit(list(self._tx.events))
        except BaseException:
            self._depth -= 1
            if outer:
                self._rollback()
            raise
        self._depth -= 1
        if outer:
            tx = self._tx
            self._tx = None
            assert tx is not None
            if tx.events:
                self._deliver(tx.events)

    def _rollback(self) -> None:
        tx = self._tx
        self._tx = None
        if tx is None:
            return
        for table, record_id, old in reversed(tx.journal):
            self._restore(table, record_id, old)
        del self.deletions[tx.deletions_len :]

    def _restore(self, table: str, record_id: str, old: dict[str, Any] | None) -> None:
        self._reindex(table, record_id, self.rows[table].get(record_id), old)
        self._index(table, record_id, self.rows[table].get(record_id), add=False)
        if old is None:
            self.rows[table].pop(record_id, None)
        else:
            self.rows[table][record_id] = old
            self._index(table, record_id, old, add=True)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested all-or-nothing unit inside an open transaction (bulk items, change sets)."""
        if self._tx is None:
            with self.transaction():
                yield
            return
        mark = len(self._tx.journal)
        deletions_mark = len(self.deletions)
        events_mark = len(self._tx.events)
        try:
            yield
        except BaseException:
            for table, record_id, old in reversed(self._tx.journal[mark:]):
                self._restore(table, record_id, old)
            del self._tx.journal[mark:]
            del self.deletions[deletions_mark:]
            del self._tx.events[events_mark:]
            raise

    def _deliver(self, events: list[Event]) -> None:
        if self.after_commit is not None:
            self.after_commit(events)
