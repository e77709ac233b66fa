"""invoices-to-dataverse on stand-in ports (issue 14 item 3): what it leaves alone, an order not in
Dynamics yet retried (OrderNotInDynamics), an invoice another worker created at the same moment
retried rather than failed (InvoiceWrittenMeanwhile), and one atomic change set per order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.dataverse.errors import DataverseError
from shared.dataverse.models import BatchOperation, BatchResult, Record
from shared.events import ChangeNotice, Envelope
from shared.flows.invoices_to_dataverse import InvoicesToDataverse, invoice_key
from shared.outcomes import Completed, RetryLater
from shared.sync.fakes import MemoryStateStore

SALESORDER = "5f2c7c4e-0d0e-4a57-9d53-1b3f0f0c7a11"
CURRENCY = "9a4b1f2e-1111-4c2d-8e3f-222233334444"
CONTACT = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"


def bp_order(order_id: int, *, invoiced: bool = True, kind: str = "SO") -> dict[str, Any]:
    return {
        "id": order_id,
        "orderTypeCode": kind,
        "currency": {"orderCurrencyCode": "GBP"},
        "totalValue": {"total": "24.00"},
        "invoices": [{"invoiceReference": f"SI-{order_id}"}] if invoiced else [],
        "orderRows": {
            "1": {
                "orderRowSequence": "1",
                "productSku": "MUG-1",
                "quantity": {"magnitude": "2"},
                "productPrice": {"value": "10.00"},
                "rowValue": {"rowNet": {"value": "20.00"}, "rowTax": {"value": "4.00"}},
            }
        },
        "updatedOn": "2026-12-05T10:00:00.000+00:00",
    }


class Brightpearl:
    def __init__(self, *orders: dict[str, Any]) -> None:
        self.orders = {o["id"]: o for o in orders}

    def get_by_ids(self, path: str, ids: Iterable[int], *, limit: int = 200) -> list[dict[str, Any]]:
        return [self.orders[i] for i in ids if i in self.orders]

    def search(self, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        return []


class Dataverse:
    def __init__(self, answer_status: int = 204) -> None:
        self.answer_status = answer_status
        self.batches: list[tuple[list[BatchOperation], bool]] = []

    def query(self, entity_set: str, **kwargs: Any) -> Iterator[Record]:
        rows = {
            "transactioncurrencies": [
                {"transactioncurrencyid": CURRENCY, "isocurrencycode": "GBP", "currencyprecision": 2}
            ],
            "salesorders": [
                {"salesorderid": salesorder_of(i), "ordernumber": f"ORD-{i}", "_customerid_value": CONTACT}
                for i in (1, 2, 7, 8)  # the salesorders linked_store links
            ],
        }.get(entity_set, [])
        for row in rows:
            annotations = {"_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact"}
            yield Record(entity_set, None, None, row, annotations if entity_set == "salesorders" else {})

    def execute_change_sets(self, groups: Sequence[Sequence[BatchOperation]]) -> list[list[BatchResult]]:
        return [self.execute_batch(group, change_set=True) for group in groups]

    def execute_batch(
        self, ops: Sequence[BatchOperation], *, continue_on_error: bool = True, change_set: bool = False
    ) -> list[BatchResult]:
        self.batches.append((list(ops), change_set))
        error = None if self.answer_status < 400 else DataverseError("exists", status=self.answer_status)
        return [BatchResult(i, self.answer_status, {}, None, error) for i in range(len(ops))]


def run(bp: Brightpearl, dv: Dataverse, store: MemoryStateStore, *ids: int) -> list[Any]:
    flow = InvoicesToDataverse(brightpearl=bp, dataverse=dv, store=store, publish=lambda envelopes: None)  # type: ignore[arg-type]
    notice = ChangeNotice(
        system="brightpearl",
        entity="order",
        ids=tuple(str(i) for i in ids),
        operation="changed",
        observed_at=datetime.now(UTC),
        source="/brightpearl/test",
        origin="test",
        version="v:1",
    )
    return list(flow.handle([Envelope.wrap(notice)]))


def linked_store(*order_ids: int) -> MemoryStateStore:
    store = MemoryStateStore()
    for order_id in order_ids:
        store.links.link("order", "brightpearl", str(order_id), "dataverse", salesorder_of(order_id))
    return store


def salesorder_of(order_id: int) -> str:
    return f"{SALESORDER[:-4]}{order_id:04d}"


def test_credits_and_orders_not_invoiced_are_left_alone() -> None:
    dv = Dataverse()
    [outcome] = run(
        Brightpearl(bp_order(1, invoiced=False), bp_order(2, kind="SC")), dv, linked_store(1, 2), 1, 2
    )
    assert isinstance(outcome, Completed) and dv.batches == []


def test_an_order_not_in_dynamics_yet_is_retried_with_its_reason() -> None:
    dv = Dataverse()
    [outcome] = run(Brightpearl(bp_order(7)), dv, MemoryStateStore(), 7)
    assert isinstance(outcome, RetryLater) and outcome.reason == "OrderNotInDynamics"
    assert "Brightpearl order 7" in outcome.error and dv.batches == []


def test_invoices_are_written_in_one_batch_under_their_keys() -> None:
    dv = Dataverse()
    [outcome] = run(Brightpearl(bp_order(7), bp_order(8)), dv, linked_store(7, 8), 7, 8)
    assert isinstance(outcome, Completed)
    assert [[op.path.split("(")[0] for op in ops] for ops, _ in dv.batches] == [
        ["invoices", "invoicedetails"]
    ] * 2
    assert all(change_set for _, change_set in dv.batches)  # one atomic change set per order
    ops = dv.batches[0][0]
    assert ops[0].path == f"invoices({invoice_key('7', 'SI-7')})" and ops[0].headers == {"If-None-Match": "*"}
    assert ops[0].body is not None and ops[0].body["customerid_contact@odata.bind"] == f"/contacts({CONTACT})"
    assert ops[0].body["bpi_amountpaid"] == 0.0


def test_an_invoice_another_worker_created_meanwhile_is_retried_not_failed() -> None:
    [outcome] = run(Brightpearl(bp_order(7)), Dataverse(answer_status=412), linked_store(7), 7)
    assert isinstance(outcome, RetryLater) and outcome.reason == "InvoiceWrittenMeanwhile"
