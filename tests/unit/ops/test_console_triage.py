"""The console's triage page and group resubmit (issue 16 item 4: `syncctl dlq triage` on the
page) and its anomalies panel (item 3), through the HTTP handlers of functions/ops.py on a real
LocalBus and an Azurite state store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import azure.functions as func
import pytest

import functions.ops as ops
from shared.anomaly.flags import Flag
from shared.bus.deadletters import LocalDeadLetters
from shared.bus.local import LocalBus
from shared.bus.topology import load_topology
from shared.ops import console
from shared.ops.console_html import PANELS, Links, render_overview
from shared.ops.metrics import Window
from shared.store import AuditEntry, StateStore
from tests.unit.bus.test_dlq_cli import notice

TOPIC, FLOW = "brightpearl-changes", "customers-to-dataverse"
INVALID = f"{FLOW}/InvalidEmail/emails.primary"
RETRIES = f"{FLOW}/RetriesExhausted/DataverseUnavailable"
DEAD = {
    "101": ("InvalidEmail", "InvalidEmail: brightpearl record 101, field emails.primary: not an e-mail"),
    "102": ("InvalidEmail", "InvalidEmail: brightpearl record 102, field emails.primary: not an e-mail"),
    "105": ("RetriesExhausted", f"{FLOW}: gave up after 5 attempts; last error [DataverseUnavailable] 503"),
}


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[LocalBus]:
    with LocalBus(tmp_path / "bus.sqlite3", load_topology()) as b:
        b.publish(TOPIC, [notice(c).to_message() for c in DEAD])
        for m in b.receive(TOPIC, FLOW, 10):
            from shared.events import Envelope

            b.dead_letter(m, *DEAD[Envelope.from_body(m.body).notice.ids[0]])
        yield b


@pytest.fixture
def wired(bus: LocalBus, state_store: StateStore, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    """functions/ops.py reading this bus and store."""

    @contextmanager
    def dead_letter_ops() -> Iterator[LocalDeadLetters]:
        yield LocalDeadLetters(bus)

    monkeypatch.setattr(ops, "_dead_letter_ops", dead_letter_ops)
    monkeypatch.setattr(ops, "_pairs", lambda: [(TOPIC, FLOW)])
    monkeypatch.setattr(ops, "_mapping_file", lambda subscription: None)
    monkeypatch.setattr(ops.runtime, "state_store", lambda: state_store)
    return state_store


def get(handler: object, path: str) -> func.HttpResponse:
    req = func.HttpRequest("GET", f"http://127.0.0.1/api/{path}?code=k", params={"code": "k"}, body=b"")
    return handler._function.get_user_function()(req)  # type: ignore[attr-defined]


def post(handler: object, path: str, **form: str) -> tuple[int, str]:
    req = func.HttpRequest(
        "POST", f"http://127.0.0.1/api/{path}?code=k", params={"code": "k"}, body=urlencode(form).encode()
    )
    resp = handler._function.get_user_function()(req)  # type: ignore[attr-defined]
    return resp.status_code, resp.get_body().decode()


def dead(bus: LocalBus) -> int:
    return bus.counts(TOPIC, FLOW).dead_letter


def test_the_triage_page_lists_each_group_with_count_cause_fix_and_whether_resubmit_is_safe(wired):
    resp = get(ops.ops_triage, "ops/triage")
    html = resp.get_body().decode()
    assert resp.status_code == 200
    assert 'data-testid="triage-total">3<' in html
    assert html.index(INVALID) < html.index(RETRIES)  # biggest group first
    _, invalid, retries = html.split('data-testid="triage-group">')
    assert invalid.startswith(INVALID) and retries.startswith(RETRIES)
    assert 'data-testid="triage-count">2<' in invalid and "not yet</span>" in invalid
    assert "Correct the e-mail" in invalid and "name=force value=yes" in invalid
    assert 'data-testid="triage-count">1<' in retries and ">safe</span>" in retries
    assert "name=force" not in retries
    assert "/api/ops/triage/resubmit?code=k" in html and 'name=confirm value="resubmit"' in html
    assert 'href="/api/ops/triage?code=k">Triage</a>' in html  # in the navigation of every page


def test_a_group_resubmit_needs_the_confirmation_and_an_unsafe_group_the_force_box(wired, bus: LocalBus):
    status, html = post(ops.ops_triage_resubmit, "ops/triage/resubmit", group=INVALID)
    assert status == 400 and "confirm: must be &#x27;resubmit&#x27;" in html
    status, html = post(ops.ops_triage_resubmit, "ops/triage/resubmit", group=INVALID, confirm="resubmit")
    assert status == 400 and "force: group" in html and "not safe to resubmit in bulk" in html
    status, html = post(ops.ops_triage_resubmit, "ops/triage/resubmit", group="nope", confirm="resubmit")
    assert status == 400 and "group: no dead-letter group" in html
    assert dead(bus) == 3  # nothing moved

    status, html = post(
        ops.ops_triage_resubmit, "ops/triage/resubmit", group=INVALID, confirm="resubmit", force="yes"
    )
    assert status == 200 and html.count('data-testid="outcome">resubmitted<') == 2
    assert dead(bus) == 1
    for contact in ("101", "102"):  # audited as the dead-letter resubmit is
        [row] = [
            e
            for e in wired.audit.for_record("customer", "brightpearl", contact)
            if e.reason_code == "DeadLetterResubmitted"
        ]
        assert row.result == "operator" and row.description.startswith("console: resubmitted")


def test_a_safe_group_is_resubmitted_by_its_number_without_force(wired, bus: LocalBus):
    status, html = post(ops.ops_triage_resubmit, "ops/triage/resubmit", group="2", confirm="resubmit")
    assert status == 200 and html.count('data-testid="outcome">resubmitted<') == 1
    assert dead(bus) == 2
    html = get(ops.ops_triage, "ops/triage").get_body().decode()
    assert RETRIES not in html and 'data-testid="triage-total">2<' in html


NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
WHY = "total 98000.00 GBP is 41x the median of the last 200 orders (2390.00)"


def anomaly(record_id: str, at: datetime) -> AuditEntry:
    """An OrderValue flag's audit row (shared/anomaly/flags.py), written at `at`."""
    found = Flag("OrderValue", "orders-to-dataverse", "order", "brightpearl", record_id, WHY)
    return found.audit_entry().model_copy(update={"at": at})


