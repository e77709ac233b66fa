"""Realistic customer records shaped exactly as the APIs return them (reference docs §5, §10)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from shared.mapping.brightpearl import BrightpearlCustomerPayload
from shared.mapping.dataverse import DataverseCustomerPayload

# GET /contact-service/contact/200 (reference brightpearl-api.md §5.1 fixture, with customFields)
BP_CONTACT: dict[str, Any] = {
    "contactId": 200,
    "isPrimaryContact": True,
    "salutation": "Mr.",
    "firstName": "Demo",
    "lastName": "Customer",
    "postAddressIds": {"DEF": 107, "DEL": 108, "BIL": 107},
    "communication": {
        "emails": {
            "PRI": {"email": "Demo.Customer@Example.com"},
            "SEC": {"email": "accounts@customer-company.co.uk"},
        },
        "telephones": {"PRI": "01245 845632", "MOB": "07911 123456", "FAX": "01245 845633"},
        "messagingVoips": {"SKP": "demo.customer"},
        "websites": {"PRI": "http://www.customer-company.co.uk"},
    },
    "contactStatus": {
        "current": {"contactStatusName": "Suspect", "contactStatusId": 2},
        "history": [
            {
                "contactStatusName": "Suspect",
                "contactStatusId": 2,
                "occuredOn": "2013-05-28T20:35:26.000Z",
                "staffContactId": 4,
            }
        ],
    },
    "relationshipToAccount": {"isSupplier": False, "isStaff": False},
    "marketingDetails": {"isReceiveEmailNewsletter": True},
    "financialDetails": {
        "priceListId": 2,
        "nominalCode": "10",
        "taxCodeId": 7,
        "creditLimit": 1000,
        "creditTermDays": 30,
        "currencyId": 1,
        "discountPercentage": 0.00,
    },
    "assignment": {
        "current": {"staffOwnerContactId": 4, "leadSourceId": 4, "accountReference": "DEMOACTCODE0001"}
    },
    "organisation": {"organisationId": 4, "name": "Customer Company Ltd."},
    "companyId": 25,
    "createdByid": 2,
    "createdOn": "2010-08-17T12:57:14.000Z",
    "updatedOn": "2013-05-28T20:35:27.000Z",
    "contactTags": "1,12",
    "customFields": {
        "PCF_LOYALTY": "Gold member since 2011",
        "PCF_VIP": True,
        "PCF_SEGMENT": {"id": 11, "value": "Gold"},
    },
}

# GET /contact-service/postal-address/107,108 (reference §5.5)
BP_ADDRESSES: list[dict[str, Any]] = [
    {
        "addressId": 107,
        "contactId": 200,
        "addressLine1": "Unit 4, Riverside Park",
        "addressLine2": "Springfield",
        "addressLine3": "Chelmsford",
        "addressLine4": "Essex",
        "postalCode": "cm1  2ab",
        "countryIsoCode": "GBR",
        "countryIsoCode2": "GB",
        "countryId": 222,
    },
    {
        "addressId": 108,
        "contactId": 200,
        "addressLine1": "Warehouse 9",
        "addressLine2": "Temple Meads",
        "addressLine3": "Bristol",
        "postalCode": "BS2 9AG",
        "countryIsoCode": "GBR",
        "countryIsoCode2": "GB",
        "countryId": 222,
    },
]

# A US account's contact: -04:00 offsets, no organisation, one address for all roles, flat e-mail
BP_CONTACT_US: dict[str, Any] = {
    "contactId": 3051,
    "firstName": "Ana",
    "lastName": "García López",
    "postAddressIds": {"DEF": 5120, "BIL": 5120, "DEL": 5120},
    "communication": {
        "emails": {"PRI": {"email": "ANA.GARCIA@Example.org"}},
        "telephones": {"PRI": "(212) 555-0123", "SEC": "+1 415-555-2671"},
    },
    "relationshipToAccount": {"isSupplier": False, "isStaff": False},
    "marketingDetails": {"isReceiveEmailNewsletter": False},
    "financialDetails": {"priceListId": 1},
    "createdOn": "2021-03-02T10:11:12.000-05:00",
    "updatedOn": "2024-06-10T16:45:00.000-04:00",
    "contactTags": "",
}
BP_ADDRESSES_US: list[dict[str, Any]] = [
    {
        "addressId": 5120,
        "contactId": 3051,
        "addressLine1": "350 Fifth Avenue",
        "addressLine2": "Suite 2100",
        "addressLine3": "New York",
        "addressLine4": "NY",
        "postalCode": "10118",
        "countryIsoCode": "USA",
        "countryIsoCode2": "US",
        "countryId": 225,
    },
]

# GET /api/data/v9.2/contacts(<id>)?$select=...&$expand=parentcustomerid_account(...)
# (reference dataverse-api.md §3.6, §10.1, §10.2)
DV_ACCOUNT: dict[str, Any] = {
    "@odata.etag": 'W/"880211"',
    "accountid": "7eb682f1-ca75-e511-80d4-00155d2a68d1",
    "name": "Nordwind Handels GmbH",
    "telephone1": "+49 (0) 30 123456",
    "websiteurl": "https://nordwind.example.de",
    "address1_line1": "Friedrichstraße 123",
    "address1_line2": None,
    "address1_line3": None,
    "address1_city": "Berlin",
    "address1_stateorprovince": "Berlin",
    "address1_postalcode": "10117",
    "address1_country": "Germany",
    "customertypecode": 3,
    "bpi_brightpearlid": None,
    "modifiedon": "2024-06-11T08:00:00Z",
}
DV_CONTACT: dict[str, Any] = {
    "@odata.etag": 'W/"880244"',
    "contactid": "6d81597f-4b36-ef11-8409-000d3a2c5e11",
    "salutation": "Frau",
    "firstname": "Jürgen",
    "lastname": "  Müller ",
    "emailaddress1": "J.Mueller@Nordwind.Example.de",
    "emailaddress2": None,
    "emailaddress3": None,
    "telephone1": "030 1234567",
    "telephone2": None,
    "mobilephone": "+49 151 23456789",
    "fax": None,
    "websiteurl": None,
    "donotbulkemail": True,
    "bpi_newsletteroptin": False,
    "address1_line1": "Friedrichstraße 123",
    "address1_line2": "3. OG",
    "address1_line3": "Hinterhaus",
    "address1_city": "Berlin",
    "address1_stateorprovince": "Berlin",
    "address1_postalcode": "10117",
    "address1_country": "Deutschland",
    "address2_line1": None,
    "address2_city": None,
    "address2_postalcode": None,
    "address2_country": None,
    "bpi_brightpearlid": None,
    "bpi_customergroup": None,
    "bpi_tags": None,
    "bpi_loyaltytier": "Silver",
    "bpi_vip": False,
    "bpi_segment": 100000001,
    "_parentcustomerid_value": "7eb682f1-ca75-e511-80d4-00155d2a68d1",
    "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
    "modifiedon": "2024-06-12T09:30:00Z",
}


def bp_contact(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(BP_CONTACT)
    record.update(changes)
    return record


def dv_contact(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(DV_CONTACT)
    record.update(changes)
    return record


def dv_account(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(DV_ACCOUNT)
    record.update(changes)
    return record


_ids = itertools.count(9000)


def store_in_dataverse(
    payload: DataverseCustomerPayload, modified: str = "2024-07-01T10:00:00Z"
) -> tuple[dict, dict | None]:
    """What Dataverse holds after the upserts (rows as a later GET returns them)."""
    contact = {k: v for k, v in payload.contact.items() if not k.endswith("@odata.bind")}
    contact.update(
        contactid=payload.contact_id or "6d81597f-0000-4000-8000-000000000001", modifiedon=modified
    )
    contact[payload.contact_key_column] = payload.contact_key_value
    account = None
    if payload.account is not None:
        account = dict(
            payload.account,
            accountid=payload.account_id or "7eb682f1-0000-4000-8000-0000000000aa",
            modifiedon=modified,
        )
        account[payload.account_key_column] = payload.account_key_value  # type: ignore[index]
        contact["_parentcustomerid_value"] = account["accountid"]
        contact["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = "account"
    return contact, account


def store_in_brightpearl(
    payload: BrightpearlCustomerPayload, contact_id: int = 4711
) -> tuple[dict, list[dict]]:
    """What Brightpearl holds after the address POSTs, contact POST and custom-field PATCH."""
    addresses, ids = [], {}
    for draft in payload.postal_addresses:
        address_id = next(_ids)
        addresses.append(dict(draft.body, addressId=address_id, contactId=contact_id))
        ids.update({role: address_id for role in draft.roles})
    contact: dict[str, Any] = payload.post_body(ids)
    contact.update(contactId=contact_id, updatedOn="2024-07-01T10:00:00.000+00:00")
    if "organisation" in contact:
        contact["organisation"] = dict(contact["organisation"], organisationId=31)
    contact["customFields"] = {op["path"][1:]: op["value"] for op in payload.custom_field_ops}
    return contact, addresses
