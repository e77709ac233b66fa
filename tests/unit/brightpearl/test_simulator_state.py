"""Simulator internals that tests and the docs rely on: reproducible seeding, config
validation, the throttle's own record."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandbox.brightpearl.app import Simulator
from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.state import SimState
from sandbox.brightpearl.throttle import Throttle

from .conftest import FakeClock


def names(state: SimState) -> list[tuple[str, str, str]]:
    return [
        (c["firstName"], c["lastName"], c["communication"]["emails"]["PRI"]["email"])
        for c in state.contacts.values()
    ]


def test_same_seed_same_data_other_seed_other_data():
    small = {"seed_contacts": 5, "seed_products": 3, "seed_orders": 2}
    a = SimState(SimulatorConfig(seed=7, **small))
    b = SimState(SimulatorConfig(seed=7, **small))
    c = SimState(SimulatorConfig(seed=8, **small))
    assert names(a) == names(b) and names(a) != names(c)
    assert [p["identity"]["sku"] for p in a.products.values()] == [
        p["identity"]["sku"] for p in b.products.values()
    ]
    stamps = [x["updatedOn"] for x in a.contacts.values()]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # history, strictly increasing


def test_config_is_validated_with_field_names():
    assert Simulator(rate_limit="20").config.rate_limit == 20  # CLI strings are coerced
    with pytest.raises(ValidationError, match="time_offset"):
        SimulatorConfig(time_offset="CET")
    with pytest.raises(ValidationError, match="rate_limit"):
        Simulator(rate_limit=0)
    sim = Simulator(seed_contacts=0, seed_products=0, seed_orders=0)
    with pytest.raises(ValueError, match="unknown setting 'rate_limt'"):
        sim.configure(rate_limt=5)
    with pytest.raises(ValueError, match="fault kind 'boom'"):
        sim.add_fault("boom")


def test_throttle_records_and_max_in_any_window(clock: FakeClock):
    throttle = Throttle(3, 10.0, clock=clock)
    assert [throttle.admit("acct").admitted for _ in range(4)] == [True, True, True, False]
    assert throttle.peek("acct") == (0, 10_000)
    clock.advance(5)
    assert throttle.admit("acct").next_period_ms == 5_000
    clock.advance(5.001)
    assert [throttle.admit("acct").remaining for _ in range(3)] == [2, 1, 0]
    assert throttle.max_in_any_window() == 3
    assert throttle.snapshot()["throttled"] == 2 and throttle.snapshot()["admitted"] == 6
