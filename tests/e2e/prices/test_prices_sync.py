"""Brightpearl prices reach Dynamics price lists through the whole sandbox (issue 12 item 2): a
product-price PUT or the simulator's price admin route raises `product.modified`, the ingress
publishes a product notice, the prices flow (on its own subscription, beside the products flow)
writes the product's price list items: a changed price updates its item in place, a removed
price removes its item, a list in a currency Dynamics lacks is dead-lettered as CurrencyMissing
while the product's other lists are written, and a new product's items wait (retried) until the
products flow has created it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bus.deadletters import LocalDeadLetters
from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.customers.test_faults_at_scale import resubmit
from tests.e2e.prices.conftest import (
    CHF_LIST,
    PRICES_FLOW,
    RETAIL_CHF,
    RETAIL_EUR,
    RETAIL_GBP,
    TRADE_GBP,
    PricesSandbox,
)

CURRENCY_AMOUNT = 1  # productpricelevel.pricingmethodcode


def item_ids(ps: PricesSandbox, product_id: int) -> dict[str, str]:
    return {name: str(row["productpricelevelid"]) for name, row in ps.items(product_id).items()}


def test_a_price_change_updates_the_item_in_place(prices_sandbox: PricesSandbox) -> None:
    ps = prices_sandbox
    product_id = ps.sb.create("PRICE-1", "Priced Mug")
    ps.put_prices(product_id, {RETAIL_GBP: "9.99", TRADE_GBP: "7.50", RETAIL_EUR: "11.95"})
    ps.settle()

    assert ps.amounts(product_id) == {"Retail GBP": 9.99, "Trade GBP": 7.5, "Retail EUR": 11.95}
    unit = ps.sb.product(product_id)["defaultuomid"]["id"]
    for row in ps.items(product_id).values():
        assert row["pricingmethodcode"] == CURRENCY_AMOUNT and row["uomid"]["id"] == unit
    lists = ps.price_lists()  # Trade GBP was not in Dynamics: created in its currency
    assert lists["Trade GBP"]["transactioncurrencyid"]["id"] == ps.sb.refs.currencies["GBP"]
    assert ps.items(product_id)["Retail EUR"]["transactioncurrencyid"]["id"] == ps.sb.refs.currencies["EUR"]
    before = item_ids(ps, product_id)

    ps.admin_prices([{"productId": product_id, "priceListId": RETAIL_GBP, "quantityPrice": {"1": "12.50"}}])
    ps.settle()

    assert ps.amounts(product_id) == {"Retail GBP": 12.5, "Trade GBP": 7.5, "Retail EUR": 11.95}
    assert item_ids(ps, product_id) == before  # updated in place: the same items, no duplicate
    assert len(ps.price_lists()) == len(lists)
    assert ps.dead_letters() == []


def test_a_removed_price_removes_its_item(prices_sandbox: PricesSandbox) -> None:
    ps = prices_sandbox
    product_id = ps.sb.create("PRICE-2", "Discontinued Trade Mug")
    ps.put_prices(product_id, {RETAIL_GBP: "5.00", TRADE_GBP: "4.00"})
    ps.settle()
    assert ps.amounts(product_id) == {"Retail GBP": 5.0, "Trade GBP": 4.0}
    kept = item_ids(ps, product_id)["Retail GBP"]

    ps.admin_prices([{"productId": product_id, "priceListId": TRADE_GBP, "quantityPrice": None}])
    ps.settle()

    assert ps.amounts(product_id) == {"Retail GBP": 5.0}
    assert item_ids(ps, product_id) == {"Retail GBP": kept}
    assert "Trade GBP" in ps.price_lists()  # the list itself stays
    assert ps.dead_letters() == []


def priced_in_chf(ps: PricesSandbox, sku: str, *, gbp: str, chf: str) -> int:
    """A product priced in Retail GBP and in a new Brightpearl list in CHF, synced."""
    ps.add_chf_price_list()
    product_id = ps.sb.create(sku, "Export Mug")
    ps.put_prices(product_id, {RETAIL_GBP: gbp, RETAIL_CHF: chf})
    ps.settle()
    return product_id


def test_a_price_list_in_a_currency_dynamics_lacks_is_dead_lettered_and_the_other_lists_written(
    prices_sandbox: PricesSandbox,
) -> None:
    ps = prices_sandbox
    product_id = priced_in_chf(ps, "PRICE-3", gbp="8.00", chf="10.00")

    assert ps.amounts(product_id) == {"Retail GBP": 8.0}  # its other list is written
    assert CHF_LIST not in ps.price_lists()
    dead = ps.dead_letters()
    assert dead, "no dead letter for the missing currency"
    for message in dead:
        assert message.dead_letter_reason == "CurrencyMissing"
        text = message.dead_letter_error_description
        assert f"Brightpearl price list {RETAIL_CHF} ({CHF_LIST})" in text and "CHF" in text
        assert str(product_id) in text
        assert "10.00" not in text and "8.00" not in text  # ids and codes, never a price


def test_once_dynamics_has_the_currency_a_resubmitted_dead_letter_writes_the_price(
    prices_sandbox: PricesSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ps = prices_sandbox
    product_id = priced_in_chf(ps, "PRICE-5", gbp="6.00", chf="7.20")
    [dead] = ps.dead_letters()
    assert dead.dead_letter_reason == "CurrencyMissing"

    # the fix docs/operations.md gives: add the currency in Dynamics, then resubmit
    ps.sb.dv.crm(
        "POST",
        "transactioncurrencies",
        {
            "isocurrencycode": "CHF",
            "currencyname": "Swiss Franc",
            "currencysymbol": "CHF",
            "currencyprecision": 2,
            "exchangerate": 1.12,
        },
    )
    monkeypatch.setattr(
        "shared.bus.factory.build_dead_letters", lambda settings, topology=None: LocalDeadLetters(ps.sb.bus)
    )
    resubmit(ps.sb, tmp_path, BP_TOPIC, PRICES_FLOW, message_id=dead.message_id)
    ps.settle()

    assert ps.amounts(product_id) == {"Retail GBP": 6.0, CHF_LIST: 7.2}
    assert ps.dead_letters() == []


def test_a_new_products_prices_wait_until_the_products_flow_has_created_it(
    prices_sandbox: PricesSandbox,
) -> None:
    ps = prices_sandbox
    # No SKU: the products flow dead-letters it (InvalidSku), so Dynamics has no product yet.
    product_id = ps.sb.create(None, "Unnamed Mug")
    ps.put_prices(product_id, {RETAIL_GBP: "3.25", RETAIL_EUR: "3.80"})
    ps.deliver()

    assert str(product_id) not in ps.sb.products()
    assert ps.scheduled(PRICES_FLOW) >= 1  # the prices flow retries (DataverseReferenceMissing)
    assert ps.dead_letters() == []

    # The Brightpearl user gives it a SKU: the products flow creates it, the prices follow.
    ps.sb.bp.request("PUT", f"/product-service/product/{product_id}", json={"identity": {"sku": "PRICE-4"}})
    ps.settle()

    assert ps.amounts(product_id) == {"Retail GBP": 3.25, "Retail EUR": 3.8}
    assert ps.dead_letters() == []
