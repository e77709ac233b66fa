"""The fakes answer the calls the products flow makes as the simulators do (the same checks
against FakeBrightpearl/FakeDataverse and the two simulators over loopback), so the fast tests
in tests/unit/flows/products stay honest: product GET by id set and product-search by
updatedOn; in Dataverse, a new product is Draft in a default organisation, the documented
state change (PATCH statecode/statuscode, sent in $batch) publishes and retires it, a status
that does not belong to the state is refused, unit groups and units are created and found."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox import catalogue_solution
from sandbox.dataverse import SimulatorConfig as DataverseConfig
from sandbox.dataverse import SimulatorServer as DataverseServer
from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.sync.ports import BrightpearlPort, DataversePort
from tests.contract.test_fakes_agree import bp_server, brightpearl, dataverse

__all__ = ["bp_server", "brightpearl", "dataverse"]

KEY = "bpi_brightpearlid"
PRODUCT_GET = "/product-service/product/{ids}"


@pytest.fixture(scope="module")
def dv_server() -> Iterator[DataverseServer]:
    """A bare organisation provisioned for customers and the catalogue (product columns, keys)."""
    with DataverseServer(DataverseConfig(key_activation_seconds=0)) as server:
        catalogue_solution.install(server.simulator)
        yield server


def new_product(bp: BrightpearlPort, sku: str, *, name: str = "Mug", tracked: bool = True) -> int:
    """A Brightpearl product created through the documented POST (reference §7.2), named "<name> <sku>"."""
    body = {
        "brandId": 1,
        "identity": {"sku": sku},
        "salesChannels": [{"salesChannelName": "Brightpearl", "productName": f"{name} {sku}"}],
        "stock": {"stockTracked": tracked},
    }
    return int(bp.request("POST", "/product-service/product/", json=body).response)


def test_brightpearl_products_read_back_by_id_set_missing_ids_left_out(brightpearl: BrightpearlPort) -> None:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    product_id = new_product(brightpearl, sku)

    [product] = brightpearl.get_by_ids(PRODUCT_GET, [product_id, 987_654_321])

    assert product["id"] == product_id and product["identity"]["sku"] == sku
    assert product["salesChannels"][0]["productName"] == f"Mug {sku}"
    assert product["status"] == "LIVE" and product["stock"]["stockTracked"] is True
    assert product["updatedOn"]


def test_brightpearl_product_search_by_updated_on(brightpearl: BrightpearlPort) -> None:
    product_id = new_product(brightpearl, f"SKU-{uuid.uuid4().hex[:8]}")
    since = datetime.now(UTC) - timedelta(minutes=5)

    rows = list(brightpearl.search_products(updated_since=since, columns=["productId", "updatedOn"]))

    assert product_id in [int(r["productId"]) for r in rows]
    assert all(r.get("updatedOn") for r in rows)


def product_row(dv: DataversePort, key: str) -> dict[str, Any]:
    [row] = [
        dict(r.values)
        for r in dv.query(
            "products", select=["productid", "statecode", "statuscode", KEY], filter=odata.in_(KEY, [key])
        )
    ]
    return row


def set_state(dv: DataversePort, product_id: str, state: int, status: int) -> bool:
    op = BatchOperation(
        "PATCH", odata.record_path("products", product_id), {"statecode": state, "statuscode": status}
    )
    [answer] = dv.execute_batch([op], continue_on_error=True)
    return answer.ok


def test_dataverse_new_product_is_draft_then_published_and_retired(dataverse: DataversePort) -> None:
    key = str(uuid.uuid4().int % 10**9)
    row = {KEY: key, "productnumber": f"SKU-{key}", "name": "Mug", "quantitydecimal": 0, "producttypecode": 1}
    [created] = dataverse.upsert_multiple("products", [row], key_columns=[KEY]).outcomes
    assert created.ok

    draft = product_row(dataverse, key)
    assert (draft["statecode"], draft["statuscode"]) == (2, 0)
    assert set_state(dataverse, draft["productid"], 0, 1)
    assert (product_row(dataverse, key)["statecode"], product_row(dataverse, key)["statuscode"]) == (0, 1)
    assert set_state(dataverse, draft["productid"], 1, 2)
    assert (product_row(dataverse, key)["statecode"], product_row(dataverse, key)["statuscode"]) == (1, 2)
    assert not set_state(dataverse, draft["productid"], 0, 2)  # Retired's status on Active: refused
    assert product_row(dataverse, key)["statecode"] == 1


def test_dataverse_unit_groups_and_units_are_created_and_found_by_group(dataverse: DataversePort) -> None:
    name = f"Units {uuid.uuid4().hex[:8]}"
    group_id = dataverse.create("uomschedules", {"name": name, "baseuomname": "Each"})
    found = [
        str(r["uomscheduleid"]).lower()
        for r in dataverse.query(
            "uomschedules", select=["uomscheduleid", "name"], filter=odata.eq("name", name)
        )
    ]
    assert found == [group_id.lower()]
    units = {
        str(r["name"])
        for r in dataverse.query(
            "uoms", select=["uomid", "name"], filter=odata.lookup_eq("uomscheduleid", group_id)
        )
    }
    if "Each" not in units:  # the simulator (as the fake) leaves the base unit to the caller
        body = {
            "name": "Each",
            "quantity": 1,
            "uomscheduleid@odata.bind": odata.bind("uomschedules", group_id),
        }
        dataverse.create("uoms", body)
    units = {
        str(r["name"])
        for r in dataverse.query(
            "uoms", select=["uomid", "name"], filter=odata.lookup_eq("uomscheduleid", group_id)
        )
    }
    assert units == {"Each"}
