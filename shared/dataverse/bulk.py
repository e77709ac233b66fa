"""Bulk writes: CreateMultiple / UpdateMultiple / UpsertMultiple in configurable batches, and a
`$batch` continue-on-error fallback that isolates bad rows when a bulk request fails.

Bulk requests on standard tables are all-or-nothing (reference §5.4): one bad row rejects the
whole batch and nothing is written. The fallback then sends that batch's rows as individual
operations in `$batch` requests with `Prefer: odata.continue-on-error`, so every good row is
written and every bad row comes back with its own error. Throttling and 5xx are retried inside
each request (client.request); errors that survive those retries fail the affected rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import httpx

from shared.dataverse import odata
from shared.dataverse.errors import (
    DataverseAuthError,
    DataverseError,
    DataverseThrottled,
    DataverseUnavailable,
)
from shared.dataverse.models import BatchOperation, BatchResult, BulkResult, RowOutcome
from shared.dataverse.tables import LOGICAL_NAMES, PRIMARY_IDS

T = TypeVar("T")
R = TypeVar("R")


class BulkSender(Protocol):
    """What bulk writes need from the client (shared.dataverse.client.DataverseClient)."""

    bulk_batch_size: int
    batch_size: int

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response: ...

    def execute_batch(
        self, ops: Sequence[BatchOperation], *, continue_on_error: bool = True
    ) -> list[BatchResult]: ...

    def map_concurrent(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]: ...


log = logging.getLogger(__name__)

MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def _chunks(items: Sequence[Any], size: int) -> list[tuple[int, Sequence[Any]]]:
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def write_bulk(
    client: BulkSender,
    message: str,
    entity_set: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    key_columns: Sequence[str] | None = None,
    logical_name: str | None = None,
    batch_size: int | None = None,
    fallback_batch_size: int | None = None,
    use_bulk: bool = True,
) -> BulkResult:
    """Write `rows`; one RowOutcome per row, in input order."""
    if message not in MESSAGES:
        raise ValueError(f"message must be one of {MESSAGES}")
    logical = logical_name or LOGICAL_NAMES.get(entity_set)
    if logical is None:
        raise ValueError(f"logical_name is required for entity set {entity_set!r}")
    pk = PRIMARY_IDS.get(entity_set, f"{logical}id")
    if message == "UpsertMultiple" and not key_columns:
        raise ValueError("UpsertMultiple needs key_columns (the alternate key), e.g. ['bpi_brightpearlid']")
    keys: list[dict[str, Any] | None] = []
    for index, row in enumerate(rows):
        if message == "UpsertMultiple":
            assert key_columns is not None
            missing = [c for c in key_columns if row.get(c) in (None, "")]
            if missing:
                raise ValueError(f"rows[{index}] has no value for key column(s) {', '.join(missing)}")
            key = {c: row[c] for c in key_columns}
            odata.key_segment(key)  # validates the key can be addressed
            keys.append(key)
        elif message == "UpdateMultiple":
            if not row.get(pk):
                raise ValueError(f"rows[{index}] has no {pk}")
            keys.append({pk: odata.guid(row[pk])})
        else:
            keys.append(None)
    size = batch_size or client.bulk_batch_size
    outcomes: list[RowOutcome | None] = [None] * len(rows)
    result = BulkResult(outcomes=[])
    lock = threading.Lock()

    def count(attr: str) -> None:
        with lock:
            setattr(result, attr, getattr(result, attr) + 1)

    def run_chunk(chunk: tuple[int, Sequence[Mapping[str, Any]]]) -> None:
        start, chunk_rows = chunk
        if use_bulk:
            try:
                ids = _send_bulk(
                    client, message, entity_set, logical, chunk_rows, keys[start : start + len(chunk_rows)]
                )
                count("bulk_requests")
                for i in range(len(chunk_rows)):
                    key = keys[start + i]
                    outcomes[start + i] = RowOutcome(
                        start + i, key, True, id=ids[i] if ids else (key.get(pk) if key else None)
                    )
                return
            except (DataverseThrottled, DataverseUnavailable, DataverseAuthError) as exc:
                count("bulk_requests")
                for i in range(len(chunk_rows)):
                    outcomes[start + i] = RowOutcome(start + i, keys[start + i], False, error=exc)
                return
            except DataverseError as exc:
                count("bulk_requests")
                count("fallbacks")
                log.warning(
                    "%s on %s failed for rows %d-%d (%s); isolating rows with $batch",
                    message,
                    entity_set,
                    start,
                    start + len(chunk_rows) - 1,
                    exc.code or exc.status,
                )
        _send_rows_in_batches(
            client,
            message,
            entity_set,
            chunk_rows,
            start,
            keys,
            pk,
            outcomes,
            lambda: count("batch_requests"),
            fallback_batch_size or client.batch_size,
        )

    client.map_concurrent(run_chunk, _chunks(rows, size))
    result.outcomes = [o for o in outcomes if o is not None]
    return result


def _send_bulk(
    client: BulkSender,
    message: str,
    entity_set: str,
    logical: str,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[Mapping[str, Any] | None],
) -> list[str] | None:
    targets = []
    for row, key in zip(rows, keys, strict=True):
        target: dict[str, Any] = {"@odata.type": f"Microsoft.Dynamics.CRM.{logical}", **row}
        if message == "UpsertMultiple" and key is not None:
            target["@odata.id"] = odata.record_path(entity_set, key)
        targets.append(target)
    resp = client.request(
        "POST",
        f"{odata.prop(entity_set)}/Microsoft.Dynamics.CRM.{message}",
        json_body={"Targets": targets},
        idempotent=message != "CreateMultiple",
    )
    if message == "CreateMultiple":
        ids = resp.json().get("Ids") or []
        return [str(i) for i in ids]
    return None


def _send_rows_in_batches(
    client: BulkSender,
    message: str,
    entity_set: str,
    rows: Sequence[Mapping[str, Any]],
    start: int,
    keys: Sequence[Mapping[str, Any] | None],
    pk: str,
    outcomes: list[RowOutcome | None],
    counted: Callable[[], None],
    size: int,
) -> None:
    ops: list[BatchOperation] = []
    for i, row in enumerate(rows):
        key = keys[start + i]
        if message == "CreateMultiple":
            ops.append(BatchOperation("POST", odata.prop(entity_set), dict(row)))
        elif message == "UpdateMultiple":
            assert key is not None
            body = {k: v for k, v in row.items() if k != pk}
            ops.append(
                BatchOperation("PATCH", odata.record_path(entity_set, key[pk]), body, {"If-Match": "*"})
            )
        else:
            assert key is not None
            ops.append(BatchOperation("PATCH", odata.record_path(entity_set, key), dict(row)))
    for offset, chunk in _chunks(ops, min(size, 1000)):
        try:
            results = client.execute_batch(chunk, continue_on_error=True)
            counted()
        except DataverseError as exc:
            counted()
            for j in range(len(chunk)):
                index = start + offset + j
                outcomes[index] = RowOutcome(index, keys[index], False, error=exc, via="batch")
            continue
        for j, res in enumerate(results):
            index = start + offset + j
            key = keys[index]
            outcomes[index] = RowOutcome(
                index,
                key,
                res.ok,
                id=res.entity_id or (key.get(pk) if key else None),
                error=res.error,
                via="batch",
            )
