"""`syncctl orders show` against the Brightpearl and Dataverse simulators (through the real
clients), an in-memory state store and a local bus: found by Dynamics order number and by
Brightpearl order id (both sides, the link, the audit rows, the dead letter about it), not
found (exit 1 naming what was looked up), and the --json shape."""

# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox.brightpearl import SimulatorServer
from shared import runtime
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.models import SalesOrderCreate
from shared.bus.local import LocalBus
from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, load_topology
from shared.dataverse.client import DataverseClient
from shared.events import ChangeNotice, Envelope, now_utc
from shared.settings import load_settings
from shared.store.audit import AuditEntry, AuditResult
from shared.sync.fakes import MemoryAudit, MemoryStateStore
from syncctl.main import app
from tests.contract.brightpearl.test_orders_products import a_customer
from tests.contract.dataverse.simfixtures import (  # noqa: F401 - client, dataverse_server, sim: fixtures
    client,
    dataverse_server,
    sim,
)
from tests.contract.test_dataverse_orders import Shop, order_body, product_line, shop  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
runner = CliRunner()


class Audit(MemoryAudit):
    """MemoryAudit with AuditLog.for_record (entries naming the record as source or target)."""

    def for_record(self, entity: str, system: str, record_id: str, limit: int = 50) -> list[AuditEntry]:
        return [
            e
            for e in self.entries
            if e.entity == entity
            and (
                (e.source_system, e.source_id) == (system, record_id)
                or (e.target_system, e.target_id) == (system, record_id)
            )
        ][:limit]


@dataclass
class World:
    dv: DataverseClient
    bp: BrightpearlClient
    store: MemoryStateStore
    bus_path: Path
    topology: Path
    number: str = ""
    message_id: str = ""
    salesorder: str = ""
    bp_id: int = 0


@pytest.fixture(scope="module")
def bp_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(seed_contacts=2, seed_products=0, seed_orders=0) as server:
        yield server


