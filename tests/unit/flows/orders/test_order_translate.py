"""Dynamics order rows -> canonical order -> Brightpearl sales-order body: the pieces the flow
tests do not reach (tax rates without a code, addresses, missing customer annotation)."""

from __future__ import annotations

from decimal import Decimal

from shared.mapping.orders_config import parse_order_mapping
from shared.mapping.orders_translate import CUSTOMER_KIND, order_from_dataverse, order_hash, sales_order_body
from shared.quality.issues import IssueCode, Severity

ORDER = "0a000000-0000-4000-8000-000000000001"


def _row(**changes: object) -> dict[str, object]:
    return {
        "salesorderid": ORDER,
        "ordernumber": "ORD-7",
        "_customerid_value": "0C000000-0000-4000-8000-000000000001",
        CUSTOMER_KIND: "contact",
        "transactioncurrencyid": {"isocurrencycode": "EUR"},
        "shipto_name": "Grace Hopper",
        "shipto_line1": "2 Private Road",
        "shipto_country": "Atlantis",
        **changes,
    }


LINE = {
    "salesorderdetailid": "l1",
    "_productid_value": "P1",
    "productid": {"productnumber": "SKU-1"},
    "quantity": 3,
    "priceperunit": "2.5",
    "tax": "0.7",
}


def test_a_row_and_its_lines_read_as_the_canonical_order():
    read = order_from_dataverse(_row(), [LINE])
    order = read.value
    assert order.customer is not None and (order.customer.kind, order.customer.id) == (
        "contact",
        "0c000000-0000-4000-8000-000000000001",
    )
    assert order.currency == "EUR" and order.lines[0].sku == "SKU-1" and order.lines[0].net == Decimal("7.5")
    [warning] = read.issues  # an unknown country is dropped, not fatal, and not named
    assert warning.code is IssueCode.UNKNOWN_COUNTRY and warning.severity is Severity.WARNING
    assert warning.field == "shipto_country" and "Atlantis" not in warning.summary()
    assert order.shipping.country is None and order.shipping.line1 == "2 Private Road"


def test_without_the_lookup_annotation_the_order_has_no_customer():
    assert order_from_dataverse(_row(**{CUSTOMER_KIND: None}), [LINE]).value.customer is None


def test_a_tax_rate_without_a_code_stops_the_body_naming_the_line():
    order = order_from_dataverse(_row(), [LINE]).value  # 0.7 on 7.5: 9.33 %
    mapping = parse_order_mapping({"tax": {"codes": {20: "T20"}}})
    body, issues = sales_order_body(order, mapping, customer_id=5, product_ids={"SKU-1": 9})
    assert body is None
    [issue] = issues
    assert issue.code is IssueCode.UNMAPPABLE_VALUE and issue.field == "lines[0].tax"
    assert "ORD-7" in issue.description and "Grace" not in issue.description


def test_the_body_carries_references_and_the_delivery_party():
    order = order_from_dataverse(_row(shipto_country="DE"), [LINE]).value
    mapping = parse_order_mapping({"tax": {"default": "T9"}, "brightpearl": {"price_mode": "INC"}})
    body, issues = sales_order_body(
        order, mapping, customer_id=5, product_ids={"SKU-1": 9}, installed_integration_instance_id=77
    )
    assert issues == [] and body is not None
    assert (body["ref"], body["externalRef"], body["installedIntegrationInstanceId"]) == ("ORD-7", ORDER, 77)
    assert body["priceModeCode"] == "INC" and body["currency"] == {"code": "EUR"}
    assert body["delivery"]["address"]["countryIsoCode"] == "DEU"
    assert body["rows"] == [
        {
            "quantity": Decimal(3),
            "net": Decimal("7.5000"),
            "tax": Decimal("0.7000"),
            "taxCode": "T9",
            "productId": 9,
            "externalRef": "l1",
        }
    ]


def test_the_hash_follows_the_content_not_the_state():
    order = order_from_dataverse(_row(), [LINE]).value
    assert order_hash(order) == order_hash(order.model_copy(update={"statecode": 3}))
    assert order_hash(order) != order_hash(order.model_copy(update={"freight": Decimal(1)}))
