"""The products flow with the real clients against both simulators over loopback (the state in
memory): what the fakes stand for in tests/unit/flows/products holds for the real adapters.
Brightpearl products are created, archived and destroyed through the simulator; the Dataverse
simulator is a bare organisation provisioned for customers and the catalogue, creating products
Draft (the default), with the product unit-group check on."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from shared.dataverse import odata
from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.products_to_dataverse import ProductsToDataverse
from shared.mapping.products_config import load_product_mapping
from shared.outcomes import Completed, DeadLetter
from shared.store import AuditResult
from shared.sync.fakes import MemoryStateStore
from shared.sync.ports import BrightpearlPort, DataversePort
from tests.contract import test_product_fakes_agree as product_fakes_agree
from tests.contract.test_fakes_agree import bp_server, brightpearl, dataverse
from tests.contract.test_product_fakes_agree import dv_server

__all__ = ["bp_server", "brightpearl", "dataverse", "dv_server"]

VERSIONS = itertools.count()


SIMULATORS = pytest.mark.parametrize(
    ("brightpearl", "dataverse"), [("simulator", "simulator")], indirect=True
)


@pytest.fixture
def flow(brightpearl: BrightpearlPort, dataverse: DataversePort) -> ProductsToDataverse:
    published: list[Envelope] = []
    return ProductsToDataverse(
        brightpearl=brightpearl,
        dataverse=dataverse,
        store=MemoryStateStore(),
        publish=published.extend,
        mapping=load_product_mapping(),
    )


def notice(*ids: int) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="product",
            ids=tuple(str(i) for i in ids),
            operation="updated",
            source="/brightpearl/contract",
            origin="webhook",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
        )
    )


def new_product(bp: BrightpearlPort, sku: str, name: str = "Blue Mug") -> int:
    return product_fakes_agree.new_product(bp, sku, name=name)


def dv_product(dv: DataversePort, product_id: int) -> dict[str, Any]:
    select = [
        "productid",
        "productnumber",
        "name",
        "statecode",
        "statuscode",
        "_defaultuomid_value",
        "bpi_brightpearlid",
    ]
    rows = list(dv.query("products", select=select, filter=odata.eq("bpi_brightpearlid", str(product_id))))
    assert len(rows) == 1, rows
    return dict(rows[0].values)


def sku() -> str:
    return f"C-{uuid.uuid4().hex[:10].upper()}"


@SIMULATORS
def test_new_products_are_created_published_in_one_unit_group_and_linked(
    flow: ProductsToDataverse, brightpearl: BrightpearlPort, dataverse: DataversePort
) -> None:
    bp, dv = brightpearl, dataverse
    ids = [new_product(bp, sku()) for _ in range(3)]

    assert flow.handle([notice(*ids)]) == [Completed()]

    rows = [dv_product(dv, i) for i in ids]
    assert {(r["statecode"], r["statuscode"]) for r in rows} == {(0, 1)}  # Draft org: published
    assert len({r["_defaultuomid_value"] for r in rows}) == 1 and rows[0]["_defaultuomid_value"]
    assert flow.handle([notice(*ids)]) == [Completed()]  # unchanged: nothing written again
    audit = flow.store.audit.entries  # type: ignore[attr-defined]  # the MemoryStateStore
    assert {e.result for e in audit[-3:]} == {AuditResult.SKIPPED}


@SIMULATORS
def test_archived_and_destroyed_products_are_retired_never_deleted(
    flow: ProductsToDataverse,
    brightpearl: BrightpearlPort,
    dataverse: DataversePort,
    bp_server: BrightpearlServer,
) -> None:
    bp, dv = brightpearl, dataverse
    archived, destroyed = new_product(bp, sku()), new_product(bp, sku())
    flow.handle([notice(archived, destroyed)])
    state = bp_server.simulator.state
    state.set_product_status(archived, "ARCHIVED")
    state.destroy_product(destroyed)

    assert flow.handle([notice(archived, destroyed)]) == [Completed()]

    for product_id in (archived, destroyed):
        row = dv_product(dv, product_id)
        assert (row["statecode"], row["statuscode"]) == (1, 2)


@SIMULATORS
def test_a_sku_another_product_holds_is_dead_lettered(
    flow: ProductsToDataverse, brightpearl: BrightpearlPort
) -> None:
    bp = brightpearl
    shared_sku = sku()
    first = new_product(bp, shared_sku)
    flow.handle([notice(first)])
    second = new_product(bp, shared_sku, name="Red Mug")

    [outcome] = flow.handle([notice(second)])

    assert isinstance(outcome, DeadLetter) and outcome.reason == "DuplicateSku"
    assert shared_sku not in outcome.description
