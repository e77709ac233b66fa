"""The audit trail: one row per record sync outcome, for the dashboard, reconciliation and support.

Table `audit`. Every entry is written to its flow's partition for the day and indexed under the
record(s) it is about, so both questions are one or a few queries:

- "recent rows of a flow": PartitionKey `f|{flow}|{inverted yyyymmdd}`. A flow's days are
  contiguous and newest first in key order, so the newest N rows are one range query.
- "all rows of one record": PartitionKey `r|{yyyymm}|{entity}|{system}|{bucket}` (bucket: one
  hex digit of the id's hash), RowKey `{id}|{entry RowKey}`: a row for the source record and
  one for the target record when known. Reading one record is a RowKey-prefix range query per
  month of retention (at most four for 90 days); writing a batch groups index rows into entity
  group transactions per bucket instead of one request per record.

Entry RowKeys are `{inverted microseconds}_{uuid}`, so rows sort newest first in a partition.
Retention (`purge_older_than`) is a key-range scan: per flow (the flows ever written are kept
in partition `flows`) for flow rows, and by month prefix for record rows.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.data.tables import TableClient
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.store.tables import (
    Clock,
    delete_matching,
    escape_key,
    identifier,
    optional_utc,
    prefix_upper_bound,
    query,
    to_utc,
    unescape_key,
    utc_now,
    write_in_transactions,
)

MAX_DESCRIPTION_CHARS = 2000
_FLOWS_PARTITION = "flows"
_INVERTED_BASE = 10**17 - 1  # microseconds since 1970, inverted; 17 digits last until 5138
_EMAIL = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+\.[A-Za-z]{2,}")


class AuditResult(StrEnum):
    SYNCED = "synced"
    SKIPPED = "skipped"
    NEEDS_REVIEW = "needs-review"
    DEAD_LETTERED = "dead-lettered"
    MISSING = "missing"
    IGNORED = "ignored"  # a webhook notice no flow consumes (ingress; reason NoConsumingFlow)
    OPERATOR = "operator"  # an operator's action (console, syncctl); reason_code names it
    ANOMALY = "anomaly"  # an anomaly flag (shared/anomaly, flow "anomalies"); reason_code Anomaly<Kind>


class AuditEntry(BaseModel):
    """What happened to one record in one flow run. Ids and reason codes only, never PII."""

    model_config = ConfigDict(frozen=True)

    flow: str = Field(min_length=1, max_length=100)
    entity: str = Field(min_length=1, max_length=100)
    source_system: str = Field(min_length=1, max_length=50)
    source_id: str = Field(min_length=1, max_length=200)
    result: AuditResult
    target_system: str | None = Field(None, max_length=50)
    target_id: str | None = Field(None, max_length=200)
    reason_code: str | None = Field(None, max_length=100)
    description: str = ""
    duration_ms: int | None = Field(None, ge=0, le=2**31 - 1)
    message_id: str | None = Field(None, max_length=200)
    attempt: int = Field(1, ge=1)
    observed_at: datetime | None = None  # when the change was observed (end-to-end latency)
    fields: str | None = Field(None, max_length=1000)  # canonical fields a write changed, comma-separated
    at: datetime | None = None  # set by AuditLog.record when omitted
    id: str | None = None  # the RowKey, set by AuditLog.record

    @field_validator("source_id", "target_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: object) -> object:
        return None if value is None else identifier(value, field="id")

    @field_validator("description")
    @classmethod
    def _no_email_and_bounded(cls, value: str) -> str:
        # Defence in depth: flows pass ids and reason codes, but an upstream error text could
        # quote an e-mail address; it must never reach the audit table.
        value = _EMAIL.sub("<email>", value)
        return value if len(value) <= MAX_DESCRIPTION_CHARS else value[: MAX_DESCRIPTION_CHARS - 1] + "…"

    @field_validator("at", "observed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else to_utc(value)


class AuditLog:
    """One row per record sync outcome, with retention (AUDIT_RETENTION_DAYS, default 90).

    Privacy: descriptions must carry record ids, field names and reason codes only, never
    e-mail addresses, phone numbers or postal address values (they are kept for months and
    shown on the dashboard). E-mail-like text is replaced by `<email>` as a safety net; phones
    and addresses cannot be recognised reliably, so callers must not pass them.
    """

    def __init__(
        self,
        table: TableClient,
        *,
        retention_days: int = 90,
        clock: Clock = utc_now,
    ) -> None:
        if retention_days < 1:
            raise ValueError("audit retention_days must be at least 1")
        self.table = table
        self.retention_days = retention_days
        self._clock = clock
        self._known_flows: set[str] = set()

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def record(self, entry: AuditEntry) -> AuditEntry:
        """Write one entry; returns it with `at` and `id` filled in."""
        return self.record_many([entry])[0]

    def record_many(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        """Write entries: flow rows in entity group transactions of up to 100, index rows in parallel."""
        stamped: list[AuditEntry] = []
        flow_rows: list[dict[str, Any]] = []
        index_rows: list[dict[str, Any]] = []
        for entry in entries:
            at = entry.at or self._clock()
            row_key = f"{_INVERTED_BASE - _micros(at):017d}_{uuid.uuid4().hex}"
            entry = entry.model_copy(update={"at": at, "id": row_key})
            stamped.append(entry)
            properties = _properties(entry)
            flow_rows.append({"PartitionKey": _flow_partition(entry.flow, at), "RowKey": row_key,
                              **properties})
            for system, record_id in _records_of(entry):
                index_rows.append({
                    "PartitionKey": _record_partition(entry.entity, system, record_id, at),
                    "RowKey": _record_prefix(record_id) + row_key, **properties,
                })
        self._register_flows({entry.flow for entry in stamped})
        write_in_transactions(self.table, "upsert", flow_rows, "write audit")
        write_in_transactions(self.table, "upsert", index_rows, "write audit index")
        return stamped

    def recent(self, flow: str, limit: int = 50, *, days: int | None = None) -> list[AuditEntry]:
        """The newest entries of a flow, newest first, looking back `days` (default: retention)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        now = self._clock()
        oldest = now - timedelta(days=self.retention_days if days is None else days)
        rows = query(
            self.table, "PartitionKey ge @newest and PartitionKey le @oldest",
            {"newest": _flow_partition(flow, now), "oldest": _flow_partition(flow, oldest)},
            "read audit", page_size=min(limit, 1000),
        )
        return [_entry_from_row(row) for row in itertools.islice(rows, limit)]

    def rows_between(
        self, flow: str, since: datetime, until: datetime, *, columns: list[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Raw rows of a flow recorded in [since, until], newest first: one key-range query over
        the flow's day partitions and the inverted-time RowKeys (never a scan of other days)."""
        rows = query(
            self.table,
            "PartitionKey ge @newest and PartitionKey le @oldest and RowKey ge @lo and RowKey lt @hi",
            {"newest": _flow_partition(flow, until), "oldest": _flow_partition(flow, since),
             "lo": f"{_INVERTED_BASE - _micros(until):017d}",
             "hi": f"{_INVERTED_BASE - _micros(since) + 1:017d}"},
            "read audit window", select=columns, page_size=page_size,
        )
        for row in rows:
            yield dict(row)

    def for_record(
        self, entity: str, system: str, record_id: str | int, limit: int = 50
    ) -> list[AuditEntry]:
        """The entries about one record (as source or target), newest first, within retention."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        record_id = identifier(record_id, field="record_id")
        now = self._clock()
        oldest = now - timedelta(days=self.retention_days)
        found: list[AuditEntry] = []
        month = datetime(now.year, now.month, 1, tzinfo=now.tzinfo)
        while month >= datetime(oldest.year, oldest.month, 1, tzinfo=now.tzinfo):
            prefix = _record_prefix(record_id)
            rows = query(
                self.table, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                {"pk": _record_partition(entity, system, record_id, month), "lo": prefix,
                 "hi": prefix_upper_bound(prefix)},
                "read audit", page_size=min(limit, 1000),
            )
            found += [_entry_from_row(row) for row in itertools.islice(rows, limit - len(found))]
            if len(found) >= limit:
                break
            month = (month - timedelta(days=1)).replace(day=1)
        return found

    def flows(self) -> list[str]:
        """Every flow that has written audit rows (for the dashboard's flow list)."""
        rows = query(self.table, "PartitionKey eq @pk", {"pk": _FLOWS_PARTITION}, "read audit flows")
        return sorted(unescape_key(str(row["RowKey"])) for row in rows)

    def purge_older_than(self, days: int | None = None) -> int:
        """Delete entries recorded more than `days` (default: retention) ago; returns rows removed."""
        days = self.retention_days if days is None else days
        if days < 0:
            raise ValueError("days must not be negative")
        cutoff = self._clock() - timedelta(days=days)
        removed = 0
        for flow in self.flows():
            boundary = _flow_partition(flow, cutoff)
            # whole days before the cutoff's day (larger inverted dates): a key-range scan
            removed += delete_matching(
                self.table, "PartitionKey gt @lo and PartitionKey lt @hi",
                {"lo": boundary, "hi": prefix_upper_bound(_flow_prefix(flow))}, "purge audit",
            )
            removed += delete_matching(
                self.table, "PartitionKey eq @pk and at lt @cutoff",
                {"pk": boundary, "cutoff": cutoff}, "purge audit",
            )
        month = cutoff.strftime("%Y%m")
        removed += delete_matching(  # record index rows of whole months before the cutoff's month
            self.table, "PartitionKey ge @lo and PartitionKey lt @hi",
            {"lo": "r|", "hi": f"r|{month}"}, "purge audit",
        )
        removed += delete_matching(  # and the older rows of the cutoff's own month
            self.table, "PartitionKey ge @lo and PartitionKey lt @hi and at lt @cutoff",
            {"lo": f"r|{month}|", "hi": prefix_upper_bound(f"r|{month}|"), "cutoff": cutoff},
            "purge audit",
        )
        return removed

    def _register_flows(self, flows: set[str]) -> None:
        new = flows - self._known_flows
        rows = [{"PartitionKey": _FLOWS_PARTITION, "RowKey": escape_key(flow, field="flow")}
                for flow in sorted(new)]
        write_in_transactions(self.table, "upsert", rows, "register audit flow")
        self._known_flows |= new


def _micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _flow_prefix(flow: str) -> str:
    return f"f|{escape_key(flow, field='flow')}|"


def _flow_partition(flow: str, at: datetime) -> str:
    # inverted date: a flow's newest day sorts first
    return f"{_flow_prefix(flow)}{99_999_999 - int(at.strftime('%Y%m%d')):08d}"


def _record_partition(entity: str, system: str, record_id: str, at: datetime) -> str:
    bucket = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[0]
    return (f"r|{at.strftime('%Y%m')}|{escape_key(entity, field='entity')}|"
            f"{escape_key(system, field='system')}|{bucket}")


def _record_prefix(record_id: str) -> str:
    return escape_key(record_id, field="record_id") + "|"  # `|` inside ids is escaped


def _records_of(entry: AuditEntry) -> list[tuple[str, str]]:
    records = [(entry.source_system, entry.source_id)]
    if entry.target_system and entry.target_id:
        records.append((entry.target_system, entry.target_id))
    return records


def _properties(entry: AuditEntry) -> dict[str, Any]:
    values = entry.model_dump(mode="python", exclude={"id"})
    values["result"] = entry.result.value
    return {name: value for name, value in values.items() if value is not None}


def _entry_from_row(row: Mapping[str, Any]) -> AuditEntry:
    values = {name: row.get(name) for name in AuditEntry.model_fields if name != "id"}
    values["at"] = optional_utc(row.get("at"))
    values["observed_at"] = optional_utc(row.get("observed_at"))
    values["description"] = row.get("description") or ""
    values["attempt"] = row.get("attempt") or 1
    entry_id = str(row["RowKey"]).rsplit("|", 1)[-1]  # index rows prefix the record id
    return AuditEntry.model_validate({**values, "id": entry_id})

