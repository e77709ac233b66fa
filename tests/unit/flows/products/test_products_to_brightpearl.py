"""Flow products-to-brightpearl on the in-memory fakes: Dynamics edits of Dynamics-owned product
fields reach Brightpearl (issue 12 item 5), off by default; If-Match version and 412 -> retry;
our own writes coming back are not bounced; Brightpearl-owned fields never leave Dynamics."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shared.dataverse.webhook_registration import entity_steps
from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.products_to_brightpearl import ProductsToBrightpearl
from shared.flows.products_to_dataverse import ProductsToDataverse
from shared.mapping.config import MappingError
from shared.mapping.products_config import ProductMapping, parse_product_mapping
from shared.outcomes import Completed, RetryLater
from shared.store import AuditResult
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore

FLOW = "products-to-brightpearl"
VERSIONS = itertools.count()
OWNED = {"ownership": {"groups": {"description": "dataverse"}}}


def notice(system: str, *ids: str, operation: str = "updated", **detail: Any) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system=system,  # type: ignore[arg-type]
            entity="product",
            ids=ids,
            operation=operation,  # type: ignore[arg-type]
            source=f"/{system}/test",
            origin="webhook",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
            detail=detail,
        )
    )


class Rig:
    """Both fakes, the state store, and both product flows on one mapping."""

    def __init__(self, mapping: ProductMapping) -> None:
        self.bp = FakeBrightpearl()
        self.dv = FakeDataverse(products_active_on_create=True)
        self.store = MemoryStateStore()
        ports: dict[str, Any] = {
            "brightpearl": self.bp,
            "dataverse": self.dv,
            "store": self.store,
            "publish": lambda envelopes: None,
        }
        self.forward = ProductsToDataverse(mapping=mapping, **ports)
        self.back = ProductsToBrightpearl(mapping=mapping, **ports)

    def product(self) -> tuple[str, str]:
        """A Brightpearl product synced to Dynamics: (Brightpearl id, Dynamics productid)."""
        bp_id = str(
            self.bp.add_product(
                {
                    "identity": {"sku": "MUG-1"},
                    "salesChannels": [
                        {
                            "salesChannelName": "Brightpearl",
                            "productName": "Blue Mug",
                            "description": {"languageCode": "EN", "text": "A mug", "format": "HTML_FRAGMENT"},
                        }
                    ],
                    "stock": {"stockTracked": True},
                }
            )
        )
        assert self.forward.handle([notice("brightpearl", bp_id)]) == [Completed()]
        return bp_id, str(self.row(bp_id)["productid"])

    def row(self, bp_id: str) -> dict[str, Any]:
        [row] = [r for r in self.dv.tables["products"].values() if r.get("bpi_brightpearlid") == bp_id]
        return row

    def edit_in_dynamics(self, bp_id: str, **columns: Any) -> None:
        self.row(bp_id).update(columns)

    def bp_channel(self, bp_id: str) -> dict[str, Any]:
        return dict(self.bp.products[int(bp_id)]["salesChannels"][0])

    def write_back(self, dv_id: str, **kwargs: Any) -> list[Any]:
        return self.back.handle([notice("dataverse", dv_id, **kwargs)])

    def audit(self) -> list[tuple[AuditResult, str | None, str]]:
        return [(e.result, e.reason_code, e.description) for e in self.store.audit.entries if e.flow == FLOW]


@pytest.fixture
def rig() -> Rig:
    return Rig(parse_product_mapping(OWNED))


def test_off_by_default_nothing_is_read_or_written_and_no_webhook_step_is_registered() -> None:
    rig = Rig(parse_product_mapping({}))
    bp_id, dv_id = rig.product()
    rig.edit_in_dynamics(bp_id, description="Edited in Dynamics")
    calls = len(rig.bp.calls)

    assert rig.write_back(dv_id) == [Completed()]

    assert rig.bp.calls[calls:] == []  # no read, no PUT
    assert rig.bp_channel(bp_id)["description"]["text"] == "A mug"
    [(result, reason, _)] = rig.audit()
    assert (result, reason) == (AuditResult.SKIPPED, "ProductWriteBackOff")
    assert "product" not in {s.entity for s in entity_steps({})}  # customers' and orders' steps only


def test_on_the_product_table_gets_an_update_step_watching_only_the_owned_column(tmp_path: Any) -> None:
    path = tmp_path / "products.yaml"
    path.write_text("ownership:\n  groups: {description: dataverse}\n")

    steps = [s for s in entity_steps({"PRODUCT_MAPPING_PATH": str(path)}) if s.entity == "product"]

    # only edits matter: a product made or deleted in Dynamics never changes Brightpearl
    assert [(s.message, s.filtering_attributes) for s in steps] == [("Update", ("description",))]


def test_a_dynamics_description_edit_is_put_alone_with_the_version_in_if_match(rig: Rig) -> None:
    bp_id, dv_id = rig.product()
    version = rig.bp.products[int(bp_id)]["version"]
    rig.edit_in_dynamics(bp_id, description="Hand-thrown stoneware mug")
    puts: list[tuple[dict[str, Any], int | None]] = []
    real_put = rig.bp.update_product

    def spy(product_id: int, body: dict[str, Any], *, version: int | None) -> None:
        puts.append((body, version))
        real_put(product_id, body, version=version)

    rig.bp.update_product = spy  # type: ignore[method-assign]

    assert rig.write_back(dv_id) == [Completed()]

    [(body, sent_version)] = puts
    assert sent_version == version
    assert list(body) == ["salesChannels"]
    assert body["salesChannels"] == [
        {
            "salesChannelName": "Brightpearl",
            "productName": "Blue Mug",  # unchanged: the channel is sent whole
            "description": {
                "languageCode": "EN",
                "text": "Hand-thrown stoneware mug",
                "format": "HTML_FRAGMENT",
            },
        }
    ]
    assert rig.bp.products[int(bp_id)]["version"] == version + 1
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == (AuditResult.SYNCED, None)
    assert f"-> Brightpearl product {bp_id} (description)" in description


def test_a_stale_version_is_retried_and_the_retry_reads_the_new_version(rig: Rig) -> None:
    bp_id, dv_id = rig.product()
    rig.edit_in_dynamics(bp_id, description="Hand-thrown stoneware mug")
    real_get = rig.bp.get_by_ids

    def read_then_someone_edits(*args: Any, **kwargs: Any) -> list[Any]:
        answer = [dict(item) for item in real_get(*args, **kwargs)]
        rig.bp.products[int(bp_id)]["version"] += 1  # a Brightpearl user saves in between
        return answer

    rig.bp.get_by_ids = read_then_someone_edits  # type: ignore[method-assign]
    [outcome] = rig.write_back(dv_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "BrightpearlStaleVersion"
    assert rig.bp_channel(bp_id)["description"]["text"] == "A mug"

    rig.bp.get_by_ids = real_get  # type: ignore[method-assign]
    assert rig.write_back(dv_id) == [Completed()]
    assert rig.bp_channel(bp_id)["description"]["text"] == "Hand-thrown stoneware mug"


def test_our_own_writes_coming_back_are_not_written_back(rig: Rig) -> None:
    bp_id, dv_id = rig.product()  # the products flow created it: the Create step fires
    calls = len(rig.bp.calls)

    assert rig.write_back(dv_id, operation="created") == [Completed()]

    assert rig.bp.calls[calls:] == []  # echo by the link's hash: not even a read
    [(result, _, description)] = rig.audit()
    assert result is AuditResult.SKIPPED and "echo" in description

    # after a write-back, Brightpearl's product.modified is an echo for products-to-dataverse,
    # and the Dynamics product it leaves is an echo here: the edit does not bounce
    rig.edit_in_dynamics(bp_id, description="Hand-thrown stoneware mug")
    assert rig.write_back(dv_id) == [Completed()]
    dv_writes = len(rig.dv.calls)
    assert rig.forward.handle([notice("brightpearl", bp_id)]) == [Completed()]
    assert rig.row(bp_id)["description"] == "Hand-thrown stoneware mug"
    puts = rig.bp.calls.count("update_product")
    assert rig.write_back(dv_id) == [Completed()]
    assert rig.bp.calls.count("update_product") == puts
    assert not [c for c in rig.dv.calls[dv_writes:] if "multiple" in c or "update" in c]


def test_a_brightpearl_owned_field_is_not_sent_and_the_next_brightpearl_sync_puts_it_back(rig: Rig) -> None:
    bp_id, dv_id = rig.product()
    rig.edit_in_dynamics(bp_id, name="Renamed in Dynamics", description="Hand-thrown stoneware mug")

    assert rig.write_back(dv_id) == [Completed()]

    channel = rig.bp_channel(bp_id)
    assert channel["productName"] == "Blue Mug"  # name is Brightpearl's: never sent
    assert channel["description"]["text"] == "Hand-thrown stoneware mug"
    # the product.modified this PUT raises brings Brightpearl's name back, Dynamics' description stays
    assert rig.forward.handle([notice("brightpearl", bp_id)]) == [Completed()]
    row = rig.row(bp_id)
    assert (row["name"], row["description"]) == ("Blue Mug", "Hand-thrown stoneware mug")


def test_nothing_is_written_when_no_owned_field_changed(rig: Rig) -> None:
    bp_id, dv_id = rig.product()
    rig.store.links.rows.clear()  # no link hash to go by: Brightpearl is read and compared
    rig.edit_in_dynamics(bp_id, name="Renamed in Dynamics", description="  A   mug ")

    assert rig.write_back(dv_id) == [Completed()]

    assert "update_product" not in rig.bp.calls
    [(result, _, description)] = rig.audit()
    assert result is AuditResult.SKIPPED and "already holds this content" in description


def test_a_product_brightpearl_does_not_have_is_ignored_with_an_audit_note(rig: Rig) -> None:
    dv_id = rig.dv.create("products", {"productnumber": "DYN-ONLY", "name": "Made in Dynamics"})
    calls = len(rig.bp.calls)

    assert rig.write_back(dv_id) == [Completed()]

    assert rig.bp.calls[calls:] == []
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == (AuditResult.SKIPPED, "NotInBrightpearl")
    assert "never created in Brightpearl" in description


def test_a_product_deleted_in_dynamics_is_not_deleted_in_brightpearl(rig: Rig) -> None:
    bp_id, dv_id = rig.product()

    assert rig.write_back(dv_id, operation="deleted") == [Completed()]

    assert int(bp_id) in rig.bp.products
    assert [(r, c) for r, c, _ in rig.audit()] == [(AuditResult.SKIPPED, "DeletedInDataverse")]


def test_a_description_brightpearl_cut_for_dynamics_is_not_written_back(rig: Rig) -> None:
    bp_id, dv_id = rig.product()
    long_text = "x" * 2500
    rig.bp.products[int(bp_id)]["salesChannels"][0]["description"]["text"] = long_text
    rig.store.links.rows.clear()
    rig.edit_in_dynamics(bp_id, description=long_text[:2000])  # what the products flow wrote

    assert rig.write_back(dv_id) == [Completed()]

    assert "update_product" not in rig.bp.calls
    assert rig.bp_channel(bp_id)["description"]["text"] == long_text


def test_owning_a_description_taken_from_the_brand_is_refused() -> None:
    with pytest.raises(MappingError, match=r"ownership\.groups\.description: .*brand cannot be written back"):
        parse_product_mapping({**OWNED, "fields": {"description": "brand"}, "brands": {1: "Acme"}})
