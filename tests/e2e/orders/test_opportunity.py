"""A won opportunity becomes a Brightpearl sales order through the running app when
`trigger.opportunity_won` is on (issue 13 item 1, optional): a CRM user raises an opportunity
with products and closes it as won (WinOpportunity); the opportunity webhook step `syncctl
webhooks register` adds for that setting brings it to orders-to-brightpearl, which creates one
Brightpearl order with the opportunity products' rows, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared.dataverse import odata
from shared.events import ChangeNotice, Envelope
from shared.store import AuditResult
from tests.e2e.customers.conftest import DV_TOPIC
from tests.e2e.orders.conftest import PRICE_LIST, SKUS, OrderSandbox, order_mapping

WON = 3  # opportunity statuscode Won (statecode 1)


@pytest.fixture
def sandbox_settings(sandbox_settings: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The shipped order mapping with orders from won opportunities switched on."""
    on = order_mapping(tmp_path, ("opportunity_won: false", "opportunity_won: true"), name="won.yaml")
    return {**sandbox_settings, "ORDER_MAPPING_PATH": str(on)}


def raise_opportunity(box: OrderSandbox, name: str, lines: list[tuple[str, int]]) -> str:
    """An opportunity of `lines` (SKU, quantity) at the price list's prices, as a CRM user."""
    refs = box.shop.refs
    out = box.dv.crm(
        "POST",
        "opportunities",
        {
            "name": name,
            "customerid_contact@odata.bind": f"/contacts({box.shop.customer})",
            "pricelevelid@odata.bind": f"/pricelevels({refs.price_lists[PRICE_LIST]})",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies['GBP']})",
        },
    )
    opportunity = odata.entity_id_from_url(out["headers"]["OData-EntityId"])
    for sku, quantity in lines:
        box.dv.crm(
            "POST",
            "opportunityproducts",
            {
                "opportunityid@odata.bind": f"/opportunities({opportunity})",
                "productid@odata.bind": f"/products({box.shop.products[sku]})",
                "uomid@odata.bind": f"/uoms({refs.base_unit})",
                "quantity": quantity,
            },
        )
    return opportunity


def win(box: OrderSandbox, opportunity: str) -> None:
    close = {
        "@odata.type": "Microsoft.Dynamics.CRM.opportunityclose",
        "opportunityid@odata.bind": f"/opportunities({opportunity})",
        "subject": "Won",
    }
    box.dv.crm("POST", "WinOpportunity", {"OpportunityClose": close, "Status": WON})


def test_a_won_opportunity_becomes_one_brightpearl_order_with_its_products(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    opportunity = raise_opportunity(box, "Trade deal", [("MUG-1", 4), ("CAP-1", 2)])
    box.work()
    assert box.bp_orders_of(opportunity) == []  # open: no order yet

    win(box, opportunity)
    box.work()
    created = box.bp_order_of(opportunity)  # exactly one, externalRef = the opportunity id
    by_product = {int(r["productId"]): r for r in created["orderRows"].values()}
    assert set(by_product) == {box.shop.bp_products["MUG-1"], box.shop.bp_products["CAP-1"]}
    for sku, quantity in (("MUG-1", 4), ("CAP-1", 2)):
        row = by_product[box.shop.bp_products[sku]]
        assert Decimal(str(row["quantity"]["magnitude"])) == quantity
        assert Decimal(str(row["rowValue"]["rowNet"]["value"])) == SKUS[sku] * quantity
    assert created["parties"]["customer"]["contactId"] == box.shop.bp_customer
    assert created["reference"] == "Trade deal"
    assert box.audited(opportunity)[0] == (AuditResult.SYNCED, None)
    link = box.store.links.get("order", "dataverse", opportunity.lower())
    assert link is not None and link.id_in("brightpearl") == str(created["id"])

    # the win announced again (a webhook retry, another version): still one order
    again = ChangeNotice(
        system="dataverse",
        entity="opportunity",
        ids=(opportunity,),
        operation="updated",
        observed_at=datetime.now(UTC),
        source="/dataverse/sandbox",
        version="won-again",
    )
    box.bus.publish(DV_TOPIC, [Envelope.wrap(again).to_message()])
    box.work()
    assert len(box.bp_orders_of(opportunity)) == 1
    results = sorted(result for result, _ in box.audited(opportunity))
    assert results == [AuditResult.SKIPPED, AuditResult.SYNCED]  # the repeat: already linked

    # the sales team also makes the Dynamics order from the opportunity and submits it: the same
    # sale, so no second Brightpearl order
    order = box.raise_order(
        [("MUG-1", 4), ("CAP-1", 2)], **{"opportunityid@odata.bind": f"/opportunities({opportunity})"}
    )
    box.work()
    assert box.bp_orders_of(order) == [] and len(box.bp_orders()) == 1
    assert {result for result, _ in box.audited(order)} == {AuditResult.SKIPPED}
    assert any("one order per sale" in e.description for e in box.audit(order))
