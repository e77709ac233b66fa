"""Custom-field definitions and inline values in the simulator, through the real client:
`custom-field-meta-data` for customers, products and sales orders (reference §5.7, §6.8) and
`includeOptional=customFields` on contact and product GET (§5.1, §7.1)."""

from __future__ import annotations

from sandbox.brightpearl.app import Simulator
from sandbox.schema_seed import PAIRS, PRODUCT_PAIRS, add_brightpearl_field, brightpearl_value
from shared.brightpearl.client import BrightpearlClient
from shared.suggest.fields import brightpearl_fields


def test_customer_and_product_definitions_are_served_like_the_order_ones(
    sim: Simulator, client: BrightpearlClient
) -> None:
    segment = next(p.brightpearl for p in PAIRS if p.brightpearl and p.brightpearl.code == "PCF_SEGMENT")
    assert segment is not None
    add_brightpearl_field(sim.state, segment)
    assert client.get_all("/product-service/product/custom-field-meta-data") == []
    for pair in PRODUCT_PAIRS:
        assert pair.brightpearl is not None
        add_brightpearl_field(sim.state, pair.brightpearl, "product")

    customers = client.get_all("/contact-service/customer/custom-field-meta-data")
    products = client.get_all("/product-service/product/custom-field-meta-data")
    orders = client.get_all("/order-service/sale/custom-field-meta-data")

    by_code = {f.code: f for f in brightpearl_fields(customers)}
    assert set(by_code) == {"PCF_LOYALTY", "PCF_NOTES", "PCF_SEGMENT"}
    assert by_code["PCF_SEGMENT"].options == ((11, "Gold"), (12, "Silver"), (13, "Bronze"))
    assert [f.code for f in brightpearl_fields(products)] == [
        p.brightpearl.code for p in PRODUCT_PAIRS if p.brightpearl
    ]
    assert {f.code for f in brightpearl_fields(orders)} == {"PCF_GIFTMSG", "PCF_RUSH", "PCF_SOURCE"}
    [one] = client.get_by_ids("/contact-service/customer/custom-field-meta-data/{ids}", [3])
    assert one["code"] == "PCF_SEGMENT"


def test_contact_and_product_get_carry_custom_fields_when_asked(
    sim: Simulator, client: BrightpearlClient
) -> None:
    [contact_id] = sim.state.seed(contacts=1)["contacts"]
    client.patch_contact_custom_fields(
        contact_id, [{"op": "add", "path": "/PCF_LOYALTY", "value": "Gold member"}]
    )
    [product_id] = sim.state.seed(products=1)["products"]
    origin = PRODUCT_PAIRS[0].brightpearl
    assert origin is not None
    add_brightpearl_field(sim.state, origin, "product")
    sim.state.product_custom_fields[product_id] = {origin.code: brightpearl_value(origin, "China")}

    [plain] = client.get_by_ids("/contact-service/contact/{ids}", [contact_id])
    [with_fields] = client.get_by_ids(
        "/contact-service/contact/{ids}", [contact_id], params={"includeOptional": "customFields"}
    )
    [product] = client.get_by_ids(
        "/product-service/product/{ids}", [product_id], params={"includeOptional": "customFields"}
    )

    assert "customFields" not in plain and with_fields["customFields"] == {"PCF_LOYALTY": "Gold member"}
    assert product["customFields"] == {"PCF_ORIGIN": "China"}
    assert client.get_by_ids("/contact-service/customer/custom-field-meta-data/{ids}", [99]) == []
