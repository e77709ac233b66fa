"""A won opportunity creates the Brightpearl sales order from its opportunity products (issue 13
item 1, optional: `trigger.opportunity_won`, off by default), through orders-to-brightpearl on the
fakes: off -> skipped, nothing read or posted; on + Won -> one order with the products' rows,
exactly once under a redelivered win; Open or Lost -> skipped; an unlinked customer is asked of
the customers flow, as for orders; `trigger.opportunity_ref` chooses the ref."""

from __future__ import annotations

from typing import Any

from shared.flows.orders_spec import ORDERS
from shared.mapping.orders_config import MappingError, OrderMapping, parse_order_mapping
from shared.outcomes import Completed, RetryLater
from shared.sync.spec import load
from tests.unit.flows.orders.test_orders_to_brightpearl import CONTACT, GBP, LINE_1, MUG, ORDER, notice
from tests.unit.flows.orders.test_orders_to_brightpearl import Rig as OrderRig

OPPORTUNITY = "0f000000-0000-4000-8000-000000000001"
PRODUCT_1 = "02000000-0000-4000-8000-000000000001"
PRODUCT_2 = "02000000-0000-4000-8000-000000000002"
NAME = "Ada Lovelace: 4 mugs and setup for the analytical engine society annual dinner"
SETTINGS: dict[str, Any] = {
    "tax": {"codes": {20: "T20", 0: "T0"}, "freight": "T20"},
    "brightpearl": {"channel_id": 1, "warehouse_id": 2, "price_list_id": 3, "status_id": 4},
    "customer_wait": {"attempts": 2},
}
OFF = parse_order_mapping(SETTINGS)
ON = parse_order_mapping({**SETTINGS, "trigger": {"opportunity_won": True}})


class Rig(OrderRig):
    """The orders rig (a linked contact and product, GBP) with a won opportunity of two products."""

    def __init__(self, mapping: OrderMapping = ON) -> None:
        super().__init__(mapping)
        self.dv.add(
            "opportunities",
            {
                "opportunityid": OPPORTUNITY,
                "name": NAME,
                "_customerid_value": CONTACT,
                "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact",
                "_transactioncurrencyid_value": GBP,
                "freightamount": 5,
                "statecode": 1,  # Won
                "statuscode": 3,
            },
        )
        self.dv.add(
            "opportunityproducts",
            {
                "opportunityproductid": PRODUCT_1,
                "_opportunityid_value": OPPORTUNITY,
                "_productid_value": MUG,
                "quantity": 4,
                "priceperunit": 12.5,
                "tax": 10,
                "sequencenumber": 1,
            },
        )
        self.dv.add(
            "opportunityproducts",
            {
                "opportunityproductid": PRODUCT_2,
                "_opportunityid_value": OPPORTUNITY,
                "isproductoverridden": True,
                "productdescription": "Setup",
                "quantity": 1,
                "priceperunit": 10,
                "tax": 0,
                "sequencenumber": 2,
            },
        )

    def won(self, attempt: int = 1) -> list[Any]:
        return self.flow().handle([notice(OPPORTUNITY, entity="opportunity", attempt=attempt)])

    def audit(self) -> list[tuple[str, str]]:
        """(result, description) of the opportunity's audit rows, oldest first."""
        return [
            (str(e.result), e.description) for e in self.store.audit.entries if OPPORTUNITY in e.description
        ]


def test_off_by_default_an_opportunity_is_skipped_naming_the_setting_and_nothing_is_read_or_posted():
    assert not parse_order_mapping({}).trigger.opportunity_won
    rig = Rig(OFF)
    flow = rig.flow()
    outcomes = flow.handle([notice(OPPORTUNITY, entity="opportunity")])
    assert outcomes == [Completed()]
    assert rig.orders == [] and rig.bp.calls == []
    assert "opportunities" not in str(rig.dv.calls) and rig.dv.calls.count("query") == 0
    assert rig.store.links.get("order", "dataverse", OPPORTUNITY) is None
    [(result, why)] = rig.audit()
    assert result == "skipped" and "trigger.opportunity_won: false" in why


