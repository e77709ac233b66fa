"""The console's reconciliation panel (issue 15's "reconciliation summary, once reconciliation
exists"): the last stored report of each reconcilable entity, its counts per kind; the report's
row in the cursors table is not listed as a poller cursor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.ops.console import overview
from shared.ops.console_html import Links, render_overview
from shared.ops.metrics import Window
from shared.reconcile.report import ReconcileReport, save_report
from shared.store import StateStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(azurite: str) -> Iterator[StateStore]:
    s = StateStore.from_connection_string(azurite, table_prefix=f"r{uuid.uuid4().hex[:10]}")
    s.ensure_tables()
    yield s
    s.drop_tables()
    s.close()


def page(store: StateStore) -> tuple[object, str]:
    ov = overview(
        store,
        Window.last(24, NOW),
        flows=[],
        backlog=lambda: [],
        budget=lambda: None,
        dataverse=lambda: None,
        now=NOW,
    )
    return ov, render_overview(ov, Links("/api/ops", None), 24, {})


def test_the_overview_shows_the_last_reconciliation_and_no_report_row_among_the_cursors(
    store: StateStore,
) -> None:
    report = ReconcileReport(entity="customers", run_id="r1", started_at=NOW, finished_at=NOW)
    report.counts["drift"] = 3
    report.counts["duplicate"] = 1
    save_report(store.cursors, report)
    store.cursors.save("customers-brightpearl-contact-updatedon", "2026-12-05T11:00:00Z")

    ov, html = page(store)

    assert 'data-testid="reconcile:customers:drift">3<' in html
    assert 'data-testid="reconcile:customers:duplicate">1<' in html
    assert 'data-testid="reconcile:customers:orphaned_link">0<' in html
    assert "Not built yet" not in html
    assert [c.name for c in ov.cursors.value] == ["customers-brightpearl-contact-updatedon"]  # type: ignore[attr-defined]
    assert ov.as_dict()["reconciliation"]["value"]["customers"]["counts"]["drift"] == 3  # type: ignore[attr-defined]


def test_an_entity_never_reconciled_says_how_to_run_it(store: StateStore) -> None:
    _, html = page(store)
    assert "never reconciled" in html and "syncctl reconcile customers" in html
