"""Products meeting what Dynamics already has and what else Brightpearl announces: a product a
Dynamics user created under the same SKU is adopted (one product, linked); an organisation that
creates products Active needs no publishing; a changed SKU changes the product number in place;
a stock correction's webhook does not wake the products flow; a product created and destroyed
before it reached Dynamics completes without a trace in Dynamics; a webhook Brightpearl sends
twice is synced once."""

from __future__ import annotations

from shared.store import AuditResult
from tests.e2e.products.conftest import ACTIVE, DRAFT, ProductSandbox


def test_a_product_dynamics_already_has_by_sku_is_adopted_not_duplicated(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    refs = sb.refs
    out = sb.dv.crm(
        "POST",
        "products",
        {
            "name": "Teapot (entered by hand)",
            "productnumber": "POT-1",
            "defaultuomscheduleid@odata.bind": f"/uomschedules({refs.unit_group})",
            "defaultuomid@odata.bind": f"/uoms({refs.base_unit})",
        },
    )
    assert out["status"] < 300
    [before] = [r for r in sb.dv.rows("product") if r.get("productnumber") == "POT-1"]
    assert (before["statecode"], before["statuscode"]) == DRAFT  # as the organisation creates them

    product_id = sb.create("POT-1", "Teapot")
    sb.deliver()

    rows = [r for r in sb.dv.rows("product") if r.get("productnumber") == "POT-1"]
    assert len(rows) == 1 and rows[0]["productid"] == before["productid"]
    assert rows[0]["bpi_brightpearlid"] == str(product_id) and rows[0]["name"] == "Teapot"
    assert (rows[0]["statecode"], rows[0]["statuscode"]) == ACTIVE
    assert sb.dead_lettered() == []


def test_an_organisation_creating_products_active_needs_no_publishing(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    [org] = sb.dv.rows("organization")
    sb.dv.crm(
        "PATCH",
        f"organizations({org['organizationid']})",
        {"createproductswithoutparentinactivestate": True},
    )
    product_id = sb.create("LAMP-1", "Desk Lamp")
    sb.deliver()

    row = sb.product(product_id)
    assert (row["statecode"], row["statuscode"]) == ACTIVE
    [entry] = sb.audit(product_id)
    assert entry.result is AuditResult.SYNCED and "published" not in entry.description


def test_a_changed_sku_changes_the_product_number_in_place(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("JUG-OLD", "Milk Jug")
    sb.deliver()
    first = sb.product(product_id)

    sb.bp.request("PUT", f"/product-service/product/{product_id}", json={"identity": {"sku": "JUG-NEW"}})
    sb.deliver()

    rows = sb.products()
    assert len(rows) == 1
    assert rows[str(product_id)]["productid"] == first["productid"]
    assert rows[str(product_id)]["productnumber"] == "JUG-NEW"


def test_a_stock_correction_webhook_does_not_wake_the_products_flow(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("BOWL-1", "Fruit Bowl")
    sb.deliver()
    before = sb.product(product_id)

    sb.bp.request(
        "POST",
        "/warehouse-service/warehouse/2/stock-correction",
        json={
            "corrections": [
                {"productId": product_id, "quantity": 5, "reason": "Found", "locationId": 2,
                 "cost": {"currency": "GBP", "value": 1.5}}
            ]
        },
    )  # fmt: skip
    sb.deliver()

    assert sb.webhooks_delivered("product.modified.on-hand-modified")
    after = sb.product(product_id)
    for column in ("name", "productnumber", "statecode", "statuscode", "description"):
        assert after[column] == before[column]
    # a stock event is the product's stock, not its record: the products flow is not woken
    # (shared/routing.py EVENT_ENTITIES; the stock flow takes it once wired)
    assert sb.audited(product_id) == [AuditResult.SYNCED]
    assert sb.dead_lettered() == []


def test_a_product_destroyed_before_it_reached_dynamics_leaves_nothing_there(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    sb.lose_next_webhooks(1)  # product.created never arrives
    product_id = sb.create("GONE-1", "Short-lived Mug")
    sb.deliver()
    sb.destroy(product_id)
    sb.deliver()

    assert str(product_id) not in sb.products()
    assert sb.dead_lettered() == []
    [entry] = sb.audit(product_id)
    assert "no longer exists" in entry.description


def test_a_webhook_delivered_twice_is_synced_once(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    product_id = sb.create("TRAY-1", "Serving Tray")
    sb.deliver()
    sb.bp_sim.set_webhook_faults(duplicate=1)  # Brightpearl sends the next webhook twice

    sb.rename(product_id, "Oak Serving Tray")
    sb.deliver()

    assert len(sb.webhooks_delivered("product.modified")) == 2
    assert sb.product(product_id)["name"] == "Oak Serving Tray"
    # the second copy has the same message id: the topic's duplicate detection drops it
    assert sb.audited(product_id) == [AuditResult.SYNCED, AuditResult.SYNCED]
