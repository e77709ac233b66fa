"""Contract: journal POST validation as reference §9 lists it (the simulator refuses what Brightpearl
refuses, so a journal the product ever posts is checked against the real rules)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError


def journal(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "journalTypeCode": "BT",
        "taxDate": "2026-07-01",
        "description": "card fees for July",
        "credits": [{"nominalCode": "1200", "taxCode": "T0", "change": {"currency": "GBP", "value": "5.00"}}],
        "debits": [{"nominalCode": "7900", "taxCode": "T0", "change": {"currency": "GBP", "value": "5.00"}}],
    }
    body.update(changes)
    return body


def test_a_valid_journal_is_stored_with_its_lines(client: BrightpearlClient):
    [stored] = client.get_journals([client.create_journal(journal())])
    assert stored.journal_type_code == "BT" and stored.tax_date == "2026-07-01"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"debits": [{"nominalCode": "7999", "change": {"value": "5.00"}}]},
            "debits[0].nominalCode '7999' does not exist in the chart of accounts",
        ),
        (
            {"debits": [{"nominalCode": "8200", "change": {"value": "5.00"}}]},
            "debits[0].nominalCode 8200 (Donations (archived)) is not active",
        ),
        (
            {"credits": [{"nominalCode": "1200", "change": {"value": "5.00"}}]},
            "credits[0].taxCode is required on a bank nominal code (1200)",
        ),
        ({"currencyId": 99}, "currencyId 99 is not one of the account's currencies"),
        ({"exchangeRate": "1.250000"}, "exchangeRate must be 1.000000 for the base currency"),
        ({"currencyId": 2, "exchangeRate": "1.1234567"}, "exchangeRate allows at most 6 decimal places"),
        ({"journalTypeCode": ""}, "journalTypeCode is required"),
    ],
)
def test_a_journal_brightpearl_would_refuse_is_refused_naming_the_field(
    client: BrightpearlClient, changes: dict[str, Any], message: str
):
    with pytest.raises(BrightpearlValidationError, match=re.escape(message)):
        client.create_journal(journal(**changes))


def test_a_journal_dated_in_a_closed_period_is_refused(client: BrightpearlClient, sim: Simulator):
    with sim.state.lock:
        sim.state.open_period_start = date(2026, 8, 1)
    with pytest.raises(BrightpearlValidationError, match="closed accounting period"):
        client.create_journal(journal())


def test_a_foreign_currency_journal_needs_multi_currency(client: BrightpearlClient, sim: Simulator):
    assert client.create_journal(journal(currencyId=2, exchangeRate="1.160000")) > 0
    with sim.state.lock:
        sim.state.multi_currency = False
    with pytest.raises(BrightpearlValidationError, match="needs Multi Currency"):
        client.create_journal(journal(currencyId=2, exchangeRate="1.160000"))
