"""`syncctl backfill products --from brightpearl` against the Brightpearl simulator: every product
id published as product notices to the Brightpearl changes topic, the progress and summary
lines, a resume after an interruption; `--from dataverse` refused, naming the master."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox.brightpearl import SimulatorServer
from shared import runtime
from shared.bus.port import OutgoingMessage
from shared.flows.products_spec import PRODUCTS
from shared.sync.fakes import MemoryStateStore
from syncctl.main import app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
runner = CliRunner()


class Publisher:
    """The bus: what the CLI published, per topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self.sent.extend((topic, json.loads(m.body)) for m in messages)

    def publish_scheduled(
        self, topic: str, messages: Sequence[OutgoingMessage], enqueue_at: datetime
    ) -> None:
        self.publish(topic, messages)

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass

    def ids(self) -> list[str]:
        return [i for _, body in self.sent for i in body["data"]["ids"]]


@pytest.fixture(scope="module")
def bp_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(seed_contacts=0, seed_products=0, seed_orders=0) as server:
        yield server


@pytest.fixture
def bus(bp_server: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Publisher]:
    bp_server.simulator.reset()
    values = dict(EXAMPLE, BRIGHTPEARL_BASE_URL=bp_server.url, BRIGHTPEARL_ACCOUNT=bp_server.account)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": values}))
    monkeypatch.chdir(tmp_path)
    for name in ("BRIGHTPEARL_BASE_URL", "BRIGHTPEARL_ACCOUNT", "CUSTOMERS_IDS_PER_NOTICE"):
        monkeypatch.delenv(name, raising=False)
    publisher, store = Publisher(), MemoryStateStore()
    with runtime.override(publisher=publisher, state_store=store):
        yield publisher


def add_products(server: SimulatorServer, count: int) -> list[int]:
    import httpx

    headers = {"brightpearl-app-ref": "sandbox-app", "brightpearl-account-token": "sandbox-account-token"}
    url = f"{server.url}/public-api/{server.account}/product-service/product/"
    ids = []
    for i in range(count):
        body = {
            "brandId": 1,
            "identity": {"sku": f"BF-{i:04d}"},
            "salesChannels": [{"salesChannelName": "Brightpearl", "productName": f"Backfill {i}"}],
        }
        answer = httpx.post(url, json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        ids.append(int(answer.json()["response"]))
    return ids


def backfill(*extra: str) -> Any:
    return runner.invoke(
        app,
        ["backfill", "products", "--from", "brightpearl", "--settings", "local.settings.json", *extra],
        env={"COLUMNS": "200"},
    )


def test_backfill_products_publishes_every_product_id_to_the_brightpearl_topic(
    bp_server: SimulatorServer, bus: Publisher
) -> None:
    ids = add_products(bp_server, 7)

    result = backfill()

    assert result.exit_code == 0, result.output
    assert "backfill products from brightpearl" in result.output  # the progress line
    assert "published 7 product ids in 1 notices to brightpearl-changes" in result.output
    assert sorted(bus.ids(), key=int) == [str(i) for i in ids]
    assert {(topic, body["data"]["entity"], body["data"]["origin"]) for topic, body in bus.sent} == {
        ("brightpearl-changes", "product", "backfill")
    }
    assert runtime.state_store().cursors.get(PRODUCTS.backfill_cursor("brightpearl")) is None


def test_backfill_products_resumes_from_its_cursor(bp_server: SimulatorServer, bus: Publisher) -> None:
    ids = add_products(bp_server, 5)
    cursors = runtime.state_store().cursors
    # an earlier run stopped after its first 3 products
    state = {"run_id": "20261205T090000000000", "position": 3, "since": None, "total": 5}
    cursors.save(PRODUCTS.backfill_cursor("brightpearl"), json.dumps(state))

    result = backfill()

    assert result.exit_code == 0, result.output
    assert "published 2 product ids in 1 notices to brightpearl-changes (resumed after 3)" in result.output
    assert bus.ids() == [str(i) for i in sorted(ids)[3:]]
    assert cursors.get(PRODUCTS.backfill_cursor("brightpearl")) is None


def test_backfill_products_from_dataverse_is_refused(bus: Publisher) -> None:
    result = runner.invoke(app, ["backfill", "products", "--from", "dataverse"], env={"COLUMNS": "200"})

    assert result.exit_code == 2
    assert "products cannot be backfilled from dataverse" in result.output
    assert "Brightpearl is their master" in result.output and "--from brightpearl" in result.output
    assert bus.sent == []
