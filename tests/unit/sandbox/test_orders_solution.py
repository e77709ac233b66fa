"""sandbox/orders_solution.py: a bare org provisioned for customers has no order integration
columns; the orders part adds them (String id with its alternate key, the Boolean send flag) and
change tracking on orders and lines through the metadata Web API, re-runnably, and keeps them
across a reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import orders_solution
from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import SimulatorConfig
from sandbox.dataverse.inprocess import in_process_client
from sandbox.dataverse.schema import load_schema
from shared.dataverse.errors import DataverseValidationError
from shared.dataverse.provision import Provisioner
from shared.dataverse.schema import schema_plan


@pytest.fixture
def bare() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(key_activation_seconds=0), load_schema().bare())
    with in_process_client(simulator) as client:
        Provisioner(client, poll_interval=0.05, key_timeout=60).run(schema_plan(include_products=False))
    yield simulator
    simulator.close()


def test_order_columns_key_and_change_tracking_are_provisioned(bare):
    before = bare.engine.schema.clone()
    order = before.tables["salesorder"]
    assert "bpi_brightpearlid" not in order.columns and "bpi_sendtobrightpearl" not in order.columns
    assert not order.change_tracking and not before.tables["salesorderdetail"].change_tracking

    report = orders_solution.provision_simulator(bare)
    assert report.changes == [
        "salesorder: create column bpi_brightpearlid (String, 100)",
        "salesorder: create column bpi_sendtobrightpearl (Boolean)",
        "salesorder: create column bpi_shippedon (DateTime)",
        "salesorder: create column bpi_shippingmethod (String, 200)",
        "salesorder: create column bpi_trackingreference (String, 200)",
        "salesorder: create column bpi_invoicereference (String, 100)",
        "salesorder: create column bpi_paymentstatus (String, 20)",
        "salesorder: create column bpi_brightpearlstatus (String, 100)",
        "salesorder: create column bpi_origin (String, 20)",  # order history (issue 14)
        "salesorder: create column bpi_channel (String, 100)",
        "salesorder: create column bpi_placedon (DateTime)",
        "salesorderdetail: create column bpi_quantityreserved (Decimal)",  # fulfilment (issue 18)
        "salesorderdetail: create column bpi_quantityreleased (Decimal)",
        "product: create column bpi_ean (String, 14)",  # SKU matching's identifier (issue 18)
        "salesorder: create alternate key bpi_brightpearlid_key on (bpi_brightpearlid)",
        "salesorder: enable change tracking",
        "salesorderdetail: enable change tracking",
    ]
    after = bare.engine.schema.tables
    assert after["salesorder"].columns["bpi_sendtobrightpearl"].type == "bool"
    assert after["salesorder"].alternate_keys == {"bpi_brightpearlid_key": ["bpi_brightpearlid"]}
    for table in ("contact", "account"):  # what customers get is unchanged
        assert after[table] == before.tables[table]
    # the catalogue's product table gains only the identifier column SKU matching reads
    assert set(after["product"].columns) - set(before.tables["product"].columns) == {"bpi_ean"}
    assert orders_solution.provision_simulator(bare).changes == []  # re-runnable

    bare.reset()  # kept across /_sandbox/reset
    with in_process_client(bare) as client:
        cid = client.create("contacts", {"lastname": "Buyer"})
        body = {"name": "Web order", "customerid_contact@odata.bind": f"/contacts({cid})"}
        created = client.upsert("salesorders", {"bpi_brightpearlid": "5001"}, body)
        client.update("salesorders", created.id, {"bpi_sendtobrightpearl": True})
        row = client.get("salesorders", {"bpi_brightpearlid": "5001"}, select=["bpi_sendtobrightpearl"])
        assert row.id == created.id and row["bpi_sendtobrightpearl"] is True


def test_without_the_orders_part_orders_have_no_brightpearl_key(bare):
    with in_process_client(bare) as client, pytest.raises(DataverseValidationError) as caught:
        client.get("salesorders", {"bpi_brightpearlid": "5001"})
    assert "key in the request URI is not valid" in caught.value.server_message


def test_install_is_customers_catalogue_then_orders():
    simulator = Simulator(SimulatorConfig(key_activation_seconds=0))
    try:
        orders_solution.install(simulator)
        tables = simulator.engine.schema.tables
        assert "bpi_brightpearlid_key" in tables["product"].alternate_keys
        assert "bpi_brightpearlid_key" in tables["salesorder"].alternate_keys
        assert tables["salesorder"].change_tracking and tables["salesorderdetail"].change_tracking
    finally:
        simulator.close()
