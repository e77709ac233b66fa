"""The operator's figures: per flow outcomes over time, latency, backlog, cursor ages, request budgets.

One implementation for the console (functions/ops.py) and `syncctl`. Every figure is read
from where the app keeps it, never from a copy:

- outcomes, reason codes, latency and the last errors: the audit table. A window of up to
  six hours is one key-range query per flow over its day partitions (`AuditLog.rows_between`),
  only the columns the figures need, at most `max_rows` rows per flow (then `truncated` says
  so). A longer window is read in whole hours from hourly rollups, rows of partition
  `s|<flow>` in the audit table (RowKey `yyyymmddhh`: counts by result and reason, operator
  actions, latency and batch-time histograms, the hour's newest errors): an hour is counted
  from its audit rows once, when it has settled (five minutes after it ends), and its rollup
  stored; the hours not settled yet are counted from their rows each time. So a page costs one
  query per flow plus the rows of the last hour or so, however many rows the window covers.
  Rollups past the audit's retention are deleted when new ones are stored.
- backlog: the bus's own counts (shared.bus.backlog, as `syncctl bus status`).
- poller cursors: the cursors table (one partition, a handful of rows).
- Brightpearl request budget and Dataverse retries: this process's clients (per instance).
"""

from __future__ import annotations

import json
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
from shared.store.tables import (
    delete_matching,
    escape_key,
    optional_utc,
    query,
    unescape_key,
    write_in_transactions,
)

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


class Histogram(Counter[int]):
    """Values in log-scale buckets 5 % wide (percentiles within 2.5 %), mergeable across hours."""

    STEP = math.log(1.05)

    def add(self, value: float) -> None:
        self[math.floor(math.log(max(value, 0.001)) / self.STEP)] += 1

    def percentile(self, p: float) -> float | None:
        total = sum(self.values())
        if not total:
            return None
        rank, seen = max(math.ceil(p / 100 * total), 1), 0
        for bucket in sorted(self):
            seen += self[bucket]
            if seen >= rank:
                return round(math.exp((bucket + 0.5) * self.STEP), 3)
        return None  # unreachable: the ranks add up to the total

    def as_json(self) -> str:
        return json.dumps({str(k): v for k, v in sorted(self.items())})

    @classmethod
    def from_json(cls, text: object) -> Histogram:
        return cls({int(k): int(v) for k, v in json.loads(str(text or "{}")).items()})


