"""sandbox/catalogue_solution.py: a bare org provisioned for customers has no catalogue columns;
the catalogue part adds them through the metadata Web API (re-runnably), leaves what customers
get unchanged, and survives a reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import catalogue_solution
from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import SimulatorConfig
from sandbox.dataverse.inprocess import in_process_client
from sandbox.dataverse.schema import load_schema
from shared.dataverse.errors import DataverseValidationError
from shared.dataverse.provision import Provisioner
from shared.dataverse.schema import schema_plan
from shared.mapping.products_config import load_product_mapping


@pytest.fixture
def bare() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(key_activation_seconds=0), load_schema().bare())
    with in_process_client(simulator) as client:  # customers only: the catalogue is what is tested
        Provisioner(client, poll_interval=0.05, key_timeout=60).run(schema_plan(include_products=False))
    yield simulator
    simulator.close()


def test_catalogue_columns_keys_and_change_tracking_are_provisioned(bare):
    before = bare.engine.schema.clone()
    product = before.tables["product"]
    assert "bpi_brightpearlid" not in product.columns and "bpi_availablestock" not in product.columns
    assert not product.change_tracking

    report = catalogue_solution.provision_simulator(bare)
    assert report.changes == [
        "product: create column bpi_brightpearlid (String, 100)",
        "product: create column bpi_availablestock (Decimal)",
        "product: create alternate key bpi_brightpearlid_key on (bpi_brightpearlid)",
        "product: enable change tracking",
    ]  # the productnumber key is part of the simulator's stock schema already
    after = bare.engine.schema.tables
    stock = after["product"].columns["bpi_availablestock"]
    assert stock.type == "decimal"  # created from the shared DecimalAttributeMetadata body
    assert (stock.minimum, stock.maximum) == (-100_000_000_000, 100_000_000_000)
    assert after["product"].alternate_keys == {
        "bpi_productnumber_key": ["productnumber"],
        "bpi_brightpearlid_key": ["bpi_brightpearlid"],
    }
    for table in ("contact", "account"):  # what customers get is unchanged
        assert after[table] == before.tables[table]
    assert catalogue_solution.provision_simulator(bare).changes == []  # re-runnable

    bare.reset()  # kept across /_sandbox/reset
    with in_process_client(bare) as client:
        refs = catalogue_solution.seed_catalogue(client)
        body = {
            "name": "Mug",
            "productnumber": "MUG-1",
            "bpi_availablestock": 4.5,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({refs.unit_group})",
            "defaultuomid@odata.bind": f"/uoms({refs.base_unit})",
        }
        created = client.upsert("products", {"bpi_brightpearlid": "42"}, body)
        row = client.get("products", {"productnumber": "MUG-1"}, select=["bpi_availablestock"])
        assert row.id == created.id and row["bpi_availablestock"] == 4.5


def test_without_the_catalogue_part_products_have_no_brightpearl_key(bare):
    with in_process_client(bare) as client, pytest.raises(DataverseValidationError) as caught:
        client.get("products", {"bpi_brightpearlid": "42"})
    assert "key in the request URI is not valid" in caught.value.server_message


def test_install_is_customers_then_catalogue():
    simulator = Simulator(SimulatorConfig(key_activation_seconds=0))
    try:
        catalogue_solution.install(simulator)
        tables = simulator.engine.schema.tables
        assert "bpi_contact_brightpearlid" in tables["contact"].alternate_keys
        assert "bpi_brightpearlid_key" in tables["product"].alternate_keys
        assert tables["product"].change_tracking and tables["contact"].change_tracking
    finally:
        simulator.close()


def test_the_sandbox_provisions_the_product_part_of_the_shared_schema_plan():
    """The simulator gets what `syncctl dataverse provision --products` creates in a real
    environment: the same plan (Decimal column included), so the same metadata bodies."""
    [shared] = [t for t in schema_plan(products=load_product_mapping()).tables if t.table == "product"]
    [product] = catalogue_solution.catalogue_plan().tables
    # the catalogue's columns lead the shared product spec (the orders part adds SKU matching's
    # identifier columns after them, which the sandbox's orders solution provisions)
    assert product.table == shared.table and shared.columns[: len(product.columns)] == product.columns
    assert (product.keys, product.change_tracking) == (shared.keys, shared.change_tracking)
    stock = product.column("bpi_availablestock")
    assert stock is not None and stock.kind == "decimal"
