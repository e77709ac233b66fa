"""Normalisation of customer data: text, e-mail, phone (E.164), country codes/names, lengths.

Every function takes a raw value and returns a `Checked` result: the clean value, or no
value plus a problem (an `IssueCode` and a reason that never repeats the raw value, because
the value is usually personal data). Callers turn problems into `QualityIssue`s with the
system, record id and field they know about. Nothing here raises on bad input.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from shared.quality.issues import IssueCode

T = TypeVar("T")

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Checked(Generic[T]):
    """A normalised value, or a problem (code + reason without the value)."""

    value: T | None
    code: IssueCode | None = None
    reason: str | None = None
    limit: int | None = None  # for ValueTooLong: the maximum length

    @property
    def ok(self) -> bool:
        return self.code is None


def clean_text(raw: object) -> str | None:
    """Unicode NFC, trimmed, inner whitespace (tabs, newlines, NBSP) collapsed; empty -> None.

    Structured values (objects, arrays) are not text and give None.
    """
    if raw is None or isinstance(raw, Mapping | list | tuple | set):
        return None
    text = unicodedata.normalize("NFC", str(raw))
    text = _WHITESPACE.sub(" ", text.replace("\u00a0", " ")).strip()
    return text or None


def check_length(value: str | None, limit: int | None) -> Checked[str]:
    """ValueTooLong when `value` has more than `limit` characters (the value is kept)."""
    if value is None or limit is None or len(value) <= limit:
        return Checked(value)
    return Checked(
        value, IssueCode.VALUE_TOO_LONG, f"is longer than {limit} characters ({len(value)})", limit
    )


# --- e-mail -----------------------------------------------------------------------------------


def _email_reason(message: str) -> str:
    """Turn an email-validator message into a reason that cannot contain the address."""
    lowered = message.lower()
    if "must have an @-sign" in lowered or "must have exactly one @" in lowered:
        return "missing @"
    if "too long" in lowered:
        return "too long"
    if "after the @-sign" in lowered or "domain" in lowered:
        return "invalid domain part"
    if "before the @-sign" in lowered or "local part" in lowered:
        return "invalid part before the @"
    if "no characters" in lowered or "empty" in lowered:
        return "empty local or domain part"
    return "invalid syntax"


def normalise_email(raw: object) -> Checked[str]:
    """Syntax-checked (no DNS) and fully lower-cased e-mail address; empty -> no value, no problem.

    The local part is lower-cased too: every mainstream mail provider treats it
    case-insensitively, and one spelling per address keeps matching and hashing stable.
    """
    text = clean_text(raw)
    if text is None:
        return Checked(None)
    return _email(text)


@functools.lru_cache(maxsize=16384)  # both sides of a customer are read on every sync: cache pure work
def _email(text: str) -> Checked[str]:
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        return Checked(
            None, IssueCode.INVALID_EMAIL, f"is not a valid e-mail address ({_email_reason(str(exc))})"
        )
    return Checked(result.normalized.lower())


def email_match_key(raw: object) -> str | None:
    """The key two records must share to count as the same customer by e-mail."""
    return normalise_email(raw).value


# --- phone ------------------------------------------------------------------------------------


def normalise_phone(raw: object, default_region: str) -> Checked[str]:
    """E.164 (+441245845632). Numbers without +country are read in `default_region`.

    Extensions are not part of E.164 and are dropped. A number that cannot be parsed, or
    that is not a valid number for its region, is an InvalidPhone problem.
    """
    text = clean_text(raw)
    if text is None:
        return Checked(None)
    return _phone(text, default_region)


@functools.lru_cache(maxsize=16384)
def _phone(text: str, default_region: str) -> Checked[str]:
    if text.startswith("00"):  # international prefix written out: 0049 ... -> +49 ...
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        reason = {
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
            phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
            phonenumbers.NumberParseException.TOO_LONG: "too long",
        }.get(exc.error_type, "not a phone number")
        return Checked(None, IssueCode.INVALID_PHONE, f"is not a valid phone number ({reason})")
    if not phonenumbers.is_valid_number(number):
        # name the region the number was read in: its own +country code's when it has one (a UK
        # +44 number on a French contact is invalid for GB, not FR), else the default region
        region = (
            phonenumbers.region_code_for_number(number)
            or phonenumbers.region_code_for_country_code(number.country_code or 0)
            or default_region
        )
        if region == phonenumbers.UNKNOWN_REGION:
            region = default_region
        return Checked(
            None, IssueCode.INVALID_PHONE, f"is not a valid phone number (not a valid number for {region})"
        )
    return Checked(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# --- country ----------------------------------------------------------------------------------

# Names people type that ISO 3166 does not list. Extend per installation in the mapping YAML.
DEFAULT_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united states of america": "US",
    "u.s.a.": "US",
    "u.s.": "US",
    "america": "US",
    "russia": "RU",
    "holland": "NL",
    "the netherlands": "NL",
    "deutschland": "DE",
    "czech republic": "CZ",
    "republic of ireland": "IE",
    "eire": "IE",
    "turkey": "TR",
}


def country_to_iso2(raw: object, aliases: Mapping[str, str] | None = None) -> Checked[str]:
    """ISO 3166 alpha-2 from an alpha-2 or alpha-3 code, an English name or a known alias."""
    text = clean_text(raw)
    if text is None:
        return Checked(None)
    key = text.casefold()
    table = {**DEFAULT_COUNTRY_ALIASES, **{k.casefold(): v for k, v in (aliases or {}).items()}}
    if key in table:
        return Checked(table[key].upper())
    try:
        country = pycountry.countries.lookup(text)
    except LookupError:
        return Checked(None, IssueCode.UNKNOWN_COUNTRY, "is not a known country")
    return Checked(country.alpha_2)


def iso2_to_iso3(iso2: str) -> str:
    """GB -> GBR (Brightpearl postal-address countryIsoCode). KeyError if unknown."""
    country = pycountry.countries.get(alpha_2=iso2.upper())
    if country is None:
        raise KeyError(iso2)
    return str(country.alpha_3)


def iso2_to_name(iso2: str, overrides: Mapping[str, str] | None = None) -> str:
    """GB -> "United Kingdom": the country text written to Dataverse address columns.

    The everyday (common) name is used where ISO has one ("South Korea", "Bolivia"),
    unless the mapping YAML overrides it.
    """
    code = iso2.upper()
    if overrides and code in overrides:
        return overrides[code]
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        raise KeyError(iso2)
    return str(getattr(country, "common_name", None) or country.name)


def normalise_postcode(raw: object) -> str | None:
    """Upper case, whitespace collapsed: "bs2  9ag " -> "BS2 9AG"."""
    text = clean_text(raw)
    return text.upper() if text else None


# UK postcodes (also Crown Dependencies): outward code, then a three-character inward code.
_UK_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][0-9A-Z]?)([0-9][A-Z]{2})")
_UK_POSTCODE_COUNTRIES = frozenset({"GB", "IM", "JE", "GG"})


def format_postcode(postcode: str | None, country: str | None) -> str | None:
    """A normalised postcode in its country's written form where that is known.

    UK: "SW1Y4JH" -> "SW1Y 4JH" (the space before the inward code). Anything that does not
    look like a postcode of that country is left as it is.
    """
    if not postcode or (country or "").upper() not in _UK_POSTCODE_COUNTRIES:
        return postcode
    m = _UK_POSTCODE.fullmatch(re.sub(r"[^0-9A-Z]", "", postcode))
    return f"{m.group(1)} {m.group(2)}" if m else postcode


def postcode_match_key(raw: object) -> str | None:
    """Postcode without any spaces or punctuation, for comparing records."""
    text = normalise_postcode(raw)
    if text is None:
        return None
    return re.sub(r"[^0-9A-Z]", "", text) or None
