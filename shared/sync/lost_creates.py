"""Creates whose answer was lost: found again and adopted instead of made a second time.

Some target resources have no idempotency key, no search and no delete (Brightpearl postal
addresses). A POST whose answer never arrives (a timeout or a dropped connection after the
server applied it) leaves a record nobody knows the id of, and posting it again orphans the
first one. What such resources do have: ids allocated in ascending order and never reused, and
a GET by ascending id range. So a writer

1. before the POST, keeps a `PendingCreates` marker where a retry will look (the record's
   creation claim, or another state entity): a lower bound `after` of the ids the POST can get
   (one above the highest id any earlier answer carried: a too-low bound only widens the scan)
   and a fingerprint of each body;
2. on the retry (or a takeover after a crash), calls `find_lost`, which reads the ids from the
   lowest bound upward one window at a time (stopping at an empty window, once every pending
   body is found, or after `max_windows`) and adopts records that belong to nothing and carry
   a pending fingerprint, each record at most once and each at or above its own bound;
3. POSTs only what is still missing.

`IdHighWater` keeps the bound: the highest id this process's answers carried (held by the API
client, one per process), mirrored in a state cursor (`stored_high_water` /
`remember_high_water`) so a fresh process after a crash still has one.

Residual risk, by construction: a record is recognised by content, not by identity. If another
writer creates a record with identical content at the same time and has not yet attached it
(e.g. two new customers at the same address posted by two workers at once), a retry can adopt
that one instead of its own; its own lost record then stays an orphan, and both owners point
at one record. It needs a lost answer and an identical concurrent create inside one scan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.store.errors import StoreConflictError
from shared.sync.ports import CursorsPort
from shared.telemetry import get_logger

log = get_logger("sync.lost_creates")

SCAN_WINDOW = 200  # ids per ranged GET (Brightpearl's per-request GET limit, reference §1.3)
SCAN_MAX_WINDOWS = 50  # at most 10,000 ids above the bound are read for one recovery


@dataclass(frozen=True)
class PendingItem:
    """One body of a POST whose answer may be lost: `key` is the writer's own name for it
    (returned on adoption), `fingerprint` what a record read back must match."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class PendingCreates:
    """What a writer is about to create: every id it gets is at least `after`."""

    after: int
    items: tuple[PendingItem, ...]

    def to_progress(self) -> dict[str, Any]:
        return {"after": self.after, "items": [[i.key, i.fingerprint] for i in self.items]}

    @classmethod
    def from_progress(cls, value: Any) -> PendingCreates | None:
        """The marker `to_progress` wrote, or None (absent or unreadable)."""
        if not isinstance(value, Mapping):
            return None
        after, items = value.get("after"), value.get("items")
        if not isinstance(after, int) or not isinstance(items, list):
            return None
        pending = tuple(
            PendingItem(str(i[0]), str(i[1])) for i in items if isinstance(i, list | tuple) and len(i) == 2
        )
        return cls(after, pending) if pending else None

    def merged(self, other: PendingCreates | None) -> PendingCreates:
        if other is None:
            return self
        return PendingCreates(min(self.after, other.after), other.items + self.items)


@dataclass(frozen=True)
class FoundRecord:
    """A record read back while scanning: its id, its content's fingerprint and whether it
    already belongs to something (then it is never adopted)."""

    id: int
    fingerprint: str
    owned: bool


def find_lost(
    pending: Mapping[str, PendingCreates],
    read: Callable[[int, int], Sequence[FoundRecord]],
    *,
    known_top: int | None = None,
    window: int = SCAN_WINDOW,
    max_windows: int = SCAN_MAX_WINDOWS,
) -> dict[str, list[tuple[str, int]]]:
    """For each owner of `pending`, the (item key, record id) pairs adopted for it.

    `read(first, last)` returns the records with ids in [first, last] (an empty list when there
    is none); its errors propagate, so the caller does not create again when it could not look.
    An empty window ends the scan only above `known_top` (an id known to exist, e.g. the highest
    one answered so far): below it an empty window is a gap (deleted records, other ranges).
    Records are taken in ascending id order, so a pending body gets the lowest free match at or
    above its bound (the one allocated right after it, when the bound was current).
    """
    wanted = [(owner, item, p.after) for owner, p in pending.items() for item in p.items]
    adopted: dict[str, list[tuple[str, int]]] = {}
    if not wanted:
        return adopted
    first = max(1, min(after for _, _, after in wanted))
    for _ in range(max_windows):
        found = read(first, first + window - 1)
        if not found and (known_top is None or first + window - 1 >= known_top):
            return adopted
        for record in sorted(found, key=lambda f: f.id):
            if record.owned:
                continue
            match = next(
                (w for w in wanted if w[1].fingerprint == record.fingerprint and w[2] <= record.id), None
            )
            if match is not None:
                wanted.remove(match)
                adopted.setdefault(match[0], []).append((match[1].key, record.id))
        if not wanted:
            return adopted
        first += window
    log.warning(
        "lost creates: stopped after %d ids above %d with %d pending bodies unmatched",
        window * max_windows,
        min(after for _, _, after in wanted),
        len(wanted),
    )
    return adopted


def stored_high_water(cursors: CursorsPort, name: str) -> int | None:
    """The bound a process kept in cursor `name`, or None (never kept, unreadable)."""
    try:
        cursor = cursors.get(name)
        return int(cursor.value) if cursor is not None else None
    except Exception as exc:  # no bound: the caller scans from the start
        log.warning("reading id high-water cursor %s failed: %s", name, type(exc).__name__)
        return None


def remember_high_water(cursors: CursorsPort, name: str, value: int) -> None:
    """Raise cursor `name` to `value` (never lowers it). Best effort: any value a cursor holds
    stays a valid lower bound, so a lost race or a failed write only widens a later scan."""
    try:
        cursor = cursors.get(name)
        if cursor is not None and cursor.value.isdigit() and int(cursor.value) >= value:
            return
        cursors.save(name, str(value), etag=cursor.etag if cursor is not None else None)
    except StoreConflictError:
        pass  # another process moved it meanwhile
    except Exception as exc:
        log.warning("saving id high-water cursor %s failed: %s", name, type(exc).__name__)
