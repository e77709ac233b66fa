"""Flow stock-to-dataverse and the stock poller on the in-memory fakes (no HTTP, no Azurite):
a storm coalesced into one availability read per ≤ 200 ids and writes of changed figures only,
untracked products untouched, warehouses and measure, throttling -> retry, a product Dynamics
lacks retried a bounded number of times, the goods-movement poller with its overlap, and the
`stock:` settings' errors naming the field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.brightpearl.errors import BrightpearlThrottled
from shared.brightpearl.models import ProductAvailability
from shared.brightpearl.ratebudget import RateBudget
from shared.dataverse.errors import DataverseThrottled
from shared.events import Envelope
from shared.flows.stock_poller import BrightpearlStockPoller, BrightpearlStockSweep
from shared.flows.stock_spec import STOCK_CURSOR, STOCK_ENTITY
from shared.flows.stock_to_dataverse import StockToDataverse, stock_figure
from shared.mapping.config import MappingError
from shared.mapping.products_config import read_product_mapping
from shared.mapping.stock import StockSettings, parse_stock_settings, read_stock_settings
from shared.outcomes import Completed, RetryLater
from shared.store import AuditResult
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from tests.unit.flows.products.test_products_to_dataverse import notice as product_notice

FLOW = "stock-to-dataverse"
VERSIONS = itertools.count()


class Rig:
    """Both fakes, the memory state store and the stock flow wired to them."""

    def __init__(self, settings: StockSettings | None = None) -> None:
        self.bp = FakeBrightpearl()
        self.dv = FakeDataverse(products_active_on_create=True)
        self.store = MemoryStateStore()
        self.flow = StockToDataverse(
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=lambda envelopes: None,
            settings=settings or StockSettings(),
        )

    def product(self, *, tracked: bool = True, in_dynamics: bool = True, stock: float | None = None) -> str:
        """A Brightpearl product (and, by default, its Dynamics product holding `stock`)."""
        product_id = self.bp.add_product(
            {"identity": {"sku": f"SKU-{next(VERSIONS)}"}, "stock": {"stockTracked": tracked}}
        )
        if in_dynamics:
            row: dict[str, Any] = {"bpi_brightpearlid": str(product_id), "statecode": 0, "statuscode": 1}
            if stock is not None:
                row["bpi_availablestock"] = stock
            self.dv.add("products", row)
        return str(product_id)

    def stock_of(self, product_id: str) -> Any:
        [row] = [r for r in self.dv.tables["products"].values() if r.get("bpi_brightpearlid") == product_id]
        return row.get("bpi_availablestock")

    def row(self, product_id: str) -> dict[str, Any]:
        [row] = [r for r in self.dv.tables["products"].values() if r.get("bpi_brightpearlid") == product_id]
        return row

    def calls(self, fake: FakeBrightpearl | FakeDataverse, name: str) -> int:
        return fake.calls.count(name)

    def audit(self) -> dict[str, tuple[AuditResult, str | None]]:
        return {e.source_id: (e.result, e.reason_code) for e in self.store.audit.entries if e.flow == FLOW}


def notice(*ids: str, attempt: int = 1, operation: str = "updated") -> Envelope:
    """A product webhook's notice (delivery `attempt`: 2 and up are scheduled retries)."""
    return product_notice(*ids, operation=operation).model_copy(update={"attempt": attempt})


@pytest.fixture
def rig() -> Rig:
    return Rig()


# ---------------------------------------------------------------------------------- the storm
def test_a_storm_over_250_products_is_two_availability_reads_and_one_write_of_the_changed(rig: Rig):
    ids = [rig.product(stock=5) for _ in range(250)]
    for i, product_id in enumerate(ids):
        rig.bp.set_stock(int(product_id), 2, onHand=5 if i % 10 else 7)  # every tenth changed: 25
    storm = [notice(*ids[i : i + 3]) for i in range(0, 250, 3) for _ in range(20)]  # ~1,680 notices

    outcomes = rig.flow.handle(storm)

    assert all(isinstance(o, Completed) for o in outcomes)
    assert rig.calls(rig.bp, "get_product_availability") == 2  # 250 ids: 200 + 50
    assert rig.calls(rig.dv, "update_multiple") == 1
    assert rig.bp.calls.count("get_by_ids") == 0  # the products themselves are not read
    changed = [p for i, p in enumerate(ids) if i % 10 == 0]
    assert [rig.stock_of(p) for p in changed] == [7] * 25
    assert all(rig.stock_of(p) == 5 for i, p in enumerate(ids) if i % 10)
    audit = rig.audit()
    assert sum(1 for r, _ in audit.values() if r is AuditResult.SYNCED) == 25
    assert sum(1 for r, _ in audit.values() if r is AuditResult.SKIPPED) == 225  # unchanged


