"""Customer value with `EXCHANGE_RATE_SOURCE=dataverse`: amounts convert at Dynamics'
transactioncurrency.exchangerate against the organization's base currency, and that rate is
the one recorded."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from shared.dataverse import odata
from tests.e2e.customer_value.conftest import ValueSandbox, money, quiet_settings


@pytest.fixture
def sandbox_settings() -> dict[str, str]:
    return {**quiet_settings(), "EXCHANGE_RATE_SOURCE": "dataverse"}


def test_the_dataverse_rate_source_converts_at_the_currencys_exchangerate(values_box: ValueSandbox):
    box = values_box
    box.rates()  # Brightpearl has no rate at all: only Dataverse's can be used
    [usd] = list(
        box.box.dvc.query(
            "transactioncurrencies", select=["exchangerate"], filter=odata.in_("isocurrencycode", ["USD"])
        )
    )
    rate = (Decimal(1) / Decimal(str(usd["exchangerate"]))).quantize(
        Decimal("1E-12"), rounding=ROUND_HALF_EVEN
    )
    customer, contact = box.customer("Dollars")
    order = box.order(customer, "100.00", currency="USD", placed="2026-02-15")
    box.notify("order", order)
    box.flush()
    expected = (Decimal("100.00") * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert money(box.held("contacts", contact)["bpi_lifetimevalue"]) == expected
    [recorded] = box.values.contributions(str(customer)).values()
    assert (recorded.rate, recorded.rate_source) == (
        rate.normalize(),
        "Dataverse transactioncurrency exchange rates",
    )
