"""Flow products-to-dataverse on the in-memory fakes (no HTTP, no Azurite): create, update,
skip unchanged, archive and destroy -> Retired, a Draft-by-default organisation -> published,
each bad-input reason dead-lettered alone with the field named and the value absent,
throttling -> retry, ownership, unit group and price list resolution, the product poller."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.brightpearl.errors import BrightpearlThrottled
from shared.dataverse.errors import DataverseThrottled
from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.products_poller import BrightpearlProductPoller
from shared.flows.products_spec import BRIGHTPEARL_CURSOR
from shared.flows.products_to_dataverse import ProductsToDataverse
from shared.mapping.products_config import ProductMapping, load_product_mapping, parse_product_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.store import AuditResult
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryCursors, MemoryStateStore

FLOW = "products-to-dataverse"
VERSIONS = itertools.count()


class Rig:
    """Both fakes, the memory state store and the products flow wired to them."""

    def __init__(self, mapping: ProductMapping | None = None, *, active_on_create: bool = False) -> None:
        self.bp = FakeBrightpearl()
        self.dv = FakeDataverse(products_active_on_create=active_on_create)
        self.store = MemoryStateStore()
        self.published: list[Envelope] = []
        self.flow = ProductsToDataverse(
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=self.published.extend,
            mapping=mapping or load_product_mapping(),
        )

    def product(self, sku: str | None, name: str = "Blue Mug", **extra: Any) -> str:
        body: dict[str, Any] = {
            "identity": {"sku": sku},
            "salesChannels": [
                {
                    "salesChannelName": "Brightpearl",
                    "productName": name,
                    "description": {"languageCode": "EN", "text": "A mug", "format": "HTML_FRAGMENT"},
                }
            ],
            "stock": {"stockTracked": True},
            **extra,
        }
        return str(self.bp.add_product(body))

    def edit(self, product_id: str, **changes: Any) -> None:
        self.bp.products[int(product_id)].update(changes, updatedOn=datetime.now(UTC).isoformat())

    def row(self, product_id: str) -> dict[str, Any]:
        [row] = [r for r in self.dv.tables["products"].values() if r.get("bpi_brightpearlid") == product_id]
        return row

    def sync(self, *ids: str) -> list[Any]:
        return self.flow.handle([notice(*ids)])

    def audit(self) -> list[tuple[str, AuditResult, str | None]]:
        return [(e.source_id, e.result, e.reason_code) for e in self.store.audit.entries if e.flow == FLOW]


def notice(*ids: str, operation: str = "updated") -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="product",
            ids=ids,
            operation=operation,  # type: ignore[arg-type]
            source="/brightpearl/test",
            origin="webhook",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
        )
    )


@pytest.fixture
def rig() -> Rig:
    return Rig()


def mapping_with(**changes: Any) -> ProductMapping:
    return parse_product_mapping(changes)


# ------------------------------------------------------------------------------ create / update
def test_create_writes_an_active_sales_inventory_product_in_the_unit_group(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")

    assert rig.sync(bp_id) == [Completed()]

    row = rig.row(bp_id)
    assert (row["productnumber"], row["name"], row["description"]) == ("MUG-1", "Blue Mug", "A mug")
    assert (row["producttypecode"], row["quantitydecimal"]) == (1, 0)
    assert (row["statecode"], row["statuscode"]) == (0, 1)
    [group] = rig.dv.tables["uomschedules"].values()  # created: the organisation had none
    [unit] = rig.dv.tables["uoms"].values()
    assert (group["name"], unit["name"]) == ("Default Unit", "Primary Unit")
    assert row["_defaultuomscheduleid_value"] == group["uomscheduleid"]
    assert row["_defaultuomid_value"] == unit["uomid"]
    link = rig.store.links.get("product", "brightpearl", bp_id)
    assert link is not None and link.id_in("dataverse") == row["productid"]
    assert rig.audit() == [(bp_id, AuditResult.SYNCED, None)]
    assert "(created)" in rig.store.audit.entries[-1].description


def test_a_draft_by_default_organisation_gets_the_new_product_published(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")

    rig.sync(bp_id)

    assert (rig.row(bp_id)["statecode"], rig.row(bp_id)["statuscode"]) == (0, 1)
    assert rig.dv.calls.count("execute_batch") == 1  # the documented state change, batched
    assert "(published)" in rig.store.audit.entries[-1].description


def test_an_organisation_creating_products_active_needs_no_state_change() -> None:
    rig = Rig(active_on_create=True)
    bp_id = rig.product("MUG-1")

    rig.sync(bp_id)

    assert rig.row(bp_id)["statecode"] == 0
    assert "execute_batch" not in rig.dv.calls


def test_an_existing_unit_group_and_unit_are_used_not_created(rig: Rig) -> None:
    group = rig.dv.add("uomschedules", {"name": "Default Unit"})
    unit = rig.dv.add("uoms", {"name": "Primary Unit", "_uomscheduleid_value": group})
    bp_id = rig.product("MUG-1")

    rig.sync(bp_id)

    assert "create" not in rig.dv.calls
    assert rig.row(bp_id)["_defaultuomid_value"] == unit


def test_update_changes_the_existing_product_only(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.sync(bp_id)
    rig.edit(bp_id, salesChannels=[{"productName": "Blue Mug XL"}])

    assert rig.sync(bp_id) == [Completed()]

    assert len(rig.dv.tables["products"]) == 1
    assert rig.row(bp_id)["name"] == "Blue Mug XL"
    assert rig.audit()[-1] == (bp_id, AuditResult.SYNCED, None)


def test_an_unchanged_product_is_not_written_again(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.sync(bp_id)
    writes = rig.dv.calls.count("upsert_multiple")

    assert rig.sync(bp_id) == [Completed()]

    assert rig.dv.calls.count("upsert_multiple") == writes
    assert rig.audit()[-1] == (bp_id, AuditResult.SKIPPED, None)


def test_an_unlinked_product_adopts_the_dynamics_product_of_its_sku(rig: Rig) -> None:
    existing = rig.dv.add(
        "products", {"productnumber": "MUG-1", "name": "Old", "statecode": 0, "statuscode": 1}
    )
    bp_id = rig.product("MUG-1")

    rig.sync(bp_id)

    assert list(rig.dv.tables["products"]) == [existing]
    assert rig.row(bp_id)["name"] == "Blue Mug"
    assert "(linked by productnumber)" in rig.store.audit.entries[-1].description


# ------------------------------------------------------------------------------ lifecycle
def test_an_archived_product_is_retired_not_deleted(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.sync(bp_id)
    rig.edit(bp_id, status="ARCHIVED")

    assert rig.sync(bp_id) == [Completed()]

    assert (rig.row(bp_id)["statecode"], rig.row(bp_id)["statuscode"]) == (1, 2)
    assert "(retired)" in rig.store.audit.entries[-1].description


def test_a_product_brought_back_to_live_is_activated_again(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.sync(bp_id)
    rig.edit(bp_id, status="ARCHIVED")
    rig.sync(bp_id)
    rig.edit(bp_id, status="LIVE")

    rig.sync(bp_id)

    assert rig.row(bp_id)["statecode"] == 0


def test_a_webhook_for_a_destroyed_product_retires_it(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.sync(bp_id)
    del rig.bp.products[int(bp_id)]

    assert rig.flow.handle([notice(bp_id, operation="deleted")]) == [Completed()]

    row = rig.row(bp_id)
    assert (row["statecode"], row["statuscode"]) == (1, 2)
    assert (row["productnumber"], row["name"]) == ("MUG-1", "Blue Mug")  # kept, not deleted
    assert rig.audit()[-1] == (bp_id, AuditResult.SYNCED, None)


def test_a_destroyed_product_never_synced_is_missing(rig: Rig) -> None:
    assert rig.sync("4242") == [Completed()]

    assert not rig.dv.tables["products"]
    assert rig.audit() == [("4242", AuditResult.MISSING, "BrightpearlRecordMissing")]


# ------------------------------------------------------------------------------ bad input
def dead_letter(outcomes: list[Any]) -> DeadLetter:
    [outcome] = outcomes
    assert isinstance(outcome, DeadLetter), outcome
    return outcome


@pytest.mark.parametrize("sku", ["", "   ", None])
def test_an_empty_sku_is_dead_lettered_naming_the_field(rig: Rig, sku: str | None) -> None:
    bp_id = rig.product(sku)

    outcome = dead_letter(rig.sync(bp_id))

    assert outcome.reason == "InvalidSku"
    assert "identity.sku" in outcome.description and "empty" in outcome.description
    assert not rig.dv.tables["products"]


def test_a_sku_longer_than_productnumber_is_dead_lettered_without_its_value(rig: Rig) -> None:
    sku = "LONGSKU" + "X" * 94  # 101 characters
    bp_id = rig.product(sku)

    outcome = dead_letter(rig.sync(bp_id))

    assert outcome.reason == "InvalidSku"
    assert "identity.sku" in outcome.description and "100 characters" in outcome.description
    assert "LONGSKU" not in outcome.description
    assert not rig.dv.tables["products"]


def test_products_sharing_a_sku_in_a_batch_are_dead_lettered_alone_the_oldest_keeps_it(rig: Rig) -> None:
    good = rig.product("MUG-1")
    oldest = rig.product("TWIN-SKU")
    second = rig.product("twin-sku")  # Dynamics keys compare case-insensitively
    third = rig.product("Twin-Sku")

    assert rig.sync(third, good, second, oldest) == [
        Completed(note="2 bad record(s) split off for dead-lettering")
    ]

    assert sorted(e.notice.ids for e in rig.published) == sorted([(second,), (third,)])
    assert rig.row(oldest)["productnumber"] == "TWIN-SKU"
    assert len(rig.dv.tables["products"]) == 2
    for split in rig.published:  # each split-off notice dead-letters its one product
        outcome = dead_letter(rig.flow.handle([split]))
        assert outcome.reason == "DuplicateSku"
        assert "identity.sku" in outcome.description and "TWIN" not in outcome.description.upper()
        assert f"Brightpearl product {oldest}" in outcome.description
    assert len(rig.dv.tables["products"]) == 2


def test_a_sku_already_held_by_another_linked_product_is_dead_lettered(rig: Rig) -> None:
    first = rig.product("MUG-1")
    rig.sync(first)
    second = rig.product("MUG-1", name="Copy")

    outcome = dead_letter(rig.sync(second))

    assert outcome.reason == "DuplicateSku"
    assert f"Brightpearl product {first}" in outcome.description and "MUG-1" not in outcome.description
    assert rig.row(first)["name"] == "Blue Mug"  # the holder is untouched
    assert len(rig.dv.tables["products"]) == 1


def test_the_first_holder_of_a_sku_keeps_syncing_when_a_duplicate_appears(rig: Rig) -> None:
    first = rig.product("MUG-1")
    rig.sync(first)
    second = rig.product("MUG-1")
    rig.edit(first, salesChannels=[{"productName": "Renamed"}])

    outcomes = rig.sync(first, second)

    assert outcomes == [Completed(note="1 bad record(s) split off for dead-lettering")]
    assert rig.row(first)["name"] == "Renamed"
    assert [e.notice.ids for e in rig.published] == [(second,)]


def test_a_unit_the_unit_group_lacks_is_dead_lettered_naming_the_field() -> None:
    rig = Rig(mapping_with(units={"custom_field": "PCF_UNIT", "values": {"Box": "Primary Unit"}}))
    boxed = rig.product("MUG-1", customFields={"PCF_UNIT": "Box"})
    crated = rig.product("MUG-2", customFields={"PCF_UNIT": "Crate"})

    rig.sync(boxed, crated)
    [split] = rig.published
    outcome = dead_letter(rig.flow.handle([split]))

    assert split.notice.ids == (crated,)
    assert outcome.reason == "UnitNotResolved"
    assert "customFields.PCF_UNIT" in outcome.description and "Crate" not in outcome.description
    assert [r["productnumber"] for r in rig.dv.tables["products"].values()] == ["MUG-1"]


def test_a_missing_default_unit_is_unit_not_resolved_when_it_may_not_be_created(rig: Rig) -> None:
    rig = Rig(mapping_with(unit_group={"name": "Default Unit", "create_if_missing": False}))
    rig.dv.add("uomschedules", {"name": "Default Unit"})
    bp_id = rig.product("MUG-1")

    outcome = dead_letter(rig.sync(bp_id))

    assert outcome.reason == "UnitNotResolved" and "unit_group.default_unit" in outcome.description
    assert "create" not in rig.dv.calls


# ------------------------------------------------------------------------------ faults
def test_dataverse_throttling_is_retried_and_then_converges(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.dv.fail_next["upsert_multiple"] = [
        DataverseThrottled("429 service protection", status=429, retry_after=7)
    ]

    [outcome] = rig.sync(bp_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "DataverseThrottled" and outcome.delay == 7
    assert rig.store.links.get("product", "brightpearl", bp_id) is None
    assert rig.sync(bp_id) == [Completed()]
    assert rig.row(bp_id)["statecode"] == 0


def test_brightpearl_throttling_is_retried(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.bp.fail_next["get_by_ids"] = [BrightpearlThrottled("over the cap", retry_after=12)]

    [outcome] = rig.sync(bp_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "BrightpearlThrottled"
    assert not rig.dv.tables["products"]


def test_a_throttled_publish_is_retried_and_the_retry_publishes(rig: Rig) -> None:
    bp_id = rig.product("MUG-1")
    rig.dv.fail_next["execute_batch"] = [DataverseThrottled("429", status=429, retry_after=3)]

    [outcome] = rig.sync(bp_id)

    assert isinstance(outcome, RetryLater)
    assert rig.row(bp_id)["statecode"] == 2  # written, still Draft
    assert rig.sync(bp_id) == [Completed()]
    assert rig.row(bp_id)["statecode"] == 0


# ------------------------------------------------------------------------------ mapping choices
def test_a_description_owned_by_dynamics_is_kept_on_update() -> None:
    rig = Rig(mapping_with(ownership={"groups": {"description": "dataverse"}}))
    bp_id = rig.product("MUG-1")
    rig.sync(bp_id)
    rig.dv.tables["products"][rig.row(bp_id)["productid"]]["description"] = "Written by sales"
    rig.edit(bp_id, salesChannels=[{"productName": "New name", "description": {"text": "From BP"}}])

    rig.sync(bp_id)

    assert (rig.row(bp_id)["name"], rig.row(bp_id)["description"]) == ("New name", "Written by sales")


def test_the_default_price_list_is_set_when_dynamics_has_it() -> None:
    rig = Rig(mapping_with(price_list={"default": "Retail GBP"}))
    price_list = rig.dv.add("pricelevels", {"name": "Retail GBP"})
    bp_id = rig.product("MUG-1")

    rig.sync(bp_id)

    assert rig.row(bp_id)["_pricelevelid_value"] == price_list


def test_a_missing_default_price_list_waits_instead_of_writing() -> None:
    rig = Rig(mapping_with(price_list={"default": "Retail GBP"}))
    bp_id = rig.product("MUG-1")

    [outcome] = rig.sync(bp_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "DataverseReferenceMissing"
    assert not rig.dv.tables["products"]


def test_the_description_can_come_from_the_brand() -> None:
    rig = Rig(mapping_with(fields={"description": "brand"}, brands={7: "Acme"}))
    bp_id = rig.product("MUG-1", brandId=7)

    rig.sync(bp_id)

    assert rig.row(bp_id)["description"] == "Acme"


# ------------------------------------------------------------------------------ poller
def test_the_product_poller_publishes_changed_products_and_moves_its_cursor() -> None:
    client = FakeBrightpearl()
    old = client.add_product({"identity": {"sku": "OLD"}, "updatedOn": "2026-01-01T00:00:00+00:00"})
    new = client.add_product({"identity": {"sku": "NEW"}, "updatedOn": "2026-12-05T10:00:00+00:00"})
    published: list[Envelope] = []
    cursors = MemoryCursors()
    cursors.save(BRIGHTPEARL_CURSOR, "2026-12-05T09:00:00+00:00")
    poller = BrightpearlProductPoller(
        client=client,
        cursors=cursors,
        publish=published.extend,
        clock=lambda: datetime(2026, 12, 5, 11, tzinfo=UTC),
        source="/brightpearl/unit",
        overlap=timedelta(minutes=5),
        initial_lookback=timedelta(hours=1),
    )

    report = poller.poll()

    assert [(e.notice.entity, e.notice.ids) for e in published] == [("product", (str(new),))]
    assert str(old) not in published[0].notice.ids
    saved = cursors.get(BRIGHTPEARL_CURSOR)
    assert saved is not None and saved.value.startswith("2026-12-05T10:00:00")
    assert report.records == 1
