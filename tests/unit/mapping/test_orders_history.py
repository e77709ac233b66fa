"""Order history's pure translation (shared/mapping/orders_history.py): rows against the order
total, a line's amounts, write-in lines, channels, and the `history:` section's validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.mapping.config import MappingError
from shared.mapping.orders_config import parse_order_mapping
from shared.mapping.orders_history import (
    HistorySettings,
    KnownProduct,
    line_body,
    line_id,
    salesorder_body,
    totals_gap,
)


def row(
    net: str, tax: str, quantity: str = "1", price: str | None = None, sku: str = "MUG-1"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "productSku": sku,
        "productName": f"Product {sku}",
        "quantity": {"magnitude": quantity},
        "rowValue": {"rowNet": {"value": net}, "rowTax": {"value": tax}},
    }
    if price is not None:
        out["productPrice"] = {"value": price}
    return out


def order(rows: dict[str, dict[str, Any]], net: str, tax: str, total: str) -> dict[str, Any]:
    return {
        "id": 100001,
        "reference": "WEB-1",
        "currency": {"orderCurrencyCode": "GBP"},
        "assignment": {"current": {"channelId": 3}},
        "placedOn": "2026-12-05T10:00:00.000+01:00",
        "totalValue": {"net": net, "taxAmount": tax, "total": total},
        "orderRows": rows,
    }


def test_rows_that_add_up_within_rounding_pass_and_others_name_each_difference() -> None:
    rows = {"1": row("10.0000", "2.00"), "2": row("5.0050", "1.00")}
    assert totals_gap(order(rows, "15.01", "3.00", "18.01"), Decimal("0.01")) is None
    gap = totals_gap(order(rows, "15.01", "3.00", "25.00"), Decimal("0.01"))
    assert gap is not None
    assert "total: rows 18.00, order 25.00, difference 7.00 GBP" in gap  # 18.005 to the cent
    assert "net:" not in gap and "tax:" not in gap


def test_a_line_keeps_brightpearls_unit_price_and_its_discount_makes_the_row_net() -> None:
    body, write_in = line_body("7", "81", row("10.00", "2.00", "3", price="3.50"), None)
    assert write_in and body["productdescription"] == "MUG-1 - Product MUG-1"
    assert (body["priceperunit"], body["manualdiscountamount"], body["tax"]) == (3.5, 0.5, 2.0)
    assert body["salesorderdetailid"] == line_id(7, 81) == line_id("7", "81")
    body, _ = line_body("7", "82", row("10.00", "2.00", "3"), None)  # no unit price: net / quantity, up
    assert (body["priceperunit"], body["manualdiscountamount"]) == (3.34, 0.02)


def test_a_known_product_in_the_price_list_links_and_one_outside_it_is_written_in() -> None:
    known = KnownProduct("0a000000-0000-4000-8000-0000000000aa", "0a000000-0000-4000-8000-0000000000bb", True)
    body, write_in = line_body("7", "1", row("12.50", "2.50"), known)
    assert not write_in and body["productid@odata.bind"] == f"/products({known.product_id})"
    assert "isproductoverridden" not in body
    outside = KnownProduct(known.product_id, known.unit_id, False)
    assert line_body("7", "1", row("12.50", "2.50"), outside)[1] is True


def test_the_salesorder_names_origin_channel_and_placing() -> None:
    settings = HistorySettings(channel_names={3: "Marketplace"})
    rows = {"2": row("4.00", "0.80", sku="SOCK-9"), "1": row("12.50", "2.50")}
    body, write_ins = salesorder_body(
        order(rows, "16.50", "3.30", "19.80"),
        settings,
        customer="c",
        currency="g",
        price_list="p",
        products={"mug-1": KnownProduct("m", "u", True)},
    )
    assert (body["bpi_origin"], body["bpi_channel"], body["bpi_brightpearlid"]) == (
        "Brightpearl",
        "Marketplace",
        "100001",
    )
    assert (
        body["bpi_placedon"] == "2026-12-05T09:00:00Z" and body["name"] == "WEB-1 (Brightpearl order 100001)"
    )
    assert write_ins == ["SOCK-9"] and len(body["order_details"]) == 2
    assert HistorySettings().channel_name(3) == "Brightpearl channel 3"


def test_channels_empty_means_every_channel() -> None:
    assert HistorySettings().includes(7) and HistorySettings().includes(0)
    assert HistorySettings(channels=(1,)).includes(1) and not HistorySettings(channels=(1,)).includes(3)


def test_the_history_section_is_validated_naming_the_field() -> None:
    mapping = parse_order_mapping({"history": {"channels": [1, 3], "price_lists": {"GBP": "Retail GBP"}}})
    assert mapping.history.channels == (1, 3) and mapping.history.enabled
    with pytest.raises(MappingError) as bad:
        parse_order_mapping({"history": {"rounding_tolerance": 5, "chanels": [1]}})
    said = str(bad.value)
    assert "history.rounding_tolerance" in said and "history.chanels" in said
