"""The OData helper: literals, filters, keys and references are escaped in one place."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from shared.dataverse import odata


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        (None, "null"),
        (True, "true"),
        (42, "42"),
        (1.5, "1.5"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (date(2024, 1, 2), "2024-01-02"),
        (uuid.UUID("12345678-1234-4234-8234-123456789abc"), "12345678-1234-4234-8234-123456789abc"),
    ],
)
def test_literals(value, expected):
    assert odata.literal(value) == expected


def test_naive_datetimes_and_nan_are_refused():
    with pytest.raises(odata.ODataValueError, match="time zone"):
        odata.literal(datetime(2024, 1, 1))
    with pytest.raises(odata.ODataValueError):
        odata.literal(float("nan"))


def test_property_names_cannot_smuggle_expressions():
    with pytest.raises(odata.ODataValueError, match="not a valid property"):
        odata.eq("lastname eq 'x' or 1 eq 1", "y")
    assert odata.eq("parentcustomerid_account/name", "x").text == "parentcustomerid_account/name eq 'x'"


def test_composition_and_functions():
    f = (odata.eq("statecode", 0) & odata.contains("fullname", "50%_[x]")) | ~odata.lookup_eq(
        "parentcustomerid", "12345678-1234-4234-8234-123456789ABC"
    )
    assert f.text == (
        "((statecode eq 0) and (contains(fullname,'50[%][_][[]x]'))) or "
        "(not (_parentcustomerid_value eq 12345678-1234-4234-8234-123456789abc))"
    )
    assert odata.in_("emailaddress1", ["a'b@x", 'q"uote']).text == (
        'Microsoft.Dynamics.CRM.In(PropertyName=\'emailaddress1\',PropertyValues=["a\'b@x","q\\"uote"])'
    )
    with pytest.raises(odata.ODataValueError):
        odata.in_("emailaddress1", [])


def test_keys_and_binds():
    assert odata.record_path("contacts", {"bpi_brightpearlid": "O'1"}) == "contacts(bpi_brightpearlid='O''1')"
    assert odata.key_segment({"a": 1, "b": "x"}) == "(a=1,b='x')"
    assert (
        odata.bind("accounts", "12345678-1234-4234-8234-123456789ABC")
        == "/accounts(12345678-1234-4234-8234-123456789abc)"
    )
    with pytest.raises(odata.ODataValueError, match="not a GUID"):
        odata.record_path("contacts", "1 or 1")
    with pytest.raises(odata.ODataValueError, match="cannot address"):
        odata.key_segment({"bpi_brightpearlid": "a/b"})
    assert (
        odata.entity_id_from_url("https://x/api/data/v9.2/accounts(7EB682F1-CA75-E511-80D4-00155D2A68D1)")
        == "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    )
    assert odata.entity_id_from_url("https://x/api/data/v9.2/accounts(accountnumber='A')") is None
