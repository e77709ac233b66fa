"""Flow orders-to-brightpearl on the in-memory fakes (issue 13 items 2 and 5): one atomic POST
with lines, freight, discount and tax; exactly one Brightpearl order under duplicate notices,
a lost answer, a crash before the link write and two workers at once; an unlinked customer
waits, then CustomerNotSynced; an unknown SKU dead-letters naming the SKU and order number."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.orders_to_brightpearl import OrdersToBrightpearl
from shared.mapping.orders_config import OrderMapping, parse_order_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore

VERSIONS = itertools.count()
ORDER = "0a000000-0000-4000-8000-000000000001"
CONTACT = "0c000000-0000-4000-8000-000000000001"
ACCOUNT = "0d000000-0000-4000-8000-000000000001"
MUG = "0b000000-0000-4000-8000-000000000001"
GBP = "0e000000-0000-4000-8000-000000000001"
LINE_1 = "01000000-0000-4000-8000-000000000001"
LINE_2 = "01000000-0000-4000-8000-000000000002"
MAPPING = parse_order_mapping(
    {
        "tax": {"codes": {20: "T20", 0: "T0"}, "freight": "T20"},
        "freight": {"row_name": "Shipping", "nominal_code": "4040"},
        "discount": {"order_level": "row", "nominal_code": "4000", "row_name": "Order discount"},
        "shipping_methods": {4: 7},
        "brightpearl": {"channel_id": 1, "warehouse_id": 2, "price_list_id": 3, "status_id": 4},
        "customer_wait": {"attempts": 2},
    }
)


def notice(*ids: str, entity: str = "salesorder", attempt: int = 1) -> Envelope:
    envelope = Envelope.wrap(
        ChangeNotice(
            system="dataverse",
            entity=entity,
            ids=ids,
            operation="updated",
            source="/dataverse/test",
            origin="webhook",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
        )
    )
    return envelope.model_copy(update={"attempt": attempt})


class Rig:
    def __init__(self, mapping: OrderMapping = MAPPING) -> None:
        self.bp = FakeBrightpearl()
        self.dv = FakeDataverse()
        self.store = MemoryStateStore()
        self.published: list[Envelope] = []
        self.mapping = mapping
        self.dv.add("transactioncurrencies", {"transactioncurrencyid": GBP, "isocurrencycode": "GBP"})
        self.dv.add("contacts", {"contactid": CONTACT})
        self.dv.add("products", {"productid": MUG, "productnumber": "MUG-1"})
        self.mug = self.bp.add_product({"identity": {"sku": "MUG-1"}})
        self.bp.add_product({"identity": {"sku": "TEE-1"}})  # not in Dynamics' product links
        self.customer = self.bp.add_contact({"firstName": "Ada"})
        self.store.links.link("customer", "dataverse", CONTACT, "brightpearl", str(self.customer))
        self.store.links.link("product", "dataverse", MUG, "brightpearl", str(self.mug))

    def flow(self) -> OrdersToBrightpearl:
        return OrdersToBrightpearl(
            mapping=self.mapping,
            currencies={"GBP"},
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=self.published.extend,
        )

    def order(self, *, customer: tuple[str, str] = ("contact", CONTACT), **changes: Any) -> None:
        self.dv.add(
            "salesorders",
            {
                "salesorderid": ORDER,
                "ordernumber": "ORD-01001",
                "name": "Web order",
                "_customerid_value": customer[1],
                "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": customer[0],
                "_transactioncurrencyid_value": GBP,
                "freightamount": 5,
                "discountamount": 2,
                "shippingmethodcode": 4,
                "statecode": 1,
                "statuscode": 3,
                "billto_name": "Ada Lovelace",
                "billto_line1": "1 Secret Street",
                "billto_city": "London",
                "billto_postalcode": "n1 1aa",
                "billto_country": "United Kingdom",
                **changes,
            },
        )

    def line(self, line_id: str, **values: Any) -> None:
        self.dv.add(
            "salesorderdetails", {"salesorderdetailid": line_id, "_salesorderid_value": ORDER, **values}
        )

    def standard(self) -> None:
        self.order()
        self.line(
            LINE_1,
            _productid_value=MUG,
            quantity=2,
            priceperunit=10,
            manualdiscountamount=1,
            tax=3.8,
            sequencenumber=1,
        )
        self.line(
            LINE_2,
            isproductoverridden=True,
            productdescription="Gift wrap",
            quantity=1,
            priceperunit=2,
            tax=0,
            sequencenumber=2,
        )

    def ghost_line(self) -> None:
        """A line whose product (SKU GHOST-9) Brightpearl does not have."""
        ghost = "0b000000-0000-4000-8000-000000000009"
        self.dv.add("products", {"productid": ghost, "productnumber": "GHOST-9"})
        self.line(
            "01000000-0000-4000-8000-000000000009", _productid_value=ghost, quantity=1, priceperunit=1, tax=0
        )

    @property
    def orders(self) -> list[dict[str, Any]]:
        return list(self.bp.sales_orders.values())


def test_an_order_becomes_one_brightpearl_order_with_every_row_in_one_post():
    rig = Rig()
    rig.standard()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.bp.calls == ["create_sales_order"]  # one Brightpearl call for the order
    # orders, lines; the id written back to the Submitted order: reopened, written, put back
    assert rig.dv.calls == ["query", "query", "execute_batch"]
    [order] = rig.orders
    assert order["customer"] == {"id": rig.customer}
    assert order["ref"] == "ORD-01001" and order["externalRef"] == ORDER
    assert (order["channelId"], order["warehouseId"], order["priceListId"], order["statusId"]) == (1, 2, 3, 4)
    assert order["currency"] == {"code": "GBP"} and order["priceModeCode"] == "EXC"
    assert order["delivery"] == {"shippingMethodId": 7}
    assert order["billing"]["address"]["countryIsoCode"] == "GBR"
    assert order["billing"]["address"]["postalCode"] == "N1 1AA"
    rows = [
        (
            r.get("productId"),
            r.get("name"),
            r["quantity"],
            r["net"],
            r["tax"],
            r["taxCode"],
            r.get("nominalCode"),
        )
        for r in order["rows"]
    ]
    assert rows == [
        (rig.mug, None, "2.0000", "19.0000", "3.8000", "T20", None),  # 2 x 10 less the line's 1
        (None, "Gift wrap", "1.0000", "2.0000", "0.0000", "T0", None),  # a write-in line
        (None, "Order discount", "1.0000", "-2.0000", "0.0000", "T0", "4000"),
        (None, "Shipping", "1.0000", "5.0000", "0.0000", "T20", "4040"),
    ]
    bp_id = str(order["id"])
    assert rig.dv.tables["salesorders"][ORDER]["bpi_brightpearlid"] == bp_id
    link = rig.store.links.get("order", "dataverse", ORDER)
    assert link is not None and link.id_in("brightpearl") == bp_id


def test_a_spread_discount_comes_off_the_lines_nets_in_proportion():
    rig = Rig(
        MAPPING.model_copy(update={"discount": MAPPING.discount.model_copy(update={"order_level": "spread"})})
    )
    rig.standard()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    [order] = rig.orders
    nets = [Decimal(r["net"]) for r in order["rows"]]
    assert nets == [Decimal("17.1905"), Decimal("1.8095"), Decimal("5.0000")]  # 19 + 2 less 2, in proportion
    assert "Order discount" not in [r.get("name") for r in order["rows"]]


def test_duplicate_notices_and_a_line_notice_make_one_order():
    rig = Rig()
    rig.standard()
    flow = rig.flow()
    outcomes = flow.handle([notice(ORDER), notice(ORDER), notice(LINE_1, entity="salesorderdetail")])
    assert outcomes == [Completed()] * 3
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]  # again later: already there
    assert len(rig.orders) == 1 and rig.bp.calls.count("create_sales_order") == 1


def test_a_lost_answer_is_found_by_external_ref_and_nothing_more_is_created():
    rig = Rig()
    rig.standard()
    rig.bp.lost_answers = 1  # Brightpearl commits the order, the answer times out
    [first] = rig.flow().handle([notice(ORDER)])
    assert isinstance(first, RetryLater)
    assert len(rig.orders) == 1
    # the claim stays pending while it may still be in flight; the retry waits for it ...
    [waiting] = rig.flow().handle([notice(ORDER, attempt=2)])
    assert isinstance(waiting, RetryLater) and waiting.waiting
    # ... until its lease ends (the in-memory claims never expire: end it here)
    claim = rig.store.links.claims[("order", "dataverse", ORDER)]
    rig.store.links.release_claim(claim)
    assert rig.flow().handle([notice(ORDER, attempt=3)]) == [Completed()]
    assert len(rig.orders) == 1 and rig.bp.calls.count("create_sales_order") == 1
    [bp_id] = rig.bp.sales_orders
    assert rig.dv.tables["salesorders"][ORDER]["bpi_brightpearlid"] == str(bp_id)


def test_a_crash_between_the_create_and_the_link_write_creates_nothing_more():
    rig = Rig()
    rig.standard()
    links = rig.store.links
    complete = links.complete_claim

    def crash(*args: Any, **kwargs: Any) -> Any:
        links.complete_claim = complete  # type: ignore[method-assign]
        raise RuntimeError("host stopped")

    links.complete_claim = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):  # the host dies: the order is made, its link is not
        rig.flow().handle([notice(ORDER)])
    assert len(rig.orders) == 1
    links.release_claim(links.claims[("order", "dataverse", ORDER)])  # its lease ends
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert len(rig.orders) == 1


def test_two_workers_at_once_make_one_order():
    rig = Rig()
    rig.standard()
    first, second = rig.flow(), rig.flow()
    create = rig.bp.create_sales_order
    during: list[Any] = []

    def racing(order: Any) -> int:
        during.extend(second.handle([notice(ORDER)]))  # the other worker, mid-POST of the first
        return create(order)

    rig.bp.create_sales_order = racing  # type: ignore[method-assign]
    assert first.handle([notice(ORDER)]) == [Completed()]
    [other] = during
    assert isinstance(other, RetryLater) and other.waiting and other.reason == "StateConflict"
    rig.bp.create_sales_order = create  # type: ignore[method-assign]
    assert second.handle([notice(ORDER)]) == [Completed()]  # its retry: linked meanwhile
    assert len(rig.orders) == 1


def test_an_unlinked_customer_is_asked_for_and_waited_for_then_customer_not_synced():
    rig = Rig()
    rig.standard()
    other = "0c000000-0000-4000-8000-000000000002"
    rig.dv.tables["salesorders"][ORDER]["_customerid_value"] = other
    [first] = rig.flow().handle([notice(ORDER)])
    assert isinstance(first, RetryLater) and first.reason == "CustomerNotLinked"
    assert other in first.error and "Ada" not in first.error
    [asked] = rig.published
    assert asked.notice.entity == "contact" and asked.notice.ids == (other,)
    [second] = rig.flow().handle([notice(ORDER, attempt=2)])
    assert isinstance(second, RetryLater) and len(rig.published) == 1  # asked once
    [last] = rig.flow().handle([notice(ORDER, attempt=3)])
    assert isinstance(last, DeadLetter) and last.reason == "CustomerNotSynced"
    assert other in last.description and "ORD-01001" in last.description
    assert rig.orders == []


def test_an_account_customer_resolves_through_its_primary_contact():
    rig = Rig()
    rig.dv.add("accounts", {"accountid": ACCOUNT, "_primarycontactid_value": CONTACT})
    rig.standard()
    rig.dv.tables["salesorders"][ORDER]["_customerid_value"] = ACCOUNT
    rig.dv.tables["salesorders"][ORDER]["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = (
        "account"
    )
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.orders[0]["customer"] == {"id": rig.customer}


def test_a_line_without_a_product_link_is_found_by_sku():
    rig = Rig()
    rig.standard()
    tee = "0b000000-0000-4000-8000-000000000002"
    rig.dv.add("products", {"productid": tee, "productnumber": "TEE-1"})
    rig.line(
        "01000000-0000-4000-8000-000000000003",
        _productid_value=tee,
        quantity=1,
        priceperunit=8,
        tax=1.6,
        sequencenumber=3,
    )
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    skus = {r.get("productId") for r in rig.orders[0]["rows"]}
    assert {p for p, row in rig.bp.products.items() if row["identity"]["sku"] == "TEE-1"} <= skus


def test_an_unknown_sku_dead_letters_the_order_naming_sku_and_number():
    rig = Rig()
    rig.standard()
    rig.ghost_line()
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "UnknownSku"
    assert "GHOST-9" in outcome.description and "ORD-01001" in outcome.description
    assert "Secret" not in outcome.description and rig.orders == []
    rig.bp.add_product({"identity": {"sku": "GHOST-9"}})  # the catalogue catches up; resubmitted:
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert len(rig.orders) == 1


def test_with_unknown_sku_wait_the_order_retries_first():
    mapping = MAPPING.model_copy(
        update={"unknown_sku": MAPPING.unknown_sku.model_copy(update={"action": "wait", "wait_minutes": 60})}
    )
    rig = Rig(mapping)
    rig.standard()
    rig.ghost_line()
    first = notice(ORDER)
    [outcome] = rig.flow().handle([first])
    assert isinstance(outcome, RetryLater) and outcome.reason == "SkuNotInBrightpearl"
    flow = rig.flow()
    flow.now = lambda: first.notice.observed_at + timedelta(minutes=61)
    [outcome] = flow.handle([first.model_copy(update={"attempt": 4})])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "UnknownSku"


def test_bad_orders_dead_letter_alone_with_their_reason_and_nothing_is_written():
    rig = Rig()
    rig.order()  # no lines
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "OrderHasNoLines"
    rig.line(LINE_1, _productid_value=MUG, quantity=0, priceperunit=10, tax=0)
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "InvalidQuantity"
    assert rig.orders == [] and rig.bp.calls.count("create_sales_order") == 0


def test_orders_the_trigger_does_not_select_are_skipped():
    rig = Rig()
    rig.standard()
    rig.dv.tables["salesorders"][ORDER]["statecode"] = 0  # active, not submitted
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    flag = MAPPING.model_copy(update={"trigger": MAPPING.trigger.model_copy(update={"when": "flag"})})
    rig.mapping = flag
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.orders == []
    rig.dv.tables["salesorders"][ORDER]["bpi_sendtobrightpearl"] = True
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert len(rig.orders) == 1


def test_with_trigger_create_an_order_without_lines_yet_waits_for_them():
    rig = Rig()
    rig.mapping = MAPPING.model_copy(
        update={"trigger": MAPPING.trigger.model_copy(update={"when": "create"})}
    )
    rig.order(statecode=0, statuscode=1)
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]  # skipped, not dead-lettered
    assert rig.orders == []
    rig.line(LINE_1, _productid_value=MUG, quantity=1, priceperunit=10, tax=2)
    assert rig.flow().handle([notice(LINE_1, entity="salesorderdetail")]) == [Completed()]
    assert len(rig.orders) == 1


def test_the_recovery_look_up_is_for_this_integration_instance_only():
    """A claim marked as posting is looked up by externalRef *and* the flow's OAuth
    installedIntegrationInstanceId: another instance's order with the same externalRef is not
    this one's (reference §6.2), so the flow creates its own order and links that one."""
    rig = Rig()
    rig.standard()
    links = rig.store.links
    claim = links.claim("order", "dataverse", ORDER, "brightpearl")  # an earlier attempt's claim ...
    links.release_claim(links.save_progress(claim, {"posting": True}))  # ... that may have POSTed
    other = 9001
    rig.bp.sales_orders[other] = {"id": other, "externalRef": ORDER, "installedIntegrationInstanceId": 1}
    flow = OrdersToBrightpearl(
        mapping=rig.mapping,
        currencies={"GBP"},
        installed_integration_instance_id=2,
        brightpearl=rig.bp,
        dataverse=rig.dv,
        store=rig.store,
        publish=rig.published.extend,
    )
    assert flow.handle([notice(ORDER, attempt=2)]) == [Completed()]
    assert rig.bp.calls.count("find_order_ids_by_external_ref") == 1
    assert rig.bp.calls.count("create_sales_order") == 1
    [own] = [i for i, o in rig.bp.sales_orders.items() if i != other]
    assert rig.bp.sales_orders[own]["installedIntegrationInstanceId"] == 2
    link = rig.store.links.get("order", "dataverse", ORDER)
    assert link is not None and link.id_in("brightpearl") == str(own) != str(other)
    assert rig.dv.tables["salesorders"][ORDER]["bpi_brightpearlid"] == str(own)


