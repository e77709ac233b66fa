"""infra/topology.json is checked when it is loaded: each duration names its field when wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, TopologyError, load_topology


def _write(tmp_path: Path, change: Any) -> Path:
    raw = json.loads(DEFAULT_TOPOLOGY_PATH.read_text(encoding="utf-8"))
    change(raw["topics"][0])
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_the_real_topology_loads_with_its_durations() -> None:
    topic = load_topology().topics[0]
    assert topic.ttl.total_seconds() > 0
    assert topic.subscriptions[0].lock.total_seconds() <= 300


def test_a_topic_ttl_that_is_not_a_duration_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda topic: topic.update(defaultMessageTimeToLive="14 days"))
    with pytest.raises(TopologyError, match=r"defaultMessageTimeToLive.*'14 days' is not an ISO 8601"):
        load_topology(path)


def test_durations_out_of_service_bus_range_name_the_field_and_range(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda topic: topic["subscriptions"][0].update(lockDuration="PT10M"))
    with pytest.raises(TopologyError, match=r"lockDuration must be between PT5S and PT5M \(Service Bus"):
        load_topology(path)
    path = _write(tmp_path, lambda topic: topic.update(duplicateDetectionHistoryTimeWindow="PT5S"))
    with pytest.raises(
        TopologyError, match="duplicateDetectionHistoryTimeWindow must be between PT20S and P7D"
    ):
        load_topology(path)