def overview(store: StateStore, hours: float) -> console.Overview:
    window = Window.last(hours, NOW)
    return console.overview(
        store, window, flows=[], backlog=list, budget=lambda: None, dataverse=lambda: None, now=NOW
    )


def test_the_overview_lists_the_anomaly_flags_of_its_window(state_store: StateStore):
    store = state_store.with_clock(lambda: NOW)
    store.audit.record_many(
        [anomaly("9001", NOW - timedelta(hours=2)), anomaly("9002", NOW - timedelta(hours=30))]
    )
    ov = overview(store, 24)
    html = render_overview(ov, Links("/api/ops", None), 24, {})

    section = html.split("<section id=anomalies>")[1].split("</section>")[0]
    assert 'data-testid="anomaly-kind">OrderValue<' in section
    assert "orders-to-dataverse" in section and ">9001</a>" in section and "9002" not in section
    assert f'data-testid="anomaly-why">{WHY}<' in section
    [row] = ov.as_dict()["anomalies"]["value"]
    assert (row["reason"], row["source_id"]) == ("AnomalyOrderValue", "9001")
    assert "anomalies" in PANELS
    # a longer window holds both, newest first
    assert [r.source_id for r in overview(store, 168).anomalies.value] == ["9001", "9002"]


def test_an_empty_window_says_no_anomaly(state_store: StateStore):
    html = render_overview(overview(state_store, 1), Links("/api/ops", None), 1, {})
    assert 'data-testid="no-anomalies"' in html
