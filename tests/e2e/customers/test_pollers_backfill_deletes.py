"""Pollers, backfill and deletions: the backstop paths of issue 5 (items 5 and 6).

- the Brightpearl poller re-reads an overlap window without re-publishing unchanged records
  (same (id, updatedOn) -> same message id -> the broker's duplicate detection drops it);
- a backfill interrupted after one page resumes from its cursor; `syncctl backfill` works;
- a Dataverse delete or deactivation never deletes in Brightpearl: it is audited and, when
  configured, the linked Brightpearl contact is tagged;
- a notice about a record that no longer exists completes with an audit row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from sandbox.brightpearl.admin import _change_contact
from shared import runtime
from shared.events import ChangeNotice, Envelope
from shared.flows.customers_backfill import CustomerBackfill, cursor_name
from shared.flows.pollers import BrightpearlContactPoller
from shared.settings import load_settings
from shared.store import AuditResult
from tests.e2e.customers.conftest import BP_TOPIC, TO_DV, Sandbox
from tests.e2e.customers.test_faults_at_scale import person, seed_brightpearl
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact


def published_ids(sb: Sandbox) -> list[str]:
    ids: list[str] = []
    for m in sb.bus.peek(BP_TOPIC, TO_DV, max_messages=10_000):
        ids.extend(json.loads(m.body)["data"]["ids"])
    return ids


def test_brightpearl_poller_overlap_does_not_republish_unchanged_records(sandbox: Sandbox):
    sb = sandbox
    bp_id = bp_create_contact(sb, "Poll", "Overlap", "poll@example.org")
    sb.settle()
    assert sb.store.cursors.get("customers-brightpearl-contact-updatedon") is not None
    audited = len(sb.store.audit.for_record("customer", "brightpearl", bp_id))
    poller = BrightpearlContactPoller(
        client=sb.bp,
        cursors=sb.store.cursors,
        clock=sb.clock,
        source="/brightpearl/sandbox",
        publish=lambda envs: sb.bus.publish(BP_TOPIC, [e.to_message() for e in envs]),
        overlap=timedelta(seconds=300),
        initial_lookback=timedelta(hours=1),
    )
    report = poller.poll()  # re-reads the overlap window: same ids, same updatedOn
    assert report.records >= 1 and report.published >= 1
    sb.host.wait_idle(timeout=60)
    # the repeat was dropped by duplicate detection: the flow never saw it
    assert len(sb.store.audit.for_record("customer", "brightpearl", bp_id)) == audited
    _change_contact(sb.bp_sim, bp_id, {"firstName": "Polly"})
    sb.poll_brightpearl()
    sb.host.wait_idle(timeout=60)
    [row] = [r for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(bp_id)]
    assert row["firstname"] == "Polly"
    assert len(sb.store.audit.for_record("customer", "brightpearl", bp_id)) == audited + 1


def test_backfill_resumes_after_an_interruption(sandbox: Sandbox):
    sb = sandbox
    ids = [seed_brightpearl(sb, person(500 + i)) for i in range(120)]
    published: list[list[str]] = []

    def job() -> CustomerBackfill:
        return CustomerBackfill(
            "brightpearl",
            brightpearl=sb.bp,
            cursors=sb.store.cursors,
            publish=lambda envs: published.append([i for e in envs for i in e.notice.ids]),
            clock=sb.clock,
            source_name="/brightpearl/sandbox",
            per_notice=25,
            page_size=50,
        )

    first = job().run(max_pages=1)  # "interrupted" after one page
    assert first.published_ids == 50 and sb.store.cursors.get(cursor_name("brightpearl")) is not None
    second = job().run()
    assert second.resumed_from == 50 and second.published_ids == 70
    sent = [i for chunk in published for i in chunk]
    assert sorted(sent, key=int) == [str(i) for i in ids]  # every id once, none twice
    assert sb.store.cursors.get(cursor_name("brightpearl")) is None  # finished: cursor removed


def test_syncctl_backfill_command_publishes_and_the_flow_syncs(sandbox: Sandbox, tmp_path: Path):
    from syncctl.main import app

    sb = sandbox
    ids = [seed_brightpearl(sb, person(900 + i)) for i in range(30)]
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sb.values}))
    result = CliRunner().invoke(
        app, ["backfill", "customers", "--from", "brightpearl", "--settings", str(settings)]
    )
    assert result.exit_code == 0, result.output
    assert "published 30 customer ids in 1 notices" in result.output
    sb.host.wait_idle(timeout=120)
    keys = {r.get("bpi_brightpearlid") for r in sb.dv_contacts()}
    assert {str(i) for i in ids} <= keys


def test_dataverse_delete_and_deactivation_keep_brightpearl_and_tag_it(sandbox: Sandbox):
    sb = sandbox
    gone = dv_create_contact(sb, firstname="Del", lastname="Eted", emailaddress1="deleted@example.org")
    sleepy = dv_create_contact(sb, firstname="In", lastname="Active", emailaddress1="inactive@example.org")
    sb.settle()
    by_key = {r["contactid"]: int(r["bpi_brightpearlid"]) for r in sb.dv_contacts()}
    tagged = runtime.settings().customers.model_copy(update={"delete_handling": "tag"})
    settings = load_settings(sb.values)
    settings.customers = tagged
    with runtime.override(settings=settings):
        sb.dv.crm("DELETE", f"contacts({gone})")
        sb.dv.crm("PATCH", f"contacts({sleepy})", {"statecode": 1, "statuscode": 2})
        sb.settle()
    contacts = sb.bp_contacts()
    assert by_key[gone] in contacts and by_key[sleepy] in contacts  # nothing deleted in Brightpearl
    tag_id = next(t for t, v in sb.bp_sim.state.tags.items() if v["tagName"] == "Deleted in Dynamics")
    assert tag_id in sb.bp_sim.state.contacts[by_key[gone]]["_tags"]
    assert tag_id in sb.bp_sim.state.contacts[by_key[sleepy]]["_tags"]
    reasons = {e.reason_code for e in sb.store.audit.for_record("customer", "dataverse", gone)}
    assert "DeletedInDataverse" in reasons
    reasons = {e.reason_code for e in sb.store.audit.for_record("customer", "dataverse", sleepy)}
    assert "DeactivatedInDataverse" in reasons


def test_notice_for_a_record_that_no_longer_exists_completes_with_an_audit_row(sandbox: Sandbox):
    sb = sandbox
    notice = ChangeNotice(
        system="brightpearl",
        entity="contact",
        ids=("987654",),
        operation="updated",
        observed_at=datetime.now(UTC),
        source="/brightpearl/sandbox",
        version="gone",
    )
    sb.bus.publish(BP_TOPIC, [Envelope.wrap(notice).to_message()])
    sb.host.wait_idle(timeout=60)
    counts = sb.bus.counts(BP_TOPIC, TO_DV)
    assert (counts.active, counts.scheduled, counts.dead_letter) == (0, 0, 0)
    [entry] = sb.store.audit.for_record("customer", "brightpearl", "987654")
    assert entry.result is AuditResult.MISSING and entry.reason_code == "BrightpearlRecordMissing"


def test_dataverse_backfill_resumes_and_honours_since(sandbox: Sandbox):
    from tests.e2e.customers.test_faults_at_scale import seed_dataverse

    sb = sandbox
    ids = [seed_dataverse(sb, person(700 + i)) for i in range(25)]
    published: list[str] = []

    def job() -> CustomerBackfill:
        return CustomerBackfill(
            "dataverse",
            dataverse=sb.dvc,
            cursors=sb.store.cursors,
            publish=lambda envs: published.extend(i for e in envs for i in e.notice.ids),
            clock=sb.clock,
            source_name="/dataverse/sandbox",
            per_notice=10,
            page_size=10,
        )

    first = job().run(max_pages=2)
    assert first.published_ids == 20
    second = job().run()
    assert (second.resumed_from, second.published_ids) == (20, 5)
    assert sorted(published) == sorted(ids)  # every contact once
    published.clear()
    later = job().run(since=datetime.now(UTC) + timedelta(days=1))
    assert later.published_ids == 0 and published == []