def test_an_unchanged_figure_writes_nothing(rig: Rig):
    product_id = rig.product(stock=4)
    rig.bp.set_stock(int(product_id), 2, onHand=4)

    assert isinstance(rig.flow.handle([notice(product_id)])[0], Completed)

    assert rig.calls(rig.dv, "update_multiple") == 0
    assert rig.audit()[product_id][0] is AuditResult.SKIPPED


def test_a_decimal_spelling_of_the_same_figure_is_unchanged(rig: Rig):
    product_id = rig.product(stock="4.0000000000")  # type: ignore[arg-type]  # Dynamics' Decimal
    rig.bp.set_stock(int(product_id), 2, onHand=4)

    rig.flow.handle([notice(product_id)])

    assert rig.calls(rig.dv, "update_multiple") == 0


def test_a_product_without_a_figure_gets_one(rig: Rig):
    product_id = rig.product(stock=None)
    rig.bp.set_stock(int(product_id), 2, onHand=12)

    rig.flow.handle([notice(product_id)])

    assert rig.stock_of(product_id) == 12
    assert rig.audit()[product_id][0] is AuditResult.SYNCED


def test_a_figure_edited_in_dynamics_is_put_back(rig: Rig):
    product_id = rig.product(stock=3)
    rig.bp.set_stock(int(product_id), 2, onHand=3)
    rig.row(product_id)["bpi_availablestock"] = 99  # someone typed over it

    rig.flow.handle([notice(product_id)])

    assert rig.stock_of(product_id) == 3


def test_zero_stock_is_written_as_zero(rig: Rig):
    product_id = rig.product(stock=2)
    rig.bp.set_stock(int(product_id), 2, onHand=2)
    rig.bp.move_stock(int(product_id), 2, -2)

    rig.flow.handle([notice(product_id)])

    assert rig.stock_of(product_id) == 0


# ---------------------------------------------------------------------------------- left alone
def test_a_product_that_is_not_stock_tracked_is_never_zeroed(rig: Rig):
    untracked = rig.product(tracked=False, stock=8)
    tracked = rig.product(stock=1)
    rig.bp.set_stock(int(tracked), 2, onHand=6)

    outcomes = rig.flow.handle([notice(untracked, tracked)])

    assert isinstance(outcomes[0], Completed)
    assert rig.stock_of(untracked) == 8
    assert rig.stock_of(tracked) == 6
    assert rig.audit()[untracked] == (AuditResult.SKIPPED, None)


def test_a_retired_product_is_left_alone(rig: Rig):
    product_id = rig.product(stock=1)
    rig.row(product_id).update(statecode=1, statuscode=2)
    rig.bp.set_stock(int(product_id), 2, onHand=6)

    rig.flow.handle([notice(product_id)])

    assert rig.stock_of(product_id) == 1
    assert rig.calls(rig.dv, "update_multiple") == 0


def test_a_destroyed_product_notice_reads_nothing(rig: Rig):
    product_id = rig.product(stock=1)

    outcomes = rig.flow.handle([notice(product_id, operation="deleted")])

    assert isinstance(outcomes[0], Completed)
    assert rig.calls(rig.bp, "get_product_availability") == 0
    assert rig.stock_of(product_id) == 1


