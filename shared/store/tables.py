"""Table Storage mechanics the four state stores share: keys, error translation, time, batches.

- Keys: PartitionKey/RowKey may not hold `/ \\ # ?` or control characters, and `%` and `'` are
  known to misbehave in point operations; `escape_key` encodes those (and our `|` separator) as
  `~XX` so any id or message key can be stored and read back unchanged.
- Errors: azure.core exceptions become StoreConflictError (row exists, ETag mismatch, 409/412)
  or StoreError (network, 5xx, missing table, refused credentials), each naming the table and
  the key, never echoing a URL (a SAS token could be in it).
- Time: every datetime is timezone-aware UTC, truncated to milliseconds so what is written
  compares equal to what is read back.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.store.errors import StoreConflictError, StoreError

Clock = Callable[[], datetime]

# Azure Table Storage allows at most 15 comparisons in one $filter and 100 operations in one
# entity group transaction (all in the same partition).
MAX_FILTER_COMPARISONS = 15
MAX_TRANSACTION_OPERATIONS = 100
MAX_KEY_CHARS = 512  # keys may be up to 1 KiB; escaped UTF-16 stays under that at 512 chars
MAX_STRING_PROPERTY_CHARS = 32_000  # a string property holds at most 64 KiB (UTF-16)

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_ESCAPED = re.compile(r"[~|/\\#?%'\x00-\x1f\x7f-\x9f]")
_ESCAPE_SEQUENCE = re.compile(r"~([0-9A-F]{2})")


def utc_now() -> datetime:
    return to_utc(datetime.now(UTC))


def to_utc(value: datetime) -> datetime:
    """A plain timezone-aware UTC datetime at millisecond precision (also from the SDK's type)."""
    if value.tzinfo is None:
        raise ValueError(f"datetime {value.isoformat()} has no timezone; pass an aware UTC datetime")
    value = value.astimezone(UTC)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond // 1000 * 1000, tzinfo=UTC,
    )


def optional_utc(value: Any) -> datetime | None:
    return to_utc(value) if isinstance(value, datetime) else None


def escape_key(value: str, *, field: str = "key") -> str:
    """Encode a value so it is a valid, unambiguous PartitionKey/RowKey part."""
    if not isinstance(value, str) or value == "":
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    escaped = _ESCAPED.sub(lambda m: f"~{ord(m.group()):02X}", value)
    if len(escaped) > MAX_KEY_CHARS:
        raise ValueError(f"{field} is too long for a Table Storage key ({len(value)} characters)")
    return escaped


def unescape_key(value: str) -> str:
    return _ESCAPE_SEQUENCE.sub(lambda m: chr(int(m.group(1), 16)), value)


