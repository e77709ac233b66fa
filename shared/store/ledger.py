"""The idempotent receiver's ledger: message keys already processed, each with an expiry.

Table `ledger`. PartitionKey is the first hex digit of the key's SHA-256 (16 partitions, so
load spreads and a batch of keys needs at most 16 queries); RowKey is the escaped key. Table
Storage has no TTL, so an expired row simply counts as unseen and `purge_expired()` (a timer)
removes such rows.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from azure.core import MatchConditions
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.store.errors import StoreConflictError
from shared.store.tables import (
    Clock,
    delete_matching,
    escape_key,
    etag_of,
    get_row,
    optional_utc,
    rows_by_keys,
    translate_errors,
    utc_now,
)


class Ledger:
    """Processed message keys with expiry (default retention from LEDGER_RETENTION_DAYS)."""

    def __init__(
        self,
        table: TableClient,
        *,
        retention: timedelta = timedelta(days=14),
        clock: Clock = utc_now,
    ) -> None:
        if retention <= timedelta(0):
            raise ValueError("ledger retention must be positive")
        self.table = table
        self.retention = retention
        self._clock = clock

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def seen(self, key: str) -> bool:
        """True if `key` was recorded and has not expired."""
        row = get_row(self.table, *_keys(key), "read ledger")
        return row is not None and self._alive(row)

    def seen_many(self, keys: Iterable[str]) -> set[str]:
        """The subset of `keys` that was recorded and has not expired."""
        by_partition: dict[str, dict[str, str]] = defaultdict(dict)
        for key in keys:
            pk, rk = _keys(key)
            by_partition[pk][rk] = key
        seen: set[str] = set()
        for pk, wanted in by_partition.items():
            for rk, row in rows_by_keys(self.table, pk, list(wanted), "read ledger").items():
                if self._alive(row):
                    seen.add(wanted[rk])
        return seen

    def record(self, key: str, *, ttl: timedelta | None = None, holder: str | None = None) -> bool:
        """Record `key` as processed. True if this call recorded it, False if already there.

        Concurrent callers with the same key: exactly one gets True. `holder` (optional) is
        kept with the key: which message the key was recorded for (see `record_for`).
        """
        return self._record(key, ttl, holder, same_holder_ok=False)

    def record_for(self, key: str, holder: str, *, ttl: timedelta | None = None) -> bool:
        """Record `key` for message `holder`: True if this call recorded it or `holder` already
        holds it (a redelivery or a resubmitted copy of that message), False if another does.

        Concurrent callers with the same key and different holders: exactly one gets True.
        """
        if not holder:
            raise ValueError("holder must be a non-empty message id")
        return self._record(key, ttl, holder, same_holder_ok=True)

    def holder_of(self, key: str) -> str | None:
        """The message a live key was recorded for (None if absent, expired or recorded without)."""
        row = get_row(self.table, *_keys(key), "read ledger")
        if row is None or not self._alive(row):
            return None
        holder = row.get("holder")
        return str(holder) if holder else None

    def _record(self, key: str, ttl: timedelta | None, holder: str | None, *, same_holder_ok: bool) -> bool:
        pk, rk = _keys(key)
        now = self._clock()
        row = {
            "PartitionKey": pk,
            "RowKey": rk,
            "recorded_at": now,
            "expires_at": now + (ttl if ttl is not None else self.retention),
        }
        if holder:
            row["holder"] = holder
        try:
            with translate_errors(self.table_name, "record message key", pk, rk):
                self.table.create_entity(row)
            return True
        except StoreConflictError:
            pass
        existing = get_row(self.table, pk, rk, "record message key")
        if existing is not None and self._alive(existing):
            return bool(same_holder_ok and holder and existing.get("holder") == holder)
        try:
            with translate_errors(
                self.table_name, "record message key", pk, rk, missing_row_is_conflict=True
            ):
                if existing is None:
                    self.table.create_entity(row)
                else:
                    self.table.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=etag_of(existing),
                        match_condition=MatchConditions.IfNotModified,
                    )
        except StoreConflictError:
            return False  # another receiver recorded it in between
        return True

    def forget(self, key: str) -> None:
        """Remove a key (e.g. its processing was rolled back); no error if absent."""
        pk, rk = _keys(key)
        with translate_errors(self.table_name, "forget message key", pk, rk):
            self.table.delete_entity(pk, rk)

    def purge_expired(self) -> int:
        """Delete every expired key; returns how many rows were removed."""
        return delete_matching(self.table, "expires_at le @now", {"now": self._clock()}, "purge ledger")

    def _alive(self, row: TableEntity) -> bool:
        expires_at = optional_utc(row.get("expires_at"))
        return expires_at is not None and expires_at > self._clock()


def _keys(key: str) -> tuple[str, str]:
    rk = escape_key(key, field="message key")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[0], rk
