"""Order history creates a batch's new Dynamics orders in bulk (issue 14 benchmarks: <= 60 API
calls per 1,000 orders): one `$batch` of deep inserts, each under its deterministic salesorderid,
whatever the batch's size; exactly once still holds per order (a copy made earlier is found and
linked, a refused order fails alone with its claim released, a lost answer makes nothing twice).
OrderHistory on the in-memory fakes (shared/sync/fakes.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from shared.dataverse.errors import (
    DataverseDuplicateError,
    DataverseUnavailable,
    DataverseValidationError,
)
from shared.flows.orders_history import OrderHistory, salesorder_id
from shared.flows.orders_to_dataverse import OrderState
from shared.mapping.orders_history import HistorySettings, line_id
from shared.mapping.translation import Translation
from shared.sync.engine import SyncRecord
from shared.sync.fakes import FakeDataverse, MemoryStateStore
from shared.sync.outcomes import BatchResults

GBP = "0c000000-0000-4000-8000-000000000001"
RETAIL = "0c000000-0000-4000-8000-000000000002"
CONTACT = "0c000000-0000-4000-8000-000000000003"
SKUS = ("MUG-1", "TEE-1", "CAP-1")
BP_CUSTOMER = 207


class KeyedDataverse(FakeDataverse):
    """The fake with salesorder's alternate key bpi_brightpearlid_key enforced on creates (as
    Dataverse and the simulator do), and orders named in `refuse` refused with a validation error."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: set[str] = set()
        self.answers_lost = False  # the next $batch is applied, then its answer lost

    def _batch_create(self, entity_set: str, body: Mapping[str, Any]) -> str:
        if entity_set == "salesorders":
            bp_id = str(body.get("bpi_brightpearlid"))
            if bp_id in self.refuse:
                raise DataverseValidationError(
                    "A validation error occurred (the test refuses it).", status=400
                )
            if any(row.get("bpi_brightpearlid") == bp_id for row in self.tables["salesorders"].values()):
                raise DataverseDuplicateError(
                    "A record with matching key values already exists.", status=412, code="0x80040237"
                )
        return super()._batch_create(entity_set, body)

    def execute_batch(self, ops: Any, **kwargs: Any) -> Any:
        answers = super().execute_batch(ops, **kwargs)
        if self.answers_lost:
            self.answers_lost = False
            raise DataverseUnavailable("the $batch timed out after it was sent", status=504)
        return answers


class Flow:
    """What OrderHistory uses of orders-to-dataverse."""

    def __init__(self) -> None:
        self.dv = KeyedDataverse()
        self.store = MemoryStateStore()
        self.published: list[Any] = []
        self.dv.add("transactioncurrencies", {"transactioncurrencyid": GBP, "isocurrencycode": "GBP"})
        self.dv.add(
            "pricelevels",
            {
                "pricelevelid": RETAIL,
                "name": "Retail GBP",
                "statecode": 0,
                "_transactioncurrencyid_value": GBP,
            },
        )
        for n, sku in enumerate(SKUS, start=1):
            product = self.dv.add(
                "products",
                {
                    "productid": f"0d000000-0000-4000-8000-00000000000{n}",
                    "productnumber": sku,
                    "_defaultuomid_value": "0e000000-0000-4000-8000-000000000001",
                    "statecode": 0,
                    "statuscode": 1,
                },
            )
            self.dv.add("productpricelevels", {"_pricelevelid_value": RETAIL, "_productid_value": product})
        self.store.links.link("customer", "brightpearl", str(BP_CUSTOMER), "dataverse", CONTACT)

    def publish(self, notices: list[Any]) -> None:
        self.published.extend(notices)

    def born_columns(self, r: Any) -> dict[str, Any]:
        return {"bpi_brightpearlstatus": "New web order"}

    def history(self) -> OrderHistory:
        return OrderHistory(self, HistorySettings())  # type: ignore[arg-type]


def bp_order(order_id: int) -> dict[str, Any]:
    """A Brightpearl web order (order GET) of two rows that add up to its total."""
    rows = {
        str(order_id * 10 + i): {
            "productSku": sku,
            "productName": f"Product {sku}",
            "quantity": {"magnitude": "2"},
            "productPrice": {"value": "5.00"},
            "rowValue": {"rowNet": {"value": "10.00"}, "rowTax": {"value": "2.00"}},
        }
        for i, sku in enumerate(SKUS[:2])
    }
    return {
        "id": order_id,
        "reference": f"WEB-{order_id}",
        "currency": {"orderCurrencyCode": "GBP"},
        "assignment": {"current": {"channelId": 1}},
        "orderStatus": {"orderStatusId": 1, "name": "New web order"},
        "parties": {"customer": {"contactId": BP_CUSTOMER}},
        "placedOn": "2026-12-05T10:00:00.000+01:00",
        "totalValue": {"net": "20.00", "taxAmount": "4.00", "total": "24.00"},
        "orderRows": rows,
    }


def records(ids: list[int]) -> list[SyncRecord[Any]]:
    return [SyncRecord(str(i), bp_order(i), Translation(OrderState())) for i in ids]


def create(flow: Flow, ids: list[int]) -> tuple[list[SyncRecord[Any]], BatchResults]:
    results = BatchResults()
    made = flow.history().create(records(ids), results)
    return made, results


