"""The metadata bodies `syncctl dataverse provision` sends are what the real Dataverse Web API
accepts (reference dataverse-api.md §14.2: the common properties, each column kind's
type-specific properties and the Decimal limits), and the plan: customers as before, plus the
product part (issue 12) when the products entity is wired or asked for."""

from __future__ import annotations

import pytest

from shared.dataverse import schema
from shared.dataverse.schema import (
    METADATA_TYPES,
    ColumnSpec,
    attribute_body,
    key_body,
    label,
    plan_for_customer_value,
    plan_for_customers,
    schema_plan,
)
from shared.mapping import load_customer_mapping

# Reference §14.2 (sources COLDEF, COLMETA, SDKLIM, PSSAMPLE): what a POST …/Attributes body holds.
COMMON = {"@odata.type", "SchemaName", "DisplayName", "Description", "RequiredLevel"}
TYPE_SPECIFIC = {
    "StringAttributeMetadata": {"MaxLength", "FormatName"},
    "MemoAttributeMetadata": {"MaxLength", "Format"},
    "IntegerAttributeMetadata": {"MinValue", "MaxValue", "Format"},
    "DecimalAttributeMetadata": {"Precision", "MinValue", "MaxValue"},
    "MoneyAttributeMetadata": {"Precision", "PrecisionSource", "MinValue", "MaxValue"},
    "DateTimeAttributeMetadata": {"Format", "DateTimeBehavior"},
    "BooleanAttributeMetadata": {"DefaultValue", "OptionSet"},
    "PicklistAttributeMetadata": {"OptionSet"},
}
DECIMAL_PRECISION = range(0, 11)  # Precision 0-10
DECIMAL_LIMIT = 100_000_000_000  # MinValue/MaxValue within +-100 billion


def spec(kind: str, **extra) -> ColumnSpec:
    return ColumnSpec(f"bpi_{kind}", kind, kind.capitalize(), True, **extra)  # type: ignore[arg-type]


def test_the_stock_column_body_is_a_decimal_attribute_metadata():
    stock = ColumnSpec("bpi_availablestock", "decimal", "Available stock", True, precision=2)
    assert attribute_body(stock) == {
        "@odata.type": "Microsoft.Dynamics.CRM.DecimalAttributeMetadata",
        "SchemaName": "bpi_availablestock",
        "DisplayName": {
            "@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                    "Label": "Available stock",
                    "LanguageCode": 1033,
                }
            ],
        },
        "Description": label("Available stock (Brightpearl integration)"),
        "RequiredLevel": {"Value": "None"},
        "Precision": 2,
        "MinValue": -100_000_000_000,
        "MaxValue": 100_000_000_000,
    }


@pytest.mark.parametrize("kind", sorted(METADATA_TYPES))
def test_each_column_kind_sends_only_what_its_metadata_type_accepts(kind):
    body = attribute_body(spec(kind, options=((100000000, "Gold"),) if kind == "picklist" else ()))
    type_name = METADATA_TYPES[kind][0]  # type: ignore[index]
    assert body["@odata.type"] == f"Microsoft.Dynamics.CRM.{type_name}"
    assert set(body) - COMMON <= TYPE_SPECIFIC[type_name], set(body) - COMMON - TYPE_SPECIFIC[type_name]
    for name in ("DisplayName", "Description"):  # Labels with LocalizedLabels only (§14.2)
        assert set(body[name]) == {"@odata.type", "LocalizedLabels"}
    assert body["RequiredLevel"] == {"Value": "None"}  # custom columns: None/ApplicationRequired/Recommended


def test_decimal_bodies_keep_to_the_platform_limits():
    for precision in (None, 0, 4, 10):
        body = attribute_body(spec("decimal", precision=precision))
        assert body["Precision"] in DECIMAL_PRECISION
        assert -DECIMAL_LIMIT <= body["MinValue"] <= body["MaxValue"] <= DECIMAL_LIMIT
        assert all(isinstance(body[k], int) for k in ("Precision", "MinValue", "MaxValue"))
    assert attribute_body(spec("decimal"))["Precision"] == 2


@pytest.mark.parametrize("precision", [-1, 11])
def test_a_decimal_precision_dataverse_refuses_is_an_error_naming_the_column(precision):
    with pytest.raises(ValueError, match=f"column bpi_decimal: precision must be 0 to 10, got {precision}"):
        attribute_body(spec("decimal", precision=precision))


# --- the plan -----------------------------------------------------------------------------------


def test_the_product_part_of_the_plan_has_the_contract_names():
    plan = schema_plan(include_products=True)
    customers = tuple(plan_for_customers(load_customer_mapping()))
    # customers first, their columns first (the customer value figures follow on the same tables)
    for spec, held in zip(customers, plan.tables[:2], strict=True):
        assert held.table == spec.table and held.columns[: len(spec.columns)] == spec.columns
        assert held.keys == spec.keys and held.change_tracking
    [product] = [t for t in plan.tables if t.table == "product"]  # one spec per table
    assert product.change_tracking
    # the catalogue's columns, then the identifier columns SKU matching reads (orders.yaml
    # sku_matching.identifiers)
    assert [(c.name, c.kind, c.custom, c.max_length) for c in product.columns] == [
        ("bpi_brightpearlid", "string", True, 100),
        ("bpi_availablestock", "decimal", True, None),
        ("bpi_ean", "string", True, 14),
    ]
    assert [(k.name, k.columns) for k in product.keys] == [
        ("bpi_brightpearlid_key", ("bpi_brightpearlid",)),
        ("bpi_productnumber_key", ("productnumber",)),
    ]
    assert [key_body(k)["SchemaName"] for k in product.keys] == [
        "bpi_brightpearlid_key",
        "bpi_productnumber_key",
    ]


def test_the_product_part_follows_the_registry_unless_asked(monkeypatch):
    # the customer mapping's contact and account, then the customer value figures on them
    customers = schema.merged((*plan_for_customers(load_customer_mapping()), *plan_for_customer_value()))
    monkeypatch.setattr(schema, "products_wired", lambda: False)
    assert schema_plan().tables == customers  # the products flow is not wired: left out
    monkeypatch.setattr(schema, "products_wired", lambda: True)
    assert [t.table for t in schema_plan().tables] == [
        "contact",
        "account",
        "product",
        "salesorder",
        "salesorderdetail",
        "invoice",
        "incident",
    ]  # orders come with the catalogue once wired, invoices and cases (returns) with the orders
    assert schema_plan(include_products=False).tables == customers


def test_products_wired_reads_the_registry():
    from shared.sync.registry import ENTITIES

    assert schema.products_wired() == any(spec.name == "products" for spec in ENTITIES)