def test_a_product_dynamics_lacks_is_retried_a_few_times_then_left_without_a_dead_letter(rig: Rig):
    product_id = rig.product(in_dynamics=False)
    rig.bp.set_stock(int(product_id), 2, onHand=3)

    first = rig.flow.handle([notice(product_id, attempt=1)])[0]
    last_retry = rig.flow.handle([notice(product_id, attempt=3)])[0]
    after = rig.flow.handle([notice(product_id, attempt=4)])[0]

    assert isinstance(first, RetryLater) and first.reason == "ProductNotInDynamics"
    assert isinstance(last_retry, RetryLater)
    assert isinstance(after, Completed)
    assert rig.audit()[product_id] == (AuditResult.SKIPPED, "ProductNotInDynamics")


def test_once_the_products_flow_created_it_the_retry_writes_its_stock(rig: Rig):
    product_id = rig.product(in_dynamics=False)
    rig.bp.set_stock(int(product_id), 2, onHand=3)
    assert isinstance(rig.flow.handle([notice(product_id)])[0], RetryLater)

    rig.dv.add(
        "products", {"bpi_brightpearlid": product_id, "statecode": 0, "statuscode": 1}
    )  # products flow
    outcome = rig.flow.handle([notice(product_id, attempt=2)])[0]

    assert isinstance(outcome, Completed)
    assert rig.stock_of(product_id) == 3


# ---------------------------------------------------------------------------------- settings
def test_only_the_configured_warehouses_are_summed():
    rig = Rig(StockSettings(warehouses=(2, 4)))
    product_id = rig.product(stock=0)
    rig.bp.set_stock(int(product_id), 2, onHand=5)
    rig.bp.set_stock(int(product_id), 3, onHand=100)  # not configured
    rig.bp.set_stock(int(product_id), 4, onHand=2)
    only_3 = rig.product(stock=9)
    rig.bp.set_stock(int(only_3), 3, onHand=9)  # holds none in 2 or 4: 0, not left alone

    rig.flow.handle([notice(product_id, only_3)])

    assert rig.stock_of(product_id) == 7
    assert rig.stock_of(only_3) == 0


def test_the_configured_measure_is_used_and_quantityonhand_when_asked():
    rig = Rig(StockSettings(measure="inStock", write_quantityonhand=True))
    product_id = rig.product(stock=0)
    rig.bp.set_stock(int(product_id), 2, onHand=4, inStock=6, allocated=2)
    rig.bp.set_stock(int(product_id), 3, onHand=1, inStock=1)

    rig.flow.handle([notice(product_id)])

    assert rig.stock_of(product_id) == 7
    assert rig.row(product_id)["quantityonhand"] == 7


def test_the_default_measure_is_on_hand_over_every_warehouse(rig: Rig):
    product_id = rig.product(stock=0)
    rig.bp.set_stock(int(product_id), 2, onHand=4, inStock=6, allocated=2)
    rig.bp.set_stock(int(product_id), 3, onHand=1, inStock=1)

    rig.flow.handle([notice(product_id)])

    assert rig.stock_of(product_id) == 5
    assert "quantityonhand" not in rig.row(product_id)


# ---------------------------------------------------------------------------------- faults
def test_brightpearl_throttling_is_a_retry(rig: Rig):
    product_id = rig.product(stock=0)
    rig.bp.fail_next["get_product_availability"] = [BrightpearlThrottled("429", retry_after=7)]

    [outcome] = rig.flow.handle([notice(product_id)])

    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "BrightpearlThrottled"


def test_dataverse_throttling_is_a_retry_and_nothing_is_half_written(rig: Rig):
    product_id = rig.product(stock=0)
    rig.bp.set_stock(int(product_id), 2, onHand=3)
    rig.dv.fail_next["update_multiple"] = [DataverseThrottled("429", retry_after=5)]

    [outcome] = rig.flow.handle([notice(product_id)])
    assert isinstance(outcome, RetryLater)
    assert outcome.reason == "DataverseThrottled"
    assert rig.stock_of(product_id) == 0

    assert isinstance(rig.flow.handle([notice(product_id, attempt=2)])[0], Completed)
    assert rig.stock_of(product_id) == 3


def test_a_malformed_id_is_dead_lettered_alone(rig: Rig):
    [outcome] = rig.flow.handle([notice("abc")])
    assert not isinstance(outcome, (Completed, RetryLater))
    assert outcome.reason == "MalformedMessage"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------- the poller
