"""Acceptance 3: no echo loop (after convergence both simulators stay quiet while other records
change for 30 seconds of activity), and 50 concurrent updates to one customer end with one
record per side holding the last write."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sandbox.brightpearl.admin import _change_contact
from shared.events import ChangeNotice, Envelope
from tests.e2e.customers.conftest import DV_TOPIC, Sandbox
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact


def bp_record(sb: Sandbox, contact_id: int) -> dict:
    return sb.bp_contacts()[contact_id]


def dv_record(sb: Sandbox, contact_id: str) -> dict:
    return next(r for r in sb.dv_contacts() if r["contactid"] == contact_id)


def test_converged_customer_stays_quiet_while_others_change(sandbox: Sandbox):
    sb = sandbox
    quiet_dv = dv_create_contact(
        sb,
        firstname="Quiet",
        lastname="Customer",
        emailaddress1="quiet@example.org",
        telephone1="0117 496 0000",
        address1_line1="1 Calm Rd",
        address1_postalcode="BS1 5TR",
        address1_country="United Kingdom",
    )
    busy_bp = bp_create_contact(sb, "Busy", "Bee", "busy@example.org", phone="0117 496 0999")
    sb.settle()
    quiet_bp = int(dv_record(sb, quiet_dv)["bpi_brightpearlid"])
    before_bp = bp_record(sb, quiet_bp)["updatedOn"]
    before_dv = dv_record(sb, quiet_dv)["modifiedon"]
    sb.settle()  # a converged sandbox: another full round writes nothing anywhere
    bp_writes, dv_writes = sb.bp_writes(), sb.dv.writes()
    sb.settle()
    assert (sb.bp_writes(), sb.dv.writes()) == (bp_writes, dv_writes)

    busy_dv = next(r["contactid"] for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(busy_bp))
    for second in range(30):  # 30 seconds of activity on another customer, both sides
        sb.clock.advance(1)
        if second % 2:
            _change_contact(sb.bp_sim, busy_bp, {"firstName": f"Busy{second}"})
        else:
            sb.dv.crm(
                "PATCH", f"contacts({busy_dv})", {"jobtitle": f"Keeper {second}", "firstname": f"Bz{second}"}
            )
        sb.poll_brightpearl()
        sb.poll_dataverse()
        sb.host.wait_idle(timeout=60)
    sb.settle()
    assert bp_record(sb, quiet_bp)["updatedOn"] == before_bp  # the converged customer saw no write
    assert dv_record(sb, quiet_dv)["modifiedon"] == before_dv
    assert (
        bp_record(sb, busy_bp)["firstName"] == dv_record(sb, busy_dv)["firstname"] == "Busy29"
    )  # the last write (second 29, Brightpearl) won
    bp_writes, dv_writes = sb.bp_writes(), sb.dv.writes()
    for _ in range(3):
        sb.clock.advance(10)
        sb.settle()
    assert (sb.bp_writes(), sb.dv.writes()) == (bp_writes, dv_writes)  # and now everything is quiet


def test_fifty_concurrent_updates_end_with_the_last_write_on_both_sides(sandbox: Sandbox):
    sb = sandbox
    dv_id = dv_create_contact(
        sb,
        firstname="Con",
        lastname="Current",
        emailaddress1="con@example.org",
        address1_line1="5 Race St",
        address1_postalcode="M1 1AA",
        address1_country="United Kingdom",
    )
    sb.settle()

    def notify(version: int) -> None:
        notice = ChangeNotice(
            system="dataverse",
            entity="contact",
            ids=(dv_id,),
            operation="updated",
            observed_at=datetime.now(UTC),
            source="/dataverse/sandbox",
            version=f"v{version}",
            detail={"initiating_user": "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
        )
        sb.bus.publish(DV_TOPIC, [Envelope.wrap(notice).to_message()])

    def user(n: int) -> None:  # a CRM user saves, the webhook fires; the host works meanwhile
        sb.dv.crm(
            "PATCH",
            f"contacts({dv_id})",
            {"lastname": f"Current{n:02d}", "telephone1": f"0161 496 00{n:02d}"},
        )
        notify(n)

    for batch in range(5):  # 5 waves of 10 concurrent saves
        threads = [threading.Thread(target=user, args=(batch * 10 + i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    last = sb.dv.rows("contact")
    final = next(r for r in last if r["contactid"] == dv_id)
    sb.settle()
    bp_id = int(dv_record(sb, dv_id)["bpi_brightpearlid"])
    people = [c for c in sb.bp_contacts().values() if c["lastName"].startswith("Current")]
    assert len(people) == 1 and people[0]["contactId"] == bp_id
    assert people[0]["lastName"] == final["lastname"]  # the last write won, on both sides
    assert dv_record(sb, dv_id)["lastname"] == final["lastname"]
    assert people[0]["communication"]["telephones"]["PRI"] == "+44" + final["telephone1"].replace(" ", "")[1:]
    assert len([r for r in sb.dv_contacts() if str(r.get("lastname", "")).startswith("Current")]) == 1


def create_in_dynamics_and_sync_once(
    sb: Sandbox, first: str, last: str, line1: str, postcode: str
) -> tuple[str, dict]:
    """A new Dynamics contact, one Dataverse poll and the flow run it causes; (id, row after)."""
    dv_id = dv_create_contact(
        sb,
        firstname=first,
        lastname=last,
        emailaddress1=f"{first}.{last}@example.org".lower(),
        telephone1="0117 496 0123",
        address1_line1=line1,
        address1_postalcode=postcode,
        address1_country="United Kingdom",
    )
    sb.poll_dataverse()
    sb.host.wait_idle(timeout=120)
    return dv_id, dv_record(sb, dv_id)


def test_customer_created_from_dynamics_converges_in_one_pass(sandbox: Sandbox):
    """Brightpearl fills in a new contact's default price list ("trade"). The Dynamics ->
    Brightpearl flow reads the new contact back and writes that to Dynamics with the id, so
    the next polls of both sides find everything as last synced and write nothing."""
    sb = sandbox
    dv_id, row = create_in_dynamics_and_sync_once(sb, "Grace", "Hopper", "3 Harbour Wall", "BS1 6UX")
    bp = bp_record(sb, int(row["bpi_brightpearlid"]))
    assert bp["financialDetails"]["priceListId"] == 2  # Brightpearl's default price list
    assert row["bpi_customergroup"] == "Trade"  # already in Dynamics after this one pass
    audit = [
        e
        for e in sb.store.audit.for_record("customer", "dataverse", dv_id)
        if e.flow == "customers-to-brightpearl"
    ]
    assert len(audit) == 1 and "bpi_customergroup" in audit[0].description

    bp_writes, dv_writes = sb.bp_writes(), sb.dv.writes()
    sb.poll_brightpearl()  # sees the new contact
    sb.poll_dataverse()  # sees the write-back
    sb.host.wait_idle(timeout=60)
    assert (sb.bp_writes(), sb.dv.writes()) == (bp_writes, dv_writes)
    assert dv_record(sb, dv_id)["modifiedon"] == row["modifiedon"]


def test_a_failed_read_back_costs_one_more_round_not_the_customer(sandbox: Sandbox):
    """Brightpearl contact GETs fail (an outage past the client's retries) right after the
    create: the customer is still created once and linked, and the default price list
    reaches Dynamics through the Brightpearl poller instead."""
    sb = sandbox
    sb.bp_sim.add_fault("500", count=50, path="contact-service/contact", method="GET")
    dv_id, row = create_in_dynamics_and_sync_once(sb, "Alan", "Turing", "2 Bletchley Rd", "MK3 6EB")
    assert row["bpi_brightpearlid"] and not row.get("bpi_customergroup")  # linked, not read back
    with sb.bp_sim._faults_lock:
        sb.bp_sim.faults.clear()
    sb.settle()
    assert dv_record(sb, dv_id)["bpi_customergroup"] == "Trade"
    assert [c["contactId"] for c in sb.bp_contacts().values() if c["lastName"] == "Turing"] == [
        int(row["bpi_brightpearlid"])
    ]
