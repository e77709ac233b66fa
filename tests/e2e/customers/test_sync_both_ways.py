"""Acceptance 1 and 2: create in Dynamics -> Brightpearl; update in Brightpearl -> Dynamics;
organisations become accounts; normalisation is visible; e-mail matches link instead of
duplicating; a likely duplicate without e-mail is flagged for review, not created."""

from __future__ import annotations

from sandbox.demo import shop_address, shop_contact
from shared.store import AuditResult
from tests.e2e.customers.conftest import Sandbox


def dv_create_contact(sb: Sandbox, **columns) -> str:
    out = sb.dv.crm("POST", "contacts", columns)
    entity = out["headers"].get("OData-EntityId") or out["headers"].get("odata-entityid")
    return entity.rsplit("(", 1)[1].rstrip(")")


def bp_create_contact(
    sb: Sandbox,
    first: str,
    last: str,
    email: str | None,
    *,
    phone: str | None = None,
    company: str | None = None,
    postcode: str = "BS1 4DJ",
    line1: str = "1 Quay St",
    country: str = "GBR",
) -> int:
    state = sb.bp_sim.state
    with state.lock:
        address = state.create_address(shop_address(line1, "Bristol", postcode, country))
        return state.create_contact(shop_contact(first, last, email, phone, address, company=company))


def test_dynamics_create_reaches_brightpearl_and_brightpearl_update_comes_back(sandbox: Sandbox):
    sb = sandbox
    dv_id = dv_create_contact(
        sb,
        firstname="Ada",
        lastname="Lovelace",
        emailaddress1="ADA@Example.org ",
        telephone1="020 7946 0018",
        address1_line1="12 St James's Square",
        address1_city="London",
        address1_postalcode="sw1y 4jh",
        address1_country="United Kingdom",
    )
    sb.settle()
    contacts = [c for c in sb.bp_contacts().values() if c["lastName"] == "Lovelace"]
    assert len(contacts) == 1
    bp = contacts[0]
    assert bp["firstName"] == "Ada"
    assert bp["communication"]["emails"]["PRI"]["email"] == "ada@example.org"  # normalised
    assert bp["communication"]["telephones"]["PRI"] == "+442079460018"  # E.164
    address = sb.bp_address(bp["postAddressIds"]["DEF"])
    assert address["postalCode"] == "SW1Y 4JH" and address["addressLine1"] == "12 St James's Square"
    row = next(r for r in sb.dv_contacts() if r["contactid"] == dv_id)
    assert row["bpi_brightpearlid"] == str(bp["contactId"])  # written back

    from sandbox.brightpearl.admin import _change_contact

    _change_contact(sb.bp_sim, bp["contactId"], {"lastName": "King", "telephone": "07911 123456"})
    sb.settle()
    row = next(r for r in sb.dv_contacts() if r["contactid"] == dv_id)
    assert row["lastname"] == "King"
    assert row["telephone1"] == "+447911123456"
    assert len([r for r in sb.dv_contacts() if r.get("lastname") in ("King", "Lovelace")]) == 1


def test_organisation_creates_an_account_and_links_the_contact(sandbox: Sandbox):
    sb = sandbox
    bp_id = bp_create_contact(
        sb, "Grace", "Hopper", "grace@navy.example", phone="0117 496 0123", company="Hopper Compilers Ltd"
    )
    sb.settle()
    [row] = [r for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(bp_id)]
    accounts = [a for a in sb.dv.rows("account") if a.get("name") == "Hopper Compilers Ltd"]
    assert len(accounts) == 1
    assert row["parentcustomerid"]["id"] == accounts[0]["accountid"]
    assert row["telephone1"] == "+441174960123"
    assert row["address1_postalcode"] == "BS1 4DJ" and row["address1_country"] == "United Kingdom"


def test_email_match_links_instead_of_duplicating(sandbox: Sandbox):
    sb = sandbox
    bp_id = bp_create_contact(sb, "Alan", "Turing", "alan@bletchley.example")
    dv_id = dv_create_contact(sb, firstname="Alan", lastname="Turing", emailaddress1="Alan@Bletchley.example")
    sb.settle()
    assert len([c for c in sb.bp_contacts().values() if c["lastName"] == "Turing"]) == 1
    rows = [r for r in sb.dv_contacts() if r.get("lastname") == "Turing"]
    assert [r["contactid"] for r in rows] == [dv_id]
    assert rows[0]["bpi_brightpearlid"] == str(bp_id)
    link = sb.store.links.get("customer", "brightpearl", bp_id) or sb.store.links.get(
        "customer", "dataverse", dv_id
    )
    assert link is not None and link.is_linked


def test_likely_duplicate_without_email_is_flagged_not_created(sandbox: Sandbox):
    sb = sandbox
    bp_create_contact(sb, "Katherine", "Johnson", None, postcode="LS1 1UR")
    sb.settle()
    before_bp = len(sb.bp_contacts())
    dv_id = dv_create_contact(
        sb,
        firstname="Katharine",
        lastname="Johnson",
        address1_line1="2 Park Row",
        address1_postalcode="ls1 1ur",
        address1_country="United Kingdom",
    )
    sb.settle()
    assert len(sb.bp_contacts()) == before_bp  # not created twice
    rows = [r for r in sb.dv_contacts() if r.get("lastname") == "Johnson"]
    assert len(rows) == 2  # the Brightpearl one synced over; the Dynamics one is waiting for review
    [entry] = [
        e
        for e in sb.store.audit.for_record("customer", "dataverse", dv_id)
        if e.result is AuditResult.NEEDS_REVIEW
    ]
    assert entry.reason_code == "LikelyDuplicate"