def poller(rig: Rig, published: list[Envelope], now: datetime) -> BrightpearlStockPoller:
    return BrightpearlStockPoller(
        client=rig.bp,
        cursors=rig.store.cursors,
        publish=published.extend,
        clock=lambda: now,
        source="/brightpearl/test",
        overlap=timedelta(minutes=2),
        initial_lookback=timedelta(hours=1),
    )


def test_the_poller_publishes_moved_products_once_each_and_advances_its_cursor(rig: Rig):
    a, b, still = rig.product(stock=0), rig.product(stock=0), rig.product(stock=0)
    for _ in range(3):
        rig.bp.move_stock(int(a), 2, 1)
    rig.bp.move_stock(int(b), 3, 4, code="GO")
    published: list[Envelope] = []

    report = poller(rig, published, datetime.now(UTC)).poll()

    assert [e.notice.entity for e in published] == [STOCK_ENTITY]
    assert list(published[0].notice.ids) == [a, b]
    assert still not in published[0].notice.ids
    assert report.records == 2
    newest = max(datetime.fromisoformat(m["updatedOn"]) for m in rig.bp.goods_movements)
    cursor = rig.store.cursors.get(STOCK_CURSOR)
    assert cursor is not None and datetime.fromisoformat(cursor.value) == newest

    # the flow takes the poller's notice like a webhook's
    assert isinstance(rig.flow.handle(published)[0], Completed)
    assert (rig.stock_of(a), rig.stock_of(b)) == (3, 4)


def test_the_poller_rereads_the_overlap_window_and_finds_a_late_movement(rig: Rig):
    a, late = rig.product(stock=0), rig.product(stock=0)
    rig.bp.move_stock(int(a), 2, 1)
    published: list[Envelope] = []
    poller(rig, published, datetime.now(UTC)).poll()
    watermark = datetime.fromisoformat(rig.bp.goods_movements[-1]["updatedOn"])
    # a movement stamped a minute before the watermark appears after the first poll
    rig.bp.move_stock(int(late), 2, 5)
    rig.bp.goods_movements[-1]["updatedOn"] = (watermark - timedelta(minutes=1)).isoformat()
    published.clear()

    poller(rig, published, datetime.now(UTC)).poll()

    assert late in [i for e in published for i in e.notice.ids]
    cursor = rig.store.cursors.get(STOCK_CURSOR)
    assert cursor is not None and datetime.fromisoformat(cursor.value) == watermark  # never backwards


def test_the_poller_without_movements_publishes_nothing(rig: Rig):
    published: list[Envelope] = []
    report = poller(rig, published, datetime.now(UTC)).poll()
    assert published == [] and report.published == 0
    assert rig.store.cursors.get(STOCK_CURSOR) is None


# ---------------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"measure": "onhand"}, "stock.measure"),
        ({"warehouses": ["main"]}, "stock.warehouses[0]"),
        ({"warehouses": [2, -1]}, "stock.warehouses[1]"),
        ({"warehouses": [2, 2]}, "stock.warehouses"),
        ({"write_quantityonhand": "sometimes"}, "stock.write_quantityonhand"),
        ({"missing_product_retries": 50}, "stock.missing_product_retries"),
        ({"sweep_ids_per_run": 1000}, "stock.sweep_ids_per_run"),
        ({"warehouse": [2]}, "stock.warehouse"),
        ("onHand", "stock"),
    ],
)
def test_a_bad_stock_section_names_the_field(section: Any, field: str):
    with pytest.raises(MappingError) as caught:
        parse_stock_settings({"version": 1, "stock": section}, "products.yaml")
    assert any(p.startswith(f"{field}:") for p in caught.value.problems), caught.value.problems


def test_a_mapping_without_a_stock_section_gives_the_defaults():
    settings = parse_stock_settings({"version": 1, "entity": "product"})
    assert (settings.warehouses, settings.measure, settings.write_quantityonhand) == ((), "onHand", False)


