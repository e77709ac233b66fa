"""The daily reconciliation timer: one per reconcilable entity, on its schedule setting, report
only (stores the report, publishes nothing); a transient failure waits for the next run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared import runtime
from shared.brightpearl.errors import BrightpearlUnavailable
from shared.flows.customers_spec import CUSTOMERS
from shared.reconcile.engine import run_scheduled, schedule_setting
from shared.reconcile.report import last_report
from shared.settings import load_settings
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from tests.unit.reconcile.test_reconcile_customers import MAPPING

ROOT = Path(__file__).resolve().parents[3]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def publish(self, topic: str, messages: Any) -> None:
        self.sent.append((topic, messages))


def values() -> dict[str, str]:
    raw = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    return {k: v for k, v in raw.items() if v != ""}


def test_the_timer_is_registered_on_the_entitys_schedule_setting() -> None:
    from functions.reconcile import bp

    [fn] = [f for f in bp._function_builders if f._function.get_function_name() == "reconcile_customers"]
    [binding] = fn._function.get_bindings()
    assert binding.type == "timerTrigger"
    assert binding.schedule == "%CUSTOMERS_RECONCILE_SCHEDULE%" == f"%{schedule_setting(CUSTOMERS)}%"
    assert load_settings(values()).customers.reconcile_schedule == values()["CUSTOMERS_RECONCILE_SCHEDULE"]


@pytest.fixture
def wired() -> Any:
    bpx, dv, store, bus = FakeBrightpearl(), FakeDataverse(), MemoryStateStore(), Recorder()
    bpx.add_contact(
        {
            "firstName": "Una",
            "lastName": "Synced",
            "communication": {"emails": {"PRI": {"email": "u@example.org"}}},
        }
    )
    with runtime.override(
        settings=load_settings(values()),
        brightpearl=bpx,
        dataverse=dv,
        state_store=store,
        publisher=bus,
        customer_mapping=MAPPING,
    ):
        yield bpx, store, bus


def test_the_scheduled_run_reports_and_heals_nothing(wired: Any) -> None:
    _, store, bus = wired
    report = run_scheduled(CUSTOMERS)
    assert report is not None and report.counts["missing_in_dataverse"] == 1 and not report.heal
    assert bus.sent == []  # report only: healing is the operator's `--heal`
    stored = last_report(store.cursors, "customers")
    assert stored is not None and stored.run_id == report.run_id


def test_a_transient_failure_waits_for_the_next_run(wired: Any) -> None:
    bpx, store, _ = wired
    bpx.fail_next["search_contacts"] = [BrightpearlUnavailable("503 from contact-search", status=503)]
    assert run_scheduled(CUSTOMERS) is None
    assert last_report(store.cursors, "customers") is None
