"""Brightpearl contact <-> canonical customer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from shared.mapping.brightpearl import (
    brightpearl_custom_field_ops,
    brightpearl_patch_ops,
    brightpearl_to_canonical,
    canonical_to_brightpearl,
    is_customer,
    plan_postal_addresses,
)
from shared.mapping.config import CustomerMapping
from shared.mapping.translation import MappingInputError
from shared.model.customer import Address, Addresses, Customer, Emails, Organisation, PersonName, Phones
from tests.unit.mapping.samples import BP_ADDRESSES, BP_ADDRESSES_US, BP_CONTACT, BP_CONTACT_US, bp_contact


def test_reads_the_reference_contact(mapping: CustomerMapping) -> None:
    result = brightpearl_to_canonical(
        BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES, tag_names={1: "VIP", 12: "Trade"}
    )
    assert result.issues == []
    c = result.value
    assert (c.name.salutation, c.name.first_name, c.name.last_name) == ("Mr.", "Demo", "Customer")
    assert c.emails.primary == "demo.customer@example.com"
    assert c.emails.secondary == "accounts@customer-company.co.uk"
    assert c.phones == Phones(telephone="+441245845632", mobile="+447911123456", fax="+441245845633")
    assert c.website == "http://www.customer-company.co.uk"
    assert c.addresses.default == c.addresses.billing
    assert c.addresses.billing == Address(
        line1="Unit 4, Riverside Park",
        line2="Springfield",
        city="Chelmsford",
        region="Essex",
        postcode="CM1 2AB",
        country="GB",
    )
    assert c.addresses.shipping is not None and c.addresses.shipping.city == "Bristol"
    assert c.organisation is not None
    assert (c.organisation.name, c.organisation.brightpearl_id) == ("Customer Company Ltd.", "4")
    assert c.organisation.phone == "+441245845632"  # account.phone_from: phones.telephone
    assert c.organisation.address == c.addresses.billing  # account.address_from: billing
    assert c.customer_group == "trade"  # price list 2
    assert c.marketing_consent is True
    assert c.tags == ("Trade", "VIP")
    assert c.custom_fields == {"loyalty_tier": "Gold member since 2011", "vip": True, "segment": "Gold"}
    assert c.ids.brightpearl == "200"
    assert c.modified_at == dt.datetime(2013, 5, 28, 20, 35, 27, tzinfo=dt.UTC)
    assert c.source_system == "brightpearl"


def test_reads_a_us_contact_with_offsets(mapping: CustomerMapping) -> None:
    result = brightpearl_to_canonical(BP_CONTACT_US, mapping, postal_addresses=BP_ADDRESSES_US)
    assert result.issues == []
    c = result.value
    assert c.phones.telephone == "+12125550123"  # US number read with the default region GB would fail
    assert c.modified_at == dt.datetime(2024, 6, 10, 20, 45, tzinfo=dt.UTC)
    assert c.addresses.shipping == c.addresses.billing
    assert c.addresses.billing is not None and (c.addresses.billing.region, c.addresses.billing.country) == (
        "NY",
        "US",
    )
    assert c.organisation is None
    assert c.tags == ()


def test_postal_addresses_inline_section_is_used(mapping: CustomerMapping) -> None:
    contact = bp_contact(postalAddresses={str(a["addressId"]): a for a in BP_ADDRESSES})
    assert brightpearl_to_canonical(contact, mapping).value.addresses.shipping is not None


def test_missing_referenced_address_is_a_caller_error(mapping: CustomerMapping) -> None:
    with pytest.raises(MappingInputError, match="postal address 108"):
        brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES[:1])


@pytest.mark.parametrize(
    ("change", "code", "field", "fatal"),
    [
        ({"lastName": "  "}, "MissingLastName", "lastName", True),
        (
            {"communication": {"emails": {"PRI": {"email": "demo.example.com"}}}},
            "InvalidEmail",
            "communication.emails.PRI.email",
            True,
        ),
        (
            {"communication": {"emails": {"PRI": {"email": "a@b.com"}, "SEC": {"email": "nope"}}}},
            "InvalidEmail",
            "communication.emails.SEC.email",
            False,
        ),
        (
            {"communication": {"telephones": {"PRI": "12"}}},
            "InvalidPhone",
            "communication.telephones.PRI",
            True,
        ),
        (
            {"communication": {"telephones": {"SEC": "call me"}}},
            "InvalidPhone",
            "communication.telephones.SEC",
            False,
        ),
        # the shipped mapping's default_group takes an unknown price list, flagged (a warning)
        (
            {"financialDetails": {"priceListId": 7}},
            "UnknownCustomerGroup",
            "financialDetails.priceListId",
            False,
        ),
        (
            {"customFields": {"PCF_SEGMENT": {"id": 99, "value": "Platinum"}}},
            "UnmappableValue",
            "customFields.PCF_SEGMENT",
            True,
        ),
        ({"customFields": {"PCF_VIP": "perhaps"}}, "InvalidCustomFieldValue", "customFields.PCF_VIP", True),
        ({"customFields": {"PCF_LOYALTY": "x" * 101}}, "ValueTooLong", "customFields.PCF_LOYALTY", True),
    ],
)
def test_bad_input_becomes_typed_issue(
    mapping: CustomerMapping, change: dict[str, Any], code: str, field: str, fatal: bool
) -> None:
    result = brightpearl_to_canonical(bp_contact(**change), mapping, postal_addresses=BP_ADDRESSES)
    assert [(i.code, i.field, i.fatal) for i in result.issues] == [(code, field, fatal)]
    issue = result.issues[0]
    assert issue.system == "brightpearl" and issue.record_id == "200"
    assert result.fatal is fatal
    if fatal:
        assert result.reason == code
        assert result.description is not None and "brightpearl record 200" in result.description


def test_issue_descriptions_do_not_contain_the_personal_value(mapping: CustomerMapping) -> None:
    contact = bp_contact(
        communication={
            "emails": {"PRI": {"email": "secret.person.example.com"}},
            "telephones": {"PRI": "0777 SECRET"},
        }
    )
    result = brightpearl_to_canonical(contact, mapping, postal_addresses=BP_ADDRESSES)
    assert {i.code for i in result.issues} == {"InvalidEmail", "InvalidPhone"}
    for issue in result.issues:
        assert "secret" not in issue.description.lower()
    assert result.issues[0].description == (
        "communication.emails.PRI.email is not a valid e-mail address (missing @)"
    )


def test_unknown_country_in_an_address(mapping: CustomerMapping) -> None:
    addresses = [dict(BP_ADDRESSES[0]), dict(BP_ADDRESSES[1], countryIsoCode="XXX", countryIsoCode2=None)]
    result = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=addresses)
    assert [(i.code, i.field) for i in result.issues] == [
        ("UnknownCountry", "postalAddress[108].countryIsoCode")
    ]
    assert result.fatal


def test_contact_group_source(mapping_with: Callable[[dict[str, Any]], CustomerMapping]) -> None:
    mapping = mapping_with({"customer_group": {"brightpearl_source": "contact_group"}})
    contact = bp_contact(financialDetails={"priceListId": 99})  # ignored with contact_group
    read = brightpearl_to_canonical(
        contact, mapping, postal_addresses=BP_ADDRESSES, contact_group_ids=[50, 3]
    )
    assert read.issues == [] and read.value.customer_group == "wholesale"
    written = canonical_to_brightpearl(read.value, mapping).value
    assert written.contact_group_id == 3
    assert "financialDetails" not in written.contact


def full_customer(**changes: Any) -> Customer:
    home = Address(line1="10 Downing Street", city="London", postcode="SW1A 2AA", country="GB")
    depot = Address(
        line1="Unit 2", line2="Dock Road", line3="Gate B", city="Tilbury", postcode="RM18 7EH", country="GB"
    )
    values: dict[str, Any] = {
        "name": PersonName(salutation="Ms", first_name="Priya", last_name="Patel"),
        "emails": Emails(primary="priya@patel-imports.co.uk"),
        "phones": Phones(telephone="+442079460958", mobile="+447911123456"),
        "website": "https://patel-imports.co.uk",
        "organisation": Organisation(name="Patel Imports Ltd", brightpearl_id="77"),
        "addresses": Addresses(default=home, billing=home, shipping=depot),
        "customer_group": "wholesale",
        "marketing_consent": False,
        "custom_fields": {"loyalty_tier": "Bronze", "vip": False, "segment": "Bronze"},
    }
    values.update(changes)
    return Customer(**values)


def test_writes_nested_post_body_and_address_bodies(mapping: CustomerMapping) -> None:
    result = canonical_to_brightpearl(full_customer(), mapping)
    assert result.issues == []
    payload = result.value
    home, depot = payload.postal_addresses
    assert home.roles == ("DEF", "BIL") and depot.roles == ("DEL",)
    assert home.body == {
        "addressLine1": "10 Downing Street",
        "addressLine3": "London",
        "postalCode": "SW1A 2AA",
        "countryIsoCode": "GBR",
    }
    assert depot.body["addressLine2"] == "Dock Road, Gate B"  # line3 has no Brightpearl slot
    body = payload.post_body({"DEF": 901, "BIL": 901, "DEL": 902})
    assert body == {
        "salutation": "Ms",
        "firstName": "Priya",
        "lastName": "Patel",
        "communication": {
            "emails": {"PRI": {"email": "priya@patel-imports.co.uk"}},
            "telephones": {"PRI": "+442079460958", "MOB": "+447911123456"},
            "websites": {"PRI": "https://patel-imports.co.uk"},
        },
        "relationshipToAccount": {"isSupplier": False, "isStaff": False},
        "organisation": {"name": "Patel Imports Ltd"},
        "marketingDetails": {"isReceiveEmailNewsletter": False},
        "financialDetails": {"priceListId": 3},
        "postAddressIds": {"DEF": 901, "BIL": 901, "DEL": 902},
    }
    assert payload.custom_field_ops == [
        {"op": "add", "path": "/PCF_LOYALTY", "value": "Bronze"},
        {"op": "add", "path": "/PCF_VIP", "value": False},
        {"op": "add", "path": "/PCF_SEGMENT", "value": {"id": 13}},
    ]


def test_brightpearl_name_limit_and_unmappable_group(mapping: CustomerMapping) -> None:
    customer = full_customer(
        name=PersonName(first_name="A" * 33, last_name="Patel"), customer_group="vip-gold"
    )
    result = canonical_to_brightpearl(customer, mapping)
    assert [(i.code, i.field) for i in result.issues] == [
        ("ValueTooLong", "firstName"),
        ("UnmappableValue", "customer_group"),
    ]
    assert "is longer than 32 characters" in result.issues[0].description
    assert result.fatal


def test_address_without_first_line_is_skipped_with_a_warning(mapping: CustomerMapping) -> None:
    customer = full_customer(
        addresses=Addresses(shipping=Address(city="Leeds", postcode="LS1 1AA", country="GB"))
    )
    result = canonical_to_brightpearl(customer, mapping)
    assert [(i.code, i.fatal) for i in result.issues] == [("IncompleteAddress", False)]
    assert result.value.postal_addresses == []


def test_patch_ops_only_for_what_changed(mapping: CustomerMapping) -> None:
    current = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    desired = current.model_copy(
        update={
            "name": PersonName(salutation=None, first_name="Demetrius", last_name="Customer"),
            "phones": current.phones.model_copy(update={"mobile": None, "secondary": "+442079460958"}),
            "emails": current.emails.model_copy(update={"primary": "new@example.com"}),
            "marketing_consent": False,
        }
    )
    result = brightpearl_patch_ops(desired, BP_CONTACT, mapping)
    assert result.issues == []
    ops = result.value
    assert {"op": "remove", "path": "/salutation"} in ops
    assert {"op": "replace", "path": "/firstName", "value": "Demetrius"} in ops
    assert {"op": "replace", "path": "/communication/emails/PRI/email", "value": "new@example.com"} in ops
    assert {"op": "add", "path": "/communication/telephones/SEC", "value": "+442079460958"} in ops
    assert {"op": "remove", "path": "/communication/telephones/MOB"} in ops
    assert {"op": "replace", "path": "/marketingDetails/isReceiveEmailNewsletter", "value": False} in ops
    # raw "01245 845632" differs from E.164: normalisation is written back once
    assert {"op": "replace", "path": "/communication/telephones/PRI", "value": "+441245845632"} in ops
    assert not any(op["path"] == "/lastName" for op in ops)


def test_patch_reports_what_brightpearl_cannot_patch(mapping: CustomerMapping) -> None:
    current = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    desired = current.model_copy(
        update={
            "website": "https://new.example",
            "customer_group": "retail",
            "name": current.name.model_copy(update={"first_name": None}),
        }
    )
    result = brightpearl_patch_ops(desired, BP_CONTACT, mapping)
    assert {(i.code, i.field) for i in result.issues} == {
        ("UnsupportedUpdate", "firstName"),
        ("UnsupportedUpdate", "communication.websites.PRI"),
        ("UnsupportedUpdate", "financialDetails.priceListId"),
    }
    assert not result.fatal  # warnings by default
    assert not any(op["path"] in ("/firstName",) for op in result.value)


def test_custom_field_ops_diff(mapping: CustomerMapping) -> None:
    current = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    desired = current.model_copy(
        update={"custom_fields": {"loyalty_tier": None, "vip": True, "segment": "Silver"}}
    )
    ops = brightpearl_custom_field_ops(desired, BP_CONTACT["customFields"], mapping).value
    assert ops == [
        {"op": "remove", "path": "/PCF_LOYALTY"},
        {"op": "replace", "path": "/PCF_SEGMENT", "value": {"id": 12}},
    ]


def test_address_plan_updates_in_place_or_creates(mapping: CustomerMapping) -> None:
    current = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    assert plan_postal_addresses(current, BP_CONTACT, BP_ADDRESSES, mapping).value.empty

    moved = Address(line1="Warehouse 10", city="Bristol", postcode="BS2 9AG", country="GB")
    plan = plan_postal_addresses(
        current.model_copy(update={"addresses": current.addresses.model_copy(update={"shipping": moved})}),
        BP_CONTACT,
        BP_ADDRESSES,
        mapping,
    ).value
    assert plan.update == {
        108: {
            "addressLine1": "Warehouse 10",
            "addressLine3": "Bristol",
            "postalCode": "BS2 9AG",
            "countryIsoCode": "GBR",
        }
    }
    assert plan.create == []

    # billing moves away from default: address 107 is still the default, so a new one is created for BIL
    split = current.model_copy(update={"addresses": current.addresses.model_copy(update={"billing": moved})})
    plan = plan_postal_addresses(split, BP_CONTACT, BP_ADDRESSES, mapping).value
    assert plan.update == {}
    assert [d.roles for d in plan.create] == [("BIL",)]


def test_customer_filter_and_odd_id_shapes(mapping: CustomerMapping) -> None:
    assert is_customer(BP_CONTACT)
    assert not is_customer(bp_contact(relationshipToAccount={"isSupplier": True, "isStaff": False}))
    read = brightpearl_to_canonical(
        bp_contact(financialDetails={"priceListId": "two"}, contactTags=["1", " 12 "]),
        mapping,
        postal_addresses=BP_ADDRESSES,
    )
    assert [(i.code, i.field) for i in read.issues] == [
        ("UnknownCustomerGroup", "financialDetails.priceListId")
    ]
    assert read.value.tags == ("1", "12")
