"""The canonical order's checks: each problem has the issue's reason code and names the field,
the order number and SKUs, never a personal value."""

from __future__ import annotations

from decimal import Decimal

from shared.model.order import CustomerRef, Order, OrderAddress, OrderLine, order_issues
from shared.quality.issues import IssueCode

ORDER_ID = "5e1f0c2a-0000-4000-8000-000000000001"


def _order(**changes: object) -> Order:
    base: dict[str, object] = {
        "order_id": ORDER_ID,
        "order_number": "ORD-01001",
        "customer": CustomerRef(kind="account", id="acc-1"),
        "currency": "GBP",
        "billing": OrderAddress(
            name="Ada Lovelace", line1="1 Secret Street", postcode="N1 1AA", country="GB"
        ),
        "lines": (
            OrderLine(sku="SKU-1", quantity=Decimal(2), unit_price=Decimal("9.99"), discount=Decimal(1)),
            OrderLine(write_in="Gift wrap", quantity=Decimal(1), unit_price=Decimal(3)),
        ),
    }
    return Order.model_validate({**base, **changes})


def _codes(order: Order, **kwargs: object) -> list[str]:
    return [str(i.code) for i in order_issues(order, **kwargs)]  # type: ignore[arg-type]


def test_a_complete_order_has_no_issues_and_its_line_net_is_quantity_times_price_less_discount():
    order = _order()
    assert order_issues(order, known_sku=lambda sku: sku == "SKU-1", currencies={"GBP"}) == []
    assert order.lines[0].net == Decimal("18.98")
    assert order.lines[1].is_write_in and not order.lines[0].is_write_in
    assert order.skus() == ["SKU-1"]


def test_an_order_without_lines_is_order_has_no_lines_naming_its_number():
    [issue] = order_issues(_order(lines=()))
    assert issue.code is IssueCode.ORDER_HAS_NO_LINES
    assert issue.field == "lines" and "ORD-01001" in issue.description
    assert issue.fatal and issue.record_id == ORDER_ID


def test_zero_and_negative_quantities_are_invalid_quantity_naming_the_line():
    lines = (OrderLine(sku="A", quantity=Decimal(0)), OrderLine(sku="B", quantity=Decimal(-2)))
    issues = order_issues(_order(lines=lines))
    assert [(i.code, i.field) for i in issues] == [
        (IssueCode.INVALID_QUANTITY, "lines[0].quantity"),
        (IssueCode.INVALID_QUANTITY, "lines[1].quantity"),
    ]


def test_an_unknown_sku_names_the_sku_and_the_order_number_but_no_personal_value():
    [issue] = order_issues(_order(), known_sku=lambda sku: False)
    assert issue.code is IssueCode.UNKNOWN_SKU and issue.field == "lines[0].sku"
    assert "SKU-1" in issue.description and "ORD-01001" in issue.summary()
    for personal in ("Ada", "Lovelace", "Secret", "N1 1AA"):
        assert personal not in issue.summary()


def test_a_currency_brightpearl_lacks_or_no_currency_is_currency_missing():
    assert _codes(_order(currency="JPY"), currencies={"GBP", "EUR"}) == ["CurrencyMissing"]
    assert _codes(_order(currency=None)) == ["CurrencyMissing"]
    assert _codes(_order(currency="gbp"), currencies={"GBP"}) == []


def test_a_line_neither_product_nor_write_in_text_is_unmappable():
    assert _codes(_order(lines=(OrderLine(quantity=Decimal(1)),))) == ["UnmappableValue"]


def test_an_order_without_a_number_is_named_by_its_id():
    [issue] = order_issues(_order(order_number=None, lines=()))
    assert ORDER_ID in issue.description
