"""Logs of a whole run (webhook ingress, both flows, pollers, dead letters) carry ids and
reason codes, never the customers' names, e-mail addresses, phone numbers, streets or
postcodes: not verbatim, and not in the encoded forms a request URL would carry them
(percent-encoding, `+` for spaces, OData's doubled quote in `'O''Brien'`)."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, unquote_plus

import httpx

from tests.e2e.customers.conftest import BP_TOPIC, TO_DV, Sandbox
from tests.e2e.customers.test_bad_input import publish
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact

PEOPLE = [
    # (first, last, e-mail, phone, street line, postcode)
    (
        "Gracelyn",
        "Hopperfield",
        "grace.hopper@navy.example.org",
        "+44 117 496 0123",
        "17 Harbour Walk",
        "BS1 5TY",
    ),
    (
        "Alanzo",
        "Turingham",
        "alan.turing@bletchley.example.org",
        "0117 496 0555",
        "9 Station Road",
        "MK3 6EB",
    ),
    ("Baddeley", "Addresson", "not-an-email@@example.org", "07700 900 461", "2 Quarry Lane", "BS8 1TH"),
]
# Created in Dynamics: reaches Brightpearl through contact-search by e-mail and last name.
DV_PERSON = (
    "Katherina",
    "O'Brienne",
    "katherine.obrien@nasa.example.org",
    "+1 202 555 0143",
    "4 Orbit Close",
    "GL50 3PR",
)


def decoded_forms(text: str) -> str:
    """`text` plus its URL-decoded forms (percent and plus encodings), OData quotes undone."""
    forms = [text, unquote(text), unquote_plus(text)]
    forms += [f.replace("''", "'") for f in forms]
    return "\n".join(forms)


def leaks(logged: str, person: tuple[str, ...]) -> list[str]:
    """The personal values of `person` found in `logged` (names as whole words, any case)."""
    found = []
    for value in person:
        if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", logged, re.IGNORECASE):
            found.append(value)
            continue
        compact = re.sub(r"\s", "", value)
        digits = "".join(ch for ch in value if ch.isdigit())
        if len(digits) >= 9 and digits in re.sub(r"\D", "", logged.replace(" ", "")):
            found.append(value)
        elif compact != value and compact.lower() in logged.lower():
            found.append(value)  # a postcode or phone without its spaces
    return found


def test_the_check_sees_encoded_forms():
    # The check itself: encoded forms of the data are caught, ordinary log text is not.
    assert leaks(decoded_forms("GET /contact-search?primaryEmail=tim%40web.example"), ("tim@web.example",))
    assert leaks(decoded_forms("lastName=O%27%27Brienne&postcode=GL50+3PR"), ("O'Brienne", "GL50 3PR")) == [
        "O'Brienne",
        "GL50 3PR",
    ]
    assert leaks(decoded_forms("$filter=address1_postalcode%20eq%20%27BS15TY%27"), ("BS1 5TY",))
    assert not leaks(decoded_forms("synced contact 207 in 12 ms"), PEOPLE[0])


def test_a_run_logs_no_personal_data(sandbox: Sandbox, caplog):
    sb = sandbox
    caplog.set_level(logging.DEBUG)
    ids = [
        str(bp_create_contact(sb, first, last, email, phone=phone, line1=line, postcode=postcode))
        for first, last, email, phone, line, postcode in PEOPLE
    ]
    publish(sb, BP_TOPIC, "brightpearl", ids, "pii-run-1")
    first, last, email, phone, line, postcode = DV_PERSON
    dv_create_contact(
        sb,
        firstname=first,
        lastname=last,
        emailaddress1=email,
        telephone1=phone,
        address1_line1=line,
        address1_postalcode=postcode,
        address1_city="Cheltenham",
        address1_country="United Kingdom",
    )
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

    # The run did real work: the valid people synced both ways, the bad one was dead-lettered.
    assert [d.dead_letter_reason for d in sb.dead_letters(BP_TOPIC, TO_DV)] == ["InvalidEmail"]
    synced = {c.get("emailaddress1") for c in sb.dv_contacts()}
    assert {"grace.hopper@navy.example.org", "alan.turing@bletchley.example.org"} <= synced
    assert any(email in str(c) for c in sb.bp_contacts().values())  # the Dynamics one reached Brightpearl

    logged = decoded_forms(caplog.text + "\n".join(str(r.__dict__) for r in caplog.records))
    assert len(caplog.records) > 20  # the run logged plenty
    for person in [*PEOPLE, DV_PERSON]:
        assert leaks(logged, person) == [], f"personal data {leaks(logged, person)} reached the logs"
