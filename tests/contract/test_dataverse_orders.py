"""Contract: the Dataverse simulator's orders against reference dataverse-api.md, over HTTP
through the real client (shared/dataverse/client.py).

§10.5 salesorder (totals, states, FulfillSalesOrder/CancelSalesOrder with OrderClose, "Only
active orders can be edited."), §10.6 salesorderdetail (existing product vs write-in lines,
price list and unit, `pricingerrorcode` 2/10/11), §10.9 price list items, §10.4 opportunity
with its lines and WinOpportunity, the integration columns and key on salesorder (contracts,
issue 13), $batch change sets (§4), change tracking (§6) and webhooks (§7) on orders and lines.
"""

# ruff: noqa: F811 - pytest fixtures imported from simfixtures are parameters here
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.catalogue_solution import CatalogueRefs, seed_catalogue
from shared.dataverse import odata
from shared.dataverse.change_tracking import ChangeTrackingReader
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import DataverseError
from shared.dataverse.models import BatchOperation
from tests.contract.dataverse.simfixtures import (  # noqa: F401 - client, dataverse_server, sim: fixtures
    MemoryCursorStore,
    ServeApp,
    client,
    dataverse_server,
    sim,
)
from tests.contract.test_dataverse_catalogue import Receiver, product_body, receiver, register_step  # noqa: F401

ONLY_ACTIVE = "Only active orders can be edited."


@dataclass
class Shop:
    refs: CatalogueRefs
    customer: str
    price_list: str  # Retail GBP
    product: str  # MUG-1, 12.50 each in the price list
    unpriced: str  # TEE-1, not in any price list
    other_unit: str  # a unit of another unit group


@pytest.fixture
def shop(client: DataverseClient) -> Shop:
    refs = seed_catalogue(client)
    price_list = refs.price_lists["Retail GBP"]
    product = client.create("products", product_body(refs, "MUG-1", price=20))
    unpriced = client.create("products", product_body(refs, "TEE-1"))
    client.create(
        "productpricelevels",
        {
            "pricelevelid@odata.bind": f"/pricelevels({price_list})",
            "productid@odata.bind": f"/products({product})",
            "uomid@odata.bind": f"/uoms({refs.base_unit})",
            "pricingmethodcode": 1,
            "amount": 12.5,
        },
    )
    group = client.create("uomschedules", {"name": "Weight", "baseuomname": "kg"})
    other_unit = next(
        iter(client.query("uoms", select=["name"], filter=odata.lookup_eq("uomscheduleid", group)))
    )
    customer = client.create("contacts", {"firstname": "Ada", "lastname": "Buyer"})
    return Shop(refs, customer, price_list, product, unpriced, other_unit.id)


def order_body(shop: Shop, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Web order",
        "customerid_contact@odata.bind": f"/contacts({shop.customer})",
        "pricelevelid@odata.bind": f"/pricelevels({shop.price_list})",
        **extra,
    }


def product_line(shop: Shop, order: str, product: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "salesorderid@odata.bind": f"/salesorders({order})",
        "productid@odata.bind": f"/products({product or shop.product})",
        "uomid@odata.bind": f"/uoms({shop.refs.base_unit})",
        "quantity": 2,
        **extra,
    }


def write_in(order: str, **extra: Any) -> dict[str, Any]:
    return {
        "salesorderid@odata.bind": f"/salesorders({order})",
        "isproductoverridden": True,
        "productdescription": "Gift wrap",
        "priceperunit": 3,
        "quantity": 1,
        **extra,
    }


TOTALS = [
    "totallineitemamount",
    "totaldiscountamount",
    "totalamountlessfreight",
    "totaltax",
    "totalamount",
    "totalamount_base",
]


def totals(client: DataverseClient, order: str) -> dict[str, Any]:
    row = client.get("salesorders", order, select=TOTALS)
    return {k: row[k] for k in TOTALS}


def state_of(client: DataverseClient, entity_set: str, key: Any) -> tuple[int, int]:
    row = client.get(entity_set, key, select=["statecode", "statuscode"])
    return row["statecode"], row["statuscode"]


