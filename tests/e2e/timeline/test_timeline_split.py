"""timeline-to-dataverse on in-memory ports: a moment Dynamics refuses, in a notice naming several
orders, is split off as a single-id notice naming the moment (`order_placed:<id>`), which the
flow reads again and dead-letters on its own; the others are written. A duplicate answer
(412 DuplicateRecord) is "already on the timeline"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.dataverse.errors import DataverseDuplicateError, DataverseValidationError
from shared.dataverse.models import BatchOperation, BatchResult
from shared.events import ChangeNotice, Envelope
from shared.flows.timeline_to_dataverse import TimelineToDataverse, activity_id
from shared.mapping.timeline_config import TimelineMapping
from shared.outcomes import Completed, DeadLetter
from shared.sync.fakes import MemoryStateStore

CONTACT = "0b7a2a4e-1d4c-4d2e-9f3a-6f1e2d3c4b5a"


class Orders:
    """Brightpearl: sales orders by id (order GET), no goods-out notes."""

    def get_by_ids(self, path: str, ids: Iterable[int], **_: Any) -> list[Any]:
        assert path.startswith("/order-service/order/"), path
        return [
            {
                "id": i,
                "orderTypeCode": "SO",
                "reference": f"WEB-{i}",
                "parties": {"customer": {"contactId": 77}},
                "totalValue": {"total": "12.00"},
                "currency": {"orderCurrencyCode": "GBP"},
                "orderRows": {},
            }
            for i in ids
        ]


class Dynamics:
    """Dataverse $batch: refuses the notes of `refused` activity ids, answers `taken` ones as
    duplicates, records the rest."""

    def __init__(self, refused: set[str], taken: set[str]) -> None:
        self.refused, self.taken, self.written = refused, taken, []

    def execute_batch(self, ops: Sequence[BatchOperation], **_: Any) -> list[BatchResult]:
        out = []
        for i, op in enumerate(ops):
            record = op.path.split("(")[1].rstrip(")")
            error: Any = None
            if record in self.refused:
                error = DataverseValidationError("subject is not valid", status=400, code="0x80040203")
            elif record in self.taken:
                error = DataverseDuplicateError(
                    "A record with matching key values already exists.", status=412, code="0x80040237"
                )
            else:
                self.written.append((op.path, dict(op.body or {}), dict(op.headers)))
            out.append(BatchResult(i, 204 if error is None else error.status, {}, None, error))
        return out


def _flow(dv: Dynamics, published: list[Envelope]) -> tuple[TimelineToDataverse, MemoryStateStore]:
    store = MemoryStateStore()
    store.links.link("customer", "brightpearl", "77", "dataverse", CONTACT)
    flow = TimelineToDataverse(
        mapping=TimelineMapping(),
        brightpearl=Orders(),  # type: ignore[arg-type]
        dataverse=dv,  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        publish=published.extend,
    )
    return flow, store


def _notice(*ids: str) -> Envelope:
    notice = ChangeNotice(
        system="brightpearl",
        entity="order",
        ids=ids,
        operation="updated",  # type: ignore[arg-type]
        observed_at=datetime.now(UTC),
        source="/brightpearl/test",
        version="v1",
    )
    return Envelope.wrap(notice)


def test_a_refused_moment_is_split_off_and_dead_lettered_alone():
    published: list[Envelope] = []
    dv = Dynamics(refused={activity_id("order_placed:2")}, taken=set())
    flow, _store = _flow(dv, published)
    [outcome] = flow.handle([_notice("1", "2")])
    assert isinstance(outcome, Completed)
    assert [path for path, _, _ in dv.written] == [f"annotations({activity_id('order_placed:1')})"]
    _, body, headers = dv.written[0]
    assert body["objectid_contact@odata.bind"] == f"/contacts({CONTACT})" and headers == {
        "If-None-Match": "*"
    }
    [split] = published
    assert split.notice.ids == ("order_placed:2",)

    [again] = flow.handle([split])  # the split-off notice: the moment alone, refused again
    assert isinstance(again, DeadLetter)
    assert "order_placed:2" in again.description and "subject is not valid" in again.description
    assert len(dv.written) == 1


def test_a_duplicate_answer_is_already_on_the_timeline_and_linked():
    dv = Dynamics(refused=set(), taken={activity_id("order_placed:5")})
    flow, store = _flow(dv, [])
    [outcome] = flow.handle([_notice("5")])
    assert isinstance(outcome, Completed) and dv.written == []
    link = store.links.get("timeline", "brightpearl", "order_placed:5")
    assert link is not None and link.id_in("dataverse") == activity_id("order_placed:5")
    [row] = [e for e in store.audit.entries if e.source_id == "order_placed:5"]
    assert "already on the timeline" in row.description


class CountingOrders(Orders):
    """Orders that remembers each read's size; `gone` ids are not in Brightpearl."""

    def __init__(self, gone: set[int]) -> None:
        self.gone, self.reads = gone, []

    def get_by_ids(self, path: str, ids: Iterable[int], **kwargs: Any) -> list[Any]:
        wanted = list(ids)
        self.reads.append(len(wanted))
        return super().get_by_ids(path, [i for i in wanted if i not in self.gone], **kwargs)


def test_a_large_batch_is_read_a_pass_at_a_time_and_every_order_gets_its_moment():
    dv = Dynamics(refused=set(), taken=set())
    flow, store = _flow(dv, [])
    flow.bp = bp = CountingOrders(gone={9})  # type: ignore[assignment]
    flow.records_per_pass = 2
    outcomes = flow.handle([_notice("1", "2", "3"), _notice("4", "9", "5")])
    assert all(isinstance(o, Completed) for o in outcomes)
    assert bp.reads == [2, 2, 2]  # never more than a pass of orders held at once
    written = sorted(path for path, _, _ in dv.written)
    assert written == sorted(f"annotations({activity_id(f'order_placed:{i}')})" for i in (1, 2, 3, 4, 5))
    [gone] = [e for e in store.audit.entries if e.source_id == "9"]
    assert gone.result == "missing" and "no longer exists" in gone.description
