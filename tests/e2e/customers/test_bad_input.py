"""Bad input: a bad record in a batch is dead-lettered on its own (reason, description naming
system, record, field and problem, never the value) while the others sync; a record named by
several notices is dead-lettered once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.events import ChangeNotice, Envelope
from tests.e2e.customers.conftest import BP_TOPIC, DV_TOPIC, TO_BP, TO_DV, Sandbox
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact


def publish(sb: Sandbox, topic: str, system: str, ids: list[str], version: str) -> None:
    notice = ChangeNotice(
        system=system,
        entity="contact",
        ids=tuple(ids),
        operation="updated",  # type: ignore[arg-type]
        observed_at=datetime.now(UTC),
        source=f"/{system}/sandbox",
        version=version,
    )
    sb.bus.publish(topic, [Envelope.wrap(notice).to_message()])


def test_one_bad_record_in_a_batch_is_dead_lettered_alone_and_once(sandbox: Sandbox):
    sb = sandbox
    good1 = bp_create_contact(sb, "Good", "One", "good.one@example.org")
    bad = bp_create_contact(sb, "Bad", "Email", "bad.email@@example.org")
    good2 = bp_create_contact(sb, "Good", "Two", "good.two@example.org")
    ids = [str(good1), str(bad), str(good2)]
    publish(sb, BP_TOPIC, "brightpearl", ids, "webhook-1")
    sb.host.wait_idle(timeout=60)
    publish(sb, BP_TOPIC, "brightpearl", ids, "backfill-1")  # the same records named again
    sb.host.wait_idle(timeout=60)

    keys = {r.get("bpi_brightpearlid") for r in sb.dv_contacts()}
    assert {str(good1), str(good2)} <= keys and str(bad) not in keys
    [dead] = sb.dead_letters(BP_TOPIC, TO_DV)
    assert json.loads(dead.body)["data"]["ids"] == [str(bad)]
    assert dead.dead_letter_reason == "InvalidEmail"
    description = dead.dead_letter_error_description
    assert f"brightpearl record {bad}" in description and "communication.emails.PRI.email" in description
    assert "bad.email" not in description  # the personal value never leaves the source


def test_dynamics_contact_without_last_name_is_dead_lettered_with_its_reason(sandbox: Sandbox):
    sb = sandbox
    nameless = dv_create_contact(sb, firstname="Only", emailaddress1="only.first@example.org")
    fine = dv_create_contact(sb, firstname="Has", lastname="Surname", emailaddress1="has.surname@example.org")
    publish(sb, DV_TOPIC, "dataverse", [nameless, fine], "v1")
    sb.host.wait_idle(timeout=60)
    [dead] = sb.dead_letters(DV_TOPIC, TO_BP)
    assert json.loads(dead.body)["data"]["ids"] == [nameless]
    assert dead.dead_letter_reason == "MissingLastName"
    assert [c["lastName"] for c in sb.bp_contacts().values()] == ["Surname"]