def refused(call: Any, *fragments: str, status: int = 400) -> DataverseError:
    with pytest.raises(DataverseError) as caught:
        call()
    assert caught.value.status == status, caught.value
    assert caught.value.code, "the error body carries a code"
    for fragment in fragments:
        assert fragment in caught.value.server_message, caught.value.server_message
    return caught.value


def fulfil(client: DataverseClient, order: str, status: int = 100001) -> None:
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
        "salesorderid@odata.bind": f"/salesorders({order})",
        "subject": "Shipped by Brightpearl",
    }
    client.call_action("FulfillSalesOrder", {"OrderClose": close, "Status": status}, bound_to="salesorders")


def cancel(client: DataverseClient, order: str, status: int = 4) -> None:
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
        "salesorderid@odata.bind": f"/salesorders({order})",
        "subject": "Cancelled",
    }
    client.call_action("CancelSalesOrder", {"OrderClose": close, "Status": status})


# --- §10.6 pricing and §10.5 totals --------------------------------------------------------------


def test_lines_are_priced_from_the_price_list_and_totals_follow_every_write(client, shop):
    order = client.create("salesorders", order_body(shop, freightamount=5, discountpercentage=10))
    listed = client.create("salesorderdetails", product_line(shop, order, manualdiscountamount=1, tax=4.8))
    wrapped = client.create("salesorderdetails", write_in(order))
    line = client.get("salesorderdetails", listed, select=["priceperunit", "baseamount", "extendedamount"])
    assert (line["priceperunit"], line["baseamount"], line["extendedamount"]) == (12.5, 25.0, 28.8)
    # lines 25 - 1 + 3 = 27; discount 10 % = 2.7; pre-freight 24.3; + freight 5 + tax 4.8
    assert totals(client, order) == {
        "totallineitemamount": 27.0,
        "totaldiscountamount": 2.7,
        "totalamountlessfreight": 24.3,
        "totaltax": 4.8,
        "totalamount": 34.1,
        "totalamount_base": 34.1,
    }

    client.update("salesorders", order, {"freightamount": 7.5, "discountamount": 0.3})  # header edits
    assert totals(client, order)["totalamount"] == 36.3  # 27 - (0.3 + 2.7) + 7.5 + 4.8

    client.update("salesorderdetails", listed, {"ispriceoverridden": True, "priceperunit": 10})
    assert client.get("salesorderdetails", listed, select=["baseamount"])["baseamount"] == 20.0
    client.delete("salesorderdetails", wrapped)
    assert totals(client, order)["totallineitemamount"] == 19.0


def test_percent_of_list_price_and_order_currency_from_the_price_list(client, shop):
    eur_list = shop.refs.price_lists["Retail EUR"]
    client.create(
        "productpricelevels",
        {
            "pricelevelid@odata.bind": f"/pricelevels({eur_list})",
            "productid@odata.bind": f"/products({shop.product})",
            "uomid@odata.bind": f"/uoms({shop.refs.base_unit})",
            "pricingmethodcode": 2,  # Percent of List: 80 % of the product's price 20
            "percentage": 80,
        },
    )
    order = client.create(
        "salesorders", order_body(shop, **{"pricelevelid@odata.bind": f"/pricelevels({eur_list})"})
    )
    header = client.get("salesorders", order, select=["_transactioncurrencyid_value", "exchangerate"])
    assert header.lookup("transactioncurrencyid") == shop.refs.currencies["EUR"]
    line = client.create("salesorderdetails", product_line(shop, order, quantity=1))
    assert client.get("salesorderdetails", line, select=["priceperunit"])["priceperunit"] == 16.0
    assert totals(client, order)["totalamount_base"] == round(16.0 / 1.17, 2)


