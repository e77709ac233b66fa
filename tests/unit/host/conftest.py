"""Fixtures for the local host tests: a fake clock, a test topology, a local bus and a host factory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.host import LocalHost
from shared.bus.local import LocalBus
from shared.bus.topology import Topology

TOPIC = "orders"
SUBSCRIPTIONS = ("auto", "manual", "batch", "batch-manual", "slow", "limited")
FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"


class FakeClock:
    """A clock the tests move by hand; shared by the bus and the host."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def _subscription(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "maxDeliveryCount": 3,
        "lockDuration": "PT5S" if name == "slow" else "PT30S",
        "defaultMessageTimeToLive": "P1D",
        "deadLetteringOnMessageExpiration": True,
        "deadLetteringOnFilterEvaluationExceptions": True,
        "rule": {"name": "$Default", "sqlFilter": f"target = '{name}'"},
    }


TEST_TOPOLOGY = Topology.model_validate(
    {
        "schemaVersion": 1,
        "topics": [
            {
                "name": TOPIC,
                "setting": "ORDERS_TOPIC",
                "requiresDuplicateDetection": True,
                "duplicateDetectionHistoryTimeWindow": "PT10M",
                "defaultMessageTimeToLive": "P1D",
                "subscriptions": [_subscription(s) for s in SUBSCRIPTIONS],
            }
        ],
    }
)


def base_settings(**extra: str) -> dict[str, str]:
    settings = {
        "ORDERS_TOPIC": TOPIC,
        "ServiceBusConnection": "Endpoint=sb://localhost/;SharedAccessKeyName=x;SharedAccessKey=y",
        "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
        "LOCAL_MASTER_KEY": MASTER_KEY,
        "POLL_SCHEDULE": "0 */5 * * * *",
        "PYTHON_THREADPOOL_THREAD_COUNT": "8",
    }
    settings.update(extra)
    return settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC))


@pytest.fixture
def bus(tmp_path: Path, clock: FakeClock) -> Iterator[LocalBus]:
    local_bus = LocalBus(tmp_path / "bus.sqlite3", TEST_TOPOLOGY, clock=clock)
    yield local_bus
    local_bus.close()


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[Callable[..., LocalHost]]:
    """Build hosts that are always stopped at the end of the test."""
    hosts: list[LocalHost] = []

    def factory(app: str, *, settings: dict[str, str] | None = None, **kwargs: Any) -> LocalHost:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("poll_interval", 0.02)
        kwargs.setdefault("project_root", tmp_path)
        kwargs.setdefault("host_json", {})
        kwargs.setdefault("shutdown_grace", 5.0)
        host = LocalHost(app, settings=base_settings() if settings is None else settings, **kwargs)
        hosts.append(host)
        return host

    yield factory
    for host in hosts:
        host.stop(grace=1.0)


@pytest.fixture(autouse=True)
def _clean_setting_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings left in os.environ by other tests must not win over the ones these tests pass."""
    for name in (*base_settings(), "LOCAL_BUS_PATH"):
        monkeypatch.delenv(name, raising=False)
