"""What a Dynamics order carries reaches the Brightpearl order whole (issue 13, Build 2): its
lines (existing products by SKU and a write-in as a free-text row), line and order-level
discounts (spread over the lines, or one discount row), tax through the mapping's tax table,
the freight as the shipping row, the billto/shipto addresses as the billing and delivery
parties, the shipping method when mapped, and its currency; and Brightpearl's totals equal
the Dynamics order's computed totals (net, tax, total)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.store import AuditResult
from tests.e2e.customers.conftest import NEVER
from tests.e2e.orders.conftest import PRICE_LIST, OrderSandbox, order_mapping
from tests.e2e.products.conftest import product_mapping

pytestmark = pytest.mark.timeout(300)

DHL, BP_DHL = 2, 7  # Dynamics shippingmethodcode 2 (DHL) -> Brightpearl shippingMethodId 7
CENT = Decimal("0.01")


@pytest.fixture
def sandbox_settings(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The shipped mapping with DHL mapped; `discount: row` (indirect parameter) takes the
    order-level discount as one row instead of spreading it."""
    edits = [("shipping_methods: {}", f"shipping_methods: {{{DHL}: {BP_DHL}}}")]
    if getattr(request, "param", None) == "row":
        edits += [
            ("order_level: spread", "order_level: row"),
            ("  nominal_code: null\n  tax_code", "  nominal_code: '4010'\n  tax_code"),
        ]
    return {
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path, *edits)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "ORDERS_DATAVERSE_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
    }


BILL_TO = {
    "billto_name": "Ada Buyer",
    "billto_line1": "1 Ledger Lane",
    "billto_line2": "Unit 4",
    "billto_line3": "Old Mill",
    "billto_city": "Leeds",
    "billto_stateorprovince": "West Yorkshire",
    "billto_postalcode": "LS1 4AP",
    "billto_country": "United Kingdom",
    "billto_telephone": "0113 496 0000",
}
SHIP_TO = {
    "shipto_name": "Ada at Work",
    "shipto_line1": "9 Dock Street",
    "shipto_city": "Hull",
    "shipto_postalcode": "HU1 1AA",
    "shipto_country": "France",
}


