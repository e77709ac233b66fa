"""`syncctl bus status`: waiting work per subscription, on the local bus (real topology rules)
and from Azure Service Bus runtime properties (a stand-in for the management client)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from shared.bus.backlog import Backlog, servicebus_backlog
from shared.bus.local import LocalBus
from shared.bus.port import BusError
from shared.bus.topology import load_topology
from shared.events import ChangeNotice, Envelope
from syncctl.main import app

BP_TOPIC, TO_DV = "brightpearl-changes", "customers-to-dataverse"
DV_TOPIC, TO_BP = "dataverse-changes", "customers-to-brightpearl"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BUS_BACKEND",
        "LOCAL_BUS_PATH",
        "ServiceBusConnection",
        "ServiceBusConnection__fullyQualifiedNamespace",
        "BRIGHTPEARL_CHANGES_TOPIC",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def notices(n: int) -> list:
    return [
        Envelope.wrap(
            ChangeNotice(
                system="brightpearl",
                entity="contact",
                ids=(str(500 + i),),
                operation="updated",
                observed_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
                source="/brightpearl/acme",
                version=str(i),
            )
        ).to_message()
        for i in range(n)
    ]


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"BUS_BACKEND": "local", "LOCAL_BUS_PATH": "bus.sqlite3"}}))
    return path


def test_local_bus_counts_active_locked_scheduled_dead_lettered_and_deferred(settings_file: Path):
    with LocalBus(settings_file.parent / "bus.sqlite3", load_topology()) as bus:
        bus.publish(BP_TOPIC, notices(6))  # six visible
        later = datetime.now(UTC) + timedelta(hours=1)
        bus.publish_scheduled(
            BP_TOPIC, [dataclasses.replace(m, message_id=m.message_id + "-r") for m in notices(2)], later
        )
        first, second, _still_locked = bus.receive(BP_TOPIC, TO_DV, 3)
        bus.dead_letter(first, "Invalid", "bad e-mail")
        bus.defer(second)  # the third stays locked

    result = CliRunner().invoke(app, ["bus", "status", "--json", "--settings", str(settings_file)])

    assert result.exit_code == 0, result.output
    rows = {r["subscription"]: r for r in json.loads(result.output)["subscriptions"]}
    assert rows[TO_DV] | {"note": ""} == {
        "topic": BP_TOPIC,
        "subscription": TO_DV,
        "active": 4,
        "locked": 1,
        "scheduled": 2,
        "dead_lettered": 1,
        "deferred": 1,
        "note": "",
    }
    assert (rows[TO_BP]["active"], rows[TO_BP]["dead_lettered"]) == (0, 0)


def test_the_table_names_every_subscription(settings_file: Path):
    LocalBus(settings_file.parent / "bus.sqlite3", load_topology()).close()
    result = CliRunner().invoke(app, ["bus", "status", "--settings", str(settings_file)])
    assert result.exit_code == 0, result.output
    for word in ("active", "locked", "scheduled", "dead-lettered", TO_DV, TO_BP):
        assert word in result.output


def test_no_local_bus_yet_is_said_plainly(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"Values": {"BUS_BACKEND": "local", "LOCAL_BUS_PATH": "none/bus.sqlite3"}}))
    result = CliRunner().invoke(app, ["bus", "status", "--settings", str(path)])
    assert result.exit_code == 2
    assert "no local bus" in result.output and "syncctl sandbox up" in result.output


class FakeAdmin:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def get_topic_runtime_properties(self, topic: str) -> SimpleNamespace:
        return SimpleNamespace(scheduled_message_count={BP_TOPIC: 7, DV_TOPIC: 0}[topic])

    def get_subscription_runtime_properties(self, topic: str, subscription: str) -> SimpleNamespace:
        if self.fail:
            raise PermissionError("Unauthorized: Manage claim required")
        return SimpleNamespace(active_message_count=12, dead_letter_message_count=3)


def test_azure_counts_come_from_runtime_properties():
    rows = servicebus_backlog(FakeAdmin(), [(BP_TOPIC, TO_DV), (DV_TOPIC, TO_BP)])
    assert rows[0] == Backlog(
        BP_TOPIC,
        TO_DV,
        active=12,
        locked=None,
        scheduled=None,
        dead_lettered=3,
        deferred=None,
        note=f"topic {BP_TOPIC}: 7 scheduled; locked messages are counted in active",
    )
    assert rows[1].note.startswith(f"topic {DV_TOPIC}: 0 scheduled")


def test_azure_errors_name_the_problem():
    with pytest.raises(
        BusError, match="cannot read Service Bus runtime properties: PermissionError: Unauthorized"
    ):
        servicebus_backlog(FakeAdmin(fail=True), [(BP_TOPIC, TO_DV)])
