"""Issue 15, the operator's everyday loop, against the running sandbox through `syncctl`:

- `syncctl sync contact --from brightpearl <id>` publishes the notice a webhook would and the
  record syncs; `--wait` reports its outcome;
- `syncctl history brightpearl contact <id>` shows the dead letter, the operator's fix and the
  sync, on both sides (the Dataverse record's history shows the same sync);
- `syncctl review list|accept|dismiss`: a likely duplicate is listed with what to check,
  dismissed (audited, off the list), flagged again by a new sync, accepted (audited, synced again);
- `syncctl flow pause|resume`: a paused flow keeps its messages scheduled on the bus through
  more rechecks than the delivery limit, dead-letters nothing and writes nothing; resumed, they
  sync.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared.bus.deadletters import LocalDeadLetters
from shared.ops import busview, flow_control
from shared.ops.review import causal_order
from shared.store import AuditResult
from syncctl.main import app
from tests.e2e.customers.conftest import BP_TOPIC, DV_TOPIC, TO_BP, TO_DV, Sandbox
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def cli(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run syncctl against the sandbox (its settings file; its bus object, on the fake clock)."""
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sandbox.values}))

    @contextmanager
    def sandbox_bus(settings: Any, topology: Any) -> Iterator[Any]:
        yield sandbox.bus

    monkeypatch.setattr(busview, "open_local_bus", sandbox_bus)
    monkeypatch.setattr(
        "shared.bus.factory.build_dead_letters", lambda settings, topology=None: LocalDeadLetters(sandbox.bus)
    )
    monkeypatch.setattr(flow_control, "CACHE_SECONDS", 0.0)  # the flag is read at every batch
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, "--settings", str(settings)], env={"COLUMNS": "250"})
        assert result.exit_code == code, f"syncctl {' '.join(args)}: exit {result.exit_code}\n{result.output}"
        return result.output

    yield run
    flow_control.PAUSES.forget()  # no flag of this sandbox outlives it


def test_sync_one_record_now_from_either_side(sandbox: Sandbox, cli):  # type: ignore[no-untyped-def]
    sb = sandbox
    bp_id = bp_create_contact(sb, "Sync", "Now", "sync.now@example.org")
    out = json.loads(cli("sync", "contact", str(bp_id), "--from", "brightpearl", "--wait", "60", "--json"))
    assert out["flows"] == [TO_DV] and out["noticeEntity"] == "contact"
    assert out["outcome"]["result"] == "synced" and out["outcome"]["flow"] == TO_DV
    [row] = [r for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(bp_id)]
    assert out["outcome"]["target"] == f"dataverse {row['contactid']}"
    assert {"name.first_name", "name.last_name", "emails.primary"} <= set(out["outcome"]["fields"])  # created
    sb.clock.advance(1)
    with sb.bp_sim.state.lock:
        sb.bp_sim.state.contacts[bp_id]["lastName"] = "Later"
    changed = json.loads(
        cli("sync", "contact", str(bp_id), "--from", "brightpearl", "--wait", "60", "--json")
    )
    assert changed["outcome"]["result"] == "synced" and "name.last_name" in changed["outcome"]["fields"]
    assert "emails.primary" not in changed["outcome"]["fields"]
    history = json.loads(cli("history", "brightpearl", "contact", str(bp_id), "--json"))
    assert [e["fields"] for e in history["events"] if e["result"] == "synced"][-1] == changed["outcome"][
        "fields"
    ]

    dv_id = dv_create_contact(sb, firstname="From", lastname="Dynamics", emailaddress1="from.dyn@example.org")
    text = cli("sync", "contact", dv_id, "--from", "dataverse", "--wait", "60")
    assert f"Dataverse contact {dv_id}: notice published" in text and "outcome: synced" in text
    assert [c for c in sb.bp_contacts().values() if c["lastName"] == "Dynamics"]
    # the same record asked for twice is synced twice (no duplicate detection swallows it)
    again = json.loads(cli("sync", "contact", str(bp_id), "--from", "brightpearl", "--json"))
    assert again["messageId"] != out["messageId"]
    cli("sync", "contact", "12", "--from", "nowhere", code=2)


