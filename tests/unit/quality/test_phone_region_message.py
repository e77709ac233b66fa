"""Issue 15: a phone validation message names the region the number was actually read in."""

from __future__ import annotations

import pytest

from shared.quality.issues import IssueCode
from shared.quality.normalise import normalise_phone


@pytest.mark.parametrize(
    ("raw", "contact_region", "named"),
    [
        ("+44 20 7946 001", "FR", "GB"),  # a UK number (too short) on a French contact
        ("0044 20 7946 001", "FR", "GB"),  # the international prefix written out
        ("+33 1 42 68 53", "GB", "FR"),  # a French number on a British contact
        ("01 42 68 53", "FR", "FR"),  # a national number is read in the contact's region
    ],
)
def test_invalid_number_names_the_region_it_was_read_in(raw: str, contact_region: str, named: str) -> None:
    result = normalise_phone(raw, contact_region)
    assert result.code is IssueCode.INVALID_PHONE
    assert result.reason == f"is not a valid phone number (not a valid number for {named})"
