"""Duplicate matching: normalised e-mail first, then fuzzy name within a shared postcode."""

from __future__ import annotations

from shared.model.customer import Address, Addresses, Customer, Emails, PersonName
from shared.quality.duplicates import DuplicateIndex, find_duplicates, fold_name


def person(first: str, last: str, *, email: str | None = None, postcode: str | None = None) -> Customer:
    address = Address(line1="1 Any Street", postcode=postcode, country="GB") if postcode else None
    return Customer(
        name=PersonName(first_name=first, last_name=last),
        emails=Emails(primary=email),
        addresses=Addresses(billing=address),
    )


POOL = [
    ("c-1", person("John", "Smith", email="john.smith@example.com", postcode="BS2 9AG")),
    ("c-2", person("Jon", "Smith", postcode="BS2 9AG")),
    ("c-3", person("Jane", "Smith", postcode="BS2 9AG")),
    ("c-4", person("John", "Smith", postcode="LS1 1AA")),
    ("c-5", person("Zoë", "O'Brien", postcode="M1 1AE")),
]


def test_email_match_ignores_case_and_whitespace() -> None:
    result = find_duplicates(person("Johnny", "Smith", email="  JOHN.SMITH@Example.com "), POOL)
    assert [c.record_id for c in result.email_matches] == ["c-1"]
    assert result.email_matches[0].reason == "email"
    assert result.linked_id == "c-1"
    assert not result.likely  # no fuzzy search once an e-mail matched
    assert not result.needs_review


def test_email_matches_any_slot() -> None:
    other = Customer(
        name=PersonName(last_name="X"), emails=Emails(primary="a@b.com", tertiary="john.smith@example.com")
    )
    assert find_duplicates(other, POOL).linked_id == "c-1"


def test_likely_duplicates_by_fuzzy_name_within_postcode_with_scores() -> None:
    result = find_duplicates(person("John", "Smith", postcode="bs29ag"), POOL[1:], name_threshold=85)
    assert not result.email_matches
    ids = [c.record_id for c in result.likely]
    assert ids == ["c-2"]  # Jon Smith scores ~95; Jane Smith 80; c-4 is in another postcode
    assert 85 <= result.likely[0].score < 100
    assert result.likely[0].reason == "name+postcode"
    assert result.needs_review
    assert result.linked_id is None


def test_word_order_case_and_accents_do_not_matter() -> None:
    result = find_duplicates(person("OBRIEN", "zoe", postcode="M1 1AE"), POOL, name_threshold=90)
    assert [c.record_id for c in result.likely] == ["c-5"]
    assert fold_name("  Zoë  O'Brien-Smith ") == "zoe obrien smith"


def test_threshold_is_configurable() -> None:
    strict = find_duplicates(person("John", "Smith", postcode="BS2 9AG"), POOL[1:], name_threshold=95)
    loose = find_duplicates(person("John", "Smith", postcode="BS2 9AG"), POOL[1:], name_threshold=75)
    assert [c.record_id for c in strict.likely] == []
    assert [c.record_id for c in loose.likely] == ["c-2", "c-3"]
    assert loose.likely[0].score >= loose.likely[1].score


def test_without_postcode_requirement_all_names_are_compared() -> None:
    result = find_duplicates(person("John", "Smith"), POOL[1:], name_threshold=99, require_postcode=False)
    assert [c.record_id for c in result.likely] == ["c-4"]
    assert result.likely[0].reason == "name"
    blocked = find_duplicates(person("John", "Smith"), POOL[1:], name_threshold=99)
    assert not blocked.likely  # no postcode, nothing to compare within


def test_index_excludes_the_record_itself_and_limits_candidates() -> None:
    same = [(f"c-{i}", person("Ann", "Lee", postcode="E1 6AN")) for i in range(10)]
    index = DuplicateIndex.build(same, max_candidates=3)
    result = index.match(person("Ann", "Lee", postcode="E1 6AN"), exclude=["c-0"])
    assert len(result.likely) == 3
    assert "c-0" not in {c.record_id for c in result.likely}


def test_two_email_matches_need_review() -> None:
    pool = [
        ("a", person("A", "One", email="shared@example.com")),
        ("b", person("B", "Two", email="Shared@Example.com")),
    ]
    result = find_duplicates(person("C", "Three", email="shared@example.com"), pool)
    assert [c.record_id for c in result.email_matches] == ["a", "b"]
    assert result.linked_id is None
    assert result.needs_review


def test_index_takes_its_settings_from_the_mapping_file() -> None:
    from shared.mapping.config import load_customer_mapping

    settings = load_customer_mapping().duplicates
    index = DuplicateIndex.build(POOL, **settings.model_dump())
    assert index.name_threshold == settings.name_threshold
    assert (
        index.match(person("Jon", "Smith", postcode="BS2 9AG"), exclude=["c-2"]).likely[0].record_id == "c-1"
    )