def test_a_won_opportunity_becomes_one_brightpearl_order_with_its_products_rows():
    rig = Rig()
    assert rig.won() == [Completed()]
    assert rig.bp.calls == ["create_sales_order"]  # one Brightpearl call
    # the opportunity, its products, Dynamics orders made from it (none); no write-back
    assert rig.dv.calls == ["query", "query", "query"]
    [order] = rig.orders
    assert order["customer"] == {"id": rig.customer}
    assert order["externalRef"] == OPPORTUNITY
    assert (
        order["ref"]
        == NAME[:64].rstrip()
        == "Ada Lovelace: 4 mugs and setup for the analytical engine society"
    )
    assert order["currency"] == {"code": "GBP"} and order["statusId"] == 4
    assert "billing" not in order and "delivery" not in order  # Brightpearl takes the customer's
    rows = [
        (r.get("productId"), r.get("name"), r["quantity"], r["net"], r["tax"], r["taxCode"])
        for r in order["rows"]
    ]
    assert rows == [
        (rig.mug, None, "4.0000", "50.0000", "10.0000", "T20"),
        (None, "Setup", "1.0000", "10.0000", "0.0000", "T0"),  # a write-in product
        (None, "Shipping", "1.0000", "5.0000", "0.0000", "T20"),
    ]
    assert [r.get("externalRef") for r in order["rows"][:2]] == [PRODUCT_1, PRODUCT_2]
    link = rig.store.links.get("order", "dataverse", OPPORTUNITY)
    assert link is not None and link.id_in("brightpearl") == str(order["id"])


def test_a_redelivered_win_still_makes_one_order():
    rig = Rig()
    flow = rig.flow()
    twice = [notice(OPPORTUNITY, entity="opportunity"), notice(OPPORTUNITY, entity="opportunity")]
    assert flow.handle(twice) == [Completed()] * 2
    assert rig.won(attempt=2) == [Completed()]  # delivered again later: already linked
    assert len(rig.orders) == 1 and rig.bp.calls.count("create_sales_order") == 1


def test_an_open_or_lost_opportunity_makes_no_order():
    rig = Rig()
    for state, status in ((0, 1), (2, 4)):
        rig.dv.tables["opportunities"][OPPORTUNITY].update(statecode=state, statuscode=status)
        assert rig.won() == [Completed()]
    assert rig.orders == [] and rig.bp.calls == []
    assert [why.split(": ")[0] for _, why in rig.audit()] == [
        f"Dataverse opportunity {OPPORTUNITY} is open, not won",
        f"Dataverse opportunity {OPPORTUNITY} was lost",
    ]
    rig.dv.tables["opportunities"][OPPORTUNITY].update(statecode=1, statuscode=3)
    assert rig.won() == [Completed()] and len(rig.orders) == 1


def test_an_unlinked_customer_is_asked_of_the_customers_flow_and_the_order_waits():
    rig = Rig()
    other = "0c000000-0000-4000-8000-000000000002"
    rig.dv.tables["opportunities"][OPPORTUNITY]["_customerid_value"] = other
    [first] = rig.won()
    assert isinstance(first, RetryLater) and first.reason == "CustomerNotLinked"
    assert other in first.error and "Ada" not in first.error  # the name stays out of messages
    [asked] = rig.published
    assert asked.notice.entity == "contact" and asked.notice.ids == (other,)
    assert rig.orders == []
    rig.store.links.link("customer", "dataverse", other, "brightpearl", str(rig.bp.add_contact({})))
    assert rig.won(attempt=2) == [Completed()] and len(rig.orders) == 1


def test_a_sale_makes_one_order_whether_the_win_or_its_dynamics_order_comes_first():
    """A Dynamics order made from the opportunity (opportunityid) and submitted is the same sale."""
    rig = Rig()
    rig.order(_opportunityid_value=OPPORTUNITY)  # submitted, made from the won opportunity
    rig.line(LINE_1, _productid_value=MUG, quantity=4, priceperunit=12.5, tax=10)
    assert rig.won() == [Completed()]
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    [made] = rig.orders
    assert made["externalRef"] == OPPORTUNITY
    skipped = rig.store.audit.entries[-1]
    assert str(skipped.result) == "skipped" and f"Brightpearl order {made['id']}" in skipped.description
    assert OPPORTUNITY in skipped.description and "one order per sale" in skipped.description

    other = Rig()  # the other way round: the Dynamics order first, then the win
    other.order(_opportunityid_value=OPPORTUNITY)
    other.line(LINE_1, _productid_value=MUG, quantity=4, priceperunit=12.5, tax=10)
    assert other.flow().handle([notice(ORDER)]) == [Completed()]
    assert other.won() == [Completed()]
    [made] = other.orders
    assert made["externalRef"] == ORDER
    assert "one order per sale" in other.store.audit.entries[-1].description