def test_the_stock_section_is_read_from_the_product_mapping_file(tmp_path: Path):
    file = tmp_path / "products.yaml"
    file.write_text("version: 1\nstock:\n  warehouses: [2, 3]\n  measure: inStock\n", encoding="utf-8")
    settings = read_stock_settings(file)
    assert settings.warehouses == (2, 3) and settings.measure == "inStock"
    held_elsewhere = ProductAvailability.model_validate(
        {"total": {"inStock": 3}, "warehouses": {"4": {"inStock": 3}}}
    )
    assert stock_figure(held_elsewhere, settings) == Decimal(0)


def test_the_shipped_product_mapping_file_gives_valid_stock_settings():
    assert read_stock_settings().measure == "onHand"


# ---------------------------------------------------------------------------------- the sweep
def sweep(rig: Rig, published: list[Envelope], ids_per_run: int, budget: Any = None) -> BrightpearlStockSweep:
    return BrightpearlStockSweep(
        dataverse=rig.dv,
        cursors=rig.store.cursors,
        publish=published.extend,
        clock=lambda: datetime.now(UTC),
        source="/brightpearl/test",
        ids_per_run=ids_per_run,
        budget=budget,
    )


def test_the_sweep_names_each_dynamics_product_in_turn_and_starts_over_at_the_end(rig: Rig):
    ids = sorted((rig.product(stock=0) for _ in range(5)), key=str)
    rig.product(in_dynamics=False)  # Brightpearl only: the products flow's business
    rounds: list[list[str]] = []
    for _ in range(4):
        published: list[Envelope] = []
        sweep(rig, published, ids_per_run=2).poll()
        rounds.append([i for e in published for i in e.notice.ids])

    assert rounds == [ids[0:2], ids[2:4], ids[4:5], ids[0:2]]
    assert all(e.notice.entity == STOCK_ENTITY and e.notice.detail == {"sweep": True} for e in published)


def test_a_swept_product_is_written_when_its_stock_drifted_and_unchanged_ones_leave_no_audit(rig: Rig):
    drifted, steady = rig.product(stock=5), rig.product(stock=5)
    rig.bp.set_stock(int(drifted), 2, onHand=3, inStock=5, allocated=2)  # allocated: no movement
    rig.bp.set_stock(int(steady), 2, onHand=5)
    published: list[Envelope] = []
    sweep(rig, published, ids_per_run=400).poll()

    outcomes = rig.flow.handle(published)

    assert all(isinstance(o, Completed) for o in outcomes)
    assert rig.stock_of(drifted) == 3 and rig.stock_of(steady) == 5
    assert rig.audit() == {drifted: (AuditResult.SYNCED, None)}
    assert rig.calls(rig.bp, "get_product_availability") == 1


def test_a_product_named_by_a_webhook_and_the_sweep_is_still_audited(rig: Rig):
    product_id = rig.product(stock=5)
    rig.bp.set_stock(int(product_id), 2, onHand=5)
    published: list[Envelope] = []
    sweep(rig, published, ids_per_run=400).poll()

    rig.flow.handle([*published, notice(product_id)])

    assert rig.audit() == {product_id: (AuditResult.SKIPPED, None)}


def test_the_sweep_skips_its_round_when_the_rate_budget_is_short(rig: Rig):
    rig.product(stock=0)
    budget = RateBudget(200, 60.0, reserve=2, clock=lambda: 1000.0)
    for _ in range(150):  # the flows used all but their quarter of the window
        budget.acquire(max_wait=0)
    published: list[Envelope] = []

    report = sweep(rig, published, ids_per_run=400, budget=budget).poll()

    assert report.skipped and published == []


def test_the_sweep_is_off_at_zero(rig: Rig):
    rig.product(stock=0)
    published: list[Envelope] = []
    assert sweep(rig, published, ids_per_run=0).poll().skipped and published == []


def test_the_products_loader_accepts_the_stock_section_the_stock_loader_validates(tmp_path: Path):
    file = tmp_path / "products.yaml"
    file.write_text("version: 1\nstock:\n  measure: inStock\n", encoding="utf-8")
    assert read_product_mapping(file).stock == {"measure": "inStock"}  # not an unknown key
    assert read_stock_settings(file).measure == "inStock"


def test_the_shipped_product_mapping_file_has_the_stock_section():
    assert read_product_mapping().stock is not None
