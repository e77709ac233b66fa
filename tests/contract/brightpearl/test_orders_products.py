"""Contract: orders, products, prices, stock, goods-out notes, credits, payments, journals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlPreconditionFailed,
    BrightpearlValidationError,
)
from shared.brightpearl.models import CustomerPaymentCreate, SalesOrderCreate


def a_customer(sim: Simulator) -> int:
    with sim.state.lock:
        return next(
            c for c, v in sorted(sim.state.contacts.items()) if not v["relationshipToAccount"]["isSupplier"]
        )


def tracked_products(sim: Simulator) -> list[int]:
    with sim.state.lock:
        return [p for p, v in sorted(sim.state.products.items()) if v["stock"].get("stockTracked")]


def order_body(sim: Simulator, external_ref: str, qty: int = 2) -> SalesOrderCreate:
    product = tracked_products(sim)[0]
    return SalesOrderCreate.model_validate(
        {
            "customer": {"id": a_customer(sim)},
            "ref": "PO-778",
            "externalRef": external_ref,
            "installedIntegrationInstanceId": 1,
            "placedOn": datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
            "currency": {"code": "GBP"},
            "warehouseId": 2,
            "rows": [
                {"productId": product, "quantity": qty, "taxCode": "T20", "net": "20.00", "tax": "4.00"},
                {"name": "Gift wrap", "quantity": 1, "taxCode": "T20", "net": "2.50", "tax": "0.50"},
            ],
        }
    )


def test_sales_order_created_atomically_and_read_back(client: BrightpearlClient, sim: Simulator):
    order_id, created = client.ensure_sales_order(order_body(sim, "shop-1001"))
    assert created

    order = client.get_order(order_id)
    assert order.order_type_code == "SO" and order.external_ref == "shop-1001"
    assert order.parent_order_id is None  # 0 on the wire means "none"
    assert len(order.order_rows) == 2 and all(isinstance(k, int) for k in order.order_rows)
    gift = next(r for r in order.order_rows.values() if r.product_id is None)
    assert gift.row_net == Decimal("2.5000") and gift.row_tax == Decimal("0.50")
    assert order.total_value["total"] == Decimal("27.00")
    assert (order.stock_status_code, order.shipping_status_code, order.order_payment_status) == (
        "SON",
        "SNS",
        "UNPAID",
    )
    assert order.customer_id == a_customer(sim)
    assert order.parties["delivery"].country_iso3 is not None

    again, created_again = client.ensure_sales_order(order_body(sim, "shop-1001"))
    assert (again, created_again) == (order_id, False)
    with pytest.raises(BrightpearlValidationError, match="externalRef 'shop-1001' is already used"):
        client.create_sales_order(order_body(sim, "shop-1001"))
    assert client.get_orders([order_id, 987_654]) and client.get_orders([987_654]) == []


def test_sales_order_validation_messages(client: BrightpearlClient, sim: Simulator):
    body = order_body(sim, "shop-bad").wire()
    body["rows"][0]["taxCode"] = "ZZ"
    with pytest.raises(BrightpearlValidationError, match=r"rows\[0\].taxCode 'ZZ' is not a tax code"):
        client.create_sales_order(body)
    with pytest.raises(ValueError, match=r"customer\.id"):
        SalesOrderCreate.model_validate({"customer": {}, "rows": body["rows"]})


def test_order_status_notes_and_custom_fields(client: BrightpearlClient, sim: Simulator):
    order_id = client.create_sales_order(order_body(sim, "shop-2001"))
    statuses = {s.status_id: s for s in client.get_order_statuses()}
    assert statuses[5].state == "cancelled" and statuses[8].order_type_code == "SC"

    client.set_order_status(order_id, 3, note="waiting for bank transfer")
    assert client.get_order(order_id).order_status.order_status_id == 3
    assert [n["text"] for n in client.get_order_notes(order_id)] == ["waiting for bank transfer"]
    with pytest.raises(BrightpearlValidationError, match="belongs to SC orders"):
        client.set_order_status(order_id, 8)

    note_id = client.add_order_note(order_id, "called the customer", public=True)
    assert note_id in [n["id"] for n in client.get_order_notes(order_id)]

    fields = client.patch_order_custom_fields(
        order_id,
        [
            {"op": "add", "path": "/PCF_GIFTMSG", "value": "Happy birthday"},
            {"op": "add", "path": "/PCF_SOURCE", "value": {"id": 10}},
        ],
    )
    assert fields == {"PCF_GIFTMSG": "Happy birthday", "PCF_SOURCE": {"id": 10, "value": "Phone"}}
    assert client.get_order_custom_fields(order_id) == fields
    assert client.get_orders([order_id], custom_fields=True)[0].model_extra["customFields"] == fields
    with pytest.raises(BrightpearlValidationError, match="option 99 does not exist"):
        client.patch_order_custom_fields(order_id, [{"op": "replace", "path": "/PCF_SOURCE/id", "value": 99}])


def test_order_search_by_updated_on(client: BrightpearlClient, sim: Simulator):
    since = datetime.now(UTC)
    order_id = client.create_sales_order(order_body(sim, "shop-3001"))
    rows = list(
        client.search_orders(updated_since=since, columns=["orderId", "orderStatusId", "externalRef"])
    )
    assert [r["orderId"] for r in rows] == [order_id]
    pager = client.search_orders(updated_since=since, columns=["orderId", "orderStatusId"])
    list(pager)
    assert pager.reference["orderStatusNames"] == {"2": "New web order"}


def test_products_put_with_if_match_and_prices(client: BrightpearlClient, sim: Simulator):
    product_id = client.create_product(
        {
            "brandId": 1,
            "identity": {"sku": "MUG-RED-1"},
            "stock": {"stockTracked": True},
            "salesChannels": [{"salesChannelName": "Brightpearl", "productName": "Red Mug"}],
        }
    )
    product = client.get_products([product_id])[0]
    assert (product.sku, product.name, product.stock_tracked) == ("MUG-RED-1", "Red Mug", True)
    assert [r["productId"] for r in client.search_products(sku="MUG-RED-1")] == [product_id]

    client.update_product(product_id, {"identity": {"ean": "5012345678900"}}, version=product.version)
    with pytest.raises(BrightpearlPreconditionFailed) as stale:
        client.update_product(product_id, {"identity": {"ean": "0"}}, version=product.version)
    assert stale.value.status == 412
    assert client.get_products([product_id])[0].identity["ean"] == "5012345678900"

    client.set_product_prices(product_id, [{"priceListId": 2, "quantityPrice": {"1": "9.99", "10": "8.50"}}])
    [prices] = client.get_product_prices([product_id], [2])
    assert prices.price(2) == Decimal("9.99") and prices.price(2, 10) == Decimal("8.50")
    with pytest.raises(BrightpearlValidationError, match="priceListId 77 does not exist"):
        client.set_product_prices(product_id, [{"priceListId": 77, "quantityPrice": {"1": "1"}}])
    with pytest.raises(BrightpearlValidationError, match="brandId"):
        client.create_product({"identity": {"sku": "NO-BRAND"}})


def test_goods_out_note_lifecycle_and_stock(client: BrightpearlClient, sim: Simulator):
    order_id = client.create_sales_order(order_body(sim, "shop-4001", qty=3))
    order = client.get_order(order_id)
    row_id, row = next((k, r) for k, r in order.order_rows.items() if r.product_id)
    product_id = row.product_id
    assert product_id is not None
    before = client.get_product_availability([product_id])[product_id]

    with pytest.raises(BrightpearlValidationError, match="over-fulfilled"):
        client.create_goods_out_note(
            order_id,
            [
                {
                    "warehouseId": 2,
                    "products": [{"productId": product_id, "salesOrderRowId": row_id, "quantity": 4}],
                }
            ],
        )
    note_id = client.create_goods_out_note(
        order_id,
        [
            {
                "warehouseId": 2,
                "products": [{"productId": product_id, "salesOrderRowId": row_id, "quantity": 3}],
            }
        ],
        shipping_method_id=3,
    )

    allocated = client.get_product_availability([product_id])[product_id]
    assert allocated.warehouses[2].allocated == before.warehouses[2].allocated + 3
    notes = client.get_goods_out_notes([note_id])
    assert notes[note_id].order_id == order_id and notes[note_id].order_rows[row_id][0]["quantity"] == 3
    assert client.get_goods_out_notes(order_ids=[order_id]).keys() == {note_id}

    client.add_goods_out_events(
        note_id,
        [{"eventCode": "SHW", "occured": "2026-07-01T12:00:00.000Z", "eventOwnerId": 4}],
        last_event_version=0,
    )
    shipped = client.get_goods_out_notes([note_id])[note_id]
    assert shipped.shipped and [e["eventCode"] for e in shipped.events] == ["PRI", "PIC", "PAC", "SHW"]
    with pytest.raises(BrightpearlPreconditionFailed):
        client.add_goods_out_events(
            note_id,
            [{"eventCode": "PRI", "occured": "2026-07-01T12:00:00Z", "eventOwnerId": 4}],
            last_event_version=0,
        )
    with pytest.raises(BrightpearlValidationError, match="no more events"):
        client.add_goods_out_events(
            note_id, [{"eventCode": "PRI", "occured": "2026-07-01T12:00:00Z", "eventOwnerId": 4}]
        )
    assert client.get_order(order_id).shipping_status_code == "ASS"
    after = client.get_product_availability([product_id])[product_id]
    assert after.warehouses[2].in_stock == before.warehouses[2].in_stock - 3
    assert [w.id for w in client.get_warehouses()] == [2, 3, 4]


def test_credit_payment_and_journal(client: BrightpearlClient, sim: Simulator):
    order_id = client.create_sales_order(order_body(sim, "shop-5001"))
    payment = CustomerPaymentCreate(
        transactionRef="pay-5001",
        paymentMethodCode="CARD",
        paymentType="RECEIPT",
        orderId=order_id,
        currencyIsoCode="GBP",
        amountPaid=Decimal("27.00"),
        paymentDate=datetime(2026, 7, 1, tzinfo=UTC),
    )
    payment_id, created = client.ensure_customer_payment(payment)
    assert created and client.ensure_customer_payment(payment) == (payment_id, False)
    assert client.get_order(order_id).order_payment_status == "PAID"
    with pytest.raises(BrightpearlValidationError, match="already used"):
        client.create_customer_payment(payment)

    credit_body = order_body(sim, "shop-5001.r1").wire()
    credit_body["parentId"] = order_id
    credit_body["statusId"] = 8
    credit_id = client.create_sales_credit(credit_body)
    [credit] = client.get_sales_credits([credit_id])
    assert credit.order_type_code == "SC" and credit.parent_order_id == order_id

    journal_id = client.create_journal(
        {
            "journalTypeCode": "BT",
            "taxDate": "2026-07-01",
            "description": "refund fee",
            "credits": [
                {"nominalCode": "1200", "taxCode": "T0", "change": {"currency": "GBP", "value": "5.00"}}
            ],
            "debits": [
                {"nominalCode": "7900", "taxCode": "T0", "change": {"currency": "GBP", "value": "5.00"}}
            ],
        }
    )
    [journal] = client.get_journals([journal_id])
    assert journal.journal_type_code == "BT" and journal.tax_date == "2026-07-01"
    with pytest.raises(BrightpearlValidationError, match="do not balance"):
        client.create_journal(
            {
                "journalTypeCode": "BT",
                "taxDate": "2026-07-01",
                "credits": [{"nominalCode": "1200", "taxCode": "T0", "change": {"value": "5.00"}}],
                "debits": [{"nominalCode": "7900", "change": {"value": "4.00"}}],
            }
        )


def test_order_row_patch_rules(client: BrightpearlClient, sim: Simulator):
    order_id = client.create_sales_order(order_body(sim, "shop-6001", qty=3))
    row_id = next(k for k, r in client.get_order(order_id).order_rows.items() if r.product_id)

    row = client.patch_order_row(
        order_id,
        row_id,
        [
            {"op": "replace", "path": "/quantity/magnitude", "value": 5},
            {"op": "replace", "path": "/rowValue/rowNet/value", "value": "50"},
        ],
    )
    assert row["quantity"]["magnitude"] == "5.0000" and row["rowValue"]["rowNet"]["value"] == "50.0000"
    assert client.get_order(order_id).total_value["net"] == Decimal("52.50")
    with pytest.raises(BrightpearlValidationError, match="not a valid quantity"):
        client.patch_order_row(
            order_id, row_id, [{"op": "replace", "path": "/quantity/magnitude", "value": 1.5}]
        )
    with pytest.raises(BrightpearlValidationError, match="cannot be patched on an order row"):
        client.patch_order_row(order_id, row_id, [{"op": "replace", "path": "/productId", "value": 1}])
    client.set_order_status(order_id, 4)  # invoiced
    with pytest.raises(BrightpearlValidationError, match="once the order is invoiced"):
        client.patch_order_row(order_id, row_id, [{"op": "replace", "path": "/nominalCode", "value": "4010"}])


def test_multi_message_batches_writes_and_reports_each(client: BrightpearlClient, sim: Simulator, admin):
    result = client.multi_message(
        [
            {
                "label": "a1",
                "uri": "/contact-service/postal-address",
                "httpMethod": "POST",
                "body": {"addressLine1": "1 Quay", "countryIsoCode": "IRL"},
            },
            {
                "label": "a2",
                "uri": "/contact-service/postal-address",
                "httpMethod": "POST",
                "body": {"addressLine1": "", "countryIsoCode": "IRL"},
            },
            {
                "label": "a3",
                "uri": "/contact-service/postal-address",
                "httpMethod": "POST",
                "body": {"addressLine1": "3 Quay", "countryIsoCode": "FRA"},
            },
        ]
    )
    assert not result.all_ok and result.unprocessed == []
    assert result.processed["a1"].ok and isinstance(result.processed["a1"].body["response"], int)
    assert result.processed["a2"].status == 400
    assert result.processed["a2"].body["errors"][0]["message"] == "addressLine1 is required"
    assert result.processed["a3"].ok
    assert admin.get("/requests").json()["byEndpoint"] == {"POST multi-message": 1}  # one request

    stopped = client.multi_message(
        [
            {"label": "x", "uri": "/contact-service/tag", "httpMethod": "POST", "body": {"tagName": ""}},
            {"label": "y", "uri": "/contact-service/tag", "httpMethod": "POST", "body": {"tagName": "later"}},
        ],
        on_fail="STOP",
    )
    assert stopped.processed["x"].status == 400 and stopped.unprocessed == ["y"]
    with pytest.raises(ValueError, match="2 to 10"):
        client.multi_message([{"label": "solo", "uri": "/contact-service/tag", "httpMethod": "POST"}])


def test_create_many_returns_one_id_or_error_per_body_in_order(
    client: BrightpearlClient, sim: Simulator, admin
):
    bodies = [{"addressLine1": f"{n} Quay", "countryIsoCode": "IRL"} for n in range(11)]
    bodies[3] = {"addressLine1": "", "countryIsoCode": "IRL"}
    answers = client.create_many("/contact-service/postal-address/", bodies)
    assert len(answers) == 11
    bad = answers[3]
    assert isinstance(bad, BrightpearlValidationError) and bad.status == 400
    assert "addressLine1 is required" in str(bad) and "message 3 of a multi-message" in str(bad)
    created = [a for i, a in enumerate(answers) if i != 3]
    assert all(isinstance(a, int) for a in created) and len(set(created)) == 10
    # ten bodies in one multi-message, the eleventh alone
    assert admin.get("/requests").json()["byEndpoint"] == {
        "POST multi-message": 1,
        "POST contact-service/postal-address": 1,
    }
    assert client.create_many("/contact-service/postal-address/", []) == []


def test_create_many_fails_every_body_of_a_request_that_failed_as_a_whole(
    client: BrightpearlClient, sim: Simulator
):
    sim.add_fault("500", count=1, path="multi-message", method="POST")
    bodies = [{"addressLine1": f"{n} Quay", "countryIsoCode": "IRL"} for n in range(2)]
    answers = client.create_many("/contact-service/postal-address/", bodies)
    assert len(answers) == 2 and all(isinstance(a, BrightpearlAmbiguousWrite) for a in answers)


def test_goods_out_tracking_search_and_stock_corrections(client: BrightpearlClient, sim: Simulator, admin):
    order_id = client.create_sales_order(order_body(sim, "shop-7001", qty=1))
    row_id, row = next((k, r) for k, r in client.get_order(order_id).order_rows.items() if r.product_id)
    assert row.product_id is not None
    note_id = client.create_goods_out_note(
        order_id,
        [
            {
                "warehouseId": 3,
                "products": [{"productId": row.product_id, "salesOrderRowId": row_id, "quantity": 1}],
            }
        ],
    )
    client.update_goods_out_note(note_id, shipping={"reference": "TRACK123", "boxes": 2})
    assert client.get_goods_out_notes([note_id])[note_id].shipping["reference"] == "TRACK123"
    assert [r["goodsOutNoteId"] for r in client.search_goods_out_notes(orderId=order_id)] == [note_id]
    with pytest.raises(ValueError, match="priority or shipping"):
        client.update_goods_out_note(note_id)

    before = client.get_product_availability([row.product_id])[row.product_id].warehouses[2].in_stock
    [correction] = client.create_stock_correction(
        2, [{"productId": row.product_id, "quantity": 7, "reason": "Stock take", "locationId": 2}]
    )
    assert correction >= 1
    assert (
        client.get_product_availability([row.product_id])[row.product_id].warehouses[2].in_stock == before + 7
    )
    with pytest.raises(BrightpearlValidationError, match=r"corrections\[0\].reason is required"):
        client.create_stock_correction(2, [{"productId": row.product_id, "quantity": 1, "locationId": 2}])

    version = client.get_products([row.product_id])[0].version
    admin.post(f"/products/{row.product_id}/change", json={"name": "Renamed Mug"}).raise_for_status()
    renamed = client.get_products([row.product_id])[0]
    assert renamed.name == "Renamed Mug" and (renamed.version or 0) > (version or 0)


def test_lookups_by_id_and_payment_search(client: BrightpearlClient, sim: Simulator):
    assert [g.id for g in client.get_contact_groups([2, 99])] == [2]
    assert [t.tag_name for t in client.get_tags([1])] == ["newsletter"]
    assert [w.name for w in client.get_warehouses([3])] == ["London Store"]
    assert client.get_contact_groups([98, 99]) == []

    order_id = client.create_sales_order(order_body(sim, "shop-8001"))
    for ref, amount in (("p-1", "10.00"), ("p-2", "5.00")):
        client.create_customer_payment(
            CustomerPaymentCreate(
                transactionRef=ref,
                paymentMethodCode="CARD",
                paymentType="RECEIPT",
                orderId=order_id,
                currencyIsoCode="GBP",
                amountPaid=Decimal(amount),
                paymentDate=datetime(2026, 7, 1, tzinfo=UTC),
            )
        )
    rows = list(client.search_customer_payments(orderId=order_id))
    assert [(r["transactionRef"], r["amountPaid"]) for r in rows] == [("p-1", "10.00"), ("p-2", "5.00")]
    assert client.get_order(order_id).order_payment_status == "PARTIALLY_PAID"


def test_link_contact_addresses(client: BrightpearlClient, sim: Simulator):
    contact_id = min(sim.state.contacts)
    delivery = client.create_postal_address({"addressLine1": "9 Dock Road", "countryIsoCode": "GBR"})
    client.link_contact_addresses(contact_id, [{"postalAddressId": delivery, "type": "DEL"}])
    assert client.get_contact(contact_id).post_address_ids["DEL"] == delivery
    other = max(sim.state.contacts)
    with pytest.raises(BrightpearlValidationError, match="belongs to another contact"):
        client.link_contact_addresses(other, [{"postalAddressId": delivery}])
