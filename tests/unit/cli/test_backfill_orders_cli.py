"""`syncctl backfill orders --since DATE` against the Dataverse simulator (through the real
client): the Dynamics sales orders modified since the date are published as salesorder
notices to the Dataverse changes topic, with the progress and summary lines, and older ones
are not; `--from` may be left out (Dataverse, as before) and `--from brightpearl` lists
Brightpearl's sales orders (order history, issue 14)."""

# ruff: noqa: F811 - pytest fixtures imported from other test modules are parameters here
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox.dataverse import SimulatorServer
from shared import runtime
from shared.dataverse.client import DataverseClient
from shared.flows.orders_spec import ORDERS
from shared.sync.fakes import FakeBrightpearl, MemoryStateStore
from syncctl.main import app
from tests.contract.dataverse.simfixtures import (  # noqa: F401 - client, dataverse_server, sim: fixtures
    client,
    dataverse_server,
    sim,
)
from tests.contract.test_dataverse_orders import Shop, order_body, shop  # noqa: F401
from tests.unit.cli.test_backfill_cli import EXAMPLE, Publisher

runner = CliRunner()
DAY = 24 * 3600.0


@pytest.fixture
def bus(
    client: DataverseClient,
    dataverse_server: SimulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Publisher]:
    values = dict(EXAMPLE, DATAVERSE_URL=dataverse_server.url)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": values}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATAVERSE_URL", raising=False)
    publisher = Publisher()
    with runtime.override(publisher=publisher, state_store=MemoryStateStore(), dataverse=client):
        yield publisher


@contextmanager
def days_ago(server: SimulatorServer, days: int) -> Iterator[None]:
    """The simulator's clock `days` back (createdon and modifiedon of what is written meanwhile)."""
    clock = server.simulator.clock
    clock.offset -= days * DAY
    try:
        yield
    finally:
        clock.offset += days * DAY


@pytest.fixture
def placed(
    client: DataverseClient, dataverse_server: SimulatorServer, shop: Shop
) -> tuple[list[str], list[str]]:
    """Two orders last modified three days ago, three today."""

    def orders(count: int, name: str) -> list[str]:
        return [client.create("salesorders", order_body(shop, name=f"{name} {i}")) for i in range(count)]

    with days_ago(dataverse_server, 3):
        old = orders(2, "Old")
    return old, orders(3, "Recent")


def backfill(*args: str) -> Any:
    return runner.invoke(
        app, ["backfill", "orders", *args, "--settings", "local.settings.json"], env={"COLUMNS": "200"}
    )


def test_backfill_orders_since_a_date_publishes_the_orders_modified_since(
    placed: tuple[list[str], list[str]], bus: Publisher
) -> None:
    old, recent = placed
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    result = backfill("--since", since)

    assert result.exit_code == 0, result.output
    assert "backfill orders from dataverse" in result.output  # the progress line
    assert "published 3 order ids in 1 notices to dataverse-changes" in result.output
    assert sorted(bus.ids()) == sorted(recent) and not set(old) & set(bus.ids())
    assert {(topic, body["data"]["entity"], body["data"]["origin"]) for topic, body in bus.sent} == {
        ("dataverse-changes", "salesorder", "backfill")
    }
    assert runtime.state_store().cursors.get(ORDERS.backfill_cursor("dataverse")) is None


def test_backfill_orders_without_since_publishes_every_order(
    placed: tuple[list[str], list[str]], bus: Publisher
) -> None:
    result = backfill("--from", "dataverse")

    assert result.exit_code == 0, result.output
    assert sorted(bus.ids()) == sorted(placed[0] + placed[1])


def test_backfill_orders_from_brightpearl_publishes_brightpearl_sales_orders(bus: Publisher) -> None:
    """Order history: `--from brightpearl` lists Brightpearl's sales orders (order-search) as
    `order` notices for orders-to-dataverse; Dataverse is not read."""
    fake = FakeBrightpearl()
    made = [str(fake.create_sales_order({"ref": f"WEB-{i}", "statusId": 2})) for i in range(3)]
    with runtime.override(brightpearl=fake):
        result = backfill("--from", "brightpearl", "--since", "2000-01-01")

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "backfill orders from brightpearl" in said
    assert "published 3 order ids in 1 notices to brightpearl-changes" in said
    assert sorted(bus.ids()) == sorted(made)
    assert {(topic, body["data"]["entity"]) for topic, body in bus.sent} == {("brightpearl-changes", "order")}
