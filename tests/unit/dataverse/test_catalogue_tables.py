"""The catalogue's tables have their primary id known to the client (shared/dataverse/tables.py),
so records read from them carry `Record.id` and bulk targets their `@odata.type`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.catalogue_solution import seed_catalogue
from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import DEFAULT_ORGANIZATION_ID, SimulatorConfig
from sandbox.dataverse.inprocess import in_process_client
from shared.dataverse.client import DataverseClient
from shared.dataverse.tables import LOGICAL_NAMES, PRIMARY_IDS

CATALOGUE = {
    "organizations": ("organizationid", "organization"),
    "products": ("productid", "product"),
    "uoms": ("uomid", "uom"),
    "uomschedules": ("uomscheduleid", "uomschedule"),
    "pricelevels": ("pricelevelid", "pricelevel"),
    "productpricelevels": ("productpricelevelid", "productpricelevel"),
    "transactioncurrencies": ("transactioncurrencyid", "transactioncurrency"),
}


@pytest.fixture
def client() -> Iterator[DataverseClient]:
    simulator = Simulator(SimulatorConfig(key_activation_seconds=0))
    try:
        with in_process_client(simulator) as dataverse:
            yield dataverse
    finally:
        simulator.close()


@pytest.mark.parametrize("entity_set", sorted(CATALOGUE))
def test_catalogue_tables_have_their_primary_id_and_logical_name(entity_set):
    assert (PRIMARY_IDS[entity_set], LOGICAL_NAMES[entity_set]) == CATALOGUE[entity_set]


def test_the_organization_row_comes_back_with_its_id(client):
    [org] = client.query("organizations", select=["createproductswithoutparentinactivestate"])
    assert org.id == DEFAULT_ORGANIZATION_ID


def test_catalogue_reference_rows_come_back_with_their_ids(client):
    refs = seed_catalogue(client)
    groups = {r["name"]: r.id for r in client.query("uomschedules", select=["name"])}
    assert groups["Catalogue"] == refs.unit_group
    assert refs.base_unit in {r.id for r in client.query("uoms", select=["name"])}
    rows = client.query("transactioncurrencies", select=["isocurrencycode"])
    currencies = {r["isocurrencycode"]: r.id for r in rows}
    assert currencies["EUR"] == refs.currencies["EUR"]
    lists = {r["name"]: r.id for r in client.query("pricelevels", select=["name"])}
    assert lists["Retail EUR"] == refs.price_lists["Retail EUR"]
