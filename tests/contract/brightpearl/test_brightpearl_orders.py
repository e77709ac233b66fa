"""Contract (issue 13 item 6): the Brightpearl simulator's order side over HTTP through the real
client - atomic sales-order POST, externalRef + integration-instance uniqueness, sales-order-search
(customerRefs, externalRef), order-search by updatedOn, status changes and the cancellation rule,
row PUT/PATCH/DELETE with the invoiced lock, goods-out notes and invoices from the admin routes,
the order webhooks with id sets, statuses per account, and a timeout after commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlAmbiguousWrite, BrightpearlValidationError
from shared.brightpearl.models import CustomerPaymentCreate, SalesOrderCreate, WebhookCreate
from shared.brightpearl.webhook_registration import body_template

from .conftest import Receiver, wait_until
from .test_orders_products import order_body

SALES_ORDER_SEARCH = "/order-service/sales-order-search"


def order_count(sim: Simulator) -> int:
    with sim.state.lock:
        return len(sim.state.orders)


def by_external_ref(client: BrightpearlClient, external_ref: str) -> list[int]:
    rows = client.search(
        SALES_ORDER_SEARCH, filters={"externalRef": external_ref}, columns=["salesOrderId", "externalRef"]
    )
    return [int(r["salesOrderId"]) for r in rows]


def tracked_row(client: BrightpearlClient, order_id: int) -> int:
    return next(k for k, r in client.get_order(order_id).order_rows.items() if r.product_id)


def test_a_bad_row_refuses_the_whole_sales_order_and_writes_nothing(
    client: BrightpearlClient, sim: Simulator
):
    before = order_count(sim)
    good = client.create_sales_order(order_body(sim, "atomic-0"))
    body = order_body(sim, "atomic-1").wire()
    body["rows"][1] = dict(body["rows"][1], productId=999_999)
    with pytest.raises(BrightpearlValidationError, match=r"rows\[1\]\.productId 999999 does not exist"):
        client.create_sales_order(body)
    body = order_body(sim, "atomic-1").wire()
    body["delivery"] = {"address": {"addressLine1": "1 High St", "countryIsoCode": "XXX"}}
    with pytest.raises(BrightpearlValidationError, match="countryIsoCode 'XXX' is unknown"):
        client.create_sales_order(body)

    assert order_count(sim) == before + 1 and by_external_ref(client, "atomic-1") == []
    # nothing was allocated either: the next order takes the very next id
    assert client.create_sales_order(order_body(sim, "atomic-2")) == good + 1


def test_external_ref_is_unique_per_integration_instance(client: BrightpearlClient, sim: Simulator):
    first = client.create_sales_order(order_body(sim, "dup-1"))
    with pytest.raises(
        BrightpearlValidationError, match=f"externalRef 'dup-1' is already used by order {first}"
    ):
        client.create_sales_order(order_body(sim, "dup-1"))
    other_instance = order_body(sim, "dup-1").wire()
    other_instance["installedIntegrationInstanceId"] = 2
    second = client.create_sales_order(other_instance)
    assert second != first and sorted(by_external_ref(client, "dup-1")) == [first, second]

    sim.configure(duplicate_external_ref="return-existing")
    assert client.create_sales_order(order_body(sim, "dup-1")) == first

    wrong = order_body(sim, "dup-2").wire()
    wrong["installedIntegrationInstanceId"] = "one"
    with pytest.raises(
        BrightpearlValidationError, match="installedIntegrationInstanceId 'one' must be a whole"
    ):
        client.request("POST", "/order-service/sales-order/", json=wrong)


def test_sales_order_search_by_customer_refs_external_ref_and_product(
    client: BrightpearlClient, sim: Simulator
):
    ids = []
    for n, ref in enumerate(["SO-A", "SO-B", "SO-C"]):
        body = order_body(sim, f"search-{n}").wire()
        body["ref"] = ref
        ids.append(client.create_sales_order(body))
    credit = order_body(sim, "search-credit").wire()
    credit.update(ref="SO-A", parentId=ids[0], statusId=8)
    client.create_sales_credit(credit)

    rows = list(
        client.search(SALES_ORDER_SEARCH, filters={"customerRefs": "SO-A,SO-C"}, sort="salesOrderId.ASC")
    )
    assert [r["salesOrderId"] for r in rows] == [ids[0], ids[2]]  # the credit is not a sales order
    assert rows[0]["customerRef"] == "SO-A" and rows[0]["externalRef"] == "search-0"
    assert rows[0]["orderStatusId"] == 2 and rows[0]["orderShippingStatus"] == "SNS"
    assert by_external_ref(client, "search-1") == [ids[1]]

    product = client.get_order(ids[0]).order_rows[tracked_row(client, ids[0])].product_id
    with_product = client.search(
        SALES_ORDER_SEARCH, filters={"productIds": str(product)}, columns=["salesOrderId"]
    )
    assert set(ids) <= {r["salesOrderId"] for r in with_product}

    pager = client.search(
        SALES_ORDER_SEARCH,
        filters={"customerRefs": "SO-A,SO-B,SO-C"},
        columns=["salesOrderId", "orderStatusId"],
        page_size=2,
    )
    assert [r["salesOrderId"] for r in pager] == ids  # paged 2 + 1
    assert pager.reference["orderStatusNames"] == {"2": "New web order"}
    meta = client.request("GET", f"{SALES_ORDER_SEARCH}/meta-data").response
    assert {f["name"]: f["reportDataType"] for f in meta["filters"]} == {
        "productIds": "IDSET",
        "isHistoricalOrder": "BOOLEAN",
        "customerRefs": "STRING_SET",
    }
    with pytest.raises(BrightpearlValidationError, match="'reference' is not a filterable column"):
        list(client.search(SALES_ORDER_SEARCH, filters={"reference": "SO-A"}))


def test_order_search_by_updated_on_sees_status_changes(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
):
    ids = [client.create_sales_order(order_body(sim, f"backstop-{n}")) for n in range(3)]
    since = datetime.now(UTC)
    admin.post(f"/orders/{ids[1]}/status", json={"orderStatusId": 3}).raise_for_status()
    rows = list(client.search_orders(updated_since=since, columns=["orderId", "orderStatusId", "updatedOn"]))
    changed = [(r["orderId"], r["orderStatusId"]) for r in rows]
    assert (ids[1], 3) in changed  # `since` is sent to the second: orders made just before may show too
    assert len(list(client.search("/order-service/order-search", columns=["orderId"], page_size=3))) == len(
        sim.state.orders
    )


def test_timeout_after_commit_leaves_one_order_findable_by_external_ref(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    client = make_client(BRIGHTPEARL_READ_TIMEOUT_SECONDS=0.3)
    sim.add_fault("timeout", count=1, seconds=1.0, path="order-service/sales-order", method="POST")
    before = order_count(sim)
    with pytest.raises(BrightpearlAmbiguousWrite):
        client.create_sales_order(order_body(sim, "lost-1"))
    [order_id] = by_external_ref(client, "lost-1")  # Brightpearl committed it
    assert sim.lost_answers[0].created_ids("order-service/sales-order") == [order_id]
    assert client.ensure_sales_order(order_body(sim, "lost-1")) == (order_id, False)
    assert order_count(sim) == before + 1


def test_cancellation_needs_no_goods_out_no_invoice_no_payment(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
):
    noted, invoiced, paid, clean = (
        client.create_sales_order(order_body(sim, f"cancel-{n}")) for n in range(4)
    )
    answer = admin.post(f"/orders/{noted}/goods-out", json={})
    assert answer.status_code == 200 and len(answer.json()["goodsOutNoteIds"]) == 1
    invoice = admin.post(f"/orders/{invoiced}/invoice", json={"invoiceReference": "INV-77"})
    assert invoice.status_code == 200 and invoice.json()["invoices"][0]["invoiceReference"] == "INV-77"
    payment = {"transactionRef": "pay-cancel", "paymentMethodCode": "CARD", "paymentType": "RECEIPT"}
    payment.update(orderId=paid, currencyIsoCode="GBP", amountPaid="5.00", paymentDate="2026-07-01T00:00:00Z")
    client.create_customer_payment(CustomerPaymentCreate.model_validate(payment))
    for order_id, reason in [
        (noted, "goods-out notes"),
        (invoiced, "invoiced order"),
        (paid, "with payments"),
    ]:
        with pytest.raises(BrightpearlValidationError, match=reason):
            client.set_order_status(order_id, 5)
        assert client.get_order(order_id).order_status.order_status_id == 2
        assert client.get_order_notes(order_id) == []  # a refused change writes no note
    assert client.get_order(invoiced).invoices[0]["invoiceReference"] == "INV-77"
    client.set_order_status(clean, 5, note="customer changed their mind")
    assert client.get_order(clean).order_status.name == "Cancelled"
    assert [n["text"] for n in client.get_order_notes(clean)] == ["customer changed their mind"]
    again = admin.post(f"/orders/{invoiced}/invoice", json={})
    assert again.status_code == 400 and "already invoiced (INV-77)" in again.text


def test_row_put_and_delete_and_the_invoiced_lock(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
):
    order_id = client.create_sales_order(order_body(sim, "rows-1", qty=3))
    order = client.get_order(order_id)
    tracked = tracked_row(client, order_id)
    free = next(k for k in order.order_rows if k != tracked)
    product = order.order_rows[tracked].product_id
    row = {"id": tracked, "productId": product, "quantity": 4, "taxCode": "T20", "net": "40", "tax": "8"}

    answer = client.request(
        "PUT",
        f"/order-service/sales-order/{order_id}/row/{tracked},{free}",
        json=[
            row,
            {"id": free, "name": "Gift wrap", "quantity": 0, "taxCode": "T20", "net": "1", "tax": "0"},
        ],
    )
    assert answer.status == 207
    assert answer.response["resourceStatuses"] == {str(tracked): 200, str(free): 400}
    assert "rows[1].quantity must be positive" in answer.response["resourceErrors"][str(free)][0]["message"]
    after = client.get_order(order_id)
    assert after.order_rows[tracked].quantity == Decimal(4) and after.total_value["net"] == Decimal("42.50")
    outside = client.request(
        "PUT", f"/order-service/sales-order/{order_id}/row/{tracked}", json=[dict(row, id=free)]
    )
    assert "not in the URL's row id set" in outside.response["resourceErrors"][str(free)][0]["message"]

    client.request("DELETE", f"/order-service/order/{order_id}/row/{free}")
    assert set(client.get_order(order_id).order_rows) == {tracked}
    admin.post(f"/orders/{order_id}/goods-out", json={"rows": {str(tracked): 1}}).raise_for_status()
    with pytest.raises(BrightpearlValidationError, match="on goods-out notes and cannot be deleted"):
        client.request("DELETE", f"/order-service/order/{order_id}/row/{tracked}")

    admin.post(f"/orders/{order_id}/invoice", json={}).raise_for_status()
    with pytest.raises(BrightpearlValidationError, match="once the order is invoiced"):
        client.patch_order_row(
            order_id, tracked, [{"op": "replace", "path": "/nominalCode", "value": "4010"}]
        )
    with pytest.raises(BrightpearlValidationError, match="once the order is invoiced"):
        client.request("PUT", f"/order-service/sales-order/{order_id}/row/{tracked}", json=[row])
    with pytest.raises(BrightpearlValidationError, match="once the order is invoiced"):
        client.request("DELETE", f"/order-service/order/{order_id}/row/{tracked}")


def hook(receiver: Receiver, event: str) -> WebhookCreate:
    return WebhookCreate(
        subscribeTo=event,
        uriTemplate=f"{receiver.url}/api/bp?e=${{full-event}}",
        bodyTemplate=body_template("order-hook-secret-0123456789"),
        idSetAccepted=True,
        qualityOfService=1,
    )


def test_order_and_goods_out_webhooks_arrive_with_id_sets(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client
):
    sim.configure(webhook_batch_seconds=0.3)
    events = [
        "sales-order.created",
        "goods-out-note.created",
        "goods-out-note.modified.shipped",
        "order.modified.fully-shipped",
        "order.modified.order-status",
    ]
    for event in events:
        client.create_webhook(hook(receiver, event))

    def delivered() -> dict[str, str]:
        assert wait_until(sim.dispatcher.idle)
        return {json.loads(r["body"])["fullEvent"]: json.loads(r["body"])["id"] for r in receiver.received()}

    orders = [client.create_sales_order(order_body(sim, f"hooks-{n}")) for n in range(2)]
    notes = [admin.post(f"/orders/{o}/goods-out", json={}).json()["goodsOutNoteIds"][0] for o in orders]
    assert wait_until(lambda: len(delivered()) == 2)
    assert delivered() == {
        "sales-order.created": f"{orders[0]}-{orders[1]}",
        "goods-out-note.created": f"{notes[0]}-{notes[1]}",
    }
    shipped = [admin.post(f"/goods-out/{n}/ship", json={"reference": f"TRK{n}"}).json() for n in notes]
    assert all(s["status"]["shipped"] and s["orderShippingStatusCode"] == "ASS" for s in shipped)
    assert client.get_goods_out_notes([notes[0]])[notes[0]].shipping["reference"] == f"TRK{notes[0]}"
    for o in orders:
        admin.post(f"/orders/{o}/status", json={"orderStatusId": 6}).raise_for_status()
    assert wait_until(lambda: len(delivered()) == 5)
    assert delivered()["goods-out-note.modified.shipped"] == f"{notes[0]}-{notes[1]}"
    assert delivered()["order.modified.fully-shipped"] == f"{orders[0]}-{orders[1]}"
    assert delivered()["order.modified.order-status"] == f"{orders[0]}-{orders[1]}"
    again = admin.post(f"/goods-out/{notes[0]}/events", json={"events": ["PRI"]})
    assert again.status_code == 400 and "no more events" in again.text


def test_order_statuses_are_the_accounts_own(client: BrightpearlClient, sim: Simulator, admin: httpx.Client):
    names = {s.name for s in client.get_order_statuses()}
    assert {"Awaiting Payment", "Partially Shipped"} <= names

    def status(sid: int, name: str, code: str = "SO", **extra: Any) -> dict[str, Any]:
        return {"statusId": sid, "name": name, "orderTypeCode": code, **extra}

    settings = {
        "statuses": [
            status(21, "Awaiting Payment"),
            status(22, "Partially Shipped"),
            status(23, "Fulfilled", state="closed"),
            status(24, "Void", state="cancelled"),
            status(25, "Billed", state="invoiced"),
            status(26, "Credit open", "SC"),
            status(27, "PO open", "PO"),
        ],
        "cancelledStatusId": 24,
        "invoicedStatusId": 25,
        "defaultStatusIds": {"SO": 21, "SC": 26, "PO": 27},
    }
    refused = admin.put("/order-statuses", json=settings)
    assert refused.status_code == 400 and "used by orders and must stay" in refused.text  # seeded orders
    with sim.state.lock:
        sim.state.orders.clear()
    assert admin.put("/order-statuses", json=settings).status_code == 200
    assert [(s.status_id, s.name) for s in client.get_order_statuses() if s.order_type_code == "SO"] == [
        (21, "Awaiting Payment"),
        (22, "Partially Shipped"),
        (23, "Fulfilled"),
        (24, "Void"),
        (25, "Billed"),
    ]
    order_id = client.create_sales_order(order_body(sim, "statuses-1"))
    assert client.get_order(order_id).order_status.name == "Awaiting Payment"
    client.set_order_status(order_id, 22)
    client.set_order_status(order_id, 24)  # the account's cancelled status, rules checked
    assert client.get_order(order_id).order_status.name == "Void"
    with pytest.raises(BrightpearlValidationError, match="orderStatusId 2 does not exist"):
        client.set_order_status(order_id, 2)

    new_id = client._new_id(
        client.request(
            "POST", "/order-service/order-status", json={"name": "On hold", "orderTypeCode": "SO"}
        ),
        "order status",
    )
    assert new_id == 28 and "On hold" in {s.name for s in client.get_order_statuses()}
    with pytest.raises(BrightpearlValidationError, match="'On hold' is already status 28"):
        client.request("POST", "/order-service/order-status", json={"name": "On hold", "orderTypeCode": "SO"})


def test_cutting_a_row_to_what_shipped_makes_the_order_fully_shipped(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client
):
    client.create_webhook(hook(receiver, "order.modified.fully-shipped"))
    order_id = client.create_sales_order(order_body(sim, "cut-1", qty=3))
    row_id = tracked_row(client, order_id)
    [note] = admin.post(f"/orders/{order_id}/goods-out", json={"rows": {str(row_id): 2}}).json()[
        "goodsOutNoteIds"
    ]
    assert admin.post(f"/goods-out/{note}/ship", json={}).json()["orderShippingStatusCode"] == "SPS"
    with pytest.raises(BrightpearlValidationError, match="cannot drop below the 2"):
        client.patch_order_row(
            order_id, row_id, [{"op": "replace", "path": "/quantity/magnitude", "value": 1}]
        )

    client.patch_order_row(order_id, row_id, [{"op": "replace", "path": "/quantity/magnitude", "value": 2}])
    assert client.get_order(order_id).shipping_status_code == "ASS"
    assert wait_until(lambda: sim.dispatcher.idle() and len(receiver.received()) == 1)
    body = json.loads(receiver.received()[0]["body"])
    assert (body["fullEvent"], body["id"]) == ("order.modified.fully-shipped", str(order_id))


def test_ensure_sales_order_keys_on_external_ref_and_integration_instance(
    client: BrightpearlClient, sim: Simulator
):
    theirs = client.create_sales_order(order_body(sim, "shared-ref"))  # instance 1
    ours = order_body(sim, "shared-ref").wire()
    ours["installedIntegrationInstanceId"] = 2
    order_id, created = client.ensure_sales_order(SalesOrderCreate.model_validate(ours))
    assert created and order_id != theirs


def test_ensure_sales_order_never_answers_a_sales_credit(client: BrightpearlClient, sim: Simulator):
    credit = order_body(sim, "credit-first").wire()
    credit["statusId"] = 8
    credit_id = client.create_sales_credit(credit)
    order_id, created = client.ensure_sales_order(order_body(sim, "credit-first"))
    assert created and order_id != credit_id


def test_sales_order_get_answers_the_post_fields_totals_and_is_canceled(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
):
    body = order_body(sim, "get-1").wire()
    order_id = client.create_sales_order(body)
    [sales] = client.request("GET", f"/order-service/sales-order/{order_id}").response
    assert (sales["customerId"], sales["customer"], sales["ref"], sales["externalRef"]) == (
        body["customer"]["id"],
        {"id": body["customer"]["id"]},
        "PO-778",
        "get-1",
    )
    assert sales["statusId"] == 2 and sales["isCanceled"] is False
    assert sales["total"] == {
        "net": "22.50",
        "tax": "4.50",
        "gross": "27.00",
        "baseNet": "22.50",
        "baseTax": "4.50",
        "baseGross": "27.00",
    }
    assert [(r["name"], r["quantity"], r["net"], r["taxCode"]) for r in sales["rows"]][1] == (
        "Gift wrap",
        "1.0000",
        "2.5000",
        "T20",
    )
    assert {r["id"] for r in sales["rows"]} == set(client.get_order(order_id).order_rows)
    client.set_order_status(order_id, 5)
    assert client.request("GET", f"/order-service/sales-order/{order_id}").response[0]["isCanceled"] is True

    settings = admin.get("/order-statuses").json()
    settings["cancelledStatusId"] = None
    assert admin.put("/order-statuses", json=settings).status_code == 200
    assert client.request("GET", f"/order-service/sales-order/{order_id}").response[0]["isCanceled"] is None