def test_product_lines_need_the_price_list_and_a_unit_of_the_products_group(client, shop):
    order = client.create("salesorders", order_body(shop))
    unit = f"/uoms({shop.refs.base_unit})"
    refused(
        lambda: client.create("salesorderdetails", product_line(shop, order, shop.unpriced)),
        "TEE-1",
        "not in the price list",
        "pricingerrorcode 11",
    )
    no_unit = product_line(shop, order)
    del no_unit["uomid@odata.bind"]
    refused(lambda: client.create("salesorderdetails", no_unit), "'uomid'", "pricingerrorcode 10")
    foreign = product_line(shop, order, **{"uomid@odata.bind": f"/uoms({shop.other_unit})"})
    refused(lambda: client.create("salesorderdetails", foreign), "unit group", "MUG-1", "pricingerrorcode 10")
    unlisted = client.create(
        "salesorders", {k: v for k, v in order_body(shop).items() if "pricelevel" not in k}
    )
    refused(
        lambda: client.create("salesorderdetails", product_line(shop, unlisted)),
        "'pricelevelid'",
        "pricingerrorcode 2",
    )
    refused(
        lambda: client.create("salesorderdetails", write_in(order, productdescription=None)),
        "'productdescription'",
    )
    refused(
        lambda: client.create(
            "salesorderdetails", write_in(order, **{"productid@odata.bind": f"/products({shop.product})"})
        ),
        "write-in",
        "'productid'",
    )
    bare = {"salesorderdetailname": "?", "salesorderid@odata.bind": f"/salesorders({order})", "quantity": 1}
    refused(lambda: client.create("salesorderdetails", bare), "'productid'", "isproductoverridden")
    assert client.count("salesorderdetails") == 0  # nothing half-written
    line = client.create("salesorderdetails", product_line(shop, order))
    refused(
        lambda: client.update(
            "salesorderdetails",
            line,
            {"uomid@odata.bind": unit.replace(shop.refs.base_unit, shop.other_unit)},
        ),
        "pricingerrorcode 10",
    )


def test_a_change_set_with_an_unpriced_line_is_rolled_back(client, shop):
    ops = [
        BatchOperation(
            "POST", "salesorders", order_body(shop, salesorderid="5a1e0000-0000-0000-0000-000000000001")
        ),
        BatchOperation(
            "POST", "salesorderdetails", product_line(shop, "5a1e0000-0000-0000-0000-000000000001")
        ),
        BatchOperation(
            "POST",
            "salesorderdetails",
            product_line(shop, "5a1e0000-0000-0000-0000-000000000001", shop.unpriced),
        ),
    ]
    outcome = client.execute_batch(ops, change_set=True)
    assert all(not r.ok for r in outcome) and outcome[0].status == 400
    assert client.count("salesorders") == 0 and client.count("salesorderdetails") == 0


# --- §10.5 states and actions --------------------------------------------------------------------


def test_only_active_orders_and_their_lines_can_be_edited(client, shop):
    order = client.create("salesorders", order_body(shop))
    line = client.create("salesorderdetails", product_line(shop, order))
    assert state_of(client, "salesorders", order) == (0, 1)  # Active, New
    client.update("salesorders", order, {"statecode": 1})  # submit: the state's default status
    assert state_of(client, "salesorders", order) == (1, 3)  # Submitted, In Progress

    refused(lambda: client.update("salesorders", order, {"name": "late"}), ONLY_ACTIVE)
    refused(lambda: client.update("salesorderdetails", line, {"quantity": 5}), ONLY_ACTIVE)
    refused(lambda: client.create("salesorderdetails", write_in(order)), ONLY_ACTIVE)
    refused(lambda: client.delete("salesorderdetails", line), ONLY_ACTIVE)
    refused(
        lambda: client.update("salesorders", order, {"statecode": 1, "statuscode": 4}), "not a valid status"
    )
    assert client.get("salesorderdetails", line, select=["quantity"])["quantity"] == 2

    client.update("salesorders", order, {"statecode": 0, "statuscode": 2})  # back to Active, Pending
    client.update("salesorderdetails", line, {"quantity": 3})
    assert totals(client, order)["totalamount"] == 37.5


