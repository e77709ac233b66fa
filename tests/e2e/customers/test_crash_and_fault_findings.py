"""Findings of the chaos run (issue 17), each through the whole sandbox: one dead letter per bad
record version however many notices name it, no contact-less Brightpearl addresses after a
failed create, and claims of a crashed worker recovered quickly without spending retries."""

from __future__ import annotations

import json

from functions.customers import dataverse_source
from shared.flows.customers_backfill import CustomerBackfill
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
