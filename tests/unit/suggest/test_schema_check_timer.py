"""The daily schema check timer: registered on CUSTOMERS_SCHEMA_CHECK_SCHEDULE, and a transient
failure of either system waits for the next run instead of failing the function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared import runtime
from shared.brightpearl.errors import BrightpearlUnavailable
from shared.settings import load_settings
from shared.suggest import service
from shared.sync.fakes import MemoryStateStore
from tests.unit.reconcile.test_reconcile_timer import values

ROOT = Path(__file__).resolve().parents[3]


def test_the_timer_is_registered_on_its_schedule_setting() -> None:
    from functions.schema_check import bp

    [fn] = [f for f in bp._function_builders if f._function.get_function_name() == "schema_check"]
    [binding] = fn._function.get_bindings()
    assert binding.type == "timerTrigger"
    assert binding.schedule == "%CUSTOMERS_SCHEMA_CHECK_SCHEDULE%"
    settings = load_settings(values())
    assert settings.customers.schema_check_schedule == values()["CUSTOMERS_SCHEMA_CHECK_SCHEDULE"]
    app_settings = json.loads((ROOT / "infra" / "app-settings.json").read_text())
    assert app_settings["CUSTOMERS_SCHEMA_CHECK_SCHEDULE"] == settings.customers.schema_check_schedule


def test_a_transient_failure_waits_for_the_next_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise BrightpearlUnavailable("Brightpearl answered 503")

    monkeypatch.setattr(service, "check_drift", unavailable)
    with runtime.override(
        settings=load_settings(values()),
        brightpearl=object(),
        dataverse=object(),
        state_store=MemoryStateStore(),
    ):
        assert service.run_scheduled() == []

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(service, "check_drift", broken)
    with (
        runtime.override(
            settings=load_settings(values()),
            brightpearl=object(),
            dataverse=object(),
            state_store=MemoryStateStore(),
        ),
        pytest.raises(ValueError, match="a bug"),
    ):
        service.run_scheduled()