def test_fulfil_and_cancel_close_an_order_for_good(client, shop):
    order = client.create("salesorders", order_body(shop))
    client.create("salesorderdetails", product_line(shop, order))
    refused(lambda: client.update("salesorders", order, {"statecode": 3}), "FulfillSalesOrderRequest")
    refused(lambda: fulfil(client, order, status=4), "not a valid status code")
    with pytest.raises(DataverseError) as unbound:  # FulfillSalesOrder is bound to the collection
        client.call_action("FulfillSalesOrder", {"Status": 100001})
    assert unbound.value.status == 404

    client.update("salesorders", order, {"statecode": 1})
    fulfil(client, order, status=100002)
    assert state_of(client, "salesorders", order) == (3, 100002)  # Fulfilled, Partial
    closes = list(client.query("orderCloses", select=["subject", "_salesorderid_value"]))
    assert [(c["subject"], c.lookup("salesorderid")) for c in closes] == [("Shipped by Brightpearl", order)]
    refused(lambda: fulfil(client, order), "Fulfilled", "cannot be closed")
    refused(lambda: cancel(client, order), "Fulfilled")
    refused(lambda: client.update("salesorders", order, {"statecode": 0, "statuscode": 1}), "Fulfilled")
    refused(lambda: client.update("salesorders", order, {"freightamount": 1}), ONLY_ACTIVE)

    other = client.create("salesorders", order_body(shop))
    cancel(client, other, status=-1)  # the Canceled state's default status
    assert state_of(client, "salesorders", other) == (2, 4)  # Canceled, No Money
    refused(lambda: client.update("salesorders", other, {"statecode": 0}), "Canceled")
    refused(lambda: client.create("salesorderdetails", write_in(other)), ONLY_ACTIVE)

    invoiced = client.create("salesorders", order_body(shop))
    client.update("salesorders", invoiced, {"statecode": 4})
    assert state_of(client, "salesorders", invoiced) == (4, 100003)
    refused(lambda: cancel(client, invoiced), "Invoiced")


def test_integration_columns_and_key_on_orders(client, shop):
    created = client.upsert("salesorders", {"bpi_brightpearlid": "BP-77"}, order_body(shop))
    client.update("salesorders", {"bpi_brightpearlid": "BP-77"}, {"bpi_sendtobrightpearl": True})
    row = client.get("salesorders", created.id, select=["bpi_brightpearlid", "bpi_sendtobrightpearl"])
    assert (row["bpi_brightpearlid"], row["bpi_sendtobrightpearl"]) == ("BP-77", True)
    refused(lambda: client.create("salesorders", order_body(shop, bpi_brightpearlid="BP-77")), status=412)


# --- §10.4 opportunity ---------------------------------------------------------------------------


def test_opportunity_products_are_priced_and_won_with_an_opportunity_close(client, shop):
    opp = client.create(
        "opportunities",
        {
            "name": "Trade deal",
            "customerid_contact@odata.bind": f"/contacts({shop.customer})",
            "pricelevelid@odata.bind": f"/pricelevels({shop.price_list})",
        },
    )
    line = {
        "opportunityid@odata.bind": f"/opportunities({opp})",
        "productid@odata.bind": f"/products({shop.product})",
        "uomid@odata.bind": f"/uoms({shop.refs.base_unit})",
        "quantity": 4,
    }
    client.create("opportunityproducts", line)
    client.create(
        "opportunityproducts",
        {
            "opportunityid@odata.bind": f"/opportunities({opp})",
            "isproductoverridden": True,
            "productdescription": "Setup",
            "priceperunit": 10,
            "quantity": 1,
        },
    )
    refused(
        lambda: client.create(
            "opportunityproducts", {**line, "productid@odata.bind": f"/products({shop.unpriced})"}
        ),
        "pricingerrorcode 11",
    )
    assert client.get("opportunities", opp, select=["totalamount"])["totalamount"] == 60.0
    lines = client.query(
        "opportunityproducts", select=["priceperunit"], filter=odata.lookup_eq("opportunityid", opp)
    )
    assert sorted(r["priceperunit"] for r in lines) == [10.0, 12.5]

    refused(lambda: client.update("opportunities", opp, {"statecode": 1}), "WinOpportunityRequest")
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.opportunityclose",
        "opportunityid@odata.bind": f"/opportunities({opp})",
        "subject": "Won",
        "actualrevenue": 60,
    }
    client.call_action("WinOpportunity", {"OpportunityClose": close, "Status": 3})
    assert state_of(client, "opportunities", opp) == (1, 3)
    closes = list(client.query("opportunitycloses", select=["actualrevenue", "_opportunityid_value"]))
    assert [(c["actualrevenue"], c.lookup("opportunityid")) for c in closes] == [(60.0, opp)]
    refused(
        lambda: client.call_action("WinOpportunity", {"OpportunityClose": close, "Status": 3}),
        "Won",
        "not open",
    )
    refused(
        lambda: client.call_action("LoseOpportunity", {"OpportunityClose": close, "Status": 4}), "not open"
    )


