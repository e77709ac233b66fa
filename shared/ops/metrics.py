"""The operator's figures: per flow outcomes over time, latency, backlog, cursor ages, request budgets.

One implementation for the console (functions/ops.py) and `syncctl`. Every figure is read
from where the app keeps it, never from a copy:

- outcomes, reason codes, latency and the last errors: the audit table, one key-range query
  per flow over the window's day partitions (`AuditLog.rows_between`), only the columns the
  figures need, at most `max_rows` rows per flow (then `truncated` says so). The page's cost
  grows with the window's rows, not with the table's size.
- backlog: the bus's own counts (shared.bus.backlog, as `syncctl bus status`).
- poller cursors: the cursors table (one partition, a handful of rows).
- Brightpearl request budget and Dataverse retries: this process's clients (per instance).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.bus.backlog import Backlog, local_backlog, servicebus_backlog
from shared.bus.topology import Topic, Topology
from shared.store.audit import AuditLog, AuditResult
from shared.store.cursors import PARTITION as CURSOR_PARTITION
from shared.store.cursors import CursorStore
from shared.store.tables import optional_utc, query, unescape_key

# Results that are an outcome of a record sync (operator actions are counted apart).
OUTCOME_RESULTS: tuple[str, ...] = tuple(r.value for r in AuditResult if r is not AuditResult.OPERATOR)
ERROR_RESULTS = frozenset({AuditResult.DEAD_LETTERED.value, AuditResult.NEEDS_REVIEW.value})
_COLUMNS = [
    "RowKey",
    "at",
    "result",
    "reason_code",
    "duration_ms",
    "observed_at",
    "source_id",
    "source_system",
    "target_id",
    "message_id",
    "description",
    "entity",
    "attempt",
]
DEFAULT_MAX_ROWS = 50_000


@dataclass(frozen=True)
class Window:
    """The period figures cover, cut into equal buckets for the charts."""

    since: datetime
    until: datetime
    bucket: timedelta

    @classmethod
    def last(cls, hours: float, now: datetime, buckets: int = 24) -> Window:
        if not 0 < hours <= 24 * 90:
            raise ValueError(f"hours must be more than 0 and at most {24 * 90}, got {hours}")
        span = timedelta(hours=hours)
        return cls(now - span, now, span / buckets)

    @property
    def buckets(self) -> int:
        return max(math.ceil((self.until - self.since) / self.bucket), 1)

    def starts(self) -> list[datetime]:
        return [self.since + self.bucket * i for i in range(self.buckets)]

    def index(self, at: datetime) -> int:
        """The bucket `at` falls in (clamped to the window's first and last)."""
        return min(max(int((at - self.since) / self.bucket), 0), self.buckets - 1)


@dataclass(frozen=True)
class AuditRow:
    """One audit row as the console shows it (ids, reason codes, no record contents)."""

    at: datetime
    flow: str
    result: str
    reason: str
    entity: str
    source_system: str
    source_id: str
    target_id: str
    message_id: str
    description: str
    attempt: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


@dataclass
class FlowActivity:
    """What one flow did in a window: outcome counts (by result and reason code), per bucket,
    processing time and end-to-end latency percentiles, its newest errors."""

    flow: str
    window: Window
    rows: int = 0
    truncated: bool = False
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (result, reason) -> rows
    series: dict[str, list[int]] = field(default_factory=dict)  # result -> rows per bucket
    operator_actions: Counter[str] = field(default_factory=Counter)  # reason code -> rows
    processing_ms: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    errors: list[AuditRow] = field(default_factory=list)

    def total(self, result: str | None = None) -> int:
        return sum(n for (r, _), n in self.outcomes.items() if result is None or r == result)

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "rows": self.rows,
            "truncated": self.truncated,
            "outcomes": [
                {"result": r, "reason": reason, "count": n}
                for (r, reason), n in sorted(self.outcomes.items())
            ],
            "totals": {r: self.total(r) for r in OUTCOME_RESULTS if self.total(r)},
            "series": self.series,
            "bucket_starts": [s.isoformat() for s in self.window.starts()],
            "operator_actions": dict(self.operator_actions),
            "processing_ms": {
                "p50": percentile(self.processing_ms, 50),
                "p95": percentile(self.processing_ms, 95),
            },
            "latency_s": {
                "p50": percentile(self.latency_s, 50),
                "p95": percentile(self.latency_s, 95),
                "samples": len(self.latency_s),
            },
            "errors": [e.as_dict() for e in self.errors],
        }


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def flow_activity(
    audit: AuditLog, flow: str, window: Window, *, max_rows: int = DEFAULT_MAX_ROWS, errors: int = 20
) -> FlowActivity:
    """Aggregate one flow's audit rows of `window` (newest first, at most `max_rows`)."""
    activity = FlowActivity(flow, window)
    buckets = window.buckets
    for row in audit.rows_between(flow, window.since, window.until, columns=_COLUMNS):
        if activity.rows >= max_rows:
            activity.truncated = True
            break
        activity.rows += 1
        at = optional_utc(row.get("at"))
        if at is None:
            continue
        result = str(row.get("result") or "")
        reason = str(row.get("reason_code") or "")
        if result == AuditResult.OPERATOR.value:
            activity.operator_actions[reason] += 1
            continue
        activity.outcomes[(result, reason)] += 1
        activity.series.setdefault(result, [0] * buckets)[window.index(at)] += 1
        if row.get("duration_ms") is not None:
            activity.processing_ms.append(int(row["duration_ms"]))
        observed = optional_utc(row.get("observed_at"))
        if observed is not None:
            activity.latency_s.append(max((at - observed).total_seconds(), 0.0))
        if result in ERROR_RESULTS and len(activity.errors) < errors:
            activity.errors.append(_audit_row(flow, at, row))
    return activity


