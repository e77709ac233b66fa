"""The console's figures (shared/ops/metrics.py, shared/ops/console.py) against a real state store
on Azurite and a real local bus: what an operator would read on the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.bus.deadletters import LocalDeadLetters
from shared.bus.local import LocalBus
from shared.events import ChangeNotice, Envelope
from shared.ops import console, metrics, runbook
from shared.store import AuditEntry, AuditResult, StateStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FLOW = "customers-to-dataverse"
TOPIC = "brightpearl-changes"


def entry(
    at: datetime,
    result: AuditResult,
    reason: str | None = None,
    *,
    flow: str = FLOW,
    source_id: str = "1",
    duration_ms: int | None = None,
    observed_at: datetime | None = None,
) -> AuditEntry:
    return AuditEntry(
        flow=flow,
        entity="customer",
        source_system="brightpearl",
        source_id=source_id,
        result=result,
        reason_code=reason,
        at=at,
        duration_ms=duration_ms,
        observed_at=observed_at,
        description=f"brightpearl record {source_id}",
    )


@pytest.fixture
def store(state_store: StateStore) -> StateStore:
    return state_store.with_clock(lambda: NOW)


def test_outcomes_by_reason_and_bucket_cover_only_the_window_and_the_flow(store: StateStore):
    store.audit.record_many(
        [
            entry(NOW - timedelta(minutes=10), AuditResult.SYNCED, source_id="1"),
            entry(NOW - timedelta(minutes=20), AuditResult.SYNCED, source_id="2"),
            entry(
                NOW - timedelta(hours=3, minutes=5), AuditResult.DEAD_LETTERED, "InvalidEmail", source_id="3"
            ),
            entry(NOW - timedelta(hours=5), AuditResult.NEEDS_REVIEW, "LikelyDuplicate", source_id="4"),
            entry(NOW - timedelta(hours=30), AuditResult.SYNCED, source_id="5"),  # yesterday: outside
            entry(NOW - timedelta(minutes=5), AuditResult.SYNCED, flow="products-to-dataverse"),
        ]
    )
    window = metrics.Window.last(6, NOW, buckets=6)
    activity = metrics.flow_activity(store.audit, FLOW, window)

    assert activity.rows == 4 and not activity.truncated
    assert activity.outcomes == {
        ("synced", ""): 2,
        ("dead-lettered", "InvalidEmail"): 1,
        ("needs-review", "LikelyDuplicate"): 1,
    }
    assert activity.series["synced"] == [0, 0, 0, 0, 0, 2]  # both in the last hour
    assert activity.series["dead-lettered"] == [0, 0, 1, 0, 0, 0]
    assert activity.series["needs-review"] == [0, 1, 0, 0, 0, 0]
    assert [e.source_id for e in activity.errors] == ["3", "4"]  # newest first


def test_a_window_spanning_midnight_reads_both_days(store: StateStore):
    store.audit.record_many(
        [
            entry(NOW - timedelta(hours=13), AuditResult.SYNCED, source_id="1"),  # 23:00 the day before
            entry(NOW - timedelta(hours=1), AuditResult.SYNCED, source_id="2"),
        ]
    )
    activity = metrics.flow_activity(store.audit, FLOW, metrics.Window.last(24, NOW))
    assert activity.total("synced") == 2


def test_latency_comes_from_observed_to_audited_and_processing_from_duration(store: StateStore):
    rows = [
        entry(
            NOW - timedelta(minutes=1),
            AuditResult.SYNCED,
            source_id=str(i),
            duration_ms=100 * i,
            observed_at=NOW - timedelta(minutes=1, seconds=i),
        )
        for i in range(1, 21)
    ]
    store.audit.record_many(rows)
    figures = metrics.flow_activity(store.audit, FLOW, metrics.Window.last(1, NOW)).as_dict()
    assert figures["latency_s"] == {"p50": 10.0, "p95": 19.0, "samples": 20}
    assert figures["processing_ms"] == {"p50": 1000, "p95": 1900}


def test_the_audit_keeps_when_the_change_was_observed(store: StateStore):
    observed = NOW - timedelta(seconds=7)
    store.audit.record(entry(NOW, AuditResult.SYNCED, observed_at=observed))
    [row] = store.audit.recent(FLOW)
    assert row.observed_at == observed


def test_reading_stops_at_max_rows_and_says_so(store: StateStore):
    store.audit.record_many(
        [entry(NOW - timedelta(seconds=i), AuditResult.SYNCED, source_id=str(i)) for i in range(1, 31)]
    )
    activity = metrics.flow_activity(store.audit, FLOW, metrics.Window.last(1, NOW), max_rows=10)
    assert activity.rows == 10 and activity.truncated and activity.total() == 10


def test_a_long_window_is_read_from_hourly_rollups_stored_once_per_settled_hour(store: StateStore):
    rows = [
        entry(
            NOW - timedelta(hours=h, minutes=30),
            AuditResult.SYNCED,
            source_id=str(h),
            duration_ms=100,
            observed_at=NOW - timedelta(hours=h, minutes=30, seconds=2),
        )
        for h in range(0, 30)
    ]
    rows.append(entry(NOW - timedelta(hours=5, minutes=10), AuditResult.DEAD_LETTERED, "InvalidEmail"))
    store.audit.record_many(rows)
    window = metrics.Window.last(24, NOW)

    first = metrics.flow_activity(store.audit, FLOW, window)
    again = metrics.flow_activity(store.audit, FLOW, window)

    assert first.hours_from_rollups == 0 and again.hours_from_rollups == 23  # 11:00-12:00 not settled
    for activity in (first, again):
        assert activity.total("synced") == 24 and activity.total("dead-lettered") == 1
        assert activity.series["synced"] == [1] * 24 and activity.window.since == NOW - timedelta(hours=24)
        assert [e.reason for e in activity.errors] == ["InvalidEmail"]
        figures = activity.as_dict()
        assert 1.95 <= figures["latency_s"]["p50"] <= 2.05 and 97 <= figures["processing_ms"]["p95"] <= 103


def test_rollups_of_a_large_backlog_are_filled_a_page_load_at_a_time(store: StateStore):
    store.audit.record_many(
        [
            entry(NOW - timedelta(hours=h, minutes=m), AuditResult.SYNCED, source_id=f"{h}-{m}")
            for h in range(1, 11)
            for m in (10, 20, 30)
        ]
    )
    window = metrics.Window.last(24, NOW)
    loads = [metrics.flow_activity(store.audit, FLOW, window, max_rows=7) for _ in range(6)]
    assert loads[0].truncated and loads[0].total() == 7
    assert [load.hours_from_rollups for load in loads[:3]] == [0, 2, 4]  # two more whole hours each time
    assert not loads[-1].truncated and loads[-1].total() == 30


def test_rows_of_the_hour_not_settled_yet_are_counted_each_time(store: StateStore):
    window = metrics.Window.last(24, NOW)
    store.audit.record(entry(NOW - timedelta(hours=3), AuditResult.SYNCED, source_id="1"))
    assert metrics.flow_activity(store.audit, FLOW, window).total() == 1
    store.audit.record(entry(NOW - timedelta(minutes=2), AuditResult.SYNCED, source_id="2"))
    assert metrics.flow_activity(store.audit, FLOW, window).total() == 2


def test_histogram_percentiles_are_within_five_percent():
    hist = metrics.Histogram()
    for value in range(1, 101):
        hist.add(value)
    assert 48 <= hist.percentile(50) <= 52 and 93 <= hist.percentile(95) <= 97
    assert metrics.Histogram.from_json(hist.as_json()) == hist


def test_operator_actions_are_counted_apart_from_outcomes(store: StateStore):
    store.audit.record_many(
        [
            entry(NOW - timedelta(minutes=1), AuditResult.OPERATOR, "DeadLetterResubmitted"),
            entry(NOW - timedelta(minutes=2), AuditResult.SYNCED),
        ]
    )
    activity = metrics.flow_activity(store.audit, FLOW, metrics.Window.last(1, NOW))
    assert activity.total() == 1 and activity.operator_actions == {"DeadLetterResubmitted": 1}


def test_window_rejects_hours_outside_retention():
    with pytest.raises(ValueError, match="hours must be"):
        metrics.Window.last(0, NOW)


def test_cursor_ages_name_the_poller_keeping_them(state_store: StateStore):
    then = NOW - timedelta(minutes=3)
    state_store.with_clock(lambda: then).cursors.save("brightpearl-contacts-updatedOn", "2026-12-05T11:57")
    ages = metrics.cursor_ages(state_store.cursors, NOW, {"brightpearl-contacts-updatedOn": "contact poll"})
    assert [(c.name, c.poller, c.age_seconds) for c in ages] == [
        ("brightpearl-contacts-updatedOn", "contact poll", 180.0)
    ]


def dead_letter_on(bus: LocalBus, record_id: str, reason: str) -> str:
    notice = ChangeNotice(
        system="brightpearl",
        entity="contact",
        ids=(record_id,),
        operation="updated",
        observed_at=NOW,
        source="/brightpearl/test",
        version="v1",
    )
    envelope = Envelope.wrap(notice)
    bus.publish(TOPIC, [envelope.to_message()])
    [message] = bus.receive(TOPIC, FLOW)
    bus.dead_letter(message, reason, f"brightpearl record {record_id}: communication.emails.PRI.email")
    return envelope.id


def test_resubmit_sends_the_copy_removes_the_dead_letter_and_audits_it(
    state_store: StateStore, tmp_path: Path
):
    with LocalBus(tmp_path / "bus.sqlite3") as bus:
        message_id = dead_letter_on(bus, "215", "InvalidEmail")
        dead_letter_on(bus, "216", "MissingLastName")
        ops, pairs = LocalDeadLetters(bus), [(TOPIC, FLOW)]

        listed = console.dead_letters(ops, pairs)
        assert console.reasons(listed) == {"InvalidEmail": 1, "MissingLastName": 1}
        assert [d.record_ids for d in console.with_reason(listed, "invalidemail")] == [("215",)]
        [outcome] = console.act(ops, state_store, pairs, "resubmit", [(FLOW, message_id)])

        assert outcome.action == "resubmitted"
        assert bus.counts(TOPIC, FLOW).dead_letter == 1 and bus.counts(TOPIC, FLOW).active == 1
    [row] = state_store.audit.for_record("customer", "brightpearl", "215")
    assert (row.result, row.reason_code, row.flow) == (AuditResult.OPERATOR, "DeadLetterResubmitted", FLOW)
    assert message_id in row.description and "InvalidEmail" in row.description


def test_purge_of_an_unknown_subscription_is_refused_naming_it(state_store: StateStore, tmp_path: Path):
    with LocalBus(tmp_path / "bus.sqlite3") as bus, pytest.raises(ValueError, match="'nope'"):
        console.act(LocalDeadLetters(bus), state_store, [(TOPIC, FLOW)], "purge", [("nope", "x")])


def test_purge_of_several_dead_letters_removes_them_and_audits_each_record(
    state_store: StateStore, tmp_path: Path
):
    with LocalBus(tmp_path / "bus.sqlite3") as bus:
        ids = [dead_letter_on(bus, record, "InvalidEmail") for record in ("301", "302", "303")]
        pairs = [(TOPIC, FLOW)]
        outcomes = console.act(
            LocalDeadLetters(bus), state_store, pairs, "purge", [(FLOW, i) for i in ids[:2]]
        )
        assert sorted(o.action for o in outcomes) == ["purged", "purged"]
        assert bus.counts(TOPIC, FLOW).dead_letter == 1 and bus.counts(TOPIC, FLOW).active == 0
    for record in ("301", "302"):
        [row] = state_store.audit.for_record("customer", "brightpearl", record)
        assert (row.result, row.reason_code) == (AuditResult.OPERATOR, "DeadLetterPurged")
    assert state_store.audit.for_record("customer", "brightpearl", "303") == []


def test_every_reason_code_an_operator_can_meet_has_its_fix_from_the_runbook():
    from shared.quality.issues import IssueCode
    from shared.resilience import RULES

    codes = {rule.reason for rule in RULES} | {str(code) for code in IssueCode}
    codes |= {"MalformedMessage", "RetriesExhausted", "MaxDeliveryCountExceeded", "LikelyDuplicate"}
    fixes = runbook.fixes()
    missing = sorted(code for code in codes if not (code in fixes and fixes[code].fix))
    assert not missing, f"reason codes without a fix the console can show: {missing}"
    assert fixes["InvalidEmail"].fix.startswith("Correct the e-mail")
    assert fixes["LikelyDuplicate"].section == "Audit results that are not dead letters"


def test_runbook_parser_gives_each_code_of_a_row_the_row_fix():
    text = (
        "## Reason codes\n\n### Messages\n\n| Code | Meaning | Fix |\n|---|---|---|\n"
        "| `BusUnavailable`, `StateConflict` | Transient | Check the namespace. |\n\n## Other\n"
        "| Code | Meaning | Fix |\n|---|---|---|\n| `Elsewhere` | no | no |\n"
    )
    parsed = runbook.parse(text)
    assert set(parsed) == {"BusUnavailable", "StateConflict"}
    assert (
        parsed["StateConflict"].fix == "Check the namespace."
        and parsed["StateConflict"].section == "Messages"
    )


def test_the_deployed_package_keeps_the_runbook_the_console_reads():
    """.funcignore (gitignore rules: the last matching pattern wins) ships docs/operations.md only."""
    from fnmatch import fnmatch

    patterns = [
        line.strip()
        for line in (runbook.RUNBOOK.parents[1] / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated, body = pattern.startswith("!"), pattern.lstrip("!")
            if fnmatch(path, body) or (body.endswith("/") and path.startswith(body)):
                verdict = not negated
        return verdict

    assert not ignored("docs/operations.md")
    assert ignored("docs/mapping.md") and ignored("tests/unit/ops/test_console_metrics.py")
