"""Findings of the chaos run (issue 17), each through the whole sandbox: one dead letter per bad
record version however many notices name it, no contact-less Brightpearl addresses after a
failed create, and claims of a crashed worker recovered quickly without spending retries."""

from __future__ import annotations

import json

from functions.customers import dataverse_source
from shared.flows.customers_backfill import CustomerBackfill
from shared.flows.customers_common import ENTITY
from tests.e2e.customers.conftest import DV_TOPIC, TO_BP, Sandbox
from tests.e2e.customers.test_bad_input import publish
from tests.e2e.customers.test_sync_both_ways import dv_create_contact


def backfill_dataverse(sb: Sandbox) -> None:
    CustomerBackfill(
        "dataverse",
        brightpearl=sb.bp,
        dataverse=sb.dvc,
        cursors=sb.store.cursors,
        publish=lambda envs: sb.bus.publish(DV_TOPIC, [e.to_message() for e in envs]),
        clock=sb.clock,
        source_name=dataverse_source(),
    ).run()


def test_bad_record_retried_once_then_backfilled_is_dead_lettered_once(sandbox: Sandbox):
    sb = sandbox
    bad = dv_create_contact(sb, firstname="Bad", lastname="Address", emailaddress1="bad.address@@example.org")
    # a throttle longer than the client's own retries: the webhook's notice is retried once
    sb.dv.call("POST", "faults", {"kind": "429", "count": 3, "retry_after": 0.01})
    publish(sb, DV_TOPIC, "dataverse", [bad], "webhook-1")
    sb.host.wait_idle(timeout=60)
    assert sb.bus.counts(DV_TOPIC, TO_BP).scheduled == 1
    sb.run_retries()
    [dead] = sb.dead_letters(DV_TOPIC, TO_BP)
    assert json.loads(dead.body)["attempt"] == 2  # dead-lettered by the retry copy

    backfill_dataverse(sb)  # names the same record, same version
    sb.host.wait_idle(timeout=60)
    sb.run_retries()
    dead_letters = sb.dead_letters(DV_TOPIC, TO_BP)
    assert [json.loads(d.body)["data"]["ids"] for d in dead_letters] == [[bad]]
    assert dead_letters[0].dead_letter_reason == "InvalidEmail"


def contactless_addresses(sb: Sandbox) -> list[int]:
    with sb.bp_sim.state.lock:
        return sorted(i for i, a in sb.bp_sim.state.addresses.items() if not a.get("contactId"))


def test_contact_post_failing_once_leaves_no_contactless_address(sandbox: Sandbox):
    sb = sandbox
    dv_id = dv_create_contact(
        sb,
        firstname="Grace",
        lastname="Hopper",
        emailaddress1="grace.hopper@example.org",
        address1_line1="1 Harbour Road",
        address1_city="Bristol",
        address1_postalcode="BS1 5TT",
        address1_country="United Kingdom",
    )
    # the contact POST answers 500: the addresses exist, the contact may or may not (ambiguous)
    sb.bp_sim.add_fault("500", count=1, path="contact-service/contact", method="POST")
    publish(sb, DV_TOPIC, "dataverse", [dv_id], "webhook-1")
    sb.host.wait_idle(timeout=60)
    assert not [c for c in sb.bp_contacts().values() if c["lastName"] == "Hopper"]
    assert len(contactless_addresses(sb)) == 1  # posted before the failing contact POST

    sb.run_retries()  # the claim's lease runs out, the retry takes it over, looks, then creates
    sb.settle()
    [contact] = [c for c in sb.bp_contacts().values() if c["lastName"] == "Hopper"]
    assert contactless_addresses(sb) == []  # the first attempt's address was reused
    assert sb.bp_address(contact["postAddressIds"]["DEF"])["postalCode"] == "BS1 5TT"
    assert not sb.dead_letters(DV_TOPIC, TO_BP)


def test_waiting_on_a_crashed_workers_claim_spends_no_retry_and_ends_with_its_lease(sandbox: Sandbox):
    sb = sandbox
    dv_id = dv_create_contact(sb, firstname="Katherine", lastname="Johnson", emailaddress1="kj@example.org")
    crashed = sb.store.links
    crashed.owner = "killed-instance/4242"
    crashed.claim(ENTITY, "dataverse", dv_id, "brightpearl")  # and then the worker was SIGKILLed
    publish(sb, DV_TOPIC, "dataverse", [dv_id], "webhook-1")
    sb.host.wait_idle(timeout=60)
    assert sb.bus.counts(DV_TOPIC, TO_BP).scheduled == 1  # waiting on the claim
    sb.run_retries()  # the lease (30 s here) runs out; the next delivery takes the claim over
    [contact] = [c for c in sb.bp_contacts().values() if c["lastName"] == "Johnson"]
    [synced] = [e for e in sb.store.audit.for_record(ENTITY, "dataverse", dv_id) if e.result == "synced"]
    assert synced.target_id == str(contact["contactId"])
    assert synced.attempt == 1  # the waits did not count as attempts


def test_address_changed_before_the_retry_reuses_the_first_address_with_the_new_content(sandbox: Sandbox):
    sb = sandbox
    dv_id = dv_create_contact(
        sb,
        firstname="Mary",
        lastname="Somerville",
        emailaddress1="mary.somerville@example.org",
        address1_line1="3 Quay Street",
        address1_city="Bristol",
        address1_postalcode="BS1 4DJ",
        address1_country="United Kingdom",
    )
    sb.bp_sim.add_fault("500", count=1, path="contact-service/contact", method="POST")
    publish(sb, DV_TOPIC, "dataverse", [dv_id], "webhook-1")
    sb.host.wait_idle(timeout=60)
    [first_address] = contactless_addresses(sb)
    sb.dv.crm("PATCH", f"contacts({dv_id})", {"address1_postalcode": "BS8 1TH"})  # edited meanwhile
    sb.run_retries()
    sb.settle()
    [contact] = [c for c in sb.bp_contacts().values() if c["lastName"] == "Somerville"]
    assert contactless_addresses(sb) == []
    assert contact["postAddressIds"]["DEF"] == first_address  # reused, with the new content
    assert sb.bp_address(first_address)["postalCode"] == "BS8 1TH"
