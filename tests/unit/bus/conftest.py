"""Fixtures for the bus tests: a movable clock and small topologies built in code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch, ServiceBusSender

from shared.bus.local import LocalBus
from shared.bus.topology import Topology

STANDARD_BATCH = 256 * 1024


class FakeClock:
    """A clock tests move by hand; the bus never sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def subscription(name: str, sql: str, **overrides: Any) -> dict[str, Any]:
    sub = {
        "name": name,
        "maxDeliveryCount": 3,
        "lockDuration": "PT1M",
        "defaultMessageTimeToLive": "P14D",
        "deadLetteringOnMessageExpiration": True,
        "deadLetteringOnFilterEvaluationExceptions": True,
        "rule": {"name": "$Default", "sqlFilter": sql},
    }
    sub.update(overrides)
    return sub


def topology(*subscriptions: dict[str, Any], topic: str = "orders", **topic_overrides: Any) -> Topology:
    raw_topic = {
        "name": topic,
        "setting": "ORDERS_TOPIC",
        "requiresDuplicateDetection": True,
        "duplicateDetectionHistoryTimeWindow": "PT10M",
        "defaultMessageTimeToLive": "P14D",
        "subscriptions": list(subscriptions),
    }
    raw_topic.update(topic_overrides)
    return Topology.model_validate({"schemaVersion": 1, "topics": [raw_topic]})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_bus(tmp_path: Path, clock: FakeClock) -> Callable[..., LocalBus]:
    """Open LocalBus instances on one file in tmp_path; all are closed after the test."""
    opened: list[LocalBus] = []

    def _open(topo: Topology | None = None, **kwargs: Any) -> LocalBus:
        bus = LocalBus(tmp_path / "bus.sqlite3", topo, clock=clock, **kwargs)
        opened.append(bus)
        return bus

    yield _open  # type: ignore[misc]
    for bus in opened:
        bus.close()


@dataclass
class Wire:
    """What the SDK would have put on the wire, per topic."""

    sent: list[tuple[str, ServiceBusMessageBatch | ServiceBusMessage]] = field(default_factory=list)
    opens: int = 0
    max_batch: int = STANDARD_BATCH
    fail_with: Exception | None = None

    def batches(self, topic: str) -> list[list[ServiceBusMessage]]:
        out = []
        for entity, obj in self.sent:
            if entity == topic:
                assert isinstance(obj, ServiceBusMessageBatch)
                out.append(list(obj._messages))
        return out


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    state = Wire()

    def fake_open(self: ServiceBusSender, timeout: float | None = None) -> None:
        if state.fail_with is not None:
            raise state.fail_with
        if self._running:
            return
        state.opens += 1
        self._running = True
        self._max_message_size_on_link = state.max_batch
        self._max_batch_size_on_link = state.max_batch

    def fake_send(self: ServiceBusSender, message: Any, timeout: float | None = None,
                  last_exception: Exception | None = None) -> None:
        self._open(timeout)
        state.sent.append((self.entity_name, message))

    monkeypatch.setattr(ServiceBusSender, "_open", fake_open)
    monkeypatch.setattr(ServiceBusSender, "_send", fake_send)
    return state
