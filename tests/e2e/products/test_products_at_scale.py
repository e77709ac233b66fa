"""Many products at once, and a reference Dynamics lacks for a while: a burst of new products
(one webhook naming them all) reaches Dynamics in a few calls; a long name is cut to what
Dynamics holds, not refused; a product waits (retried, never dead-lettered) while the configured
default price list is missing in Dynamics and syncs once it exists again; without the
configured unit group a product is dead-lettered naming it."""

from __future__ import annotations

from tests.e2e.products.conftest import ACTIVE, PRICE_LIST, ProductSandbox


def test_a_burst_of_new_products_reaches_dynamics_in_few_calls(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    state = sb.bp_sim.state
    body = {"brandId": 1, "stock": {"stockTracked": True}}
    ids = [
        state.create_product(
            {**body, "identity": {"sku": f"BULK-{n:04d}"}, "salesChannels": [{"productName": f"Bulk {n}"}]}
        )
        for n in range(250)
    ]  # a bulk import in Brightpearl: product.created for each, one id set per webhook window
    before = sb.product_gets()
    sb.deliver(timeout=120)

    rows = sb.products()
    assert all(str(i) in rows for i in ids) and len(rows) == 250
    assert {(r["statecode"], r["statuscode"]) for r in rows.values()} == {ACTIVE}
    assert sb.dead_lettered() == []
    # product GETs by id set (200 a call), one per notice of 100 ids: a handful, not 250
    assert sb.product_gets() - before <= 5


def test_a_long_name_is_cut_to_what_dynamics_holds(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    name = " ".join(["Hand-thrown stoneware serving bowl"] * 5)  # 174 characters
    product_id = sb.create("BOWL-LONG", name)
    sb.deliver()

    row = sb.product(product_id)
    assert row["name"] == name[:100].rstrip()  # cut at 100 (a warning), then trimmed
    assert sb.dead_lettered() == []


def test_a_missing_default_price_list_does_not_lose_the_product(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    sb.dv.crm("DELETE", f"pricelevels({sb.refs.price_lists[PRICE_LIST]})")  # an administrator deletes it
    product_id = sb.create("CUP-1", "Tea Cup")
    sb.deliver()  # the product waits (retried, never dead-lettered) until the list exists again:
    sb.run_retries()  # the prices flow, which exports Retail GBP, creates it

    [price_list] = [r for r in sb.dv.rows("pricelevel") if r.get("name") == PRICE_LIST]  # one, not two
    row = sb.product(product_id)
    assert row["pricelevelid"]["id"] == price_list["pricelevelid"]
    assert (row["statecode"], row["statuscode"]) == ACTIVE
    assert sb.dead_lettered() == []


def test_a_product_whose_unit_dynamics_lacks_is_dead_lettered_naming_it(
    products_sandbox: ProductSandbox,
) -> None:
    sb = products_sandbox
    sb.dv.crm("DELETE", f"uomschedules({sb.refs.unit_group})")  # the configured unit group is gone
    product_id = sb.create("SPOON-1", "Tea Spoon")
    sb.deliver()

    assert str(product_id) not in sb.products()
    [dead] = sb.dead_lettered()
    assert dead.dead_letter_reason == "UnitNotResolved"
    description = dead.dead_letter_error_description
    assert "unit_group.name" in description and "no unit group named 'Catalogue'" in description
