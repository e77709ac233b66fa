"""Normalisation of e-mails, phones, countries, text and lengths (shared.quality.normalise)."""

from __future__ import annotations

import pytest

from shared.quality.issues import IssueCode
from shared.quality.normalise import (
    check_length,
    clean_text,
    country_to_iso2,
    iso2_to_iso3,
    iso2_to_name,
    normalise_email,
    normalise_phone,
    normalise_postcode,
    postcode_match_key,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  John.Smith@Example.COM ", "john.smith@example.com"),
        ("MARIE.DUPONT@ORANGE.FR", "marie.dupont@orange.fr"),
        ("o'brien+shop@Mail.Co.UK", "o'brien+shop@mail.co.uk"),
        ("zoë@exämple.de", "zoë@exämple.de"),
    ],
)
def test_valid_emails_are_lower_cased_and_trimmed(raw: str, expected: str) -> None:
    result = normalise_email(raw)
    assert result.ok
    assert result.value == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("john.example.com", "missing @"),
        ("john@@example.com", "invalid domain part"),
        ("john@example", "invalid domain part"),
        ("john smith@example.com", "invalid part before the @"),
        ("john@exa mple.com", "invalid domain part"),
    ],
)
def test_invalid_emails_are_problems_that_do_not_repeat_the_address(raw: str, reason: str) -> None:
    result = normalise_email(raw)
    assert result.value is None
    assert result.code is IssueCode.INVALID_EMAIL
    assert result.reason == f"is not a valid e-mail address ({reason})"
    assert "john" not in (result.reason or "")


def test_empty_email_is_no_value_and_no_problem() -> None:
    for raw in (None, "", "   "):
        result = normalise_email(raw)
        assert result.ok and result.value is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("01245 845632", "GB", "+441245845632"),  # UK landline, national format
        ("(0117) 496-0123", "GB", "+441174960123"),  # brackets and dashes
        ("07911 123456", "GB", "+447911123456"),  # UK mobile
        ("+44 (0)20 7946 0958", "GB", "+442079460958"),  # the "(0)" habit
        ("0044 20 7946 0958", "GB", "+442079460958"),  # 00 international prefix
        ("(212) 555-0123", "US", "+12125550123"),  # US national format
        ("+1 415-555-2671", "GB", "+14155552671"),  # US number in a GB-default account
        ("030 123456", "DE", "+4930123456"),  # Berlin
        ("+49 (0) 30 123456", "GB", "+4930123456"),
        ("01 42 68 53 00", "FR", "+33142685300"),  # Paris
        ("+61 2 9374 4000", "GB", "+61293744000"),  # Sydney
        ("020 7946 0958 ext. 12", "GB", "+442079460958"),  # extension dropped
    ],
)
def test_dirty_phones_become_e164(raw: str, region: str, expected: str) -> None:
    result = normalise_phone(raw, region)
    assert result.ok, result.reason
    assert result.value == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12", "not a valid number for GB"),
        ("call me", "not a phone number"),
        ("+999 1234 5678", "unknown country code"),
        ("0117 496 01234567890", "not a valid number for GB"),
    ],
)
def test_unparseable_phones_are_problems_not_crashes(raw: str, reason: str) -> None:
    result = normalise_phone(raw, "GB")
    assert result.value is None
    assert result.code is IssueCode.INVALID_PHONE
    assert result.reason == f"is not a valid phone number ({reason})"


def test_default_region_decides_how_a_national_number_is_read() -> None:
    assert normalise_phone("030 123456", "DE").value == "+4930123456"
    assert normalise_phone("030 123456", "GB").code is IssueCode.INVALID_PHONE


@pytest.mark.parametrize(
    ("raw", "iso2"),
    [
        ("GBR", "GB"),  # Brightpearl postal-address countryIsoCode (alpha-3)
        ("GB", "GB"),  # countryIsoCode2
        ("gb", "GB"),
        ("United Kingdom", "GB"),  # Dataverse text
        ("UK", "GB"),
        ("England", "GB"),
        ("united states", "US"),
        ("USA", "US"),
        ("Deutschland", "DE"),
        ("Germany", "DE"),
        ("DEU", "DE"),
        ("France", "FR"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("  viet   nam ", "VN"),
    ],
)
def test_countries_from_codes_names_and_aliases(raw: str, iso2: str) -> None:
    result = country_to_iso2(raw)
    assert result.ok
    assert result.value == iso2


def test_unknown_country_is_a_problem() -> None:
    for raw in ("Atlantis", "XX", "ZZZ"):
        result = country_to_iso2(raw)
        assert result.value is None
        assert result.code is IssueCode.UNKNOWN_COUNTRY
        assert result.reason == "is not a known country"


def test_extra_aliases_come_from_configuration() -> None:
    assert country_to_iso2("Alba").code is IssueCode.UNKNOWN_COUNTRY
    assert country_to_iso2("Alba", {"Alba": "GB"}).value == "GB"


@pytest.mark.parametrize("iso2", ["GB", "US", "DE", "FR", "KR", "BO", "TW", "IE", "NL", "AU", "JP", "BR"])
def test_iso3_and_name_round_trip_to_iso2(iso2: str) -> None:
    iso3 = iso2_to_iso3(iso2)
    assert len(iso3) == 3
    assert country_to_iso2(iso3).value == iso2
    assert country_to_iso2(iso2_to_name(iso2)).value == iso2


def test_dataverse_country_text_uses_common_names_and_overrides() -> None:
    assert iso2_to_name("GB") == "United Kingdom"
    assert iso2_to_name("KR") == "South Korea"
    assert iso2_to_name("BO") == "Bolivia"
    assert iso2_to_name("GB", {"GB": "UK"}) == "UK"
    with pytest.raises(KeyError):
        iso2_to_iso3("XX")


def test_clean_text_trims_and_collapses_whitespace() -> None:
    assert clean_text("  Mary \t Jane\n  Watson\u00a0 ") == "Mary Jane Watson"
    assert clean_text("   ") is None
    assert clean_text(None) is None
    assert clean_text("Zoe\u0308") == "Zoë"  # NFC: combining diaeresis composed


def test_postcodes() -> None:
    assert normalise_postcode(" bs2   9ag ") == "BS2 9AG"
    assert postcode_match_key("bs2 9ag") == postcode_match_key("BS29AG") == "BS29AG"
    assert postcode_match_key("  ") is None


def test_length_check_names_the_limit() -> None:
    assert check_length("a" * 50, 50).ok
    result = check_length("a" * 51, 50)
    assert result.code is IssueCode.VALUE_TOO_LONG
    assert result.reason == "is longer than 50 characters (51)"
    assert result.limit == 50
    assert check_length(None, 50).ok
