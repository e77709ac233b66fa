"""The generic backfill (shared/sync/backfill.py) on the fakes: pages of the entity's listing
become change notices in chunks, progress after each page, a resumable cursor per entity and
source, products and customers alike; a products backfill from Dataverse is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.events import Envelope
from shared.flows.customers_backfill import CustomerBackfill
from shared.flows.customers_spec import CUSTOMERS
from shared.flows.products_spec import PRODUCTS
from shared.sync.backfill import Backfill
from shared.sync.fakes import FakeBrightpearl, MemoryCursors
from shared.sync.spec import EntitySpec

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def catalogue(n: int) -> FakeBrightpearl:
    bp = FakeBrightpearl()
    for i in range(n):
        bp.add_product({"id": 5000 + i, "identity": {"sku": f"SKU-{i}"}})
    return bp


class Bus:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def publish(self, envelopes: list[Envelope]) -> None:
        self.envelopes.extend(envelopes)

    def ids(self) -> list[str]:
        return [i for e in self.envelopes for i in e.notice.ids]


def products_job(
    bp: FakeBrightpearl, cursors: MemoryCursors, bus: Bus, spec: EntitySpec = PRODUCTS, **kw: int
) -> Backfill:
    return Backfill(
        spec,
        "brightpearl",
        client=bp,
        cursors=cursors,
        publish=bus.publish,
        clock=lambda: NOW,
        source_name="/brightpearl/unit",
        per_notice=kw.get("per_notice", 10),
        page_size=kw.get("page_size", 25),
    )


def test_products_backfill_publishes_every_product_id_in_chunks_with_progress() -> None:
    bp, cursors, bus = catalogue(60), MemoryCursors(), Bus()
    progress: list[tuple[int, int | None]] = []

    report = products_job(bp, cursors, bus).run(progress=lambda done, total: progress.append((done, total)))

    assert bus.ids() == [str(5000 + i) for i in range(60)]  # productId ascending, each once
    notices = [e.notice for e in bus.envelopes]
    assert {(n.system, n.entity, n.operation, n.origin) for n in notices} == {
        ("brightpearl", "product", "changed", "backfill")
    }
    assert [len(n.ids) for n in notices] == [10, 10, 5, 10, 10, 5, 10]  # each page in ids_per_notice
    assert progress == [(25, 60), (50, 60), (60, 60)]  # after each page of 25
    assert (report.published_ids, report.notices, report.resumed_from, report.total) == (60, 7, 0, 60)
    assert (report.entity, report.record) == ("products", "product")
    assert cursors.get("backfill-products-brightpearl") is None  # finished: cursor removed


def test_an_interrupted_products_backfill_resumes_where_it_stopped() -> None:
    bp, cursors, bus = catalogue(60), MemoryCursors(), Bus()

    first = products_job(bp, cursors, bus).run(max_pages=1)  # "interrupted" after one page
    assert first.published_ids == 25
    assert cursors.get("backfill-products-brightpearl") is not None
    assert cursors.get("backfill-customers-brightpearl") is None  # a cursor per entity

    second = products_job(bp, cursors, bus).run()

    assert (second.resumed_from, second.published_ids) == (25, 35)
    assert second.run_id == first.run_id  # same run: a re-published chunk has the same message id
    assert bus.ids() == [str(5000 + i) for i in range(60)]  # every id once, none twice
    assert cursors.get("backfill-products-brightpearl") is None


def test_a_resume_with_another_since_is_refused_and_restart_starts_over() -> None:
    bp, cursors, bus = catalogue(30), MemoryCursors(), Bus()
    products_job(bp, cursors, bus).run(max_pages=1)

    with pytest.raises(ValueError, match=r"unfinished.*--restart"):
        products_job(bp, cursors, bus).run(since=datetime(2026, 1, 1, tzinfo=UTC))
    again = products_job(bp, cursors, bus).run(restart=True)

    assert (again.resumed_from, again.published_ids) == (0, 30)


def test_products_cannot_be_backfilled_from_dataverse() -> None:
    with pytest.raises(ValueError) as info:
        Backfill(
            PRODUCTS,
            "dataverse",
            client=object(),
            cursors=MemoryCursors(),
            publish=Bus().publish,
            clock=lambda: NOW,
            source_name="/dataverse/unit",
        )
    text = str(info.value)
    assert "cannot be backfilled from dataverse" in text and "Brightpearl is their master" in text
    assert "--from brightpearl" in text


def test_customers_backfill_lists_only_customers_as_contact_notices_and_resumes() -> None:
    bp, cursors, bus = FakeBrightpearl(), MemoryCursors(), Bus()
    customers = [bp.add_contact({"contactId": 700 + i, "firstName": f"C{i}"}) for i in range(12)]
    bp.add_contact({"contactId": 699, "isCustomer": False})  # a supplier: not a customer

    def job() -> Backfill:
        return products_job(bp, cursors, bus, CUSTOMERS, per_notice=4, page_size=5)

    first = job().run(max_pages=2)
    assert first.published_ids == 10 and cursors.get(CUSTOMERS.backfill_cursor("brightpearl")) is not None
    second = job().run()

    assert (second.resumed_from, second.published_ids, second.total) == (10, 2, 12)
    assert bus.ids() == [str(i) for i in customers]
    assert {(e.notice.entity, e.notice.system) for e in bus.envelopes} == {("contact", "brightpearl")}
    assert (second.entity, second.record) == ("customers", "customer")
    assert cursors.get(CUSTOMERS.backfill_cursor("brightpearl")) is None


def test_an_empty_source_publishes_nothing_and_leaves_no_cursor() -> None:
    cursors, bus = MemoryCursors(), Bus()
    report = products_job(FakeBrightpearl(), cursors, bus).run()
    assert (report.published_ids, report.notices) == (0, 0) and bus.envelopes == []
    assert cursors.values == {}


def test_a_source_that_is_not_a_system_is_named() -> None:
    with pytest.raises(ValueError, match="--from must be brightpearl or dataverse, not 'shopify'"):
        CustomerBackfill(
            "shopify",  # type: ignore[arg-type]
            cursors=MemoryCursors(),
            publish=Bus().publish,
            clock=lambda: NOW,
            source_name="x",
        )
