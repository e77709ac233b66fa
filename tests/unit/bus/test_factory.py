"""The composition root picks the bus adapter from BUS_BACKEND."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bus.deadletters import LocalDeadLetters, ServiceBusDeadLetters
from shared.bus.factory import build_dead_letters, build_publisher
from shared.bus.local import LocalBus
from shared.bus.port import OutgoingMessage
from shared.bus.servicebus import ServiceBusPublisher, close_shared_clients
from shared.settings import BusSettings

CONN = (
    "Endpoint=sb://sandbox-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=ZmFrZS1rZXktZm9yLXVuaXQtdGVzdHMtb25seQ=="
)


def test_local_backend_builds_a_durable_local_bus_on_the_configured_path(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "bus.sqlite3"
    settings = BusSettings.model_validate({"BUS_BACKEND": "local", "LOCAL_BUS_PATH": str(path)})
    publisher = build_publisher(settings)
    assert isinstance(publisher, LocalBus)
    publisher.publish("brightpearl-changes", [
        OutgoingMessage(b"{}", "m1", {"entity": "contact"}),
    ])
    publisher.close()
    ops = build_dead_letters(settings)
    assert isinstance(ops, LocalDeadLetters)
    assert ops.list("brightpearl-changes", "customers-to-dataverse") == []
    ops.close()
    with LocalBus(path) as reopened:
        assert reopened.counts("brightpearl-changes", "customers-to-dataverse").active == 1


def test_servicebus_backend_builds_the_sdk_adapters() -> None:
    settings = BusSettings.model_validate({"BUS_BACKEND": "servicebus", "ServiceBusConnection": CONN})
    try:
        publisher = build_publisher(settings)
        assert isinstance(publisher, ServiceBusPublisher)
        assert isinstance(build_dead_letters(settings), ServiceBusDeadLetters)
        publisher.close()
    finally:
        close_shared_clients()


def test_servicebus_backend_without_a_connection_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ServiceBusConnection__fullyQualifiedNamespace"):
        BusSettings.model_validate({"BUS_BACKEND": "servicebus"})