def test_with_read_only_orders_direct_the_id_is_written_as_is_without_reopening():
    """An application user with System Administrator may write Submitted orders
    (writeback.read_only_orders: direct): one UpdateMultiple, no reopen and put back."""
    rig = Rig(
        MAPPING.model_copy(
            update={"writeback": MAPPING.writeback.model_copy(update={"read_only_orders": "direct"})}
        )
    )
    rig.standard()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.dv.calls == ["query", "query", "update_multiple"]
    assert len(rig.orders) == 1


INTEGRATION_USER = "0f000000-0000-4000-8000-00000000000a"


def test_the_integrations_own_salesorder_writes_are_skipped_unread_when_its_user_is_trusted():
    """Order history creates salesorders and the write-back updates them as the integration's
    application user: with CUSTOMERS_TRUST_INTEGRATION_USER their webhooks are skipped without a
    read (IntegrationEcho); without it they are read, and a CRM user's change is always read."""

    def by(user: str, *ids: str) -> Envelope:
        envelope = notice(*ids)
        detail = {**envelope.notice.detail, "initiating_user": user.upper()}
        return envelope.model_copy(update={"notice": envelope.notice.model_copy(update={"detail": detail})})

    rig = Rig()

    def flow(trust: bool) -> OrdersToBrightpearl:
        return OrdersToBrightpearl(
            mapping=rig.mapping,
            currencies={"GBP"},
            integration_user_id=INTEGRATION_USER,
            trust_integration_user=trust,
            brightpearl=rig.bp,
            dataverse=rig.dv,
            store=rig.store,
            publish=rig.published.extend,
        )

    reads = len(rig.dv.calls)
    [outcome] = flow(True).handle([by(INTEGRATION_USER, ORDER)])
    assert isinstance(outcome, Completed) and len(rig.dv.calls) == reads  # nothing read
    flow(False).handle([by(INTEGRATION_USER, ORDER)])
    assert len(rig.dv.calls) > reads  # not trusted: read, the content decides
    reads = len(rig.dv.calls)
    flow(True).handle([by("0f000000-0000-4000-8000-0000000000ff", ORDER)])
    assert len(rig.dv.calls) > reads  # a CRM user's change is read
