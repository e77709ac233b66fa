"""The `price_lists:` section of mappings/products.yaml (shared/mapping/prices.py): defaults,
shorthand, errors naming the YAML path, which Brightpearl lists are exported (SELL lists named
by id or name; the Cost list only with export_cost), and that the product mapping loader
accepts the section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.brightpearl.models import PriceList
from shared.mapping.config import MappingError
from shared.mapping.prices import PriceSettings, parse_price_settings, read_price_settings
from shared.mapping.products_config import read_product_mapping
from shared.mapping.stock import read_stock_settings

LISTS = [
    PriceList.model_validate(
        {"id": i, "name": {"text": name}, "currencyCode": iso, "priceListTypeCode": kind}
    )
    for i, name, iso, kind in (
        (1, "Cost price", "GBP", "BUY"),
        (2, "Retail GBP", "GBP", "SELL"),
        (3, "Trade GBP", "GBP", "SELL"),
        (4, "Retail EUR", "EUR", "SELL"),
    )
]


def problems(section: Any) -> list[str]:
    with pytest.raises(MappingError) as caught:
        parse_price_settings({"price_lists": section})
    return caught.value.problems


def test_no_section_exports_nothing() -> None:
    settings = parse_price_settings({"version": 1})

    assert settings.select(LISTS) == ([], [])
    assert settings.export_cost is False


def test_lists_are_named_by_id_or_case_insensitive_name_and_take_a_dynamics_name() -> None:
    settings = parse_price_settings(
        {"price_lists": {"lists": {2: True, "trade gbp": {"dynamics_name": "Trade"}, "Retail EUR": False}}}
    )

    chosen, notes = settings.select(LISTS)

    assert [(s.id, s.currency, s.dynamics_name) for s in chosen] == [
        (2, "GBP", "Retail GBP"),
        (3, "GBP", "Trade"),
    ]
    assert notes == []


def test_the_cost_list_is_not_exported_even_when_named_unless_export_cost() -> None:
    named = parse_price_settings({"price_lists": {"lists": {"Cost price": True}}})
    chosen, notes = named.select(LISTS)
    assert chosen == []
    assert notes == [
        "price_lists.lists: Brightpearl price list 1 is a Cost (BUY) list; it is exported only with "
        "price_lists.export_cost: true"
    ]

    asked = parse_price_settings({"price_lists": {"export_cost": True}})
    assert [(s.id, s.cost) for s in asked.select(LISTS)[0]] == [(1, True)]


def test_a_named_list_brightpearl_lacks_is_a_note_naming_the_yaml_path() -> None:
    settings = parse_price_settings({"price_lists": {"lists": {"Wholesale": True, 99: True}}})

    assert settings.select(LISTS)[1] == [
        "price_lists.lists.Wholesale: Brightpearl has no price list with this id or name",
        "price_lists.lists.99: Brightpearl has no price list with this id or name",
    ]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ([], "price_lists: must be a mapping (export_cost, lists)"),
        ({"export_cost": "maybe"}, "price_lists.export_cost: Input should be a valid boolean"),
        ({"lists": {3: {"exprt": True}}}, "price_lists.lists.3.exprt: Extra inputs are not permitted"),
        (
            {"lists": {"Trade GBP": {"dynamics_name": "x" * 101}}},
            "price_lists.lists.Trade GBP.dynamics_name: String should have at most 100 characters",
        ),
        (
            {"lists": {"A": {"dynamics_name": "Web"}, "B": {"dynamics_name": "web"}}},
            "price_lists.lists.B.dynamics_name: 'web' is also the Dynamics name of price_lists.lists.A",
        ),
        ({"lists": {"  ": True}}, "price_lists.lists: a price list name is empty"),
    ],
)
def test_errors_name_the_yaml_path(section: Any, expected: str) -> None:
    [problem] = problems(section)

    assert problem.startswith(expected)


def test_the_shipped_mapping_file_exports_the_three_sell_lists_and_still_loads_for_products_and_stock() -> (
    None
):
    settings = read_price_settings()

    assert [s.id for s in settings.select(LISTS)[0]] == [2, 3, 4]
    assert read_product_mapping().price_list.default is None  # the products loader accepts the section
    read_stock_settings()


def test_a_missing_file_named_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError):
        read_price_settings(tmp_path / "nope.yaml")


def test_settings_are_frozen() -> None:
    with pytest.raises(Exception):
        PriceSettings().export_cost = True  # type: ignore[misc]
