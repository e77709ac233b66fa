"""Logs of a whole run (webhook ingress, both flows, pollers, dead letters) carry ids and
reason codes, never the customers' e-mail addresses, phone numbers or street addresses."""

from __future__ import annotations

import logging

import httpx

from tests.e2e.customers.conftest import BP_TOPIC, TO_DV, Sandbox
from tests.e2e.customers.test_bad_input import publish
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact

PEOPLE = [
    # (first, last, e-mail, phone, street line, postcode)
    ("Grace", "Hopper", "grace.hopper@navy.example.org", "+44 117 496 0123", "17 Harbour Walk", "BS1 5TY"),
    ("Alan", "Turing", "alan.turing@bletchley.example.org", "0117 496 0555", "9 Station Road", "MK3 6EB"),
    ("Bad", "Address", "not-an-email@@example.org", "07700 900 461", "2 Quarry Lane", "BS8 1TH"),
]
DV_PERSON = ("Katherine", "Johnson", "katherine.johnson@nasa.example.org", "+1 202 555 0143")


def test_a_run_logs_no_personal_data(sandbox: Sandbox, caplog):
    sb = sandbox
    caplog.set_level(logging.DEBUG)
    ids = [
        str(bp_create_contact(sb, first, last, email, phone=phone, line1=line, postcode=postcode))
        for first, last, email, phone, line, postcode in PEOPLE
    ]
    publish(sb, BP_TOPIC, "brightpearl", ids, "pii-run-1")
    first, last, email, phone = DV_PERSON
    dv_create_contact(sb, firstname=first, lastname=last, emailaddress1=email, telephone1=phone)
    # The webhook ingress too: a delivery naming the same contacts.
    key, secret = sb.values["LOCAL_FUNCTION_KEY"], sb.values["BRIGHTPEARL_WEBHOOK_SECRET"]
    response = httpx.post(
        f"{sb.host.api_url}/webhooks/brightpearl",
        params={"code": key},
        json={
            "accountCode": sb.values["BRIGHTPEARL_ACCOUNT"],
            "resourceType": "contact",
            "id": ",".join(ids),
            "lifecycleEvent": "modified",
            "fullEvent": "contact.modified",
            "raisedOn": "2026-11-01T10:00:00Z",
            "brightpearlVersion": "4",
            "secret": secret,
        },
    )
    assert response.status_code == 202
    sb.settle()

    # The run did real work: the valid people synced, the bad one was dead-lettered.
    assert [d.dead_letter_reason for d in sb.dead_letters(BP_TOPIC, TO_DV)] == ["InvalidEmail"]
    synced = {c.get("emailaddress1") for c in sb.dv_contacts()}
    assert {"grace.hopper@navy.example.org", "alan.turing@bletchley.example.org"} <= synced

    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert len(caplog.records) > 20  # the run logged plenty
    for person in [*PEOPLE, DV_PERSON]:
        for value in person[2:]:
            assert value not in logged, f"personal data {value!r} reached the logs"
            digits = "".join(ch for ch in value if ch.isdigit())
            if len(digits) >= 9:
                assert digits not in logged.replace(" ", ""), f"phone {value!r} reached the logs"
