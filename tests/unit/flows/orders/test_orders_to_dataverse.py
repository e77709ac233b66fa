"""Flow orders-to-dataverse on the in-memory fakes (issue 13 item 4, status write-back): a mapped
Brightpearl status moves the Dynamics order (PATCH, or FulfillSalesOrder for Fulfilled), an
unchanged one writes nothing, an unmapped one is StatusNotMapped, an order not from Dynamics is
skipped, a refused transition dead-letters with Dynamics' message, throttling retries."""

from __future__ import annotations

import itertools
from typing import Any

from shared.brightpearl.errors import BrightpearlThrottled
from shared.dataverse.errors import DataverseThrottled
from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.orders_spec import ORDERS, STATUS_EVENT, TO_DATAVERSE
from shared.flows.orders_to_dataverse import OrdersToDataverse
from shared.mapping.orders_history import HistorySettings
from shared.mapping.orders_status import parse_order_status_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore

VERSIONS = itertools.count()
ORDER = "0a000000-0000-4000-8000-000000000001"
STATUSES = parse_order_status_mapping(
    {
        "statuses": {
            "Awaiting Payment": {"statecode": 0, "statuscode": 1},
            "Partially Shipped": {"statecode": 1, "statuscode": 3},
            "Shipped": {"id": 7, "statecode": 3, "statuscode": 100001},
            "Cancelled": {"statecode": 2, "statuscode": 4},
        }
    }
)
NAMES = {
    4: "Awaiting Payment",
    5: "Partially Shipped",
    7: "Shipped",
    8: "On Hold",
    9: "Cancelled",
    10: "Backordered",
}


def notice(*ids: int) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="order",
            ids=tuple(str(i) for i in ids),
            operation="updated",
            source="/brightpearl/test",
            origin="webhook",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
            detail={"event": STATUS_EVENT},
        )
    )


class Rig:
    def __init__(self) -> None:
        self.bp = FakeBrightpearl(order_statuses=dict(NAMES))
        self.dv = FakeDataverse()
        self.store = MemoryStateStore()

    def flow(self) -> OrdersToDataverse:
        return OrdersToDataverse(
            statuses=STATUSES,
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=lambda _: None,
        )

    def order(self, status_id: int, *, linked: bool = True, state: tuple[int, int] = (1, 3)) -> int:
        """A Dynamics order (Submitted by default) that orders-to-brightpearl created in Brightpearl,
        holding the status name and payment status the write-back leaves there."""
        self.dv.add(
            "salesorders",
            {
                "salesorderid": ORDER,
                "ordernumber": "ORD-01001",
                "statecode": state[0],
                "statuscode": state[1],
                "bpi_paymentstatus": "NOT_PAID",  # an unpaid order
                "bpi_brightpearlstatus": NAMES[status_id],
            },
        )
        bp_id = self.bp.create_sales_order({"ref": "ORD-01001", "externalRef": ORDER, "statusId": status_id})
        if linked:
            self.store.links.link("order", "dataverse", ORDER, "brightpearl", str(bp_id))
        return bp_id

    @property
    def state(self) -> tuple[int, int]:
        row = self.dv.tables["salesorders"][ORDER]
        return row["statecode"], row["statuscode"]

    def audit(self) -> list[tuple[str, str | None, str]]:
        return [(str(e.result), e.reason_code, e.description) for e in self.store.audit.entries]


def test_the_flow_is_declared_on_the_orders_spec_and_consumes_order_status_notices():
    assert TO_DATAVERSE in ORDERS.flows and TO_DATAVERSE.name == "orders-to-dataverse"
    assert (TO_DATAVERSE.source, TO_DATAVERSE.target, TO_DATAVERSE.source_entities) == (
        "brightpearl",
        "dataverse",
        ("order", "goods-out-note", "sales-order"),
    )
    assert STATUS_EVENT in ORDERS.brightpearl_events


def test_a_mapped_status_sets_the_dynamics_state_in_one_batch():
    rig = Rig()
    bp_id = rig.order(4)  # Awaiting Payment -> Active / New
    assert rig.flow().handle([notice(bp_id)]) == [Completed()]
    assert rig.state == (0, 1)
    assert rig.dv.calls == ["query", "execute_batch"]  # one read of the states, one $batch
    assert rig.bp.calls == ["create_sales_order", "get_by_ids"]


def test_a_fulfilled_status_goes_through_fulfill_sales_order():
    rig = Rig()
    bp_id = rig.order(7)  # Shipped (pinned id 7) -> Fulfilled / Complete
    assert rig.flow().handle([notice(bp_id)]) == [Completed()]
    assert rig.state == (3, 100001)


def test_an_unchanged_state_writes_nothing_and_our_own_write_does_not_bounce():
    rig = Rig()
    bp_id = rig.order(5)  # Partially Shipped -> Submitted / In Progress, which Dynamics holds
    assert rig.flow().handle([notice(bp_id)]) == [Completed()]
    assert rig.dv.calls == ["query"]  # read, nothing written
    assert rig.state == (1, 3)
    rig.bp.set_order_status(bp_id, 4)
    flow = rig.flow()
    assert flow.handle([notice(bp_id)]) == [Completed()]
    rig.dv.calls.clear()
    assert flow.handle([notice(bp_id), notice(bp_id)]) == [Completed(), Completed()]  # a repeat
    assert rig.dv.calls == ["query"] and rig.state == (0, 1)