def _audit_row(flow: str, at: datetime, row: dict[str, Any]) -> AuditRow:
    return AuditRow(
        at=at,
        flow=flow,
        result=str(row.get("result") or ""),
        reason=str(row.get("reason_code") or ""),
        entity=str(row.get("entity") or ""),
        source_system=str(row.get("source_system") or ""),
        source_id=str(row.get("source_id") or ""),
        target_id=str(row.get("target_id") or ""),
        message_id=str(row.get("message_id") or ""),
        description=str(row.get("description") or ""),
        attempt=int(row.get("attempt") or 1),
    )


def last_errors(activities: Iterable[FlowActivity], limit: int = 20) -> list[AuditRow]:
    """The newest dead-lettered and needs-review rows over every flow, newest first."""
    rows = [e for a in activities for e in a.errors]
    return sorted(rows, key=lambda e: e.at, reverse=True)[:limit]


# ----------------------------------------------------------------------------- cursors
@dataclass(frozen=True)
class CursorAge:
    name: str
    poller: str  # the poller (or backfill) keeping it; "" when unknown
    updated_at: datetime
    age_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "updated_at": self.updated_at.isoformat()}


def cursor_ages(cursors: CursorStore, now: datetime, owners: dict[str, str]) -> list[CursorAge]:
    """Every stored cursor with the age of its last save; `owners`: cursor name -> poller."""
    rows = query(
        cursors.table,
        "PartitionKey eq @pk",
        {"pk": CURSOR_PARTITION},
        "read cursors",
        select=["RowKey", "updated_at"],
    )
    out = []
    for row in rows:
        name = unescape_key(str(row["RowKey"]))
        updated = optional_utc(row.get("updated_at"))
        if updated is None:
            continue
        owner = owners.get(name) or next((p for c, p in owners.items() if name.startswith(c)), "")
        out.append(CursorAge(name, owner, updated, max((now - updated).total_seconds(), 0.0)))
    return sorted(out, key=lambda c: c.name)


def cursor_owners() -> dict[str, str]:
    """Cursor name (or name prefix) -> what keeps it: each poller of the registry, and backfills."""
    from shared.sync import registry

    owners = {cursor: p.what for p in registry.pollers() for cursor in p.cursors}
    for spec in registry.ENTITIES:
        for source in spec.backfill_sources:
            owners.setdefault(spec.backfill_cursor(source.system), f"backfill {spec.name}")
    return owners


# ----------------------------------------------------------------------------- backlog
def targets(topology: Topology, topic_name: Callable[[Topic], str]) -> list[tuple[str, str]]:
    """Every (topic, subscription) pair of the topology; `topic_name` gives a topic's real name."""
    return [(topic_name(t), s.name) for t in topology.topics for s in t.subscriptions]


def bus_backlog(
    backend: str, pairs: Sequence[tuple[str, str]], *, bus: Any = None, admin: Any = None
) -> list[Backlog]:
    """Active, scheduled and dead-lettered messages per subscription: the local bus's exact
    counts, or Service Bus runtime properties (through a ServiceBusAdministrationClient)."""
    if backend == "local":
        return local_backlog(bus, pairs)
    return servicebus_backlog(admin, pairs)


# ----------------------------------------------------------------------------- API budgets
@dataclass(frozen=True)
class RequestBudget:
    """Brightpearl requests this instance sent in the rolling window, against the cap."""

    used: int
    allowed: int
    limit: int
    window_seconds: float
    server_pauses: int
    throttle_pauses: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def request_budget(budget: Any) -> RequestBudget:
    """The figures of a shared.brightpearl.ratebudget.RateBudget."""
    return RequestBudget(
        used=budget.used_in_window(),
        allowed=budget.allowed_per_window,
        limit=budget.limit,
        window_seconds=budget.window,
        server_pauses=budget.server_pauses,
        throttle_pauses=budget.throttle_pauses,
    )
