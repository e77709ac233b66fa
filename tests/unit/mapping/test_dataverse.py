"""Dataverse contact (+ parent account) <-> canonical customer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from shared.mapping.brightpearl import brightpearl_to_canonical
from shared.mapping.config import CustomerMapping
from shared.mapping.dataverse import (
    PARENT_ACCOUNT_BIND,
    canonical_to_dataverse,
    dataverse_to_canonical,
    key_reference,
)
from shared.mapping.translation import MappingInputError
from shared.model.customer import Address, Addresses, Customer, Organisation, PersonName
from tests.unit.mapping.samples import (
    BP_ADDRESSES,
    BP_CONTACT,
    DV_ACCOUNT,
    DV_CONTACT,
    dv_account,
    dv_contact,
)


def test_reads_contact_with_expanded_parent_account(mapping: CustomerMapping) -> None:
    contact = dv_contact(parentcustomerid_account=DV_ACCOUNT)
    result = dataverse_to_canonical(contact, mapping)
    assert result.issues == []
    c = result.value
    assert (c.name.salutation, c.name.first_name, c.name.last_name) == ("Frau", "Jürgen", "Müller")
    assert c.emails.primary == "j.mueller@nordwind.example.de"
    # national numbers read in the customer's own country (address1 is in Germany)
    assert c.phones.telephone == "+49301234567"
    assert c.phones.mobile == "+4915123456789"
    assert c.marketing_consent is False  # bpi_newsletteroptin = false
    assert (
        c.addresses.billing
        == c.addresses.default
        == Address(
            line1="Friedrichstraße 123",
            line2="3. OG",
            line3="Hinterhaus",
            city="Berlin",
            region="Berlin",
            postcode="10117",
            country="DE",
        )
    )
    assert c.addresses.shipping is None
    org = c.organisation
    assert org is not None
    assert (org.name, org.phone, org.website) == (
        "Nordwind Handels GmbH",
        "+4930123456",
        "https://nordwind.example.de",
    )
    assert org.dataverse_id == DV_ACCOUNT["accountid"] and org.brightpearl_id is None
    assert c.customer_group == "retail"  # account customertypecode 3
    assert c.custom_fields == {"loyalty_tier": "Silver", "vip": False, "segment": "Silver"}
    assert c.ids.dataverse == DV_CONTACT["contactid"] and c.ids.brightpearl is None
    assert c.modified_at == dt.datetime(2024, 6, 12, 9, 30, tzinfo=dt.UTC)  # latest of contact and account


def test_parent_account_must_be_supplied(mapping: CustomerMapping) -> None:
    with pytest.raises(MappingInputError, match="parent customer"):
        dataverse_to_canonical(DV_CONTACT, mapping)
    parent_is_contact = dv_contact(
        **{"_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact"}
    )
    assert dataverse_to_canonical(parent_is_contact, mapping).value.organisation is None


@pytest.mark.parametrize(
    ("change", "code", "field", "fatal"),
    [
        ({"lastname": None}, "MissingLastName", "lastname", True),
        ({"emailaddress1": "mueller(at)nordwind.de"}, "InvalidEmail", "emailaddress1", True),
        ({"emailaddress2": "nope"}, "InvalidEmail", "emailaddress2", False),
        (
            {"address1_country": "Atlantis", "telephone1": "+49 30 1234567"},
            "UnknownCountry",
            "address1_country",
            True,
        ),
        ({"telephone1": "030"}, "InvalidPhone", "telephone1", True),
        ({"fax": "fax me"}, "InvalidPhone", "fax", False),
        ({"bpi_segment": 100000099}, "UnmappableValue", "bpi_segment", True),
        ({"bpi_vip": "yes"}, "InvalidCustomFieldValue", "bpi_vip", True),
    ],
)
def test_bad_input_becomes_typed_issue(
    mapping: CustomerMapping, change: dict[str, Any], code: str, field: str, fatal: bool
) -> None:
    result = dataverse_to_canonical(dv_contact(**change), mapping, account=DV_ACCOUNT)
    assert [(i.code, i.field, i.fatal) for i in result.issues] == [(code, field, fatal)]
    assert result.issues[0].system == "dataverse"
    assert result.issues[0].record_id == DV_CONTACT["contactid"]


def test_email_issue_description_matches_the_documented_form(mapping: CustomerMapping) -> None:
    result = dataverse_to_canonical(
        dv_contact(emailaddress1="j.mueller.nordwind.de"), mapping, account=DV_ACCOUNT
    )
    assert result.issues[0].description == "emailaddress1 is not a valid e-mail address (missing @)"
    assert result.description == (
        f"InvalidEmail: dataverse record {DV_CONTACT['contactid']}, field emailaddress1: "
        "emailaddress1 is not a valid e-mail address (missing @)"
    )


def test_unmappable_account_type_names_the_account_column(mapping: CustomerMapping) -> None:
    result = dataverse_to_canonical(DV_CONTACT, mapping, account=dv_account(customertypecode=12))
    assert [(i.code, i.field) for i in result.issues] == [("UnmappableValue", "account.customertypecode")]
    assert "value 12 has no entry in customer_group.values" in result.issues[0].description


def test_group_is_read_from_the_unambiguous_column(mapping: CustomerMapping) -> None:
    # customertypecode 9 is shared by trade and wholesale; the contact's bpi_customergroup decides
    result = dataverse_to_canonical(
        dv_contact(bpi_customergroup="Wholesale"), mapping, account=dv_account(customertypecode=9)
    )
    assert result.value.customer_group == "wholesale"
    # only the shared value: prefer_on_read picks trade
    result = dataverse_to_canonical(DV_CONTACT, mapping, account=dv_account(customertypecode=9))
    assert result.value.customer_group == "trade"


def test_writes_contact_account_and_bind_by_alternate_key(mapping: CustomerMapping) -> None:
    customer = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    result = canonical_to_dataverse(customer, mapping)
    assert result.issues == []
    p = result.value
    assert p.contact[PARENT_ACCOUNT_BIND] == "/accounts(bpi_brightpearlid='4')"
    assert p.contact["firstname"] == "Demo" and p.contact["lastname"] == "Customer"
    assert p.contact["emailaddress1"] == "demo.customer@example.com"
    assert p.contact["telephone1"] == "+441245845632"
    assert p.contact["telephone2"] is None  # cleared: Brightpearl has no SEC phone
    assert p.contact["bpi_newsletteroptin"] is True
    assert "donotbulkemail" not in p.contact
    assert (p.contact["address1_line1"], p.contact["address1_city"], p.contact["address1_country"]) == (
        "Unit 4, Riverside Park",
        "Chelmsford",
        "United Kingdom",
    )
    assert p.contact["address1_postalcode"] == "CM1 2AB"
    assert (p.contact["address2_line1"], p.contact["address2_city"]) == ("Warehouse 9", "Bristol")
    assert p.contact["bpi_customergroup"] == "Trade"
    assert p.contact["bpi_segment"] == 100000000 and p.contact["bpi_vip"] is True
    assert "bpi_brightpearlid" not in p.contact  # key columns go in the address, not the body
    assert p.account == {
        "name": "Customer Company Ltd.",
        "telephone1": "+441245845632",
        "websiteurl": "http://www.customer-company.co.uk",
        "address1_line1": "Unit 4, Riverside Park",
        "address1_line2": "Springfield",
        "address1_line3": None,
        "address1_city": "Chelmsford",
        "address1_stateorprovince": "Essex",
        "address1_postalcode": "CM1 2AB",
        "address1_country": "United Kingdom",
        "customertypecode": 9,
    }
    target = p.contact_upsert_target()
    assert target["@odata.type"] == "Microsoft.Dynamics.CRM.contact"
    assert target["@odata.id"] == "contacts(bpi_brightpearlid='200')"
    account_target = p.account_upsert_target()
    assert account_target is not None and account_target["@odata.id"] == "accounts(bpi_brightpearlid='4')"


def test_bind_by_id_when_configured_and_known(
    mapping_with: Callable[[dict[str, Any]], CustomerMapping],
) -> None:
    mapping = mapping_with({"dataverse": {"account": {"bind": "id"}}})
    customer = Customer(
        name=PersonName(last_name="Lee"), organisation=Organisation(name="Lee & Co", brightpearl_id="9")
    )
    guid = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    assert canonical_to_dataverse(customer, mapping, account_id=guid).value.contact[PARENT_ACCOUNT_BIND] == (
        f"/accounts({guid})"
    )
    # id not known yet: falls back to the alternate key
    assert canonical_to_dataverse(customer, mapping).value.contact[PARENT_ACCOUNT_BIND] == (
        "/accounts(bpi_brightpearlid='9')"
    )


def test_delivery_address_slot_is_configurable(
    mapping_with: Callable[[dict[str, Any]], CustomerMapping],
) -> None:
    mapping = mapping_with(
        {
            "dataverse": {
                "addresses": {"address1": ["default"], "address2": ["shipping"], "address3": ["billing"]}
            }
        }
    )
    home = Address(line1="1 Home Rd", city="York", postcode="YO1 7HH", country="GB")
    office = Address(line1="2 Office St", city="Leeds", postcode="LS1 1AA", country="GB")
    customer = Customer(name=PersonName(last_name="Lee"), addresses=Addresses(default=home, billing=office))
    contact = canonical_to_dataverse(customer, mapping).value.contact
    assert contact["address1_line1"] == "1 Home Rd"
    assert contact["address3_line1"] == "2 Office St"
    assert contact["address2_line1"] is None


def test_over_long_values_name_the_column_and_limit(mapping: CustomerMapping) -> None:
    customer = Customer(
        name=PersonName(first_name="F" * 51, last_name="Lee"),
        addresses=Addresses(shipping=Address(line1="x", city="C" * 81, country="GB")),
        organisation=Organisation(name="N" * 161),
    )
    result = canonical_to_dataverse(customer, mapping)
    found = {(i.code, i.field, i.fatal) for i in result.issues}
    assert ("ValueTooLong", "firstname", True) in found
    assert ("ValueTooLong", "account.name", True) in found
    # addresses.shipping ValueTooLong is configured as a warning: truncated to the limit
    assert ("ValueTooLong", "address2_city", False) in found
    assert result.value.contact["address2_city"] == "C" * 80
    first = next(i for i in result.issues if i.field == "firstname")
    assert first.description == "firstname is longer than 50 characters (51)"


def test_unmappable_group_on_write(mapping: CustomerMapping) -> None:
    result = canonical_to_dataverse(
        Customer(name=PersonName(last_name="Lee"), customer_group="platinum"), mapping
    )
    assert [(i.code, i.field) for i in result.issues] == [("UnmappableValue", "customer_group")]
    assert result.reason == "UnmappableValue"


def test_account_parts_not_derived_are_not_written(
    mapping_with: Callable[[dict[str, Any]], CustomerMapping],
) -> None:
    mapping = mapping_with(
        {"dataverse": {"account": {"phone_from": None, "website_from": None, "address_from": None}}}
    )
    customer = Customer(name=PersonName(last_name="Lee"), organisation=Organisation(name="Lee & Co"))
    account = canonical_to_dataverse(customer, mapping).value.account
    assert account == {"name": "Lee & Co"}  # nothing cleared that Brightpearl does not own


def test_key_reference_quotes_and_rejects_unsafe_values() -> None:
    assert key_reference("accounts", "bpi_brightpearlid", "O'Neil") == "accounts(bpi_brightpearlid='O''Neil')"
    with pytest.raises(ValueError, match="cannot be used in a key reference"):
        key_reference("accounts", "bpi_brightpearlid", "a/b")


def test_marketing_consent_through_an_inverted_column(
    mapping_with: Callable[[dict[str, Any]], CustomerMapping],
) -> None:
    mapping = mapping_with(
        {"dataverse": {"marketing_consent": {"column": "donotbulkemail", "inverted": True}}}
    )
    read = dataverse_to_canonical(dv_contact(donotbulkemail=False), mapping, account=DV_ACCOUNT)
    assert read.value.marketing_consent is True
    written = canonical_to_dataverse(read.value.model_copy(update={"marketing_consent": False}), mapping)
    assert written.value.contact["donotbulkemail"] is True
    unknown = canonical_to_dataverse(read.value.model_copy(update={"marketing_consent": None}), mapping)
    assert "donotbulkemail" not in unknown.value.contact  # never guessed


def test_contact_linked_by_email_is_addressed_by_id_and_gets_its_key(mapping: CustomerMapping) -> None:
    bp = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    linked = bp.model_copy(update={"ids": bp.ids.model_copy(update={"dataverse": DV_CONTACT["contactid"]})})
    target = canonical_to_dataverse(linked, mapping).value.contact_upsert_target()
    # upserting by key would create a second contact next to the one found by e-mail
    assert target["@odata.id"] == f"contacts({DV_CONTACT['contactid']})"
    assert target["bpi_brightpearlid"] == "200"


def test_delta_sends_only_changed_columns(mapping: CustomerMapping) -> None:
    read = dataverse_to_canonical(DV_CONTACT, mapping, account=DV_ACCOUNT).value
    payload = canonical_to_dataverse(
        read.model_copy(update={"website": "https://mueller.example"}), mapping
    ).value
    current = dict(DV_CONTACT, parentcustomerid_account=DV_ACCOUNT)
    delta = payload.contact_delta(current)
    # normalisation is written back once (E.164, trimmed name, country text, lower-case e-mail) plus the edit
    assert delta == {
        "lastname": "Müller",
        "emailaddress1": "j.mueller@nordwind.example.de",
        "telephone1": "+49301234567",
        "mobilephone": "+4915123456789",
        "websiteurl": "https://mueller.example",
        "address1_country": "Germany",
        "bpi_customergroup": "Retail",
    }  # the parent is the same account (same accountid): not rebound
    assert payload.contact_delta(None) == payload.contact  # a create sends everything
    assert payload.account_delta(DV_ACCOUNT) == {"telephone1": "+4930123456"}


def test_unchanged_parent_is_not_rebound(mapping: CustomerMapping) -> None:
    bp = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    payload = canonical_to_dataverse(bp, mapping).value
    same = {**payload.contact, "parentcustomerid_account": {"bpi_brightpearlid": "4"}}
    assert payload.contact_delta(same) == {}
    other = {**payload.contact, "parentcustomerid_account": {"bpi_brightpearlid": "5"}}
    assert payload.contact_delta(other) == {PARENT_ACCOUNT_BIND: "/accounts(bpi_brightpearlid='4')"}