def test_an_unmapped_status_is_status_not_mapped_naming_the_status_and_order_number():
    rig = Rig()
    bp_id = rig.order(8)  # On Hold: not in the mapping
    [outcome] = rig.flow().handle([notice(bp_id)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "StatusNotMapped"
    assert "'On Hold'" in outcome.description and "(id 8)" in outcome.description
    assert "ORD-01001" in outcome.description
    assert rig.state == (1, 3) and "execute_batch" not in rig.dv.calls
    rig.bp.set_order_status(bp_id, 10)  # another unmapped status: its name is still written
    [outcome] = rig.flow().handle([notice(bp_id)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "StatusNotMapped"
    assert rig.dv.tables["salesorders"][ORDER]["bpi_brightpearlstatus"] == "Backordered"
    assert rig.state == (1, 3)


def test_an_unlinked_order_that_started_in_dynamics_is_not_copied_back():
    """Its externalRef names a Dynamics order (orders-to-brightpearl's link not written yet): the
    order history leaves it alone after one look-up."""
    rig = Rig()
    bp_id = rig.order(4, linked=False)
    assert rig.flow().handle([notice(bp_id)]) == [Completed()]
    assert rig.state == (1, 3) and rig.dv.calls == ["query"]
    assert len(rig.dv.tables["salesorders"]) == 1
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == ("skipped", "FromDynamics")
    assert "started in Dynamics" in description


def test_with_history_off_an_unlinked_order_is_skipped_with_an_audit_note():
    rig = Rig()
    bp_id = rig.order(4, linked=False)
    flow = rig.flow()
    flow.history.settings = HistorySettings(enabled=False)
    assert flow.handle([notice(bp_id)]) == [Completed()]
    assert rig.state == (1, 3) and rig.dv.calls == []
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == ("skipped", "NotFromDynamics")
    assert "not created from Dynamics" in description


def test_a_transition_dynamics_refuses_is_a_dead_letter_with_its_message():
    rig = Rig()
    bp_id = rig.order(4, state=(3, 100001))  # already Fulfilled: closed, cannot go back to Active
    [outcome] = rig.flow().handle([notice(bp_id)])
    assert isinstance(outcome, DeadLetter)
    assert "cannot be changed" in outcome.description and "ORD-01001" in outcome.description
    assert rig.state == (3, 100001)


def test_a_status_mapped_to_canceled_is_not_written_and_says_why():
    rig = Rig()
    bp_id = rig.order(9)
    [outcome] = rig.flow().handle([notice(bp_id)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "StateChangeNotSupported"
    assert "'Cancelled'" in outcome.description and "Active, Submitted or Fulfilled" in outcome.description
    assert rig.state == (1, 3) and "execute_batch" not in rig.dv.calls


def test_throttling_on_either_side_is_a_retry_and_the_retry_writes():
    rig = Rig()
    bp_id = rig.order(4)
    rig.dv.fail_next["execute_batch"] = [
        DataverseThrottled("429 service protection", status=429, retry_after=7)
    ]
    [outcome] = rig.flow().handle([notice(bp_id)])
    assert isinstance(outcome, RetryLater) and outcome.delay is not None and outcome.delay >= 7
    assert rig.state == (1, 3)
    rig.bp.fail_next["get_by_ids"] = [BrightpearlThrottled("503 throttled", status=503)]
    [outcome] = rig.flow().handle([notice(bp_id)])
    assert isinstance(outcome, RetryLater)
    assert rig.flow().handle([notice(bp_id)]) == [Completed()]
    assert rig.state == (0, 1)


def linked_orders(rig: Any, count: int, status_id: int = 4) -> list[int]:
    """`count` Submitted Dynamics orders, each created in Brightpearl in `status_id` and linked."""
    ids = []
    for n in range(count):
        guid = f"0a000000-0000-4000-8000-{n:012d}"
        rig.dv.add(
            "salesorders", {"salesorderid": guid, "ordernumber": f"ORD-{n}", "statecode": 1, "statuscode": 3}
        )
        bp_id = rig.bp.create_sales_order({"ref": f"ORD-{n}", "externalRef": guid, "statusId": status_id})
        rig.store.links.link("order", "dataverse", guid, "brightpearl", str(bp_id))
        ids.append(bp_id)
    return ids


def test_many_orders_are_read_and_written_in_bulk():
    rig = Rig()
    ids = linked_orders(rig, 1000)
    assert set(rig.flow().handle([notice(*ids[:500]), notice(*ids[500:])])) == {Completed()}
    # as many ids a query as the URL takes (~530 GUIDs; 100 a query made it 10), then the
    # 2,000 operations (reopen, state) in $batches of 1,000
    assert rig.dv.calls == ["query", "query", "execute_batch", "execute_batch"]
    assert {(r["statecode"], r["statuscode"]) for r in rig.dv.tables["salesorders"].values()} == {(0, 1)}
