"""Acceptance 4 and 5: a customer base synced both ways by backfill through throttle storms,
5xx, timeouts and dropped connections on both sides. Every valid customer converges, every
invalid one is in the dead-letter queue with its reason, nothing else is lost or duplicated
(exact counts). Then a dead-lettered record fixed at the source and resubmitted with
`syncctl dlq resubmit` syncs.

The run's size is CUSTOMERS_E2E_SCALE distinct valid customers (default 2000, the size the
acceptance names; set it lower for a quicker local run): 45 % only in
Brightpearl, 45 % only in Dynamics, 10 % in both (same e-mail, to be linked), plus 1 % invalid
records on each side.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from functions.customers import dataverse_source
from sandbox.demo import crm_contact, shop_address, shop_contact
from shared.bus.deadletters import LocalDeadLetters
from shared.flows.customers_backfill import CustomerBackfill
from tests.e2e.customers.conftest import BP_TOPIC, DV_TOPIC, TO_BP, TO_DV, Sandbox

SCALE = int(os.environ.get("CUSTOMERS_E2E_SCALE", "2000"))
FIRST = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Noah",
    "Oliver",
    "George",
    "Arthur",
    "Leo",
    "Harry",
    "Oscar",
    "Freya",
    "Lily",
    "Ivy",
    "Jack",
    "Theo",
    "Finley",
    "Rosie",
    "Evie",
]
LAST = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
]


def person(i: int) -> dict:
    """A distinct valid customer: unique e-mail, unique postcode (so no two are likely duplicates)."""
    rng = random.Random(i)
    return {
        "first": rng.choice(FIRST),
        "last": f"{rng.choice(LAST)}-{i}",
        "email": f"customer.{i}@example.org",
        "phone": f"0117 496 {i % 1000:04d}",
        "line1": f"{i} High Street",
        "city": "Bristol",
        "postcode": f"BS{i // 1000 + 1} {i % 1000:03d}X",
    }


def seed_brightpearl(sb: Sandbox, p: dict, *, email: str | None = None) -> int:
    state = sb.bp_sim.state
    with state.lock:
        address = state.create_address(shop_address(p["line1"], p["city"], p["postcode"]))
        body = shop_contact(p["first"], p["last"], email or p["email"], p["phone"], address)
        return state.create_contact(body, quiet=True)


def seed_dataverse(sb: Sandbox, p: dict, **override) -> str:
    out = sb.dv.crm("POST", "contacts", {**crm_contact(p), **override})
    return out["headers"]["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def backfill(sb: Sandbox, source: str) -> None:
    topic = BP_TOPIC if source == "brightpearl" else DV_TOPIC
    CustomerBackfill(
        source,  # type: ignore[arg-type]
        brightpearl=sb.bp,
        dataverse=sb.dvc,
        cursors=sb.store.cursors,
        publish=lambda envs: sb.bus.publish(topic, [e.to_message() for e in envs]),
        clock=sb.clock,
        source_name="/brightpearl/sandbox" if source == "brightpearl" else dataverse_source(),
    ).run()


def drain(sb: Sandbox) -> None:
    """Work until both subscriptions are empty and no retry copy is scheduled."""
    for _ in range(12):
        sb.host.wait_idle(timeout=600)
        sb.run_retries(timeout=600)
        sb.settle(rounds=2, timeout=600)
        scheduled = sum(sb.bus.counts(t, s).scheduled for t, s in ((BP_TOPIC, TO_DV), (DV_TOPIC, TO_BP)))
        if not scheduled and not sb.pending():
            return
    raise AssertionError("the sandbox did not go quiet")


def inject_faults(sb: Sandbox) -> None:
    sim = sb.bp_sim
    sim.add_fault("throttle", count=12)  # a throttle storm: 503 + throttle period
    sim.add_fault("500", count=6)
    sim.add_fault("drop", count=3, method="POST")  # applied, then the connection drops: ambiguous
    sim.add_fault("timeout", count=2, seconds=1.5, method="POST")
    dv = sb.dv
    dv.call("POST", "faults", {"kind": "429", "count": 15, "retry_after": 0.05})
    dv.call("POST", "faults", {"kind": "503", "count": 6})
    dv.call("POST", "faults", {"kind": "502", "count": 5})
    dv.call("POST", "faults", {"kind": "drop", "count": 4, "method": "POST"})


def test_customer_base_converges_through_faults_with_exact_counts(
    sandbox: Sandbox, tmp_path: Path, monkeypatch
):
    sb = sandbox
    n_both = max(SCALE // 10, 2)
    n_bp = (SCALE - n_both) // 2
    n_dv = SCALE - n_both - n_bp
    n_bad = max(SCALE // 100, 2)
    people = [person(i) for i in range(SCALE)]
    bp_only, dv_only, both = people[:n_bp], people[n_bp : n_bp + n_dv], people[n_bp + n_dv :]
    for p in bp_only + both:
        seed_brightpearl(sb, p)
    for p in dv_only + both:
        seed_dataverse(sb, p)
    bad_bp = [
        seed_brightpearl(sb, person(100_000 + i), email=f"broken{i}@@bp.example.org") for i in range(n_bad)
    ]
    bad_dv = {
        seed_dataverse(sb, person(200_000 + i), emailaddress1=f"broken{i}@@example.org"): "InvalidEmail"
        for i in range(n_bad // 2)
    }
    bad_dv |= {
        seed_dataverse(sb, person(300_000 + i), address1_country="Atlantis"): "UnknownCountry"
        for i in range(n_bad - n_bad // 2)
    }

    backfill(sb, "brightpearl")
    backfill(sb, "dataverse")
    inject_faults(sb)  # they hit the flows: the host starts on the notices right away
    drain(sb)

    # every valid customer exists exactly once on each side; the invalid ones stayed where they were
    bp_emails = Counter(
        c["communication"]["emails"].get("PRI", {}).get("email", "").lower()
        for c in sb.bp_contacts().values()
    )
    dv_emails = Counter(str(r.get("emailaddress1") or "").strip().lower() for r in sb.dv_contacts())
    for p in people:
        assert bp_emails[p["email"]] == 1, p["email"]
        assert dv_emails[p["email"]] == 1, p["email"]
    assert len(sb.bp_contacts()) == SCALE + n_bad  # originals + created from Dynamics, nothing else
    assert len(sb.dv_contacts()) == SCALE + n_bad
    linked = [r for r in sb.dv_contacts() if r.get("bpi_brightpearlid")]
    assert len(linked) == SCALE and len({r["bpi_brightpearlid"] for r in linked}) == SCALE

    # every invalid record is one dead letter with its reason; nothing else was dead-lettered
    to_dv = sb.dead_letters(BP_TOPIC, TO_DV)
    assert sorted(ids_of(m) for m in to_dv) == sorted(str(i) for i in bad_bp)
    assert {m.dead_letter_reason for m in to_dv} == {"InvalidEmail"}
    to_bp = sb.dead_letters(DV_TOPIC, TO_BP)
    assert {ids_of(m): m.dead_letter_reason for m in to_bp} == bad_dv
    assert all("@@" not in m.dead_letter_error_description for m in to_bp)  # no personal values
    faults_left = [f for f in sb.bp_sim.faults if f.remaining > 0]
    assert not faults_left  # the faults really fired

    # acceptance 5: fix one record at the source, resubmit its dead letter with syncctl
    fixed = bad_bp[0]
    with sb.bp_sim.state.lock:
        sb.bp_sim.state.contacts[fixed]["communication"]["emails"]["PRI"] = {
            "email": "fixed.customer@example.org"
        }
    # the sandbox's bus runs on the fake clock: let the CLI use that same bus object
    monkeypatch.setattr(
        "shared.bus.factory.build_dead_letters", lambda settings, topology=None: LocalDeadLetters(sb.bus)
    )
    resubmit(
        sb, tmp_path, BP_TOPIC, TO_DV, message_id=next(m.message_id for m in to_dv if ids_of(m) == str(fixed))
    )
    sb.host.wait_idle(timeout=120)
    [row] = [r for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(fixed)]
    assert row["emailaddress1"] == "fixed.customer@example.org"
    assert len(sb.dead_letters(BP_TOPIC, TO_DV)) == n_bad - 1


def ids_of(message) -> str:
    import json

    [record_id] = json.loads(message.body)["data"]["ids"]
    return record_id


def resubmit(sb: Sandbox, tmp_path: Path, topic: str, subscription: str, *, message_id: str) -> None:
    import json

    from syncctl.main import app

    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sb.values}))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "dlq",
            "resubmit",
            "--settings",
            str(settings),
            "--topic",
            topic,
            "--subscription",
            subscription,
            "--message-id",
            message_id,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 dead letter(s) resubmitted" in result.output
