"""The customer value columns in the schema plan: contact and account get the five figures
(`syncctl dataverse provision` creates them), money as Money in the record's currency precision."""

from __future__ import annotations

from shared.dataverse.schema import attribute_body, schema_plan

FIGURES = {
    "bpi_lifetimevalue": "money",
    "bpi_lastpurchasedate": "datetime",
    "bpi_ordercount": "integer",
    "bpi_averageordervalue": "money",
    "bpi_openreturns": "integer",
}


def test_contact_and_account_are_planned_with_the_five_figures():
    planned: dict[str, dict[str, str]] = {}
    for table in schema_plan().tables:
        for column in table.columns:
            if column.name in FIGURES:
                planned.setdefault(table.table, {})[column.name] = column.kind
    assert planned == {"contact": FIGURES, "account": FIGURES}


def test_a_money_column_is_created_as_money_with_the_currency_precision():
    [contact] = [t for t in schema_plan().tables if t.table == "contact" and t.column("bpi_lifetimevalue")]
    body = attribute_body(contact.column("bpi_lifetimevalue"))  # type: ignore[arg-type]
    assert body["@odata.type"] == "Microsoft.Dynamics.CRM.MoneyAttributeMetadata"
    assert (body["PrecisionSource"], body["Precision"]) == (2, 2)
    date = attribute_body(contact.column("bpi_lastpurchasedate"))  # type: ignore[arg-type]
    assert date["DateTimeBehavior"] == {"Value": "DateOnly"}
