"""mappings/products.yaml: the shipped file loads; bad entries are refused with their YAML path;
the Dataverse schema plan provisions what the products flow matches on."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.dataverse.schema import schema_plan
from shared.mapping import MappingError
from shared.mapping.products_config import load_product_mapping, parse_product_mapping, read_product_mapping
from shared.sync.registry import entity


def test_the_shipped_mapping_loads_with_brightpearl_owning_everything() -> None:
    mapping = load_product_mapping()

    assert (mapping.unit_group.name, mapping.unit_group.default_unit) == ("Default Unit", "Primary Unit")
    assert mapping.dataverse.product_type == 1 and not mapping.families.enabled
    assert {mapping.ownership.owner_of(g) for g in ("name", "description", "status")} == {"brightpearl"}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"families": {"enabled": True}}, "families.enabled: product families are not supported yet"),
        ({"units": {"values": {"Box": "Box"}}}, "units.values: needs units.custom_field"),
        ({"ownership": {"groups": {"colour": "dataverse"}}}, "ownership.groups.colour: unknown field group"),
        ({"ownership": {"groups": {"sku": "dataverse"}}}, "ownership.groups.sku: the SKU is the match key"),
        ({"dataverse": {"product_type": 9}}, "dataverse.product_type: 9 is not an option of producttypecode"),
        ({"dataverse": {"quantity_decimals": 7}}, "dataverse.quantity_decimals: Input should be less than"),
        ({"fields": {"description": "colour"}}, "fields.description: Input should be"),
        ({"units": {"custom_field": "unit"}}, "units.custom_field: String should match pattern"),
    ],
)
def test_a_bad_entry_is_refused_naming_its_path(document: dict[str, object], problem: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_product_mapping(document, "products.yaml")

    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    file = tmp_path / "products.yaml"
    file.write_text("unit_group:\n  name: [unclosed\n", encoding="utf-8")

    with pytest.raises(MappingError) as caught:
        read_product_mapping(file)

    assert caught.value.problems[0].startswith("(yaml): line ")


def test_the_spec_names_the_loader_and_the_poll_schedule_setting() -> None:
    spec = entity("products")

    assert spec.brightpearl_events == ("product.created", "product.modified", "product.destroyed")
    assert spec.pollers[0].schedule_setting == "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE"
    # the product table is declared; its step is registered only while Dynamics owns a field
    # written back (shared/mapping/products.write_back_columns)
    assert [t.logical_name for t in spec.dataverse_tables] == ["product"]
    assert [f.name for f in spec.flows] == ["products-to-dataverse", "products-to-brightpearl"]


def test_the_schema_plan_provisions_the_product_keys_the_flow_matches_on() -> None:
    [product] = [t for t in schema_plan(products=load_product_mapping()).tables if t.table == "product"]

    assert {(k.name, k.columns) for k in product.keys} == {
        ("bpi_brightpearlid_key", ("bpi_brightpearlid",)),
        ("bpi_productnumber_key", ("productnumber",)),
    }
    assert product.change_tracking
    assert {(c.name, c.kind) for c in product.columns} == {
        ("bpi_brightpearlid", "string"),
        ("bpi_availablestock", "decimal"),
        ("bpi_ean", "string"),  # SKU matching's identifier column (orders.yaml sku_matching)
    }


def test_the_default_plan_has_products_now_the_flow_is_wired() -> None:
    assert "product" in {t.table for t in schema_plan().tables}
    assert "product" not in {t.table for t in schema_plan(include_products=False).tables}