def raise_full_order(box: OrderSandbox, **header: Any) -> str:
    """MUG-1 x2 (5.00 off the line, 20% tax), TEE-1 x1 (5% tax), a write-in "Gift wrap" at 3.00
    (zero rated), 4.95 freight, 2.00 + 10% off the order, DHL, both addresses; submitted."""
    order = box.raise_order(
        [],
        submit=False,
        freightamount=4.95,
        discountamount=2.00,
        discountpercentage=10,
        shippingmethodcode=DHL,
        **BILL_TO,
        **SHIP_TO,
        **header,
    )
    box.add_line(order, "MUG-1", 2, manualdiscountamount=5.00, tax=4.00)  # 25.00 - 5.00 = 20.00
    box.add_line(order, "TEE-1", 1, tax=1.00)  # 20.00
    box.dv.crm(
        "POST",
        "salesorderdetails",
        {
            "salesorderid@odata.bind": f"/salesorders({order})",
            "isproductoverridden": True,
            "productdescription": "Gift wrap",
            "priceperunit": 3.00,
            "quantity": 1,
            "tax": 0,
        },
    )
    box.submit(order)
    return order


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def rows_of(created: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The order's rows by product SKU, or by name for free-text rows (each name once)."""
    rows: dict[str, dict[str, Any]] = {}
    for row in created["orderRows"].values():
        key = row["productSku"] or row["productName"]
        assert key not in rows, f"two rows named {key}"
        rows[key] = row
    return rows


def net(row: dict[str, Any]) -> Decimal:
    return Decimal(str(row["rowValue"]["rowNet"]["value"]))


def assert_totals_equal(box: OrderSandbox, order: str, created: dict[str, Any]) -> None:
    """Brightpearl's order totals are the Dynamics order's: net (lines less discounts plus
    freight), tax, and the total."""
    dv = box.dv_order(order)
    total = created["totalValue"]
    dv_net = money(dv["totalamountlessfreight"]) + money(dv.get("freightamount") or 0)
    assert money(total["net"]) == dv_net
    assert money(total["taxAmount"]) == money(dv["totaltax"])
    assert money(total["total"]) == money(dv["totalamount"])
    assert money(sum((net(r) for r in rows_of(created).values()), Decimal(0))) == dv_net


def test_every_part_of_an_order_reaches_brightpearl_with_equal_totals(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    order = raise_full_order(box)
    box.work()

    created = box.bp_order_of(order)
    dv = box.dv_order(order)
    # Dynamics: lines 20.00 + 20.00 + 3.00, less 2.00 + 10% (6.30), freight 4.95, tax 5.00
    assert money(dv["totalamount"]) == Decimal("46.65")
    rows = rows_of(created)
    assert set(rows) == {"MUG-1", "TEE-1", "Gift wrap", "Shipping"}
    mug, tee, wrap, shipping = (rows[k] for k in ("MUG-1", "TEE-1", "Gift wrap", "Shipping"))
    assert mug["productId"] == box.shop.bp_products["MUG-1"] and mug["productSku"] == "MUG-1"
    assert Decimal(mug["quantity"]["magnitude"]) == 2
    assert mug["rowValue"]["taxCode"] == "T20" and money(mug["rowValue"]["rowTax"]["value"]) == Decimal(
        "4.00"
    )
    assert tee["productId"] == box.shop.bp_products["TEE-1"]
    assert tee["rowValue"]["taxCode"] == "T5" and money(tee["rowValue"]["rowTax"]["value"]) == Decimal("1.00")
    assert wrap["productId"] == 0 and wrap["productName"] == "Gift wrap"  # the write-in: a free-text row
    assert wrap["rowValue"]["taxCode"] == "T0"
    # the order-level discount (2.00 + 10% of 43.00 = 6.30) taken off the lines in proportion
    assert sum((net(r) for r in (mug, tee, wrap)), Decimal(0)) == Decimal("43.00") - Decimal("6.30")
    assert net(mug) < Decimal("20.00") and net(tee) < Decimal("20.00") and net(wrap) < Decimal("3.00")
    assert shipping["productName"] == "Shipping" and net(shipping) == Decimal("4.95")
    assert shipping["rowValue"]["taxCode"] == "T20"
    assert_totals_equal(box, order, created)

    assert created["currency"]["orderCurrencyCode"] == "GBP"
    assert created["delivery"]["shippingMethodId"] == BP_DHL
    assert created["reference"] == dv["ordernumber"]
    billing, delivery = created["parties"]["billing"], created["parties"]["delivery"]
    assert billing["contactId"] == box.shop.bp_customer
    assert billing["addressFullName"] == "Ada Buyer"
    assert billing["addressLine1"] == "1 Ledger Lane"
    assert billing["addressLine2"] == "Unit 4, Old Mill"  # line3 has no slot of its own: it joins line 2
    assert billing["addressLine3"] == "Leeds" and billing["addressLine4"] == "West Yorkshire"
    assert billing["postalCode"] == "LS1 4AP" and billing["countryIsoCode"] == "GB"
    assert billing["telephone"] == "0113 496 0000"
    assert delivery["addressFullName"] == "Ada at Work" and delivery["addressLine1"] == "9 Dock Street"
    assert delivery["addressLine3"] == "Hull" and delivery["postalCode"] == "HU1 1AA"
    assert delivery["countryIsoCode"] == "FR"
    # synced once (echoes of the write-back are skipped as unchanged; the fake clock may give
    # them the same audit time as the sync)
    assert [a for a in box.audited(order) if a[0] is not AuditResult.SKIPPED] == [(AuditResult.SYNCED, None)]


@pytest.mark.parametrize("sandbox_settings", ["row"], indirect=True)
def test_the_order_discount_as_one_row_keeps_the_totals(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    order = raise_full_order(box)
    box.work()

    created = box.bp_order_of(order)
    rows = rows_of(created)
    assert set(rows) == {"MUG-1", "TEE-1", "Gift wrap", "Order discount", "Shipping"}
    mug, tee, wrap, discount, shipping = (
        rows[k] for k in ("MUG-1", "TEE-1", "Gift wrap", "Order discount", "Shipping")
    )
    assert (net(mug), net(tee), net(wrap)) == (Decimal("20.00"), Decimal("20.00"), Decimal("3.00"))
    assert discount["productName"] == "Order discount" and net(discount) == Decimal("-6.30")
    assert discount["nominalCode"] == "4010"
    assert shipping["productName"] == "Shipping"
    assert_totals_equal(box, order, created)


def test_an_unmapped_shipping_method_sends_none_and_the_currency_is_the_orders(
    orders_sandbox: OrderSandbox,
) -> None:
    """shippingmethodcode 4 (UPS) is not in the mapping: the order goes without a shipping
    method. An order in euros (Retail EUR price list) is a euro order in Brightpearl."""
    box = orders_sandbox
    refs = box.shop.refs
    header = {
        "shippingmethodcode": 4,
        "pricelevelid@odata.bind": f"/pricelevels({refs.price_lists['Retail EUR']})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies['EUR']})",
    }
    assert PRICE_LIST != "Retail EUR"
    order = box.raise_order([], write_ins=[("Engraving", Decimal("7.50"), 2)], **header)
    box.work()

    created = box.bp_order_of(order)
    assert created["currency"]["orderCurrencyCode"] == "EUR"
    assert created["delivery"]["shippingMethodId"] == 0
    [row] = rows_of(created).values()
    assert row["productName"] == "Engraving" and net(row) == Decimal("15.00")
    assert_totals_equal(box, order, created)
