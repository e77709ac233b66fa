"""The Brightpearl request budget shared by every instance of the function app (issue 16 item 2).

Brightpearl's cap (200 requests per rolling 60 s, reference §3) is per account, not per
process; in Azure several instances run the same flows. `SharedRateBudget` keeps the account
under the cap across instances: each instance *leases* a small block of requests (default 10)
from one row of the state store's `cursors` table, so the table is read and written once per
block, not once per request.

The row (PartitionKey `ratebudget`, RowKey = the pool key: root | account | private or dev ref)
holds the live grants `[[granted_at_ms, count], ...]` and a shared pause. Leasing is optimistic
concurrency: read the row, drop expired grants, grant `min(block, free)`, write it back with
`If-Match: <etag>` (a new row: insert, which fails if someone else inserted first). A conflict
(412/409: another instance leased meanwhile) re-reads and tries again, up to `max_conflicts`.

Why this holds on a *rolling* window: a block granted at `g` may be used only until
`g + lease_seconds` (by the granting instance's clock, which also stamped `g`), and it counts
against the pool until `g + lease_seconds + window + margin`, after the last request it can
have paid for has left the server's window (the margin, as in RateBudget, covers the network
latency between sending and arriving). So at the moment of any grant every grant whose requests
could share a window with it is still in the row, and the row never holds more than
`limit - reserve` requests: no window can see more. Unused requests of a lease (an instance that
went idle, crashed or lost its lease) are not returned early; they expire with the grant. The
price is throughput: at most `limit - reserve` per `window + lease_seconds + margin`
(5 s lease, 60 s window: 0.92 of the cap). Instances' clocks must agree to within the margin
(Azure hosts keep NTP time; the margin is 5 % of the window, at most 1 s).

Block size adapts: a lease whose requests expired mostly unused makes the next lease smaller
(twice what was used, at least 1), and a used-up lease doubles it back towards `block`, so an
instance that sends one request a minute does not hold ten.

A 503 "too many requests" (another app on the account, or clocks out of step) pauses this
instance as before and also writes the pause into the row, so every instance waits it out.

If the table cannot be reached, a call fails with BrightpearlThrottled (transient: the flow
schedules a retry copy); the flows need the same store for their links anyway.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode

from shared.brightpearl.errors import BrightpearlThrottled
from shared.brightpearl.ratebudget import RateBudget, margin_of
from shared.store.errors import StoreConflictError, StoreError
from shared.store.tables import escape_key, etag_of, get_row, translate_errors
from shared.telemetry import get_logger

if TYPE_CHECKING:
    from shared.brightpearl.settings import BrightpearlSettings

PARTITION = "ratebudget"
log = get_logger("brightpearl.shared_budget")


@dataclass(frozen=True)
class Lease:
    """What the table granted: `granted` requests usable until `usable_until`; when nothing was
    granted, `retry_at` is when a request frees up. `free` is what the pool had left after it."""

    granted: int
    at: float
    usable_until: float
    retry_at: float
    free: int
    conflicts: int


class TableLeases:
    """The pool's row in Table Storage: grant blocks of requests under optimistic concurrency."""

    def __init__(
        self,
        table: TableClient,
        pool: str,
        *,
        allowed: int,
        window_seconds: float,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
        max_conflicts: int = 50,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if allowed < 1:
            raise ValueError("allowed must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.table = table
        self.pool = pool
        self.row_key = escape_key(pool, field="rate budget pool")
        self.allowed = allowed
        self.window = window_seconds
        self.lease_seconds = lease_seconds
        # A grant counts against the pool for this long after it was made.
        self.hold = lease_seconds + window_seconds + margin_of(window_seconds)
        self._clock = clock
        self._sleep = sleep
        self.max_conflicts = max_conflicts
        self.reads = 0
        self.writes = 0
        self.conflicts = 0

    def lease(self, want: int) -> Lease:
        """Grant up to `want` requests now, or say when to come back. Raises StoreError when the
        table cannot be used, StoreConflictError after `max_conflicts` lost races in a row."""
        for attempt in range(self.max_conflicts + 1):
            now = self._clock()
            row, etag = self._read()
            grants, paused_until = self._live(row, now)
            if paused_until > now:
                return Lease(0, now, now, paused_until, 0, attempt)
            free = self.allowed - sum(count for _, count in grants)
            if free <= 0:
                # The oldest grants expire first: come back when enough have gone for one request.
                retry_at = self._frees_at(grants, need=1 - free)
                return Lease(0, now, now, retry_at, 0, attempt)
            granted = min(want, free)
            grants.append((now, granted))
            try:
                self._write(grants, paused_until, etag)
            except StoreConflictError:
                self.conflicts += 1
                # Another instance won the race; a short random pause spreads the retries.
                self._sleep(random.uniform(0.0, min(0.002 * (attempt + 1), 0.05)))
                continue
            return Lease(granted, now, now + self.lease_seconds, now, free - granted, attempt)
        raise StoreConflictError(
            f"rate budget {self.pool!r}: {self.max_conflicts + 1} leases in a row lost the race "
            f"(ETag mismatch) in table {self.table.table_name!r}",
            table=self.table.table_name,
            partition_key=PARTITION,
            row_key=self.row_key,
        )

    def free_now(self) -> int:
        """Requests the pool could still grant now (0 while paused); one read, writes nothing."""
        now = self._clock()
        row, _ = self._read()
        grants, paused_until = self._live(row, now)
        if paused_until > now:
            return 0
        return max(0, self.allowed - sum(count for _, count in grants))

    def pause(self, until: float) -> None:
        """Make every instance wait until `until` (a 503 said the pool is over the cap)."""
        for _ in range(self.max_conflicts + 1):
            now = self._clock()
            row, etag = self._read()
            grants, paused_until = self._live(row, now)
            if paused_until >= until:
                return
            try:
                self._write(grants, until, etag)
                return
            except StoreConflictError:
                self.conflicts += 1
                continue

    # -- the row -----------------------------------------------------------------------
    def _read(self) -> tuple[Any, str | None]:
        self.reads += 1
        row = get_row(self.table, PARTITION, self.row_key, "read rate budget")
        return row, (etag_of(row) if row is not None else None)

    def _live(self, row: Any, now: float) -> tuple[list[tuple[float, int]], float]:
        if row is None:
            return [], 0.0
        try:
            stored = json.loads(str(row.get("grants") or "[]"))
            grants = [(float(at_ms) / 1000.0, int(count)) for at_ms, count in stored]
        except (ValueError, TypeError):
            log.warning("rate budget row %s is unreadable; starting it afresh", self.row_key)
            grants = []
        live = [(at, count) for at, count in grants if at + self.hold > now]
        return live, float(row.get("paused_until") or 0.0)

    def _frees_at(self, grants: list[tuple[float, int]], need: int) -> float:
        freed = 0
        for at, count in sorted(grants):
            freed += count
            if freed >= need:
                return at + self.hold
        return self._clock() + self.hold  # not reached: need <= the sum of the grants

    def _write(self, grants: list[tuple[float, int]], paused_until: float, etag: str | None) -> None:
        entity = {
            "PartitionKey": PARTITION,
            "RowKey": self.row_key,
            "grants": json.dumps([[round(at * 1000), count] for at, count in grants]),
            "paused_until": float(paused_until),
        }
        self.writes += 1
        action = "lease from rate budget"
        with translate_errors(
            self.table.table_name, action, PARTITION, self.row_key, missing_row_is_conflict=True
        ):
            if etag is None:
                self.table.create_entity(entity)
            else:
                self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )


class SharedRateBudget(RateBudget):
    """A RateBudget whose window is the account's, shared through `TableLeases`.

    Threads of one process share the leased block; one thread at a time leases the next.
    The server's throttle headers and 503s are handled as in RateBudget (a 503 pause is also
    written to the row). Times are wall-clock seconds (they are compared across instances).
    """

    _shared_registry: ClassVar[dict[tuple[str, str], SharedRateBudget]] = {}

    def __init__(
        self,
        leases: TableLeases,
        limit: int = 200,
        window_seconds: float = 60.0,
        *,
        reserve: int = 0,
        block: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limit, window_seconds, reserve=reserve, clock=clock)
        if block < 1:
            raise ValueError("block must be at least 1")
        self.leases = leases
        self.block = block
        self._next_block = block
        self._tokens = 0
        self._lease_used = 0
        self._lease_until = 0.0
        self._leasing = False
        self._pool_free: int | None = None  # what the pool had left at our last lease
        self._pool_seen_at = 0.0
        self.leases_taken = 0
        self.requests_leased = 0
        self.requests_expired = 0  # leased, never used, left to expire

    @classmethod
    def for_table(
        cls,
        table: TableClient,
        pool: str,
        *,
        limit: int,
        window_seconds: float,
        reserve: int,
        block: int,
        lease_seconds: float,
    ) -> SharedRateBudget:
        """The process-wide shared budget of `pool` on `table`; created on first use."""
        # the account's endpoint and the table: TableClient.url names only the account
        key = (f"{getattr(table, 'url', '')}/{table.table_name}", pool)
        with cls._registry_lock:
            budget = cls._shared_registry.get(key)
            if (
                budget is None
                or (budget.limit, budget.window, budget.reserve, budget.block)
                != (limit, window_seconds, min(reserve, limit - 1), block)
                or budget.leases.lease_seconds != lease_seconds
            ):
                leases = TableLeases(
                    table,
                    pool,
                    allowed=limit - min(reserve, limit - 1),
                    window_seconds=window_seconds,
                    lease_seconds=lease_seconds,
                )
                budget = cls(leases, limit, window_seconds, reserve=reserve, block=block)
                cls._shared_registry[key] = budget
            return budget

    def acquire(self, max_wait: float) -> float:
        """Block until one request may be sent (a token of a live lease); return seconds waited.

        Raises BrightpearlThrottled when the wait would exceed `max_wait`, or when the table
        cannot be used (naming why)."""
        started = self._clock()
        while True:
            with self._cond:
                now = self._clock()
                if self._tokens and now >= self._lease_until:
                    self._expire_lease()
                ready_at = self._paused_until
                if ready_at <= now and self._tokens:
                    return self._take(now, started)
                if ready_at <= now and self._leasing:  # another thread is leasing: wait for it
                    if now - started > max_wait:
                        raise self._exhausted(0.0, max_wait)
                    self._waiting += 1
                    try:
                        self._cond.wait(timeout=1.0)
                    finally:
                        self._waiting -= 1
                    continue
                if ready_at > now:
                    self._wait_or_give_up(ready_at, now, started, max_wait)
                    continue
                self._leasing = True
                want = self._next_block
            try:
                lease = self._lease(want)
            finally:
                with self._cond:
                    self._leasing = False
                    self._cond.notify_all()
            with self._cond:
                now = self._clock()
                self._pool_free, self._pool_seen_at = lease.free, now
                if lease.granted:
                    self.leases_taken += 1
                    self.requests_leased += lease.granted
                    self._tokens, self._lease_used = lease.granted, 0
                    self._lease_until = lease.usable_until
                    continue
                if lease.retry_at - started > max_wait:
                    raise self._exhausted(lease.retry_at - now, max_wait)
                self._paused_until = max(self._paused_until, min(lease.retry_at, now + self.window))
                self._cond.notify_all()

    def _take(self, now: float, started: float) -> float:
        self._tokens -= 1
        self._lease_used += 1
        if not self._tokens:  # used up in time: the next lease may be larger
            self._next_block = min(self.block, self._next_block * 2)
        self._expire(now)
        return self._sent_now(now, started)

    def _expire_lease(self) -> None:
        self.requests_expired += self._tokens
        self._tokens = 0
        self._next_block = max(1, min(self.block, self._lease_used * 2))

    def _wait_or_give_up(self, ready_at: float, now: float, started: float, max_wait: float) -> None:
        if ready_at - started > max_wait:
            raise self._exhausted(ready_at - now, max_wait)
        self._waiting += 1
        try:
            self._cond.wait(timeout=ready_at - now)
        finally:
            self._waiting -= 1

    def _exhausted(self, seconds: float, max_wait: float) -> BrightpearlThrottled:
        return BrightpearlThrottled(
            f"Brightpearl rate budget (shared by all instances) exhausted: the next slot is "
            f"{seconds:.1f}s away, more than the {max_wait:.0f}s allowed",
            status=503,
            retry_after=seconds,
        )

    def _lease(self, want: int) -> Lease:
        try:
            return self.leases.lease(want)
        except StoreError as exc:
            raise BrightpearlThrottled(
                f"Brightpearl rate budget unavailable: the shared budget row could not be leased "
                f"({exc}); set BRIGHTPEARL_SHARED_BUDGET=false only if one instance runs",
                status=503,
                retry_after=1.0,
            ) from exc

    def has_room_for_poll(self, requests: int = 1) -> bool:
        """As RateBudget's, counting the pool of every instance: this instance's unused tokens
        plus what the pool had left at the last lease (or, when that is older than a lease,
        one read of the row). The server's last word caps it as before."""
        with self._cond:
            now = self._clock()
            if self._paused_until > now or self._waiting:
                return False
            tokens = self._tokens if now < self._lease_until else 0
            pool_free = self._pool_free if now - self._pool_seen_at < self.leases.lease_seconds else None
        if pool_free is None:
            try:
                pool_free = self.leases.free_now()
            except StoreError as exc:
                log.warning("rate budget row unreadable (%s); low-priority poll skipped", type(exc).__name__)
                return False
            with self._cond:
                self._pool_free, self._pool_seen_at = pool_free, self._clock()
        free = tokens + pool_free
        with self._cond:
            if self._server_remaining is not None and now < self._server_until:
                since = sum(1 for sent in self._sent if sent > self._server_seen_at)
                free = min(free, int(self._server_remaining) - since - self.reserve)
        return free - requests >= self.flow_reserve

    def throttled(self, period_ms: float | None) -> float:
        """A 503 over the cap: pause here (RateBudget) and in the row, for every instance."""
        seconds = super().throttled(period_ms)
        try:
            self.leases.pause(self._clock() + seconds)
        except StoreError as exc:
            log.warning(
                "could not share the throttle pause (%s); pausing this instance only", type(exc).__name__
            )
        return seconds

    def stats(self) -> dict[str, int]:
        """Counters for benchmarks and logs (no data)."""
        with self._cond:
            return {
                "leases": self.leases_taken,
                "requests_leased": self.requests_leased,
                "requests_expired": self.requests_expired,
                "table_reads": self.leases.reads,
                "table_writes": self.leases.writes,
                "table_conflicts": self.leases.conflicts,
            }


def budget_in_table(table: TableClient, pool: str, settings: BrightpearlSettings) -> SharedRateBudget:
    """The shared budget the Brightpearl settings describe, on `table` (the cursors table)."""
    return SharedRateBudget.for_table(
        table,
        pool,
        limit=settings.rate_limit,
        window_seconds=settings.rate_window_seconds,
        reserve=settings.rate_reserve,
        block=settings.shared_budget_block,
        lease_seconds=settings.shared_budget_lease_seconds,
    )


__all__ = ["PARTITION", "Lease", "SharedRateBudget", "TableLeases", "budget_in_table", "margin_of"]
