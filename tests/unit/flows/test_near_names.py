"""Likely-duplicate name screening in the Dynamics -> Brightpearl flow (before the postcode check)."""

from __future__ import annotations

from rapidfuzz import fuzz

from shared.flows.customers_to_brightpearl import _near_names


def test_reordered_and_misspelt_names_are_near_and_others_are_not() -> None:
    rows = {"1": "jane smith", "2": "smith jane", "3": "jane smyth", "4": "john brown", "5": "janet smithson"}
    assert _near_names(rows, {"jane smith"}, 95) == {"1", "2"}
    assert _near_names(rows, {"jane smith"}, 90) == {"1", "2", "3"}
    assert _near_names(rows, {"jane smith"}, 80) == {"1", "2", "3", "5"}


def test_same_verdict_as_token_sort_ratio_for_every_pair() -> None:
    rows = {str(i): n for i, n in enumerate(["ann lee", "lee ann", "anne lee", "al lee", "ann leigh", "bo"])}
    names = {"ann lee", "leigh ann", "bob"}
    for threshold in (60, 75, 90, 100):
        expected = {
            key for key, row in rows.items() if any(fuzz.token_sort_ratio(row, n) >= threshold for n in names)
        }
        assert _near_names(rows, names, threshold) == expected


def test_no_names_or_empty_names_match_nothing() -> None:
    assert _near_names({"1": "ann lee"}, set(), 50) == set()
    assert _near_names({"1": "ann lee"}, {""}, 0) == set()
