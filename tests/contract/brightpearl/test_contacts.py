"""Contract: the real client against the simulator for everything the customers flow needs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlNotFound, BrightpearlValidationError
from shared.brightpearl.models import ContactCreate, PatchOp, PostalAddressCreate


def contact_ids(sim: Simulator) -> list[int]:
    with sim.state.lock:
        return sorted(sim.state.contacts)


def test_get_contacts_by_id_set_with_addresses_leaves_out_missing_ids(
    client: BrightpearlClient, sim: Simulator
):
    ids = contact_ids(sim)[:5]
    contacts = client.get_contacts([*ids, 999_999], with_addresses=True)

    assert [c.contact_id for c in contacts] == ids
    first = contacts[0]
    raw = sim.state.contacts[ids[0]]
    assert first.primary_email == raw["communication"]["emails"]["PRI"]["email"]
    assert first.post_address_ids["DEF"] == raw["postAddressIds"]["DEF"]
    assert first.postal_addresses and first.postal_addresses[0].address_id == raw["postAddressIds"]["DEF"]
    assert len(first.postal_addresses[0].country_iso3 or "") == 3
    assert first.updated_on is not None and first.updated_on.tzinfo is not None
    assert client.get_contacts([999_998, 999_999]) == []
    with pytest.raises(BrightpearlNotFound):
        client.get_contact(999_999)


def test_id_sets_over_the_per_call_limit_are_split(
    make_client: Callable[..., BrightpearlClient], sim: Simulator, admin: httpx.Client
):
    sim.state.seed(contacts=400)
    ids = contact_ids(sim)[:450]
    client = make_client()

    contacts = client.get_contacts(ids)

    assert sorted(c.contact_id for c in contacts) == ids
    assert client.stats.by_path["GET /contact-service/contact/{ids}"] == 3  # 200 + 200 + 50
    assert admin.get("/requests").json()["byEndpoint"]["GET contact-service/contact[/{ids}]"] == 3


def test_long_id_sets_are_split_by_length_and_on_414(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    sim.state.seed(contacts=150)
    scattered = contact_ids(sim)[::2][:90]  # no ranges: "200,202,204,..."
    by_length = make_client(BRIGHTPEARL_IDSET_MAX_CHARS=100)
    assert sorted(c.contact_id for c in by_length.get_contacts(scattered)) == scattered
    assert by_length.stats.calls > 3

    sim.configure(max_uri_length=300)  # the server refuses long URIs: the client halves the set
    on_414 = make_client()
    assert sorted(c.contact_id for c in on_414.get_contacts(scattered)) == scattered
    assert on_414.stats.calls >= 3


def test_search_pages_across_three_pages_as_dicts_keyed_by_column(client: BrightpearlClient, sim: Simulator):
    pager = client.search_contacts(columns=["contactId", "primaryEmail", "updatedOn"], page_size=20)
    pages = list(pager.pages())

    assert [len(p) for p in pages] == [20, 20, 10]
    rows = [row for page in pages for row in page]
    assert set(rows[0]) == {"contactId", "primaryEmail", "updatedOn"}
    assert [r["contactId"] for r in rows] == contact_ids(sim)  # sorted by contactId, no gaps or repeats
    assert pager.results_available == 50


def test_search_by_updated_on_range_finds_exactly_the_changed_contacts(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client
):
    ids = contact_ids(sim)
    since = datetime.now(UTC)
    changed = [ids[3], ids[17], ids[40]]
    stamps = [
        admin.post(f"/contacts/{cid}/change", json={"lastName": "Changed"}).json()["updatedOn"]
        for cid in changed
    ]

    rows = list(
        client.search_contacts(
            updated_since=since - timedelta(milliseconds=1), columns=["contactId", "updatedOn"]
        )
    )
    assert sorted(r["contactId"] for r in rows) == changed

    until = datetime.fromisoformat(stamps[1].replace("Z", "+00:00"))
    closed = list(client.search_contacts(updated_since=since, updated_until=until, columns=["contactId"]))
    assert sorted(r["contactId"] for r in closed) == changed[:2]


def test_search_by_primary_email(client: BrightpearlClient, sim: Simulator):
    target = sim.state.contacts[contact_ids(sim)[7]]
    email = target["communication"]["emails"]["PRI"]["email"]

    assert client.find_contact_ids_by_email(email.upper()) == [target["contactId"]]
    assert client.find_contact_ids_by_email("nobody@nowhere.example") == []


def test_create_contact_with_postal_address(client: BrightpearlClient):
    address_id = client.create_postal_address(
        PostalAddressCreate(
            addressLine1="1 High Street", addressLine3="Bristol", postalCode="BS1 1AA", countryIsoCode="GB"
        )
    )  # alpha-2 in, alpha-3 on the wire
    contact_id = client.create_contact(
        ContactCreate.build(
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.com",
            telephone="+44 117 000 0000",
            company="Analytical Ltd",
            address_id=address_id,
            price_list_id=3,
            newsletter=True,
        )
    )

    contact = client.get_contact(contact_id, with_addresses=True)
    assert (contact.first_name, contact.last_name, contact.primary_email) == (
        "Ada",
        "Lovelace",
        "ada@example.com",
    )
    assert contact.post_address_ids == {"DEF": address_id, "BIL": address_id, "DEL": address_id}
    assert contact.price_list_id == 3 and contact.is_customer
    assert contact.organisation is not None and contact.organisation.name == "Analytical Ltd"
    [address] = client.get_postal_addresses([address_id])
    assert (address.country_iso_code, address.country_iso_code2, address.contact_id) == (
        "GBR",
        "GB",
        contact_id,
    )

    client.update_postal_address(address_id, {"addressLine1": "2 High Street", "countryIsoCode": "GBR"})
    assert client.get_postal_addresses([address_id])[0].address_line1 == "2 High Street"


def test_validation_errors_carry_brightpearls_messages(client: BrightpearlClient):
    with pytest.raises(BrightpearlValidationError) as caught:
        client.create_contact({"firstName": "x" * 40, "lastName": "Long"})
    assert caught.value.status == 400
    assert caught.value.errors == [
        {"code": "CNTC-101", "message": "firstName must be text of at most 32 characters"}
    ]
    assert "CNTC-101" in str(caught.value) and "firstName" in str(caught.value)

    with pytest.raises(BrightpearlValidationError, match="postal address 424242 does not exist"):
        client.create_contact({"lastName": "Nowhere", "postAddressIds": {"DEF": 424242}})


def test_patch_contact_applies_allowed_ops_and_rejects_others(client: BrightpearlClient, sim: Simulator):
    cid = contact_ids(sim)[0]
    before = client.get_contact(cid)

    after = client.patch_contact(
        cid,
        [
            PatchOp(op="replace", path="/firstName", value="Grace"),
            {"op": "add", "path": "/communication/telephones/MOB", "value": "07700 900000"},
            {"op": "replace", "path": "/communication/emails/PRI/email", "value": "grace@example.com"},
        ],
    )
    assert after.first_name == "Grace" and after.primary_email == "grace@example.com"
    assert after.communication.telephones["MOB"] == "07700 900000"
    assert (
        after.updated_on is not None
        and before.updated_on is not None
        and after.updated_on > before.updated_on
    )

    with pytest.raises(BrightpearlValidationError, match="cannot be patched"):
        client.patch_contact(cid, [{"op": "replace", "path": "/financialDetails/priceListId", "value": 1}])
    with pytest.raises(BrightpearlValidationError, match="patch test failed"):
        client.patch_contact(cid, [{"op": "test", "path": "/lastName", "value": "not-the-name"}])
    assert client.get_contact(cid).first_name == "Grace"  # a failed patch changes nothing


def test_tags_groups_and_price_lists(client: BrightpearlClient, sim: Simulator):
    ids = contact_ids(sim)[:3]
    tag_id = client.create_tag("b2b-portal")
    assert any(t.tag_id == tag_id and t.tag_name == "b2b-portal" for t in client.get_tags())

    client.tag_contacts(ids, tag_id)
    client.tag_contacts(ids[:1], tag_id)  # repeat-safe
    assert all(tag_id in c.contact_tags for c in client.get_contacts(ids))
    client.untag_contact(ids[0], tag_id)
    assert tag_id not in client.get_contact(ids[0]).contact_tags

    groups = client.get_contact_groups()
    assert {g.name for g in groups} >= {"VIP customers", "Trade"}
    client.add_contacts_to_group(groups[0].id, ids[1:])
    assert client.get_contact(ids[1]).model_extra["assignment"]["current"]["contactGroupId"] == groups[0].id

    lists = {p.id: p for p in client.get_price_lists()}
    assert lists[2].display_name == "Retail GBP" and lists[2].currency_code == "GBP"
    assert [p.id for p in client.get_price_lists([3, 4])] == [3, 4]


def test_contact_custom_fields(client: BrightpearlClient, sim: Simulator):
    cid = contact_ids(sim)[0]
    fields = client.patch_contact_custom_fields(cid, [{"op": "add", "path": "/PCF_LOYALTY", "value": "gold"}])
    assert fields == {"PCF_LOYALTY": "gold"}
    with pytest.raises(BrightpearlValidationError, match="PCF_NOPE"):
        client.patch_contact_custom_fields(cid, [{"op": "add", "path": "/PCF_NOPE", "value": 1}])


def test_a_get_that_pages_is_followed_to_the_end(client: BrightpearlClient, sim: Simulator):
    sim.configure(contact_get_limit=20)  # the server pages at 20 while the client asks for up to 200
    contacts = client.get_contacts(contact_ids(sim))
    assert [c.contact_id for c in contacts] == contact_ids(sim)
    assert client.stats.calls == 3  # 20 + 20 + 10