# --- §6 change tracking and §7 webhooks ----------------------------------------------------------


def test_change_tracking_on_orders_and_lines(client, shop):
    cursors = MemoryCursorStore()
    orders = ChangeTrackingReader(client, cursors, "salesorders", select=["statecode", "totalamount"])
    lines = ChangeTrackingReader(client, cursors, "salesorderdetails", select=["quantity"])
    order = client.create("salesorders", order_body(shop))
    for reader in (orders, lines):
        reader.advance(reader.read())
    line = client.create("salesorderdetails", product_line(shop, order))
    client.update("salesorders", order, {"statecode": 1})
    assert [(r.id, r["statecode"], r["totalamount"]) for r in orders.read().upserts] == [(order, 1, 25.0)]
    assert [(r.id, r["quantity"]) for r in lines.read().upserts] == [(line, 2)]


def test_webhooks_for_order_submit_fulfil_and_line_changes(sim, client, shop, receiver):
    rec, url = receiver
    endpoint = client.create("serviceendpoints", {"name": "orders", "url": url, "contract": 8, "authtype": 4})
    register_step(client, endpoint, "salesorder", "Update", "statecode,bpi_sendtobrightpearl")
    register_step(client, endpoint, "salesorderdetail", "Create", None)
    register_step(client, endpoint, "salesorderdetail", "Update", "quantity")

    order = client.create("salesorders", order_body(shop))
    line = client.create("salesorderdetails", product_line(shop, order))
    client.update("salesorderdetails", line, {"quantity": 3})
    client.update("salesorders", order, {"name": "not a filtered column"})
    client.update("salesorders", order, {"statecode": 1})
    fulfil(client, order)
    sim.admin.drain()

    seen = [
        (h["x-ms-dynamics-entity-name"], h["x-ms-dynamics-request-name"], b["PrimaryEntityId"])
        for h, b in rec.posts
    ]
    assert seen == [
        ("salesorderdetail", "Create", line),
        ("salesorderdetail", "Update", line),
        ("salesorder", "Update", order),
        ("salesorder", "Update", order),
    ]
    target = dict(
        (a["key"], a["value"]) for a in rec.posts[-1][1]["InputParameters"][0]["value"]["Attributes"]
    )
    assert target["statecode"]["Value"] == 3  # fulfilled, an OptionSetValue in the context


def test_lines_are_numbered_in_the_order_they_were_added(client, shop):
    """sequencenumber: a new line goes last (Dynamics numbers the lines; the form reorders
    them); a number given explicitly is kept. The orders flow sends rows in this order."""
    order = client.create("salesorders", order_body(shop))
    first = client.create("salesorderdetails", write_in(order, productdescription="First"))
    second = client.create("salesorderdetails", product_line(shop, order))
    third = client.create("salesorderdetails", write_in(order, productdescription="Third"))
    pinned = client.create(
        "salesorderdetails", write_in(order, productdescription="Pinned", sequencenumber=9)
    )
    numbers = {
        key: client.get("salesorderdetails", key, select=["sequencenumber"])["sequencenumber"]
        for key in (first, second, third, pinned)
    }
    assert [numbers[k] for k in (first, second, third, pinned)] == [1, 2, 3, 9]
    other = client.create("salesorders", order_body(shop))
    line = client.create("salesorderdetails", write_in(other))
    assert client.get("salesorderdetails", line, select=["sequencenumber"])["sequencenumber"] == 1
