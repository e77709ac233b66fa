"""The sandbox runs the demo with fulfilment automation on (sandbox.orders_demo.demo_settings, which
`syncctl sandbox up` applies to the host and the demo's order scene reads): a copy of the shipped
orders.yaml with `fulfilment.enabled: true` beside the local bus, its status file mapping "Ready to
ship"; a mapping of the user's own is left alone."""

from __future__ import annotations

from pathlib import Path

from sandbox.orders_demo import READY, demo_settings, fulfilment_of
from shared.mapping.orders_config import read_order_mapping


def test_the_shipped_mapping_is_replaced_by_a_copy_with_fulfilment_on(tmp_path: Path) -> None:
    values = {"ORDER_MAPPING_PATH": "mappings/orders.yaml", "LOCAL_BUS_PATH": str(tmp_path / "bus.sqlite3")}
    assert not fulfilment_of(values).enabled  # the shipped default is off
    demo = demo_settings(values)
    path = Path(demo["ORDER_MAPPING_PATH"])
    assert path.parent == tmp_path
    mapping = read_order_mapping(path)  # valid, with its status file beside it
    assert mapping.fulfilment.enabled and mapping.fulfilment.trigger.statuses == (READY,)
    target = mapping.statuses.target(None, READY)
    assert target is not None and (target.statecode, target.statuscode) == (1, 3)
    assert fulfilment_of(demo).enabled
    assert demo_settings(values) == demo  # the demo command computes the host's path again


def test_a_mapping_of_your_own_is_left_alone(tmp_path: Path) -> None:
    bus = str(tmp_path / "bus.sqlite3")
    values = {"ORDER_MAPPING_PATH": str(tmp_path / "mine.yaml"), "LOCAL_BUS_PATH": bus}
    assert demo_settings(values) == values
    assert not list(tmp_path.iterdir())