def copies(flow: Flow, bp_id: int) -> list[dict[str, Any]]:
    return [r for r in flow.dv.tables["salesorders"].values() if r.get("bpi_brightpearlid") == str(bp_id)]


def test_the_dataverse_calls_for_a_batch_of_new_orders_do_not_grow_with_its_size() -> None:
    """One order or twenty: the same reads (currencies, price lists, products, price list items)
    and ONE $batch creating every order with its lines, no POST per order."""
    seen: dict[int, Counter[str]] = {}
    runs: list[tuple[Flow, list[SyncRecord[Any]], BatchResults]] = []
    for size in (1, 20):
        flow = Flow()
        made, results = create(flow, list(range(5001, 5001 + size)))
        seen[size] = Counter(flow.dv.calls)
        runs.append((flow, made, results))
    assert seen[20] == seen[1]
    assert seen[20]["execute_batch"] == 1 and seen[20]["create"] == 0
    assert sum(seen[20].values()) <= 5
    for flow, made, results in runs:
        assert results.by_id == {}
        assert [r.source_id for r in made] == [str(i) for i in range(5001, 5001 + len(made))]
        for r in made:
            assert r.target_id == salesorder_id(r.source_id) and r.matched_by is None
            link = flow.store.links.get("order", "brightpearl", r.source_id)
            assert link is not None and link.is_linked and link.id_in("dataverse") == r.target_id
            [copy] = copies(flow, int(r.source_id))
            assert copy["salesorderid"] == r.target_id
            assert [line["salesorderdetailid"] for line in copy["order_details"]] == [
                line_id(r.source_id, row) for row in sorted(bp_order(int(r.source_id))["orderRows"])
            ]
    assert len(runs[1][1]) == 20


def test_more_orders_than_one_batch_holds_take_one_batch_per_two_hundred() -> None:
    flow = Flow()
    ids = list(range(7001, 7451))  # 450 orders
    made, results = create(flow, ids)
    assert results.by_id == {} and len(made) == 450
    assert Counter(flow.dv.calls)["execute_batch"] == 3
    assert len(flow.dv.tables["salesorders"]) == 450


def test_a_refused_order_fails_alone_and_one_made_before_is_found_and_linked() -> None:
    """In one batch: an order whose copy exists (a worker died before linking it: the alternate
    key refuses the POST) is looked up and linked; one Dynamics refuses gets its own error and its
    claim released; the others are created. Still one $batch."""
    flow = Flow()
    earlier = flow.dv.add(
        "salesorders", {"salesorderid": "0f000000-0000-4000-8000-000000000001", "bpi_brightpearlid": "6002"}
    )
    flow.dv.refuse.add("6003")
    made, results = create(flow, [6001, 6002, 6003, 6004])

    assert {r.source_id: (r.target_id, r.matched_by) for r in made} == {
        "6001": (salesorder_id(6001), None),
        "6002": (earlier, "recovered"),
        "6004": (salesorder_id(6004), None),
    }
    assert list(results.by_id) == ["6003"]
    assert results.by_id["6003"].kind == "fatal"
    assert "creation of the Dynamics order of Brightpearl order 6003" in results.by_id["6003"].description
    assert [len(copies(flow, i)) for i in (6001, 6002, 6003, 6004)] == [1, 1, 0, 1]
    link = flow.store.links.get("order", "brightpearl", "6002")
    assert link is not None and link.id_in("dataverse") == earlier
    flow.store.links.claim("order", "brightpearl", "6003", "dataverse")  # released: claimable again
    assert Counter(flow.dv.calls)["execute_batch"] == 1


def test_a_lost_batch_answer_makes_nothing_twice() -> None:
    """The $batch creates the orders and its answer is lost: every order retries (claims released
    with their posting mark); the retry finds them all in one query, links them, POSTs nothing."""
    flow = Flow()
    ids = [8001, 8002, 8003]
    flow.dv.answers_lost = True
    made, results = create(flow, ids)
    assert made == [] and sorted(results.by_id) == ["8001", "8002", "8003"]
    assert {r.kind for r in results.by_id.values()} == {"transient"}
    assert len(flow.dv.tables["salesorders"]) == 3

    flow.dv.calls.clear()
    made, results = create(flow, ids)
    assert results.by_id == {}
    assert [(r.target_id, r.matched_by) for r in made] == [(salesorder_id(i), "recovered") for i in ids]
    assert [len(copies(flow, i)) for i in ids] == [1, 1, 1]
    assert "execute_batch" not in flow.dv.calls


def test_the_deterministic_id_refuses_a_second_copy_even_without_the_alternate_key() -> None:
    """Sent again after its answer was lost, with the claim's mark gone too: the primary key
    (uuid5 of the Brightpearl order id) refuses it, and the copy it names is linked."""
    flow = Flow()
    made, _ = create(flow, [9001])
    copy = flow.dv.tables["salesorders"][salesorder_id(9001)]
    copy["bpi_brightpearlid"] = None  # the alternate key cannot find it any more
    assert flow.store.links.unlink("order", "brightpearl", "9001")  # the state store lost it
    made, results = create(flow, [9001])
    assert results.by_id == {}
    assert [(r.target_id, r.matched_by) for r in made] == [(salesorder_id(9001), "recovered")]
    assert len(flow.dv.tables["salesorders"]) == 1
