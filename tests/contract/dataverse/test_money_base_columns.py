"""Money columns carry their `<name>_base` twin in the organization's base currency (reference
dataverse-api.md §10.13: base = value / exchangerate of the record's currency), read-only."""

from __future__ import annotations

from shared.dataverse import odata
from shared.dataverse.client import DataverseClient


def _currency(client: DataverseClient, code: str) -> tuple[str, float]:
    [row] = list(
        client.query(
            "transactioncurrencies",
            select=["transactioncurrencyid", "exchangerate"],
            filter=odata.in_("isocurrencycode", [code]),
        )
    )
    return str(row["transactioncurrencyid"]), float(row["exchangerate"])


def test_a_money_column_has_its_base_twin_in_the_base_currency(client: DataverseClient):
    usd, rate = _currency(client, "USD")
    contact = client.create(
        "contacts",
        {
            "lastname": "Base",
            "bpi_lifetimevalue": 100,
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({usd})",
        },
    )
    [row] = list(
        client.query(
            "contacts",
            select=["bpi_lifetimevalue", "bpi_lifetimevalue_base"],
            filter=odata.in_("contactid", [contact]),
        )
    )
    assert row["bpi_lifetimevalue_base"] == round(100 / rate, 2)
    client.update("contacts", contact, {"bpi_lifetimevalue": 50})
    [row] = list(
        client.query("contacts", select=["bpi_lifetimevalue_base"], filter=odata.in_("contactid", [contact]))
    )
    assert row["bpi_lifetimevalue_base"] == round(50 / rate, 2)


def test_a_base_currency_record_has_the_same_value_and_the_twin_is_read_only(client: DataverseClient):
    account = client.create("accounts", {"name": "Base Ltd", "revenue": 1234.5})
    [row] = list(client.query("accounts", select=["revenue_base"], filter=odata.in_("accountid", [account])))
    assert row["revenue_base"] == 1234.5
    client.update("accounts", account, {"revenue_base": 1})  # read-only: ignored (the default)
    [row] = list(client.query("accounts", select=["revenue_base"], filter=odata.in_("accountid", [account])))
    assert row["revenue_base"] == 1234.5
