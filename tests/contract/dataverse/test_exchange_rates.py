"""Dataverse exchange rates: transactioncurrency.exchangerate against the organization's base
currency (reference dataverse-api.md §10.13), through the `dataverse` RateSource."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.dataverse.client import DataverseClient
from shared.money.errors import RateMissing
from shared.money.rates import rate_source


def test_rates_cross_through_the_organization_base_currency(client: DataverseClient):
    currencies = {
        r["isocurrencycode"]: Decimal(str(r["exchangerate"]))
        for r in client.query("transactioncurrencies", select=["isocurrencycode", "exchangerate"])
    }
    rates = rate_source("dataverse", dataverse=client)
    assert rates.base_currency() == "GBP"
    assert currencies["GBP"] == 1
    usd, eur = currencies["USD"], currencies["EUR"]
    assert rates.rate("USD", "GBP", date(2026, 1, 5)) == (1 / usd).quantize(Decimal("1E-12")).normalize()
    assert rates.rate("USD", "EUR", date(2026, 1, 5)) == (eur / usd).quantize(Decimal("1E-12")).normalize()
    assert rates.precision("GBP") == 2
    converted = rates.convert(Decimal("10.00"), "GBP", "USD", date(2026, 1, 5))
    assert converted.amount == (Decimal("10.00") * usd).quantize(Decimal("0.01"))


def test_a_currency_dataverse_lacks_is_a_missing_rate(client: DataverseClient):
    rates = rate_source("dataverse", dataverse=client)
    with pytest.raises(RateMissing, match=r"no exchange rate SEK->GBP on 2026-01-05 .*SEK is not one of"):
        rates.rate("SEK", "GBP", date(2026, 1, 5))
