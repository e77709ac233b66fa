"""Brightpearl id sets: the forms Brightpearl sends, and the bound we enforce."""

import pytest

from shared.brightpearl.idset import IdSetError, chunk_ids, format_id_set, parse_id_set


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("8", [8]),
        ("1-3,7", [1, 2, 3, 7]),
        ("1,5,9", [1, 5, 9]),
        ("1.5.9", [1, 5, 9]),
        (" 5-6 , 6 ,1 ", [1, 5, 6]),
        ("1-50,55,56,75-82", [*range(1, 51), 55, 56, *range(75, 83)]),
    ],
)
def test_parses_every_documented_form(text, ids):
    assert parse_id_set(text) == ids


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("5-3", "descending"),
        ("0", "positive"),
        ("1,,2", "not an id"),
        ("abc", "not an id"),
        ("1-2-3", "not an id"),
        ("-4", "not an id"),
    ],
)
def test_malformed_sets_name_the_problem(text, problem):
    with pytest.raises(IdSetError, match=problem):
        parse_id_set(text)


def test_bound_is_enforced_without_expanding_huge_ranges():
    assert len(parse_id_set("1-10", max_ids=10)) == 10
    with pytest.raises(IdSetError, match="more than 10"):
        parse_id_set("1-11", max_ids=10)
    with pytest.raises(IdSetError, match="more than 10"):
        parse_id_set("1-6,20-25", max_ids=10)
    with pytest.raises(IdSetError, match="more than 1000"):
        parse_id_set("1-999999999999")


def test_format_and_chunk_round_trip():
    ids = [1, 2, 3, 7, 9, 10]
    assert format_id_set(ids) == "1-3,7,9-10"
    assert parse_id_set(format_id_set(ids)) == ids
    assert list(chunk_ids(range(1, 251), 100)) == [
        list(range(1, 101)), list(range(101, 201)), list(range(201, 251))
    ]