def test_history_shows_dead_letter_fix_and_sync_on_both_sides(sandbox: Sandbox, cli):  # type: ignore[no-untyped-def]
    sb = sandbox
    bad = bp_create_contact(sb, "Bad", "Email", "bad.email@@example.org")
    cli("sync", "contact", str(bad), "--from", "brightpearl", "--wait", "60")
    sb.clock.advance(1)
    assert sb.bus.counts(BP_TOPIC, TO_DV).dead_letter == 1
    with sb.bp_sim.state.lock:
        sb.bp_sim.state.contacts[bad]["communication"]["emails"]["PRI"] = {"email": "fixed@example.org"}
    sb.clock.advance(1)
    out = cli("dlq", "resubmit", "--reason", "invalidemail", "--wait", "60")  # any case
    assert "what became of the copies" in out and " synced " in out
    sb.host.wait_idle(timeout=60)
    [row] = [r for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(bad)]

    found = json.loads(cli("history", "brightpearl", "contact", str(bad), "--json"))
    assert found["linked"] == {"brightpearl": str(bad), "dataverse": row["contactid"]}
    events = found["events"]
    kinds = [(e["kind"], e["result"], e["reason"]) for e in events]
    assert ("outcome", "dead-lettered", "InvalidEmail") in kinds
    assert ("outcome", "synced", None) in kinds
    resubmitted = [e for e in events if e["reason"] == "DeadLetterResubmitted"]
    assert len(resubmitted) == 1 and resubmitted[0]["kind"] == "operator"
    order = [e["reason"] or e["result"] for e in events if e["kind"] in ("outcome", "operator")]
    assert order.index("SyncRequested") < order.index("InvalidEmail") < order.index("DeadLetterResubmitted")
    assert order.index("DeadLetterResubmitted") < order.index("synced")
    synced = next(e for e in events if e["result"] == "synced")
    assert synced["target"] == f"dataverse {row['contactid']}"
    assert "bad.email" not in json.dumps(found)  # ids and reasons only

    other = json.loads(cli("history", "dataverse", "contact", row["contactid"], "--json"))
    assert any(e["result"] == "synced" and e["flow"] == TO_DV for e in other["events"])
    text = cli("history", "brightpearl", "contact", str(bad))
    assert "InvalidEmail" in text and "dead-lettered" in text and row["contactid"] in text

    # a dead letter still on the bus is part of the history
    worse = bp_create_contact(sb, "Worse", "Email", "worse@@example.org")
    cli("sync", "contact", str(worse), "--from", "brightpearl", "--wait", "60")
    found = json.loads(cli("history", "brightpearl", "contact", str(worse), "--json"))
    assert [e["reason"] for e in found["events"] if e["kind"] == "dead-lettered"] == ["InvalidEmail"]
    cli("history", "brightpearl", "contact", "not-a-number", code=2)


def test_needs_review_list_dismiss_and_accept(sandbox: Sandbox, cli):  # type: ignore[no-untyped-def]
    sb = sandbox
    bp_create_contact(sb, "Katherine", "Johnson", None, postcode="LS1 1UR")
    sb.settle()
    near = {"firstname": "Katharine", "lastname": "Johnson", "address1_postalcode": "ls1 1ur"}
    dv_id = dv_create_contact(sb, **near, address1_line1="2 Park Row", address1_country="United Kingdom")
    sb.settle()
    [item] = json.loads(cli("review", "list", "--json"))
    assert item["key"] == f"{TO_BP}/{dv_id}" and item["reason"] == "LikelyDuplicate"
    assert "looks like" in item["description"]
    assert f"{TO_BP}/{dv_id}" in cli("review", "list")

    sb.clock.advance(1)
    cli("review", "dismiss", item["key"], "--note", "checked: two people")
    assert json.loads(cli("review", "list", "--json")) == []
    [dismissed] = [
        e
        for e in sb.store.audit.for_record("customer", "dataverse", dv_id)
        if e.reason_code == "ReviewDismissed"
    ]
    assert dismissed.result == AuditResult.OPERATOR and "checked: two people" in dismissed.description

    # a new sync of the unchanged record flags it again; accept re-runs it (still a duplicate)
    sb.clock.advance(1)
    cli("sync", "contact", dv_id, "--from", "dataverse", "--wait", "60")
    [again] = json.loads(cli("review", "list", "--json"))
    assert again["key"] == item["key"]
    sb.clock.advance(1)
    out = cli("review", "accept", dv_id)  # the record id alone: one flow flags it
    assert "ReviewAccepted" in out
    sb.host.wait_idle(timeout=60)
    rows = sorted(sb.store.audit.for_record("customer", "dataverse", dv_id), key=causal_order)
    accepted = [e for e in rows if e.reason_code == "ReviewAccepted"]
    assert len(accepted) == 1 and accepted[0].message_id  # the notice it published
    assert rows[-1].result == AuditResult.NEEDS_REVIEW  # re-run after the accept: flagged again
    cli("review", "dismiss", f"{TO_BP}/00000000-0000-0000-0000-000000000000", code=2)


