"""Flow orders-to-dataverse on the in-memory fakes (issue 13 item 4, shipments and invoicing):
goods-out notes bring the shipped date, shipping method, tracking reference and per-line
quantityshipped onto the Dynamics order, a fully shipped order is fulfilled once, the invoice
reference and payment status arrive, a redelivery writes nothing, Dataverse 429 retries, and an
order not from Dynamics is skipped. The fake Dataverse edits only Active orders, as Dataverse."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.brightpearl.webhook_registration import DEFAULT_EVENTS
from shared.dataverse.errors import DataverseThrottled
from shared.dataverse.models import BatchOperation, BatchResult
from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.orders_poller import BrightpearlOrderPoller
from shared.flows.orders_spec import BRIGHTPEARL_ORDER_CURSOR, ORDERS, SHIPMENT_EVENTS, STATUS_EVENT
from shared.flows.orders_to_dataverse import FULFIL_ACTION, OrdersToDataverse
from shared.mapping.config import MappingError
from shared.mapping.orders_config import parse_order_mapping
from shared.mapping.orders_status import parse_order_status_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryCursors, MemoryStateStore
from tests.unit.flows.orders.test_orders_to_dataverse import linked_orders

VERSIONS = itertools.count()
ORDER = "0a000000-0000-4000-8000-000000000001"
LINE_1 = "0b000000-0000-4000-8000-000000000001"
LINE_2 = "0b000000-0000-4000-8000-000000000002"
STATUSES = parse_order_status_mapping(
    {
        "statuses": {
            "Awaiting Payment": {"statecode": 0, "statuscode": 1},
            "Partially Shipped": {"statecode": 1, "statuscode": 3},
            "Shipped": {"id": 7, "statecode": 3, "statuscode": 100001},
        }
    }
)
NAMES = {4: "Awaiting Payment", 5: "Partially Shipped", 7: "Shipped", 8: "On Hold", 9: "Cancelled"}
DHL = 3  # a Brightpearl shippingMethodId that orders.yaml maps from Dynamics' "DHL" option


def notice(entity: str, event: str, *ids: int) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity=entity,
            ids=tuple(str(i) for i in ids),
            operation="updated",
            source="/brightpearl/test",
            origin="webhook",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
            detail={"event": event},
        )
    )


def shipped(note_id: int) -> Envelope:
    return notice("goods-out-note", "goods-out-note.modified.shipped", note_id)


def order_notice(order_id: int, event: str = STATUS_EVENT) -> Envelope:
    return notice("order", event, order_id)


def row(line_id: str, product_id: int, quantity: int) -> dict[str, Any]:
    return {
        "productId": product_id,
        "quantity": str(quantity),
        "net": "10.0000",
        "tax": "2.0000",
        "taxCode": "T20",
        "externalRef": line_id,
    }


class Rig:
    """reopen (the default of writeback.read_only_orders): against a Dataverse that edits only
    Active orders; else direct, against one that lets the integration (an administrator) write them."""

    def __init__(self, reopen: bool = True) -> None:
        self.reopen = reopen
        self.bp = FakeBrightpearl(order_statuses=dict(NAMES))
        self.dv = FakeDataverse(only_active_orders_editable=reopen)
        self.store = MemoryStateStore()
        self.batches: list[list[BatchOperation]] = []
        execute = self.dv.execute_batch

        def spy(ops: Any, **kwargs: Any) -> list[BatchResult]:
            self.batches.append(list(ops))
            return execute(ops, **kwargs)

        self.dv.execute_batch = spy  # type: ignore[method-assign]

    def flow(self) -> OrdersToDataverse:
        return OrdersToDataverse(
            statuses=STATUSES,
            shipping_methods={DHL: "DHL"},
            reopen=self.reopen,
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=lambda _: None,
        )

    def order(self, status_id: int = 5, *, linked: bool = True, state: tuple[int, int] = (1, 3)) -> int:
        """A Dynamics order (Submitted by default) of two lines, that orders-to-brightpearl created
        in Brightpearl (each row's externalRef is its line's id)."""
        self.dv.add(
            "salesorders",
            {
                "salesorderid": ORDER,
                "ordernumber": "ORD-01001",
                "statecode": state[0],
                "statuscode": state[1],
            },
        )
        for line, quantity in ((LINE_1, 2), (LINE_2, 3)):
            self.dv.add(
                "salesorderdetails",
                {"salesorderdetailid": line, "_salesorderid_value": ORDER, "quantity": quantity},
            )
        bp_id = self.bp.create_sales_order(
            {
                "ref": "ORD-01001",
                "externalRef": ORDER,
                "statusId": status_id,
                "rows": [row(LINE_1, 11, 2), row(LINE_2, 12, 3)],
            }
        )
        if linked:
            self.store.links.link("order", "dataverse", ORDER, "brightpearl", str(bp_id))
        return bp_id

    def row_ids(self, bp_id: int) -> list[int]:
        return [r["id"] for r in self.bp.sales_orders[bp_id]["rows"]]

    @property
    def header(self) -> dict[str, Any]:
        return self.dv.tables["salesorders"][ORDER]

    @property
    def state(self) -> tuple[int, int]:
        return self.header["statecode"], self.header["statuscode"]

    def quantities(self) -> dict[str, Any]:
        return {i: r.get("quantityshipped") for i, r in self.dv.tables["salesorderdetails"].items()}

    def fulfilments(self) -> int:
        return sum(op.path == FULFIL_ACTION for ops in self.batches for op in ops)

    def audit(self) -> list[tuple[str, str | None, str]]:
        return [(str(e.result), e.reason_code, e.description) for e in self.store.audit.entries]


def test_the_spec_declares_the_shipment_events_the_goods_out_notices_and_the_order_poller():
    flow = ORDERS.flows[1]
    assert flow.source_entities == ("order", "goods-out-note", "sales-order")
    for event in (STATUS_EVENT, *SHIPMENT_EVENTS):
        assert event in ORDERS.brightpearl_events
    assert "order.modified.fully-shipped" in SHIPMENT_EVENTS
    assert set(SHIPMENT_EVENTS) <= set(DEFAULT_EVENTS)  # what syncctl webhooks register asks for
    poller = BrightpearlOrderPoller.spec
    assert poller in ORDERS.pollers and poller.schedule_setting == "BRIGHTPEARL_ORDER_POLL_SCHEDULE"
    assert poller.cursors == (BRIGHTPEARL_ORDER_CURSOR,)


@pytest.mark.parametrize("reopen", [False, True], ids=["direct", "reopen"])
def test_a_partial_shipment_writes_the_shipped_fields_and_quantities_and_does_not_fulfil(reopen: bool):
    rig = Rig(reopen)
    bp_id = rig.order(5)  # Partially Shipped -> Submitted / In Progress
    first, _ = rig.row_ids(bp_id)
    note = rig.bp.ship(
        bp_id,
        {first: 1},
        reference="TRK-1",
        shipping_method_id=DHL,
        shipped_on="2026-12-05T10:15:00.000+01:00",
    )
    assert rig.flow().handle([shipped(note)]) == [Completed()]
    assert rig.header["bpi_shippedon"] == "2026-12-05T09:15:00Z"
    assert rig.header["bpi_shippingmethod"] == "DHL"
    assert rig.header["bpi_trackingreference"] == "TRK-1"
    assert rig.header["bpi_brightpearlstatus"] == "Partially Shipped"
    assert rig.quantities() == {LINE_1: 1.0, LINE_2: None}  # only the line that shipped is written
    assert rig.state == (1, 3) and rig.fulfilments() == 0  # back to Submitted, not fulfilled
    assert rig.dv.calls == ["query", "query", "execute_batch"]  # orders, lines, one $batch
    [ops] = rig.batches
    if reopen:
        assert ops[0].body == {"statecode": 0, "statuscode": 1}  # reopened to edit
        assert ops[-1].body == {"statecode": 1, "statuscode": 3}  # and put back
    else:
        assert len(ops) == 2 and all("statecode" not in (op.body or {}) for op in ops)  # columns, line


@pytest.mark.parametrize("reopen", [False, True], ids=["direct", "reopen"])
def test_a_full_shipment_fulfils_the_order_once_after_writing_its_lines(reopen: bool):
    rig = Rig(reopen)
    bp_id = rig.order(5)
    first, second = rig.row_ids(bp_id)
    note_1 = rig.bp.ship(bp_id, {first: 1}, reference="TRK-1", shipping_method_id=DHL)
    assert rig.flow().handle([shipped(note_1)]) == [Completed()]
    note_2 = rig.bp.ship(bp_id, {first: 1, second: 3}, reference="TRK-2", shipping_method_id=DHL)
    rig.bp.set_order_status(bp_id, 7)  # Shipped -> Fulfilled, and the order is fully shipped too
    envelopes = [shipped(note_2), order_notice(bp_id, "order.modified.fully-shipped"), order_notice(bp_id)]
    assert rig.flow().handle(envelopes) == [Completed()] * 3
    assert rig.state == (3, 100001)
    assert rig.quantities() == {LINE_1: 2.0, LINE_2: 3.0}
    assert rig.header["bpi_trackingreference"] == "TRK-1, TRK-2"
    assert rig.fulfilments() == 1
    assert rig.batches[-1][-1].path == FULFIL_ACTION  # lines first, then the order is closed
    # every later notice of the same order (a redelivery, the poller) fulfils nothing again
    assert rig.flow().handle([order_notice(bp_id, "order.modified.fully-shipped"), shipped(note_2)]) == [
        Completed(),
        Completed(),
    ]
    assert rig.fulfilments() == 1 and rig.state == (3, 100001)


@pytest.mark.parametrize("reopen", [False, True], ids=["direct", "reopen"])
def test_two_workers_writing_one_shipment_at_once_fulfil_it_once_and_neither_dead_letters(reopen: bool):
    rig = Rig(reopen)
    bp_id = rig.order(5)
    note = rig.bp.ship(bp_id, reference="TRK-1")  # every row: fully shipped
    execute = rig.dv.execute_batch
    other: list[Any] = []

    def racing(ops: Any, **kwargs: Any) -> list[BatchResult]:
        if not other:  # the other worker, with the fully-shipped notice, writes first
            other.append(None)
            other.append(rig.flow().handle([order_notice(bp_id, "order.modified.fully-shipped")]))
        return execute(ops, **kwargs)

    rig.dv.execute_batch = racing  # type: ignore[method-assign]
    assert rig.flow().handle([shipped(note)]) == [Completed()]
    assert other == [None, [Completed()]]
    assert rig.state == (3, 100001) and rig.quantities() == {LINE_1: 2.0, LINE_2: 3.0}
    assert "written meanwhile by another worker" in rig.audit()[-1][2]


def test_a_fully_shipped_order_is_fulfilled_even_when_its_status_is_not_mapped():
    rig = Rig()
    bp_id = rig.order(8)  # On Hold: no entry in order_status.yaml
    rig.bp.ship(bp_id)  # every row, whole
    assert rig.flow().handle([order_notice(bp_id, "order.modified.fully-shipped")]) == [Completed()]
    assert rig.state == (3, 100001) and rig.fulfilments() == 1
    assert rig.quantities() == {LINE_1: 2.0, LINE_2: 3.0}


def test_an_unmapped_status_still_lets_a_partial_shipment_through_then_dead_letters_the_gap():
    rig = Rig()
    bp_id = rig.order(8)  # On Hold: no entry in order_status.yaml
    first, _ = rig.row_ids(bp_id)
    note = rig.bp.ship(bp_id, {first: 1}, reference="TRK-5")
    [outcome] = rig.flow().handle([shipped(note)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "StatusNotMapped"
    assert "'On Hold'" in outcome.description and "left as it is" in outcome.description
    assert rig.header["bpi_trackingreference"] == "TRK-5" and rig.quantities()[LINE_1] == 1.0
    assert rig.state == (1, 3)  # the state is not guessed


def test_the_invoice_reference_and_payment_status_reach_the_dynamics_order():
    rig = Rig()
    bp_id = rig.order(5)
    order = rig.bp.sales_orders[bp_id]
    order["invoices"] = [{"invoiceReference": "SI-100245", "taxDate": "2026-12-05T10:00:00Z"}]
    order["orderPaymentStatus"] = "PARTIALLY_PAID"
    assert rig.flow().handle([order_notice(bp_id)]) == [Completed()]
    assert (rig.header["bpi_invoicereference"], rig.header["bpi_paymentstatus"]) == (
        "SI-100245",
        "PARTIALLY_PAID",
    )
    assert rig.state == (1, 3)
    order["orderPaymentStatus"] = "PAID"
    assert rig.flow().handle([order_notice(bp_id)]) == [Completed()]
    assert rig.header["bpi_paymentstatus"] == "PAID"
    order["orderPaymentStatus"] = "UNPAID"  # Brightpearl's word for nothing paid yet
    assert rig.flow().handle([order_notice(bp_id)]) == [Completed()]
    assert rig.header["bpi_paymentstatus"] == "NOT_PAID"
    assert "bpi_shippedon" not in rig.header  # nothing shipped: the shipment columns are left alone


def test_a_redelivered_notice_writes_nothing():
    rig = Rig()
    bp_id = rig.order(5)
    first, _ = rig.row_ids(bp_id)
    note = rig.bp.ship(bp_id, {first: 2}, reference="TRK-1", shipping_method_id=DHL)
    rig.bp.sales_orders[bp_id]["invoices"] = [{"invoiceReference": "SI-1"}]
    assert rig.flow().handle([shipped(note), order_notice(bp_id)]) == [Completed(), Completed()]
    written = rig.batches[:]
    rig.dv.calls.clear()
    assert rig.flow().handle([shipped(note), shipped(note), order_notice(bp_id)]) == [Completed()] * 3
    assert rig.batches == written and "execute_batch" not in rig.dv.calls  # read only
    assert "already holds this content" in rig.audit()[-1][2]


def test_dataverse_throttling_is_a_retry_and_the_retry_writes():
    rig = Rig()
    bp_id = rig.order(5)
    note = rig.bp.ship(bp_id, reference="TRK-9")
    rig.dv.fail_next["execute_batch"] = [
        DataverseThrottled("429 service protection", status=429, retry_after=9)
    ]
    [outcome] = rig.flow().handle([shipped(note)])
    assert isinstance(outcome, RetryLater) and outcome.delay is not None and outcome.delay >= 9
    assert rig.state == (1, 3) and rig.quantities() == {LINE_1: None, LINE_2: None}
    assert rig.flow().handle([shipped(note)]) == [Completed()]
    assert rig.state == (3, 100001) and rig.quantities() == {LINE_1: 2.0, LINE_2: 3.0}


def test_a_goods_out_note_of_an_order_not_from_dynamics_is_skipped():
    rig = Rig()
    bp_id = rig.order(5, linked=False)
    note = rig.bp.ship(bp_id)
    assert rig.flow().handle([shipped(note)]) == [Completed()]
    assert rig.dv.calls == ["query"] and rig.state == (1, 3)  # the look-up of its externalRef
    reasons = {(result, reason) for result, reason, _ in rig.audit()}
    assert ("skipped", "FromDynamics") in reasons


def test_a_goods_out_note_just_created_reads_nothing():
    rig = Rig()
    bp_id = rig.order(5)
    note = rig.bp.ship(bp_id, shipped=False)
    assert rig.flow().handle([notice("goods-out-note", "goods-out-note.created", note)]) == [Completed()]
    assert rig.bp.calls == ["create_sales_order"] and rig.dv.calls == []
    [(result, _, description)] = rig.audit()
    assert result == "skipped" and "nothing shipped yet" in description


def test_a_vanished_goods_out_note_is_skipped_naming_it():
    rig = Rig()
    rig.order(5)
    assert rig.flow().handle([shipped(987654)]) == [Completed()]
    assert rig.dv.calls == []
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == ("skipped", "GoodsOutNoteNotFound") and "987654" in description


def test_with_direct_writes_an_invoice_after_fulfilment_reaches_the_fulfilled_dynamics_order():
    rig = Rig(reopen=False)
    bp_id = rig.order(7, state=(3, 100001))  # Shipped; Dynamics holds it Fulfilled already
    rig.bp.sales_orders[bp_id]["invoices"] = [{"invoiceReference": "SI-7"}]
    rig.bp.sales_orders[bp_id]["orderPaymentStatus"] = "PAID"
    assert rig.flow().handle([order_notice(bp_id)]) == [Completed()]
    assert (rig.header["bpi_invoicereference"], rig.header["bpi_paymentstatus"]) == ("SI-7", "PAID")
    assert rig.state == (3, 100001) and rig.fulfilments() == 0
    [ops] = rig.batches
    assert [op.method for op in ops] == ["PATCH"]  # the columns only, the order stays closed


def test_an_invoice_after_fulfilment_is_skipped_as_dynamics_order_closed():
    rig = Rig()
    bp_id = rig.order(7, state=(3, 100001))  # Shipped; Dynamics holds it Fulfilled already
    rig.bp.sales_orders[bp_id]["invoices"] = [{"invoiceReference": "SI-7"}]
    assert rig.flow().handle([order_notice(bp_id)]) == [Completed()]
    assert "bpi_invoicereference" not in rig.header and rig.fulfilments() == 0
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == ("skipped", "DynamicsOrderClosed")
    assert "bpi_invoicereference" in description and "ORD-01001" in description


def test_a_cancellation_dynamics_already_holds_completes_without_a_dead_letter():
    # a Dynamics cancellation carried to Brightpearl comes back as its status event
    for statuses in (
        STATUSES,
        parse_order_status_mapping({"statuses": {"Cancelled": {"statecode": 2, "statuscode": 4}}}),
    ):
        for reopen in (False, True):
            rig = Rig(reopen)
            bp_id = rig.order(9, state=(2, 4))  # Cancelled: unmapped, then mapped to Canceled / No Money
            flow = rig.flow()
            flow.statuses = statuses
            assert flow.handle([order_notice(bp_id)]) == [Completed()]
            assert rig.state == (2, 4) and rig.fulfilments() == 0
            [(result, reason, _)] = rig.audit()
            if reopen:  # NOT_PAID is not written on a closed order
                assert (result, reason) == ("skipped", "DynamicsOrderClosed") and rig.batches == []
            else:
                assert (result, reason) == ("synced", None) and rig.header["bpi_paymentstatus"] == "NOT_PAID"


def test_a_thousand_status_changes_take_at_most_thirty_dataverse_calls():
    rig = Rig()
    ids = linked_orders(rig, 1000)  # Submitted in Dynamics, Awaiting Payment (Active / New) in Brightpearl
    envelopes = [order_notice(i) for i in ids]
    assert set(rig.flow().handle(envelopes)) == {Completed()}
    assert len(rig.dv.calls) <= 30, rig.dv.calls
    rows = rig.dv.tables["salesorders"].values()
    assert {(r["statecode"], r["statuscode"], r["bpi_paymentstatus"]) for r in rows} == {(0, 1, "NOT_PAID")}


def test_the_order_poller_publishes_sales_orders_changed_since_its_watermark():
    bp = FakeBrightpearl()
    first = bp.create_sales_order({"ref": "A", "externalRef": ORDER, "statusId": 4})
    bp.sales_orders[first]["updatedOn"] = "2026-12-05T09:00:00+00:00"
    second = bp.create_sales_order({"ref": "B", "statusId": 4})
    bp.sales_orders[second]["updatedOn"] = "2026-12-05T10:00:00+00:00"
    published: list[Envelope] = []
    cursors = MemoryCursors()
    poller = BrightpearlOrderPoller(
        client=bp,
        cursors=cursors,
        publish=published.extend,
        clock=lambda: datetime(2026, 12, 5, 10, 30, tzinfo=UTC),
        source="/brightpearl/test",
        overlap=timedelta(minutes=5),
        initial_lookback=timedelta(hours=1),
    )
    report = poller.poll()  # from 09:30: only the second order
    assert report.records == 1
    [envelope] = published
    assert (envelope.notice.entity, envelope.notice.ids) == ("order", (str(second),))
    cursor = cursors.get(BRIGHTPEARL_ORDER_CURSOR)
    assert cursor is not None and cursor.value.startswith("2026-12-05T10:00:00")


def test_the_writeback_setting_is_checked_by_yaml_path_and_defaults_to_reopen():
    assert parse_order_mapping({}).writeback.read_only_orders == "reopen"
    assert (
        parse_order_mapping({"writeback": {"read_only_orders": "direct"}}).writeback.read_only_orders
        == "direct"
    )
    with pytest.raises(MappingError) as caught:
        parse_order_mapping({"writeback": {"read_only_orders": "sometimes"}})
    assert "writeback.read_only_orders" in str(caught.value)
