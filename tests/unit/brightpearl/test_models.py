"""Models against the wire samples of the reference (§5.1 contact, §6.4 order, §8.1 stock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.brightpearl.models import (
    Contact,
    ContactCreate,
    Order,
    PatchOp,
    PostalAddressCreate,
    ProductAvailability,
    SalesOrderCreate,
    iso3,
)

CONTACT = {
    "contactId": 200,
    "isPrimaryContact": True,
    "salutation": "Mr.",
    "firstName": "Demo",
    "lastName": "Customer",
    "postAddressIds": {"DEF": 107, "DEL": 107, "BIL": 107},
    "communication": {"emails": {"PRI": {"email": "demo@test.com"}}, "telephones": {"PRI": "01245 845632"}},
    "contactStatus": {"current": {"contactStatusName": "Suspect", "contactStatusId": 2}},
    "relationshipToAccount": {"isSupplier": False, "isStaff": False},
    "financialDetails": {
        "priceListId": 1,
        "nominalCode": "10",
        "taxCodeId": 7,
        "creditLimit": 1000,
        "creditTermDays": 30,
        "currencyId": 1,
        "discountPercentage": 0.00,
    },
    "organisation": {"organisationId": 4, "name": "Customer Company Ltd."},
    "companyId": 25,
    "createdByid": 2,
    "createdOn": "2010-08-17T12:57:14.000Z",
    "updatedOn": "2013-05-28T20:35:27.000-05:00",
    "contactTags": "0,12",
}

ORDER = {
    "id": 100039,
    "parentOrderId": 0,
    "orderTypeCode": "SO",
    "reference": "ECF-10898",
    "orderStatus": {"orderStatusId": 28, "name": "Completed"},
    "orderPaymentStatus": "PAID",
    "stockStatusCode": "SOA",
    "allocationStatusCode": "AAA",
    "shippingStatusCode": "ASS",
    "placedOn": "2021-01-14T12:00:00.000-05:00",
    "updatedOn": "2022-01-04T20:19:07.000-05:00",
    "currency": {"orderCurrencyCode": "USD", "exchangeRate": "1.000000"},
    "totalValue": {"net": "1745.50", "taxAmount": "0.00", "total": "1745.50"},
    "assignment": {"current": {"channelId": 1, "staffOwnerContactId": 0}},
    "parties": {
        "customer": {"contactId": 2329, "companyName": "Test Co"},
        "delivery": {"addressLine1": "1 Main St", "postalCode": "06830", "countryIsoCode": "US"},
    },
    "orderRows": {
        "81": {
            "orderRowSequence": "20",
            "productId": 64185,
            "productName": "End Cap",
            "productSku": "SELECT_130-1080-07",
            "quantity": {"magnitude": "2.0000"},
            "productPrice": {"currencyCode": "USD", "value": "8.0000"},
            "rowValue": {"taxCode": "N", "rowNet": {"value": "16.0000"}, "rowTax": {"value": "0.00"}},
            "nominalCode": "4000",
        }
    },
    "warehouseId": 2,
    "installedIntegrationInstanceId": 0,
}


def test_contact_sample_parses_with_quirks():
    contact = Contact.model_validate(CONTACT)
    assert contact.contact_tags == [12]  # "0,12": a string, 0 meaning none
    assert contact.created_by_id == 2  # createdByid with a lower-case id
    assert contact.updated_on == datetime(2013, 5, 29, 1, 35, 27, tzinfo=UTC)  # offset respected
    assert contact.updated_on.utcoffset() == timedelta(hours=-5)
    assert contact.primary_email == "demo@test.com" and contact.is_customer and contact.price_list_id == 1
    assert contact.financial_details.nominal_code == "10"
    assert contact.model_extra is not None and "contactStatus" in contact.model_extra  # unknown fields kept


def test_order_sample_parses_with_string_decimals_and_zero_as_none():
    order = Order.model_validate(ORDER)
    assert order.parent_order_id is None and order.installed_integration_instance_id is None
    row = order.order_rows[81]
    assert row.quantity == Decimal("2.0000") and row.product_price == Decimal("8.0000")
    assert row.row_net == Decimal("16.0000") and row.row_tax == Decimal("0.00")
    assert order.total_value["total"] == Decimal("1745.50")
    assert order.parties["delivery"].country_iso3 == "USA" and order.customer_id == 2329
    assert order.model_dump(by_alias=True)["totalValue"]["total"] == "1745.50"


def test_availability_sample():
    level = ProductAvailability.model_validate(
        {
            "total": {"inStock": 10, "onHand": 9, "allocated": 1, "inTransit": 2},
            "warehouses": {"2": {"inStock": 3, "onHand": 2, "allocated": 1, "inTransit": 0}},
        }
    )
    assert level.warehouses[2].on_hand == 2 and level.total.in_transit == 2


def test_countries_and_addresses():
    assert (iso3("GB"), iso3("gbr"), iso3("XX"), iso3(None)) == ("GBR", "GBR", None, None)
    assert PostalAddressCreate(addressLine1="1 Street", countryIsoCode="ie").country_iso_code == "IRL"
    with pytest.raises(ValidationError, match="countryIsoCode") as caught:
        PostalAddressCreate(addressLine1="1 Street", countryIsoCode="ZZZ")
    assert "'ZZZ' is not an ISO 3166 country code" in str(caught.value)
    with pytest.raises(ValidationError, match="addressLine1"):
        PostalAddressCreate(addressLine1="", countryIsoCode="GBR")


def test_contact_create_builds_the_nested_shape_and_limits_names():
    body = ContactCreate.build(last_name="Lovelace", first_name="Ada", email="ada@example.com", address_id=5)
    wire = body.model_dump(by_alias=True, exclude_none=True)
    assert wire["communication"] == {"emails": {"PRI": {"email": "ada@example.com"}}}
    assert wire["postAddressIds"] == {"DEF": 5, "BIL": 5, "DEL": 5}
    with pytest.raises(ValidationError, match="lastName"):
        ContactCreate(lastName="x" * 33)


def test_sales_order_create_wire_and_validation():
    order = SalesOrderCreate.model_validate(
        {
            "customer": {"id": 7},
            "externalRef": "web-1",
            "placedOn": datetime(2026, 7, 1, 9, tzinfo=UTC),
            "rows": [{"productId": 3, "quantity": 2, "taxCode": "T20", "net": "19.9", "tax": "3.98"}],
        }
    )
    wire = order.wire()
    assert wire["rows"][0] == {
        "productId": 3,
        "quantity": "2.0000",
        "taxCode": "T20",
        "net": "19.9000",
        "tax": "3.9800",
    }
    assert wire["placedOn"] == "2026-07-01T09:00:00Z" and wire["externalRef"] == "web-1"
    with pytest.raises(ValidationError, match="placedOn needs a time zone"):
        SalesOrderCreate.model_validate(
            {
                "customer": {"id": 7},
                "placedOn": datetime(2026, 7, 1),
                "rows": [{"name": "x", "quantity": 1, "taxCode": "T0", "net": 1, "tax": 0}],
            }
        )
    with pytest.raises(ValidationError, match="rows"):
        SalesOrderCreate.model_validate({"customer": {"id": 7}, "rows": []})


def test_patch_op_wire():
    assert PatchOp(
        op="move", path="/communication/telephones/SEC", **{"from": "/communication/telephones/PRI"}
    ).wire() == {
        "op": "move",
        "path": "/communication/telephones/SEC",
        "from": "/communication/telephones/PRI",
    }
    assert PatchOp(op="remove", path="/salutation", value="ignored").wire() == {
        "op": "remove",
        "path": "/salutation",
    }
    with pytest.raises(ValidationError, match="op"):
        PatchOp(op="delete", path="/x")