def identifier(value: object, *, field: str) -> str:
    """Record ids arrive as int (Brightpearl) or str (Dataverse GUIDs); store them as text."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{field} must be a string or integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError(f"{field} must not be empty")
    return text


def validate_table_name(name: str) -> str:
    if not _TABLE_NAME.match(name):
        raise ValueError(
            f"table name {name!r} is invalid: Table Storage needs 3-63 letters and digits starting "
            "with a letter (check STATE_TABLE_PREFIX)"
        )
    return name


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def etag_of(entity: TableEntity) -> str:
    return str(entity.metadata["etag"])


def _describe_key(partition_key: str | None, row_key: str | None) -> str:
    if partition_key is None:
        return ""
    if row_key is None:
        return f" (PartitionKey={partition_key!r})"
    return f" (PartitionKey={partition_key!r}, RowKey={row_key!r})"


@contextlib.contextmanager
def translate_errors(
    table: str,
    action: str,
    partition_key: str | None = None,
    row_key: str | None = None,
    *,
    missing_row_is_conflict: bool = False,
) -> Iterator[None]:
    """Turn azure.core exceptions raised inside the block into StoreError/StoreConflictError."""
    where = f"table {table!r}{_describe_key(partition_key, row_key)}"
    try:
        yield
    except ResourceExistsError as exc:
        raise StoreConflictError(
            f"{action}: the row already exists in {where}",
            table=table, partition_key=partition_key, row_key=row_key,
        ) from exc
    except ResourceModifiedError as exc:
        raise StoreConflictError(
            f"{action}: the row in {where} was changed by another writer (ETag mismatch)",
            table=table, partition_key=partition_key, row_key=row_key,
        ) from exc
    except ResourceNotFoundError as exc:
        code = getattr(exc, "error_code", None)
        if str(code) == "TableNotFound" or "TableNotFound" in str(exc):
            raise StoreError(
                f"{action}: table {table!r} does not exist (run StateStore.ensure_tables())"
            ) from exc
        if missing_row_is_conflict:
            raise StoreConflictError(
                f"{action}: the row in {where} was deleted by another writer",
                table=table, partition_key=partition_key, row_key=row_key,
            ) from exc
        raise StoreError(f"{action}: no such row in {where}") from exc
    except ClientAuthenticationError as exc:
        raise StoreError(
            f"{action}: Table Storage refused the credentials for {where} (HTTP {exc.status_code}); "
            "check the connection string or the identity's 'Storage Table Data Contributor' role"
        ) from exc
    except HttpResponseError as exc:
        status = exc.status_code
        if status in (409, 412):
            raise StoreConflictError(
                f"{action}: conflicting concurrent write on {where} (HTTP {status})",
                table=table, partition_key=partition_key, row_key=row_key,
            ) from exc
        code = getattr(exc, "error_code", None) or "unknown"
        raise StoreError(f"{action}: Table Storage answered HTTP {status} ({code}) for {where}") from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StoreError(
            f"{action}: cannot reach Table Storage for {where} ({type(exc).__name__})"
        ) from exc
    except AzureError as exc:
        raise StoreError(f"{action}: Table Storage failed for {where} ({type(exc).__name__})") from exc


def get_row(table: TableClient, partition_key: str, row_key: str, action: str) -> TableEntity | None:
    """Point read; None when the row does not exist."""
    with translate_errors(table.table_name, action, partition_key, row_key):
        try:
            return table.get_entity(partition_key, row_key)
        except ResourceNotFoundError as exc:
            if "TableNotFound" in str(getattr(exc, "error_code", "")) or "TableNotFound" in str(exc):
                raise
            return None


def rows_by_keys(
    table: TableClient, partition_key: str, row_keys: Sequence[str], action: str
) -> dict[str, TableEntity]:
    """Read many rows of one partition, 14 row keys per query (Azure's 15-comparison limit)."""
    found: dict[str, TableEntity] = {}
    unique = list(dict.fromkeys(row_keys))
    step = MAX_FILTER_COMPARISONS - 1
    for start in range(0, len(unique), step):
        chunk = unique[start:start + step]
        parameters: dict[str, Any] = {"pk": partition_key}
        clauses = []
        for index, row_key in enumerate(chunk):
            parameters[f"r{index}"] = row_key
            clauses.append(f"RowKey eq @r{index}")
        # The SDK substitutes @names in space-separated words: keep spaces inside the parens.
        query = f"PartitionKey eq @pk and ( {' or '.join(clauses)} )"
        with translate_errors(table.table_name, action, partition_key):
            for entity in table.query_entities(query, parameters=parameters):
                found[str(entity["RowKey"])] = entity
    return found


def query(
    table: TableClient,
    query_filter: str,
    parameters: Mapping[str, Any],
    action: str,
    *,
    select: list[str] | None = None,
    page_size: int | None = None,
) -> Iterator[TableEntity]:
    """Run a filtered query, translating errors while the pages are read."""
    with translate_errors(table.table_name, action):
        yield from table.query_entities(
            query_filter, parameters=dict(parameters), select=select, results_per_page=page_size
        )


def write_in_transactions(
    table: TableClient, operation: str, entities: Iterable[Mapping[str, Any]], action: str
) -> int:
    """Create/upsert/delete rows grouped by partition, 100 per entity group transaction."""
    by_partition: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entity in entities:
        by_partition[str(entity["PartitionKey"])].append(entity)
    done = 0
    for partition_key, rows in by_partition.items():
        for start in range(0, len(rows), MAX_TRANSACTION_OPERATIONS):
            chunk = rows[start:start + MAX_TRANSACTION_OPERATIONS]
            if len(chunk) == 1:  # a plain request is cheaper than a one-row transaction
                _write_one(table, operation, chunk[0], action)
                done += 1
                continue
            try:
                with translate_errors(table.table_name, action, partition_key):
                    table.submit_transaction([(operation, dict(row)) for row in chunk])
            except StoreError as exc:
                if operation != "delete" or not isinstance(exc.__cause__, TableTransactionError):
                    raise
                # A row deleted meanwhile fails the whole transaction; delete one by one instead
                # (a single delete of a missing row is not an error).
                for row in chunk:
                    with translate_errors(table.table_name, action, partition_key, str(row["RowKey"])):
                        table.delete_entity(str(row["PartitionKey"]), str(row["RowKey"]))
            done += len(chunk)
    return done


def _write_one(table: TableClient, operation: str, row: Mapping[str, Any], action: str) -> None:
    pk, rk = str(row["PartitionKey"]), str(row["RowKey"])
    with translate_errors(table.table_name, action, pk, rk):
        if operation == "create":
            table.create_entity(dict(row))
        elif operation == "upsert":
            table.upsert_entity(dict(row), mode=UpdateMode.REPLACE)
        elif operation == "delete":
            table.delete_entity(pk, rk)
        else:
            raise ValueError(f"unsupported operation {operation!r}")


def delete_matching(
    table: TableClient, query_filter: str, parameters: Mapping[str, Any], action: str
) -> int:
    """Delete every row the filter selects (keys only are read); returns how many.

    Streams: rows are deleted while the query pages on (continuation is key-based, so deleting
    behind the cursor is safe), at most ~1,000 keys are held at once.
    """
    pending: list[dict[str, Any]] = []
    removed = 0
    for row in query(table, query_filter, parameters, action, select=["PartitionKey", "RowKey"],
                     page_size=1000):
        pending.append({"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]})
        if len(pending) >= 1000:
            removed += write_in_transactions(table, "delete", pending, action)
            pending = []
    return removed + write_in_transactions(table, "delete", pending, action)