@dataclass
class FlowActivity:
    """What one flow did in a window: outcome counts (by result and reason code), per bucket,
    processing time and end-to-end latency percentiles, its newest errors.

    Exact percentiles (`processing_ms`, `latency_s`) when the window's rows were read; from
    histograms (5 % buckets) when hourly rollups were merged."""

    flow: str
    window: Window
    rows: int = 0
    truncated: bool = False
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (result, reason) -> rows
    series: dict[str, list[int]] = field(default_factory=dict)  # result -> rows per bucket
    operator_actions: Counter[str] = field(default_factory=Counter)  # reason code -> rows
    processing_ms: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    processing_hist: Histogram = field(default_factory=Histogram)
    latency_hist: Histogram = field(default_factory=Histogram)
    errors: list[AuditRow] = field(default_factory=list)
    hours_from_rollups: int = 0  # hours read from stored rollups instead of audit rows

    def total(self, result: str | None = None) -> int:
        return sum(n for (r, _), n in self.outcomes.items() if result is None or r == result)

    def _percentiles(self, exact: Sequence[float], hist: Histogram) -> dict[str, float | None]:
        if exact or not hist:
            return {"p50": percentile(exact, 50), "p95": percentile(exact, 95)}
        return {"p50": hist.percentile(50), "p95": hist.percentile(95)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "rows": self.rows,
            "truncated": self.truncated,
            "hours_from_rollups": self.hours_from_rollups,
            "outcomes": [
                {"result": r, "reason": reason, "count": n}
                for (r, reason), n in sorted(self.outcomes.items())
            ],
            "totals": {r: self.total(r) for r in OUTCOME_RESULTS if self.total(r)},
            "series": self.series,
            "bucket_starts": [s.isoformat() for s in self.window.starts()],
            "operator_actions": dict(self.operator_actions),
            "processing_ms": self._percentiles(self.processing_ms, self.processing_hist),
            "latency_s": {
                **self._percentiles(self.latency_s, self.latency_hist),
                "samples": len(self.latency_s) or sum(self.latency_hist.values()),
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
    """One flow's figures for `window`: its audit rows (newest first, at most `max_rows`) for
    windows up to ROLLUP_AFTER; longer windows are widened to whole hours and read from hourly
    rollups (module docstring), so their cost does not grow with the rows they cover."""
    if window.until - window.since > ROLLUP_AFTER:
        return _from_rollups(audit, flow, window, errors=errors, max_rows=max_rows)
    activity = FlowActivity(flow, window)
    _add_rows(
        activity,
        audit.rows_between(flow, window.since, window.until, columns=_COLUMNS),
        max_rows=max_rows,
        errors=errors,
        exact=True,
    )
    return activity


def _add_rows(
    activity: FlowActivity, rows: Iterable[dict[str, Any]], *, max_rows: int, errors: int, exact: bool
) -> None:
    """Count audit rows (newest first, at most `max_rows`) into `activity`; `exact` keeps every
    latency value (else histograms)."""
    read = 0
    for row in rows:
        if read >= max_rows:
            activity.truncated = True
            break
        read += 1
        _count(activity, row, errors=errors, exact=exact)
    activity.rows += read


def _count(activity: FlowActivity, row: dict[str, Any], *, errors: int, exact: bool) -> None:
    at = optional_utc(row.get("at"))
    if at is None:
        return
    result = str(row.get("result") or "")
    reason = str(row.get("reason_code") or "")
    if result == AuditResult.OPERATOR.value:
        activity.operator_actions[reason] += 1
        return
    activity.outcomes[(result, reason)] += 1
    activity.series.setdefault(result, [0] * activity.window.buckets)[activity.window.index(at)] += 1
    if row.get("duration_ms") is not None:
        (activity.processing_ms.append if exact else activity.processing_hist.add)(int(row["duration_ms"]))
    observed = optional_utc(row.get("observed_at"))
    if observed is not None:
        latency = max((at - observed).total_seconds(), 0.0)
        (activity.latency_s.append if exact else activity.latency_hist.add)(latency)
    if result in ERROR_RESULTS and len(activity.errors) < errors:
        activity.errors.append(_audit_row(activity.flow, at, row))


# ----------------------------------------------------------------------------- hourly rollups
HOUR = timedelta(hours=1)
ROLLUP_AFTER = timedelta(hours=6)  # longer windows read hourly rollups
SETTLED_AFTER = timedelta(minutes=5)  # an hour's rows are all written this long after it ends
ROLLUP_ERRORS = 10  # newest errors kept per hour
_ROLLUP_PREFIX = "s|"


def _hour_key(at: datetime) -> str:
    return at.strftime("%Y%m%d%H")


def _rollup_partition(flow: str) -> str:
    return f"{_ROLLUP_PREFIX}{escape_key(flow, field='flow')}"


def _from_rollups(audit: AuditLog, flow: str, window: Window, *, errors: int, max_rows: int) -> FlowActivity:
    """Merge the flow's hourly rollups over `window` (widened to whole hours). Settled hours
    without a rollup are counted from their audit rows, one query per run of such hours (at
    most `max_rows` rows; the hours read whole get their rollups, the next page load goes on
    from there); the hours not settled yet are counted from their rows each time."""
    first = window.since.replace(minute=0, second=0, microsecond=0)
    count = math.ceil((window.until - first) / HOUR)
    activity = FlowActivity(flow, Window(first, first + HOUR * count, HOUR))
    partition = _rollup_partition(flow)
    stored = {
        str(row["RowKey"]): row
        for row in query(
            audit.table,
            "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi",
            {"pk": partition, "lo": _hour_key(first), "hi": _hour_key(first + HOUR * (count - 1))},
            "read audit rollups",
        )
    }
    hours: dict[int, FlowActivity] = {}
    settled = [i for i in range(count) if first + HOUR * (i + 1) <= window.until - SETTLED_AFTER]
    for i in range(count):
        row = stored.get(_hour_key(first + HOUR * i))
        if row is not None:
            hours[i] = _rollup_from_row(flow, first + HOUR * i, row)
            activity.hours_from_rollups += 1
    missing = [i for i in range(count) if i not in hours]
    new_rows = []
    for run in _runs(missing):
        counted = _count_hours(audit, flow, [first + HOUR * i for i in run], max_rows=max_rows)
        for i, (hour, whole) in zip(run, counted, strict=True):
            hours[i] = hour
            if whole and i in settled:
                new_rows.append(_rollup_row(partition, first + HOUR * i, hour))
    for i, hour in sorted(hours.items()):
        _merge(activity, hour, i)
    if new_rows:
        write_in_transactions(audit.table, "upsert", new_rows, "write audit rollups")
        expired = _hour_key(window.until - timedelta(days=audit.retention_days))
        delete_matching(  # the flow's rollups past the audit's retention go with it
            audit.table,
            "PartitionKey eq @pk and RowKey lt @hi",
            {"pk": partition, "hi": expired},
            "purge audit rollups",
        )
    activity.errors = sorted(activity.errors, key=lambda e: e.at, reverse=True)[:errors]
    return activity


def _runs(indices: Sequence[int]) -> list[list[int]]:
    """Consecutive runs of sorted indices: [1, 2, 5] -> [[1, 2], [5]]."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _count_hours(
    audit: AuditLog, flow: str, starts: Sequence[datetime], *, max_rows: int
) -> list[tuple[FlowActivity, bool]]:
    """Each hour's figures from one query over consecutive hours (rows newest first), and
    whether the hour was read whole (not cut by `max_rows`)."""
    hours = [FlowActivity(flow, Window(start, start + HOUR, HOUR)) for start in starts]
    end = starts[-1] + HOUR - timedelta(microseconds=1)
    oldest_whole = 0  # hours at this index and later were read whole
    read = 0
    for row in audit.rows_between(flow, starts[0], end, columns=_COLUMNS):
        at = optional_utc(row.get("at"))
        if at is None:
            continue
        index = min(max(int((at - starts[0]) / HOUR), 0), len(hours) - 1)
        if read >= max_rows:
            oldest_whole = index + 1  # the hour of the first row not read, and older, are cut
            hours[index].truncated = True
            break
        read += 1
        hours[index].rows += 1
        _count(hours[index], row, errors=ROLLUP_ERRORS, exact=False)
    return [(hour, i >= oldest_whole) for i, hour in enumerate(hours)]


def _merge(activity: FlowActivity, hour: FlowActivity, index: int) -> None:
    activity.rows += hour.rows
    activity.truncated |= hour.truncated
    activity.outcomes.update(hour.outcomes)
    activity.operator_actions.update(hour.operator_actions)
    activity.processing_hist.update(hour.processing_hist)
    activity.latency_hist.update(hour.latency_hist)
    activity.errors += hour.errors
    for result, counts in hour.series.items():
        activity.series.setdefault(result, [0] * activity.window.buckets)[index] += sum(counts)


def _rollup_row(partition: str, start: datetime, hour: FlowActivity) -> dict[str, Any]:
    errors = [{**e.as_dict(), "description": e.description[:300]} for e in hour.errors[:ROLLUP_ERRORS]]
    return {
        "PartitionKey": partition,
        "RowKey": _hour_key(start),
        "rows": hour.rows,
        "outcomes": json.dumps({f"{r}|{reason}": n for (r, reason), n in hour.outcomes.items()}),
        "operator": json.dumps(dict(hour.operator_actions)),
        "processing": hour.processing_hist.as_json(),
        "latency": hour.latency_hist.as_json(),
        "errors": json.dumps(errors),
    }


def _rollup_from_row(flow: str, start: datetime, row: dict[str, Any]) -> FlowActivity:
    hour = FlowActivity(flow, Window(start, start + HOUR, HOUR), rows=int(row.get("rows") or 0))
    for key, n in json.loads(str(row.get("outcomes") or "{}")).items():
        result, _, reason = key.partition("|")
        hour.outcomes[(result, reason)] += int(n)
        hour.series.setdefault(result, [0])[0] += int(n)
    hour.operator_actions.update({k: int(v) for k, v in json.loads(str(row.get("operator") or "{}")).items()})
    hour.processing_hist = Histogram.from_json(row.get("processing"))
    hour.latency_hist = Histogram.from_json(row.get("latency"))
    hour.errors = [
        AuditRow(**{**e, "at": datetime.fromisoformat(e["at"])})
        for e in json.loads(str(row.get("errors") or "[]"))
    ]
    return hour


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