def test_pause_keeps_messages_without_dead_letters_and_resume_syncs(sandbox: Sandbox, cli):  # type: ignore[no-untyped-def]
    sb = sandbox
    out = cli("flow", "pause", TO_DV, "--reason", "maintenance", "--recheck", "30")
    assert "paused since" in out
    assert "already paused" in cli("flow", "pause", TO_DV)
    listed = {f["flow"]: f["paused"] for f in json.loads(cli("flow", "list", "--json"))}
    assert listed[TO_DV]["reason"] == "maintenance" and listed[TO_BP] is None

    ids = [bp_create_contact(sb, "Paused", f"Person{i}", f"paused{i}@example.org") for i in range(3)]
    for bp_id in ids:
        cli("sync", "contact", str(bp_id), "--from", "brightpearl")
    dv_id = dv_create_contact(sb, firstname="Other", lastname="Way", emailaddress1="other.way@example.org")
    cli("sync", "contact", dv_id, "--from", "dataverse")  # the other flow still runs
    sb.host.wait_idle(timeout=60)
    assert [c for c in sb.bp_contacts().values() if c["lastName"] == "Way"]
    for _ in range(12):  # more rechecks than the subscription's maxDeliveryCount (10)
        counts = sb.bus.counts(BP_TOPIC, TO_DV)
        assert (counts.scheduled, counts.active, counts.dead_letter) == (3, 0, 0)
        sb.clock.advance(31)
        sb.host.wait_idle(timeout=60)
    assert not [r for r in sb.dv_contacts() if r.get("lastname", "").startswith("Person")]
    scheduled = json.loads(cli("bus", "messages", "--queue", "scheduled", "--json"))
    assert sorted(m["ids"][0] for m in scheduled if m["subscription"] == f"{BP_TOPIC}/{TO_DV}") == sorted(
        str(i) for i in ids
    )

    assert "resumed" in cli("flow", "resume", TO_DV)
    assert "was not paused" in cli("flow", "resume", TO_DV)
    sb.clock.advance(31)
    sb.host.wait_idle(timeout=60)
    synced = {r.get("bpi_brightpearlid") for r in sb.dv_contacts()}
    assert {str(i) for i in ids} <= synced
    counts = sb.bus.counts(BP_TOPIC, TO_DV)
    assert (counts.scheduled, counts.active, counts.dead_letter) == (0, 0, 0)
    assert sb.bus.counts(DV_TOPIC, TO_BP).dead_letter == 0
    actions = [
        e.reason_code for e in sb.store.audit.recent(TO_DV, limit=100) if e.result == AuditResult.OPERATOR
    ]
    assert sorted(actions) == ["FlowPaused", "FlowResumed", *["SyncRequested"] * 3]
    for bp_id in ids:  # attempt 1: a pause spends no retry
        [entry] = [
            e
            for e in sb.store.audit.for_record("customer", "brightpearl", str(bp_id))
            if e.flow == TO_DV and e.result != AuditResult.OPERATOR
        ]
        assert entry.result == AuditResult.SYNCED and entry.attempt == 1
    cli("flow", "pause", "no-such-flow", code=2)


def test_dead_letter_of_a_record_synced_since_is_superseded_and_cleared_in_bulk(sandbox: Sandbox, cli):  # type: ignore[no-untyped-def]
    sb = sandbox
    fixed, still_bad = (
        bp_create_contact(sb, "Dead", f"Letter{i}", f"dead{i}@@example.org") for i in range(2)
    )
    for bp_id in (fixed, still_bad):
        cli("sync", "contact", str(bp_id), "--from", "brightpearl", "--wait", "60")
    assert sb.bus.counts(BP_TOPIC, TO_DV).dead_letter == 2
    sb.clock.advance(1)
    with sb.bp_sim.state.lock:
        sb.bp_sim.state.contacts[fixed]["communication"]["emails"]["PRI"] = {
            "email": "dead.fixed@example.org"
        }
    assert "outcome: synced" in cli("sync", "contact", str(fixed), "--from", "brightpearl", "--wait", "60")

    listed = json.loads(cli("dlq", "list", "--json"))
    assert sorted(d["ids"][0] for d in listed) == sorted([str(fixed), str(still_bad)])
    [gone] = json.loads(cli("dlq", "list", "--superseded", "--json"))
    assert gone["ids"] == [str(fixed)] and gone["supersededBy"].startswith(f"{fixed} synced")
    assert "1 dead letter(s) purged" in cli("dlq", "purge", "--superseded", "--yes")
    [left] = sb.dead_letters(BP_TOPIC, TO_DV)
    assert json.loads(left.body)["data"]["ids"] == [str(still_bad)]
    assert "nothing to purge" in cli("dlq", "purge", "--superseded", "--yes")
    [purged] = [
        e
        for e in sb.store.audit.for_record("customer", "brightpearl", str(fixed))
        if e.reason_code == "DeadLetterPurged"
    ]
    assert purged.result == AuditResult.OPERATOR
