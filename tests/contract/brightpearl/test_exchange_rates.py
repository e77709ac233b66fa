"""Brightpearl exchange rates: the simulator's routes (reference §9) and the `brightpearl` RateSource."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest

from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError
from shared.money.errors import RateMissing
from shared.money.rates import BrightpearlRates, rate_source


def test_exchange_rate_get_lists_non_base_rates_newest_first_per_currency(client: BrightpearlClient):
    rates = client.request("GET", "/accounting-service/exchange-rate").response
    assert [(r["currencyId"], r["rate"]) for r in rates] == [(2, 1.17), (3, 1.27)]  # EUR, USD; no GBP
    assert rates[0]["rateActiveFrom"].startswith("1970-01-01")


def test_exchange_rate_post_refuses_past_dates_and_the_base_currency(client: BrightpearlClient):
    with pytest.raises(BrightpearlValidationError, match="before the current date"):
        client.request(
            "POST",
            "/accounting-service/currency/3/exchange-rate",
            json={"rateActiveFrom": "2001-01-01T00:00:00Z", "rate": 1.3},
        )
    with pytest.raises(BrightpearlValidationError, match="base currency"):
        client.request(
            "POST",
            "/accounting-service/currency/1/exchange-rate",
            json={"rateActiveFrom": "2999-01-01T00:00:00Z", "rate": 1.3},
        )
    added = client.request(
        "POST",
        "/accounting-service/currency/3/exchange-rate",
        json={"rateActiveFrom": "2999-01-01T00:00:00Z", "rate": 1.3333339},
    )
    assert added.response == 1
    usd = [
        r for r in client.request("GET", "/accounting-service/exchange-rate").response if r["currencyId"] == 3
    ]
    assert [r["rate"] for r in usd] == [1.333334, 1.27]  # newest first, 6 decimal places


def test_currency_search_names_the_base_currency(client: BrightpearlClient):
    rows = list(client.search("/accounting-service/currency-search"))
    assert [(r["code"], r["isDefault"]) for r in rows] == [("GBP", True), ("EUR", False), ("USD", False)]
    config = client.request("GET", "/integration-service/account-configuration").response
    assert config["baseCurrencyCode"] == "GBP"


def test_the_rate_of_a_date_is_the_latest_active_on_or_before_it(
    client: BrightpearlClient, admin: httpx.Client
):
    admin.put(
        "/exchange-rates",
        json={
            "rates": [
                {"currencyCode": "USD", "rateActiveFrom": "2026-01-01", "rate": "1.25"},
                {"currencyCode": "USD", "rateActiveFrom": "2026-03-01", "rate": "1.30"},
                {"currencyCode": "EUR", "rateActiveFrom": "2026-01-01", "rate": "1.10"},
            ]
        },
    ).raise_for_status()
    rates = rate_source("brightpearl", brightpearl=client)
    assert rates.base_currency() == "GBP"
    assert rates.rate("USD", "GBP", date(2026, 2, 28)) == Decimal("0.8")  # 1 / 1.25
    assert rates.rate("USD", "GBP", date(2026, 3, 1)) == Decimal("0.769230769231")  # 1 / 1.30, 12 places
    assert rates.rate("EUR", "USD", date(2026, 3, 5)) == Decimal("1.181818181818")  # 1.30 / 1.10
    assert rates.rate("GBP", "GBP", date(2000, 1, 1)) == 1
    converted = rates.convert(Decimal("100.00"), "USD", "GBP", date(2026, 3, 1))
    assert (converted.amount, converted.rate) == (Decimal("76.92"), Decimal("0.769230769231"))


def test_a_missing_rate_names_the_pair_and_the_date(client: BrightpearlClient, admin: httpx.Client):
    admin.put(
        "/exchange-rates",
        json={
            "rates": [
                {"currencyCode": "USD", "rateActiveFrom": "2026-03-01", "rate": "1.30"},
            ]
        },
    ).raise_for_status()
    rates = BrightpearlRates(client)
    with pytest.raises(RateMissing) as missing:
        rates.rate("USD", "GBP", date(2026, 2, 1))
    assert "USD->GBP on 2026-02-01" in str(missing.value)
    assert "Brightpearl exchange rates" in str(missing.value)
    with pytest.raises(RateMissing, match="EUR has no exchange rate"):
        rates.rate("EUR", "GBP", date(2026, 2, 1))
    with pytest.raises(RateMissing, match="JPY is not one of the Brightpearl account's currencies"):
        rates.rate("JPY", "GBP", date(2026, 2, 1))


def test_a_rate_entered_after_a_miss_is_found_without_waiting_for_the_cache(
    client: BrightpearlClient, admin: httpx.Client
):
    admin.put("/exchange-rates", json={"rates": []}).raise_for_status()
    clock = [0.0]
    rates = BrightpearlRates(client, clock=lambda: clock[0])
    with pytest.raises(RateMissing):
        rates.rate("USD", "GBP", date(2026, 2, 1))
    admin.put(
        "/exchange-rates",
        json={
            "rates": [
                {"currencyCode": "USD", "rateActiveFrom": "2026-01-01", "rate": "1.25"},
            ]
        },
    ).raise_for_status()
    with pytest.raises(RateMissing):  # read again at most once a minute
        rates.rate("USD", "GBP", date(2026, 2, 1))
    clock[0] = 61.0
    assert rates.rate("USD", "GBP", date(2026, 2, 1)) == Decimal("0.8")