def test_with_the_setting_off_a_dynamics_order_made_from_an_opportunity_syncs_as_any_order():
    rig = Rig(OFF)
    rig.order(_opportunityid_value=OPPORTUNITY)
    rig.line(LINE_1, _productid_value=MUG, quantity=4, priceperunit=12.5, tax=10)
    rig.store.links.link("order", "dataverse", OPPORTUNITY, "brightpearl", "999")
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert [o["externalRef"] for o in rig.orders] == [ORDER]


def test_opportunity_ref_none_sends_no_ref():
    rig = Rig(
        parse_order_mapping({**SETTINGS, "trigger": {"opportunity_won": True, "opportunity_ref": "none"}})
    )
    assert rig.won() == [Completed()]
    assert "ref" not in rig.orders[0]


def test_opportunity_won_is_a_valid_setting_and_an_unknown_ref_choice_is_named():
    assert ON.trigger.opportunity_won and ON.trigger.opportunity_ref == "name"
    try:
        parse_order_mapping({"trigger": {"opportunity_won": True, "opportunity_ref": "number"}})
    except MappingError as exc:
        assert "trigger.opportunity_ref" in str(exc)
    else:
        raise AssertionError("opportunity_ref: number was accepted")


def test_the_webhook_watches_opportunity_state_only_when_the_setting_is_on():
    [table] = [t for t in ORDERS.dataverse_tables if t.logical_name == "opportunity"]
    columns = load(table.columns)
    assert tuple(columns(OFF)) == ()  # no step registered for opportunity
    assert set(columns(ON)) == {"statecode", "statuscode"}
    assert table.messages == ("Update",) and table.entity_set == "opportunities"
    assert "opportunity" in ORDERS.flow("orders-to-brightpearl").source_entities


def test_the_columns_read_exist_on_opportunity_and_opportunityproduct():
    """The opportunity is read with the salesorder columns it shares (shared/flows/orders_opportunity.py
    derives them): a salesorder column opportunity lacks would make Dataverse refuse the query."""
    from sandbox.dataverse.schema import load_schema
    from shared.flows.orders_opportunity import OPPORTUNITIES

    tables = load_schema().bare().tables  # a stock org: no integration columns

    def columns(logical_name: str) -> set[str]:
        table = tables[logical_name]
        return {f"_{c}_value" if table.columns[c].is_lookup else c for c in table.columns}

    assert set(OPPORTUNITIES.select) <= columns("opportunity")
    assert {*OPPORTUNITIES.line_select, "modifiedon"} <= columns("opportunityproduct")


def test_a_won_opportunity_reopened_edited_and_won_again_updates_its_rows_and_a_loss_cancels_nothing():
    """A linked opportunity is a linked order (changes after creation): reopened (statecode 0),
    its products edited and won again, the Brightpearl row follows while the status is editable;
    reopened and then lost, the Brightpearl order is left as it is (a loss is not a cancellation)."""
    from shared.mapping.orders_config import ChangeSettings

    rig = Rig(ON.model_copy(update={"changes": ChangeSettings(editable_statuses=("Awaiting payment",))}))
    rig.bp.order_statuses = {4: "Awaiting Payment", 5: "Cancelled"}
    rig.bp.cancelled_status = 5
    assert rig.won() == [Completed()]
    [bp_id] = rig.bp.sales_orders
    opportunity = rig.dv.tables["opportunities"][OPPORTUNITY]
    opportunity.update(statecode=0, statuscode=1)  # ReopenOpportunity
    assert rig.won() == [Completed()]  # the reopening: nothing to change
    rig.dv.tables["opportunityproducts"][PRODUCT_1].update(quantity=6, tax=15)
    opportunity.update(statecode=1, statuscode=3)  # won again
    assert rig.won() == [Completed()]
    assert len(rig.orders) == 1 and rig.bp.calls.count("create_sales_order") == 1
    mug = next(r for r in rig.bp.sales_orders[bp_id]["rows"] if r.get("productId") == rig.mug)
    assert (mug["quantity"], mug["net"]) == ("6.0000", "75.0000")
    opportunity.update(statecode=2, statuscode=4)  # reopened and lost: still its order, not cancelled
    assert rig.won() == [Completed()]
    assert rig.bp.sales_orders[bp_id]["statusId"] == 4 and "set_order_status" not in rig.bp.calls
