"""Data quality: normalisation (e-mail, phone, country, text), typed issues, duplicate matching."""

from shared.quality.duplicates import DuplicateCandidate, DuplicateIndex, MatchResult, find_duplicates
from shared.quality.issues import IssueCode, QualityIssue, QualityPolicy, Severity
from shared.quality.normalise import (
    Checked,
    check_length,
    clean_text,
    country_to_iso2,
    email_match_key,
    iso2_to_iso3,
    iso2_to_name,
    normalise_email,
    normalise_phone,
    normalise_postcode,
    postcode_match_key,
)

__all__ = [
    "Checked",
    "DuplicateCandidate",
    "DuplicateIndex",
    "IssueCode",
    "MatchResult",
    "QualityIssue",
    "QualityPolicy",
    "Severity",
    "check_length",
    "clean_text",
    "country_to_iso2",
    "email_match_key",
    "find_duplicates",
    "iso2_to_iso3",
    "iso2_to_name",
    "normalise_email",
    "normalise_phone",
    "normalise_postcode",
    "postcode_match_key",
]
