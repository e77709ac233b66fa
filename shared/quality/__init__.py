"""Data quality: normalisation (e-mail, phone, country, text) and typed issues.

Duplicate matching (shared.quality.duplicates) works on the canonical model, which itself
uses the normalisation here, so it is imported from its module, not re-exported.
"""

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
    "IssueCode",
    "QualityIssue",
    "QualityPolicy",
    "Severity",
    "check_length",
    "clean_text",
    "country_to_iso2",
    "email_match_key",
    "iso2_to_iso3",
    "iso2_to_name",
    "normalise_email",
    "normalise_phone",
    "normalise_postcode",
    "postcode_match_key",
]