@pytest.fixture
def world(
    bp_server: SimulatorServer,
    client: DataverseClient,
    shop: Shop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    bp_server.simulator.reset()
    values = dict(EXAMPLE, BRIGHTPEARL_BASE_URL=bp_server.url, BRIGHTPEARL_ACCOUNT=bp_server.account)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": values}))
    monkeypatch.chdir(tmp_path)
    for name in ("BRIGHTPEARL_BASE_URL", "BRIGHTPEARL_ACCOUNT", "LOCAL_BUS_PATH", "BUS_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    store = MemoryStateStore()
    store.audit = Audit()
    bp = BrightpearlClient.from_settings(load_settings(values).brightpearl)
    w = World(client, bp, store, tmp_path / values["LOCAL_BUS_PATH"], orders_topology(tmp_path))
    w.bus_path.parent.mkdir(parents=True, exist_ok=True)
    with runtime.override(dataverse=client, brightpearl=bp, state_store=store):
        yield w


def orders_topology(folder: Path) -> Path:
    """The shipped topology (with the orders subscriptions), copied beside the settings file."""
    path = folder / "topology.json"
    path.write_text(DEFAULT_TOPOLOGY_PATH.read_text())
    return path


def show(w: World, *args: str) -> Any:
    settings = w.topology.parent / "local.settings.json"
    return runner.invoke(
        app, ["orders", "show", *args, "--topology", str(w.topology), "--settings", str(settings)]
    )


def linked_order(w: World, shop: Shop) -> World:
    """A Dynamics order with a line, its Brightpearl order, the link, two audit rows and a dead
    letter about the order on the local bus."""
    w.salesorder = w.dv.create("salesorders", order_body(shop, name="Web order"))
    w.dv.create("salesorderdetails", product_line(shop, w.salesorder, quantity=3))
    w.number = str(w.dv.get("salesorders", w.salesorder, select=["ordernumber"])["ordernumber"])
    return w


def make_bp_order(w: World, customer: int) -> None:
    body = {
        "customer": {"id": customer},
        "ref": w.number,
        "externalRef": w.salesorder,
        "currency": {"code": "GBP"},
        "rows": [{"name": "Mug", "quantity": 3, "taxCode": "T20", "net": "37.50", "tax": "7.50"}],
    }
    w.bp_id = w.bp.create_sales_order(SalesOrderCreate.model_validate(body))
    w.store.links.link("order", "dataverse", w.salesorder, "brightpearl", str(w.bp_id))
    about = {"flow": "orders-to-brightpearl", "entity": "order", "source_system": "dataverse"}
    w.store.audit.record_many(
        [
            AuditEntry(
                **about,
                source_id=w.salesorder,
                result=AuditResult.DEAD_LETTERED,
                reason_code="UnknownSku",
                description=f"{w.number}: SKU GHOST-9 is not in Brightpearl",
            ),
            AuditEntry(
                **about,
                source_id=w.salesorder,
                result=AuditResult.SYNCED,
                target_system="brightpearl",
                target_id=str(w.bp_id),
                attempt=2,
            ),
        ]
    )
    notice = ChangeNotice(
        system="dataverse",
        entity="salesorder",
        ids=(w.salesorder,),
        operation="updated",
        source="/dataverse/test",
        origin="webhook",
        observed_at=now_utc(),
    )
    message = Envelope.wrap(notice).to_message()
    w.message_id = message.message_id
    with LocalBus(str(w.bus_path), load_topology(w.topology)) as bus:
        bus.publish("dataverse-changes", [message])
        [msg] = bus.receive("dataverse-changes", "orders-to-brightpearl", 1)
        bus.dead_letter(msg, "UnknownSku", "GHOST-9 not in Brightpearl")


@pytest.fixture
def linked(world: World, shop: Shop, bp_server: SimulatorServer) -> World:
    linked_order(world, shop)
    make_bp_order(world, a_customer(bp_server.simulator))
    return world


def test_found_by_dynamics_order_number_shows_both_sides_link_audit_and_bus(linked: World):
    result = show(linked, linked.number)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Dynamics order {linked.number} ({linked.salesorder})" in out
    assert f"Brightpearl order {linked.bp_id}" in out and f"externalRef {linked.salesorder}" in out
    assert f"link: linked, Dynamics {linked.salesorder} <-> Brightpearl {linked.bp_id}" in out
    assert "Mug" in out and "37.5" in out  # the Brightpearl row

    assert "UnknownSku" in out and "synced" in out and "audit (2 row(s))" in out
    assert "dead-lettered" in out and linked.message_id in out


def test_found_by_brightpearl_order_id(linked: World):
    result = show(linked, str(linked.bp_id), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["brightpearl"]["id"] == linked.bp_id
    assert shown["dynamics"]["salesorderid"] == linked.salesorder
    assert shown["dynamics"]["ordernumber"] == linked.number


def test_json_shape(linked: World):
    result = show(linked, linked.salesorder, "--json")
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.output)
    assert set(shown) == {"query", "dynamics", "brightpearl", "link", "audit", "messages", "notes"}
    assert shown["query"] == linked.salesorder
    [line] = shown["dynamics"]["lines"]
    assert line["quantity"] in (3, "3", 3.0, "3.0000000000")
    assert shown["brightpearl"]["status"]["id"] and shown["brightpearl"]["rows"][0]["name"] == "Mug"
    assert shown["link"] == {
        "state": "linked",
        "dataverse": linked.salesorder,
        "brightpearl": str(linked.bp_id),
    }
    assert [a["reason"] for a in shown["audit"]] == ["UnknownSku", None]
    assert [(m["queue"], m["messageId"], m["reason"]) for m in shown["messages"]] == [
        ("dead-lettered", linked.message_id, "UnknownSku")
    ]
    assert "e-mail" not in result.output and "@" not in result.output  # no personal data


def test_not_found_on_either_side_exits_1_naming_the_look_up(world: World):
    result = show(world, "ORD-99999")
    assert result.exit_code == 1
    assert "no order 'ORD-99999'" in result.output and "Dynamics order number" in result.output
    result = show(world, "424242")
    assert result.exit_code == 1
    assert "Brightpearl order id" in result.output and "found on neither side" in result.output
