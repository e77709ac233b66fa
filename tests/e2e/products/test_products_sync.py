"""Brightpearl products reach Dynamics through the whole sandbox (issue 12 item 1 acceptance):
a Brightpearl user's change raises a product webhook, the ingress publishes a change notice, the
products flow writes Dynamics. What a Dynamics user sees is asserted: the product, its SKU and
name, unit group, default unit and price list, and its lifecycle state."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.products.conftest import ACTIVE, FLOW, PRICE_LIST, RETIRED, ProductSandbox


def lookup(row: dict[str, Any], column: str) -> str:
    return str(row[column]["id"]).lower()


def test_a_new_product_reaches_dynamics_by_webhook_published_in_the_catalogue(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    product_id = sb.create("MUG-BLUE", "Blue Mug")
    sb.deliver()

    assert sb.webhooks_delivered("product.created"), "the simulator delivered product.created"
    row = sb.product(product_id)
    assert (row["productnumber"], row["name"]) == ("MUG-BLUE", "Blue Mug")
    # the organisation creates products Draft: the flow published it (Active), as a user would
    [org] = sb.dv.rows("organization")
    assert org["createproductswithoutparentinactivestate"] is False
    assert (row["statecode"], row["statuscode"]) == ACTIVE
    assert lookup(row, "defaultuomscheduleid") == sb.refs.unit_group
    assert lookup(row, "defaultuomid") == sb.refs.base_unit
    assert lookup(row, "pricelevelid") == sb.refs.price_lists[PRICE_LIST]
    assert row["producttypecode"] == 1 and row["quantitydecimal"] == 0
    assert sb.dead_lettered() == []


def test_a_renamed_product_is_updated_in_place(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("MUG-RED", "Red Mug")
    sb.deliver()
    first = sb.product(product_id)

    sb.rename(product_id, "Crimson Mug")
    sb.deliver()

    assert sb.webhooks_delivered("product.modified")
    rows = sb.products()
    assert len(rows) == 1  # updated, not created again
    row = rows[str(product_id)]
    assert row["productid"] == first["productid"] and row["name"] == "Crimson Mug"
    assert (row["statecode"], row["statuscode"]) == ACTIVE


def test_an_archived_product_is_retired_not_deleted(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("MUG-OLD", "Old Mug")
    sb.deliver()

    sb.archive(product_id)
    sb.deliver()

    row = sb.product(product_id)
    assert (row["statecode"], row["statuscode"]) == RETIRED
    assert row["productnumber"] == "MUG-OLD"


def test_a_product_brought_back_from_the_archive_is_active_again(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("MUG-BACK", "Back Mug")
    sb.deliver()
    sb.archive(product_id)
    sb.deliver()
    assert (sb.product(product_id)["statecode"], sb.product(product_id)["statuscode"]) == RETIRED

    sb.archive(product_id, "LIVE")
    sb.deliver()

    row = sb.product(product_id)
    assert (row["statecode"], row["statuscode"]) == ACTIVE


def test_a_destroyed_product_is_retired_not_deleted(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("MUG-GONE", "Gone Mug")
    sb.deliver()

    sb.destroy(product_id)
    sb.deliver()

    assert sb.webhooks_delivered("product.destroyed")
    row = sb.product(product_id)
    assert (row["statecode"], row["statuscode"]) == RETIRED
    assert sb.dead_lettered() == []


def test_a_bad_sku_is_dead_lettered_alone_with_the_field_named(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    good = sb.create("MUG-GOOD", "Good Mug")
    nameless = sb.create(None, "No SKU Mug")  # Brightpearl allows a product without a SKU
    also_good = sb.create("MUG-FINE", "Fine Mug")
    sb.deliver()

    [created] = sb.webhooks_delivered("product.created")  # one webhook naming all three
    assert created["ids"] == f"{good}-{also_good}"
    rows = sb.products()
    assert {str(good), str(also_good)} <= set(rows) and str(nameless) not in rows
    [dead] = sb.dead_lettered()
    assert json.loads(dead.body)["data"]["ids"] == [str(nameless)]
    assert dead.dead_letter_reason == "InvalidSku"
    description = dead.dead_letter_error_description
    assert f"brightpearl record {nameless}" in description and "identity.sku is empty" in description


def test_a_sku_another_product_holds_is_dead_lettered_alone(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    holder = sb.create("MUG-TWIN", "First Mug")
    sb.deliver()
    twin = sb.create("MUG-TWIN", "Second Mug")
    other = sb.create("MUG-SOLO", "Solo Mug")
    sb.deliver()

    rows = sb.products()
    assert rows[str(holder)]["name"] == "First Mug"  # the holder is untouched
    assert str(other) in rows and str(twin) not in rows
    [dead] = sb.dead_lettered()
    assert json.loads(dead.body)["data"]["ids"] == [str(twin)]
    assert dead.dead_letter_reason == "DuplicateSku"
    description = dead.dead_letter_error_description
    assert "identity.sku" in description and "MUG-TWIN" not in description.upper()


def test_the_poller_catches_a_change_whose_webhook_was_lost(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("MUG-LOST", "Lost Mug")
    sb.deliver()
    sb.poll()  # the first poll sets the watermark (nothing new to publish beyond the overlap)

    sb.lose_next_webhooks(1)
    sb.rename(product_id, "Found Mug")
    sb.deliver()
    assert sb.product(product_id)["name"] == "Lost Mug"  # the webhook never arrived

    sb.poll()

    assert sb.product(product_id)["name"] == "Found Mug"
    assert sb.dead_lettered() == []


def test_brightpearl_unavailable_ends_in_a_retry_then_the_product_syncs(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    # more 503s than the client's own retries (2): the flow's notice is retried later
    sb.bp_sim.add_fault("503", count=3, path="product-service/product", method="GET")
    product_id = sb.create("MUG-WAIT", "Patient Mug")
    sb.deliver()
    assert str(product_id) not in sb.products()
    assert sb.bus.counts(BP_TOPIC, FLOW).scheduled == 1  # a retry copy, not a failure

    sb.run_retries()

    assert sb.product(product_id)["name"] == "Patient Mug"
    assert sb.dead_lettered() == []
    assert not [f for f in sb.bp_sim.faults if f.remaining > 0]  # the faults really fired


def test_dataverse_throttling_ends_in_a_retry_then_the_product_syncs(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    # a throttle longer than the client's own retries (2) on every call: the notice is retried
    # (on the unit group lookup: only this flow makes it; stock and prices take the notice too)
    fault = {"kind": "429", "count": 3, "retry_after": 0.01, "path_contains": "uomschedules"}
    sb.dv.call("POST", "faults", fault)
    product_id = sb.create("MUG-SLOW", "Throttled Mug")
    sb.deliver()
    assert str(product_id) not in sb.products()
    assert sb.bus.counts(BP_TOPIC, FLOW).scheduled == 1  # a retry copy, not a failure

    sb.run_retries()

    row = sb.product(product_id)
    assert row["name"] == "Throttled Mug" and (row["statecode"], row["statuscode"]) == ACTIVE
    assert sb.dead_lettered() == []
