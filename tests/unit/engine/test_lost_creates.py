"""The generic lost-create search (shared/sync/lost_creates.py): a ranged scan above a lower
bound that adopts unowned records by content, each once, and the id high-water cursor."""

from __future__ import annotations

from collections.abc import Callable

from shared.sync import lost_creates
from shared.sync.fakes import MemoryCursors
from shared.sync.lost_creates import FoundRecord, PendingCreates, PendingItem


def store(
    records: dict[int, tuple[str, bool]],
) -> tuple[list[tuple[int, int]], Callable[[int, int], list[FoundRecord]]]:
    """A ranged reader over `records` (id -> (fingerprint, owned)) that logs the ranges read."""
    reads: list[tuple[int, int]] = []

    def read(first: int, last: int) -> list[FoundRecord]:
        reads.append((first, last))
        return [FoundRecord(i, fp, owned) for i, (fp, owned) in records.items() if first <= i <= last]

    return reads, read


def test_identical_bodies_get_one_record_each_and_nothing_owned_or_below_the_bound() -> None:
    reads, read = store({5: ("same", False), 11: ("same", True), 12: ("same", False), 13: ("same", False)})
    pending = {
        "a": PendingCreates(10, (PendingItem("a1", "same"),)),
        "b": PendingCreates(10, (PendingItem("b1", "same"),)),
    }

    adopted = lost_creates.find_lost(pending, read, window=10)

    assert adopted == {"a": [("a1", 12)], "b": [("b1", 13)]}  # not 5 (below the bound), not 11 (owned)
    assert reads == [(10, 19)]  # every body found: no further window


def test_the_scan_stops_at_an_empty_window_above_the_known_top_not_at_a_gap_below_it() -> None:
    reads, read = store({1: ("x", True), 45: ("lost", False)})
    pending = {"a": PendingCreates(1, (PendingItem("k", "lost"), PendingItem("k2", "never")))}

    assert lost_creates.find_lost(pending, read, window=10) == {}
    assert reads == [(1, 10), (11, 20)]

    reads.clear()
    adopted = lost_creates.find_lost(pending, read, window=10, known_top=45)

    assert adopted == {"a": [("k", 45)]}
    assert reads == [(1, 10), (11, 20), (21, 30), (31, 40), (41, 50), (51, 60)]


def test_a_marker_survives_the_claim_progress_round_trip() -> None:
    marker = PendingCreates(7, (PendingItem("h", "f"),)).merged(PendingCreates(3, (PendingItem("g", "e"),)))

    assert PendingCreates.from_progress(marker.to_progress()) == marker
    assert marker.after == 3 and PendingCreates.from_progress({"after": "x"}) is None


def test_the_high_water_cursor_only_rises() -> None:
    cursors = MemoryCursors()
    assert lost_creates.stored_high_water(cursors, "hw") is None
    lost_creates.remember_high_water(cursors, "hw", 50)
    lost_creates.remember_high_water(cursors, "hw", 20)
    assert lost_creates.stored_high_water(cursors, "hw") == 50
    lost_creates.remember_high_water(cursors, "hw", 70)
    assert lost_creates.stored_high_water(cursors, "hw") == 70
