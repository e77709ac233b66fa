"""Brightpearl contact <-> canonical Customer (reference brightpearl-api.md §5).

Reading takes the contact exactly as `GET /contact-service/contact/{id}` returns it (nested
`communication`, `postAddressIds`, `organisation`, `financialDetails`, comma-string
`contactTags`, optional `postalAddresses` and `customFields` sections) plus the postal
addresses it references. Writing produces the nested contact POST body, the postal-address
POST/PUT bodies (addresses must exist before the contact references them), JSON Patch ops for
contact PATCH (only the paths Brightpearl documents as patchable) and custom-field PATCH ops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.mapping.columns import BRIGHTPEARL_LIMITS
from shared.mapping.config import CustomerMapping
from shared.mapping.custom_fields import CustomFieldWire, custom_from_wire, custom_to_wire
from shared.mapping.translation import IssueLog, MappingInputError, Translation
from shared.model.customer import (
    Address,
    Addresses,
    Customer,
    Emails,
    ExternalIds,
    Organisation,
    PersonName,
    Phones,
)
from shared.quality.issues import IssueCode
from shared.quality.normalise import (
    check_length,
    clean_text,
    country_to_iso2,
    iso2_to_iso3,
    normalise_email,
    normalise_phone,
)

EMAIL_SLOTS = {"PRI": "primary", "SEC": "secondary", "TER": "tertiary"}
PHONE_SLOTS = {"PRI": "telephone", "SEC": "secondary", "MOB": "mobile", "FAX": "fax"}
ADDRESS_ROLES = {"DEF": "default", "BIL": "billing", "DEL": "shipping"}
ROLE_CODES = {v: k for k, v in ADDRESS_ROLES.items()}


# --- reading ----------------------------------------------------------------------------------


def parse_bp_time(value: object) -> dt.datetime | None:
    """Brightpearl ISO 8601 with milliseconds and an offset (Z or -04:00); never assume Z."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None  # an unreadable time counts as unknown (see ownership: last_writer)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def bp_id(value: object) -> str | None:
    """A Brightpearl id (positive integer) as a string; anything else is no id."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text if text.isdigit() and text != "0" else None


def _index_addresses(
    addresses: Iterable[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]] | None,
) -> dict[int, Mapping[str, Any]]:
    if addresses is None:
        return {}
    items = addresses.values() if isinstance(addresses, Mapping) else addresses
    index: dict[int, Mapping[str, Any]] = {}
    for item in items:
        if "addressId" in item:
            index[int(item["addressId"])] = item
    if isinstance(addresses, Mapping):  # {"107": {...}} without addressId inside
        for key, item in addresses.items():
            if str(key).isdigit():
                index.setdefault(int(key), item)
    return index


def _read_address(raw: Mapping[str, Any], log: IssueLog, role: str, mapping: CustomerMapping) -> Address:
    field_prefix = f"postalAddress[{raw.get('addressId', '?')}]"
    country: str | None = None
    code = raw.get("countryIsoCode") or raw.get("countryIsoCode2")
    if code:
        country = log.take(
            country_to_iso2(code, mapping.countries.aliases),
            f"{field_prefix}.countryIsoCode",
            f"addresses.{role}",
        )
    return Address(
        line1=raw.get("addressLine1"),
        line2=raw.get("addressLine2"),
        city=raw.get("addressLine3"),
        region=raw.get("addressLine4"),
        postcode=raw.get("postalCode"),
        country=country,
    )


def _as_int(raw: object) -> int:
    """An id as an int; -1 (matches nothing) when it is not a whole number."""
    try:
        return int(str(raw).strip())
    except ValueError:
        return -1


def _unknown_group(mapping: CustomerMapping, log: IssueLog, field: str, what: str) -> str | None:
    """The group of a Brightpearl value the map lacks: `customer_group.default_group`, flagged
    UnknownCustomerGroup (a warning the audit row shows); without a default, UnmappableValue."""
    default = mapping.customer_group.default_group
    if default is None:
        log.add(
            IssueCode.UNMAPPABLE_VALUE,
            field,
            f"{what} has no entry in customer_group.values",
            "customer_group",
        )
        return None
    log.add(
        IssueCode.UNKNOWN_CUSTOMER_GROUP,
        field,
        f"{what} has no entry in customer_group.values; default group {default!r} used",
        "customer_group",
    )
    return default


def is_customer(contact: Mapping[str, Any]) -> bool:
    """Brightpearl contact GET has no isCustomer flag: a customer is neither supplier nor staff (§5.1)."""
    relationship = contact.get("relationshipToAccount") or {}
    return not relationship.get("isSupplier") and not relationship.get("isStaff")


def _flag(raw: object) -> bool | None:
    return raw if isinstance(raw, bool) else None


def _as_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "y", "1"):
        return True
    if text in ("false", "no", "n", "0"):
        return False
    raise ValueError(raw)


BRIGHTPEARL_CUSTOM = CustomFieldWire(
    field=lambda cf: f"customFields.{cf.brightpearl}",
    read_bool=_as_bool,
    read_int=lambda raw: int(str(raw).strip()),
    option_id=lambda raw: raw.get("id") if isinstance(raw, Mapping) else raw,  # {"id": 11, ...} or 11
    is_option=lambda option, option_id: str(option.brightpearl_id) == str(option_id),
    write_option=lambda option: {"id": option.brightpearl_id},
    option_noun="option id",
)


def brightpearl_to_canonical(
    contact: Mapping[str, Any],
    mapping: CustomerMapping,
    *,
    postal_addresses: Iterable[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]] | None = None,
    contact_group_ids: Sequence[int] | None = None,
    tag_names: Mapping[int, str] | None = None,
) -> Translation[Customer]:
    """Translate a Brightpearl contact (GET shape) into a canonical Customer.

    `postal_addresses` are the postal-address GET items the contact's `postAddressIds`
    reference (or the contact's own `postalAddresses` section is used). `contact_group_ids`
    are the contact's group memberships (needed when customer_group.brightpearl_source is
    contact_group); `tag_names` turns `contactTags` ids into names.
    """
    record_id = bp_id(contact.get("contactId"))
    log = IssueLog(mapping.quality, "brightpearl", record_id)

    last_name = clean_text(contact.get("lastName"))
    if last_name is None:
        log.add(IssueCode.MISSING_LAST_NAME, "lastName", "is empty", "name.last_name")
    name = PersonName(
        salutation=contact.get("salutation"), first_name=contact.get("firstName"), last_name=last_name
    )

    communication = contact.get("communication") or {}
    raw_emails = communication.get("emails") or {}
    emails: dict[str, str | None] = {}
    for code, slot in EMAIL_SLOTS.items():
        entry = raw_emails.get(code)
        raw = entry.get("email") if isinstance(entry, Mapping) else entry
        emails[slot] = log.take(normalise_email(raw), f"communication.emails.{code}.email", f"emails.{slot}")
    website = clean_text((communication.get("websites") or {}).get("PRI"))

    index = _index_addresses(
        postal_addresses if postal_addresses is not None else contact.get("postalAddresses")
    )
    roles: dict[str, Address | None] = {}
    for code, role in ADDRESS_ROLES.items():
        address_id = (contact.get("postAddressIds") or {}).get(code)
        if not address_id:
            roles[role] = None
            continue
        raw_address = index.get(int(address_id))
        if raw_address is None:
            raise MappingInputError(
                f"contact {record_id} references postal address {address_id} ({code}) which was not supplied"
            )
        address = _read_address(raw_address, log, role, mapping)
        roles[role] = None if address.is_empty() else address
    addresses = Addresses(**roles)
    region = mapping.quality.phone_region(
        *(a.country if a else None for a in (addresses.billing, addresses.default, addresses.shipping))
    )
    raw_phones = communication.get("telephones") or {}
    phones = {
        slot: log.take(
            normalise_phone(raw_phones.get(code), region),
            f"communication.telephones.{code}",
            f"phones.{slot}",
        )
        for code, slot in PHONE_SLOTS.items()
    }
    phones_model = Phones(**phones)

    organisation = None
    org = contact.get("organisation")
    org_raw: Mapping[str, Any] = org if isinstance(org, Mapping) else {}
    org_name = clean_text(org_raw.get("name"))
    if org_name:
        account = mapping.dataverse.account
        organisation = Organisation(
            name=org_name,
            brightpearl_id=bp_id(org_raw.get("organisationId")),
            phone=getattr(phones_model, account.phone_from.split(".")[1]) if account.phone_from else None,
            website=website if account.website_from else None,
            address=getattr(addresses, account.address_from) if account.address_from else None,
        )

    group = None
    cg = mapping.customer_group
    if cg.enabled:
        if cg.brightpearl_source == "price_list":
            price_list = (contact.get("financialDetails") or {}).get("priceListId")
            if price_list not in (None, 0, "0", ""):
                group = mapping.group_by_brightpearl(_as_int(price_list))
                if group is None:
                    group = _unknown_group(
                        mapping, log, "financialDetails.priceListId", f"price list {price_list!r}"
                    )
        else:
            for group_id in contact_group_ids or ():
                group = mapping.group_by_brightpearl(_as_int(group_id))
                if group is not None:
                    break
            if group is None and contact_group_ids and cg.default_group is not None:
                shown = ", ".join(str(g) for g in contact_group_ids)
                group = _unknown_group(mapping, log, "contactGroupIds", f"[{shown}]")

    tags_raw = contact.get("contactTags")
    if isinstance(tags_raw, list | tuple):
        tag_ids = [str(t).strip() for t in tags_raw if str(t).strip()]
    else:
        tag_ids = [t.strip() for t in str(tags_raw or "").split(",") if t.strip()]
    tags = [tag_names.get(int(t), t) if tag_names and t.isdigit() else t for t in tag_ids]

    custom_raw = contact.get("customFields") or {}
    custom = {
        cf.name: custom_from_wire(BRIGHTPEARL_CUSTOM, cf, custom_raw.get(cf.brightpearl), log)
        for cf in mapping.custom_fields
    }

    customer = Customer(
        name=name,
        emails=Emails(**emails),
        phones=phones_model,
        website=website,
        organisation=organisation,
        addresses=addresses,
        customer_group=group,
        marketing_consent=_flag((contact.get("marketingDetails") or {}).get("isReceiveEmailNewsletter")),
        tags=tuple(tags),
        custom_fields=custom,
        ids=ExternalIds(brightpearl=record_id),
        modified_at=parse_bp_time(contact.get("updatedOn")),
        source_system="brightpearl",
    )
    return Translation(customer, log.issues)


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostalAddressDraft:
    """A postal-address POST/PUT body and the contact roles (DEF/BIL/DEL) it fills."""

    roles: tuple[str, ...]
    body: dict[str, Any]


@dataclass
class BrightpearlCustomerPayload:
    """What to send to Brightpearl for one customer.

    Create order (the API requires it): POST each `postal_addresses` body, then
    POST `post_body(address_ids)`, then PATCH `custom_field_ops` to
    /contact/{id}/custom-field, then add the contact to `contact_group_id` if set.
    """

    contact: dict[str, Any]
    postal_addresses: list[PostalAddressDraft] = field(default_factory=list)
    custom_field_ops: list[dict[str, Any]] = field(default_factory=list)
    contact_group_id: int | None = None
    tags: tuple[str, ...] = ()
    contact_id: str | None = None

    def post_body(self, address_ids: Mapping[str, int] | None = None) -> dict[str, Any]:
        """The contact POST body with `postAddressIds` ({"DEF": 107, ...}) filled in."""
        body = dict(self.contact)
        if address_ids:
            body["postAddressIds"] = {
                code: int(address_ids[code]) for code in ("DEF", "BIL", "DEL") if code in address_ids
            }
        return body


def address_body(address: Address) -> dict[str, Any]:
    """Postal-address POST/PUT body. Canonical line3 has no Brightpearl slot: it joins addressLine2."""
    line2 = ", ".join(part for part in (address.line2, address.line3) if part) or None
    body: dict[str, Any] = {
        "addressLine1": address.line1,
        "addressLine2": line2,
        "addressLine3": address.city,
        "addressLine4": address.region,
        "postalCode": address.postcode,
        "countryIsoCode": iso2_to_iso3(address.country) if address.country else None,
    }
    return {key: value for key, value in body.items() if value is not None}


def _checked_name(value: str | None, bp_field: str, canonical: str, log: IssueLog) -> str | None:
    return log.take(check_length(value, BRIGHTPEARL_LIMITS.get(bp_field)), bp_field, canonical)


def role_addresses(customer: Customer) -> dict[str, Address]:
    """{"DEF": Address, ...} for the roles the customer has."""
    out: dict[str, Address] = {}
    for role, code in ROLE_CODES.items():
        address = getattr(customer.addresses, role)
        if address is not None:
            out[code] = address
    return out


def canonical_to_brightpearl(
    customer: Customer, mapping: CustomerMapping
) -> Translation[BrightpearlCustomerPayload]:
    """Translate a canonical Customer into Brightpearl contact + postal address bodies."""
    log = IssueLog(mapping.quality, "brightpearl", customer.ids.brightpearl)

    contact: dict[str, Any] = {
        "salutation": _checked_name(customer.name.salutation, "salutation", "name.salutation", log),
        "firstName": _checked_name(customer.name.first_name, "firstName", "name.first_name", log),
        "lastName": _checked_name(customer.name.last_name, "lastName", "name.last_name", log),
    }
    communication: dict[str, Any] = {}
    emails = {
        code: {"email": getattr(customer.emails, slot)}
        for code, slot in EMAIL_SLOTS.items()
        if getattr(customer.emails, slot)
    }
    phones = {
        code: getattr(customer.phones, slot)
        for code, slot in PHONE_SLOTS.items()
        if getattr(customer.phones, slot)
    }
    if emails:
        communication["emails"] = emails
    if phones:
        communication["telephones"] = phones
    if customer.website:
        communication["websites"] = {"PRI": customer.website}
    if communication:
        contact["communication"] = communication
    contact["relationshipToAccount"] = {"isSupplier": False, "isStaff": False}
    if customer.organisation is not None:
        contact["organisation"] = {"name": customer.organisation.name}
    if customer.marketing_consent is not None:
        contact["marketingDetails"] = {"isReceiveEmailNewsletter": customer.marketing_consent}

    group_id = None
    cg = mapping.customer_group
    row = mapping.group_row_or_issue(customer.customer_group, log) if cg.enabled else None
    if row is not None and cg.brightpearl_source == "price_list":
        contact["financialDetails"] = {"priceListId": row.brightpearl}
    elif row is not None:
        group_id = row.brightpearl
    contact = {key: value for key, value in contact.items() if value is not None}

    drafts = address_drafts(customer, log)

    ops: list[dict[str, Any]] = []
    for cf in mapping.custom_fields:
        ok, value = custom_to_wire(BRIGHTPEARL_CUSTOM, cf, customer.custom_fields.get(cf.name), log)
        if ok and value is not None:
            ops.append({"op": "add", "path": f"/{cf.brightpearl}", "value": value})

    payload = BrightpearlCustomerPayload(
        contact=contact,
        postal_addresses=drafts,
        custom_field_ops=ops,
        contact_group_id=group_id,
        tags=customer.tags,
        contact_id=customer.ids.brightpearl,
    )
    return Translation(payload, log.issues)


# --- updates ----------------------------------------------------------------------------------


def _patch(
    ops: list[dict[str, Any]], path: str, current: object, desired: object, *, removable: bool = True
) -> bool:
    """Append the op turning `current` into `desired`; False if it needs a remove that is not allowed."""
    if current == desired or (current in (None, "") and desired in (None, "")):
        return True
    if desired in (None, ""):
        if not removable:
            return False
        ops.append({"op": "remove", "path": path})
    elif current in (None, ""):
        ops.append({"op": "add", "path": path, "value": desired})
    else:
        ops.append({"op": "replace", "path": path, "value": desired})
    return True


def brightpearl_patch_ops(
    desired: Customer, current_contact: Mapping[str, Any], mapping: CustomerMapping
) -> Translation[list[dict[str, Any]]]:
    """JSON Patch ops for `PATCH /contact-service/contact/{id}` that make the contact match `desired`.

    Only documented patchable paths are used (names, phones, e-mails, newsletter flag).
    Differences elsewhere (website, organisation, price list) cannot be patched; they are
    reported as UnsupportedUpdate (a warning by default). Addresses: `plan_postal_addresses`;
    custom fields: `brightpearl_custom_field_ops`.
    """
    record_id = (
        str(current_contact.get("contactId")) if current_contact.get("contactId") is not None else None
    )
    log = IssueLog(mapping.quality, "brightpearl", record_id)
    ops: list[dict[str, Any]] = []
    for bp_field, canonical, value, removable in (
        ("salutation", "name.salutation", desired.name.salutation, True),
        ("firstName", "name.first_name", desired.name.first_name, False),
        ("lastName", "name.last_name", desired.name.last_name, False),
    ):
        value = _checked_name(value, bp_field, canonical, log)
        if not _patch(
            ops, f"/{bp_field}", clean_text(current_contact.get(bp_field)), value, removable=removable
        ):
            log.add(IssueCode.UNSUPPORTED_UPDATE, bp_field, "cannot be cleared by PATCH", canonical)
    communication = current_contact.get("communication") or {}
    current_phones = communication.get("telephones") or {}
    for code, slot in PHONE_SLOTS.items():
        _patch(
            ops,
            f"/communication/telephones/{code}",
            clean_text(current_phones.get(code)),
            getattr(desired.phones, slot),
        )
    current_emails = communication.get("emails") or {}
    for code, slot in EMAIL_SLOTS.items():
        entry = current_emails.get(code)
        current = entry.get("email") if isinstance(entry, Mapping) else entry
        _patch(ops, f"/communication/emails/{code}/email", clean_text(current), getattr(desired.emails, slot))
    current_flag = (current_contact.get("marketingDetails") or {}).get("isReceiveEmailNewsletter")
    if desired.marketing_consent is not None and current_flag != desired.marketing_consent:
        ops.append(
            {
                "op": "replace",
                "path": "/marketingDetails/isReceiveEmailNewsletter",
                "value": desired.marketing_consent,
            }
        )

    current_website = clean_text((communication.get("websites") or {}).get("PRI"))
    if current_website != desired.website:
        log.add(
            IssueCode.UNSUPPORTED_UPDATE,
            "communication.websites.PRI",
            "cannot be changed by contact PATCH",
            "website",
        )
    current_org = clean_text((current_contact.get("organisation") or {}).get("name"))
    desired_org = desired.organisation.name if desired.organisation else None
    if current_org != desired_org:
        log.add(
            IssueCode.UNSUPPORTED_UPDATE,
            "organisation.name",
            "cannot be changed by contact PATCH",
            "organisation",
        )
    cg = mapping.customer_group
    if cg.enabled and cg.brightpearl_source == "price_list" and desired.customer_group is not None:
        row = mapping.group_row(desired.customer_group)
        current_price_list = (current_contact.get("financialDetails") or {}).get("priceListId")
        if row is not None and current_price_list != row.brightpearl:
            log.add(
                IssueCode.UNSUPPORTED_UPDATE,
                "financialDetails.priceListId",
                "cannot be changed by contact PATCH",
                "customer_group",
            )
    return Translation(ops, log.issues)


def brightpearl_custom_field_ops(
    desired: Customer, current_custom_fields: Mapping[str, Any] | None, mapping: CustomerMapping
) -> Translation[list[dict[str, Any]]]:
    """JSON Patch ops for `PATCH /contact-service/contact/{id}/custom-field` (paths `/PCF_CODE`)."""
    log = IssueLog(mapping.quality, "brightpearl", desired.ids.brightpearl)
    current = current_custom_fields or {}
    ops: list[dict[str, Any]] = []
    for cf in mapping.custom_fields:
        ok, value = custom_to_wire(BRIGHTPEARL_CUSTOM, cf, desired.custom_fields.get(cf.name), log)
        if not ok:
            continue
        raw = current.get(cf.brightpearl)
        if cf.type == "select" and isinstance(raw, Mapping):
            raw = {"id": raw.get("id")}
        _patch(ops, f"/{cf.brightpearl}", raw, value)
    return Translation(ops, log.issues)


@dataclass
class PostalAddressPlan:
    """Address writes for an existing contact.

    `update`: PUT /postal-address/{id} bodies for addresses whose roles all move together;
    `create`: new addresses to POST and then associate with the contact via
    PUT /contact/{id}/postal-address with their `roles` as `type`.
    """

    update: dict[int, dict[str, Any]] = field(default_factory=dict)
    create: list[PostalAddressDraft] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.update and not self.create


def plan_postal_addresses(
    desired: Customer,
    current_contact: Mapping[str, Any],
    current_addresses: Iterable[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]],
    mapping: CustomerMapping,
) -> Translation[PostalAddressPlan]:
    """What to PUT/POST so the contact's DEF/BIL/DEL addresses equal `desired`'s."""
    record_id = (
        str(current_contact.get("contactId")) if current_contact.get("contactId") is not None else None
    )
    log = IssueLog(mapping.quality, "brightpearl", record_id)
    index = _index_addresses(current_addresses)
    current_ids = {code: int(v) for code, v in (current_contact.get("postAddressIds") or {}).items() if v}
    plan = PostalAddressPlan()
    drafts = address_drafts(desired, log)
    for code in current_ids:
        if code in ADDRESS_ROLES and getattr(desired.addresses, ADDRESS_ROLES[code]) is None:
            log.add(
                IssueCode.UNSUPPORTED_UPDATE,
                f"postAddressIds.{code}",
                "cannot be unassigned through the API",
                f"addresses.{ADDRESS_ROLES[code]}",
            )
    for draft in drafts:
        body, codes = draft.body, draft.roles
        ids = {current_ids.get(code) for code in codes}
        if len(ids) == 1 and None not in ids:
            address_id = ids.pop()
            assert address_id is not None
            shared_elsewhere = any(current_ids.get(c) == address_id for c in current_ids if c not in codes)
            current_raw = index.get(address_id)
            if current_raw is not None and _same_address(current_raw, body, mapping):
                continue
            if not shared_elsewhere:
                plan.update[address_id] = body
                continue
        plan.create.append(draft)
    return Translation(plan, log.issues)


def address_drafts(customer: Customer, log: IssueLog) -> list[PostalAddressDraft]:
    """One postal address per distinct address of the customer's roles (DEF/BIL/DEL); roles
    sharing an address share it. A role whose address has no first line is logged and left out."""
    by_body: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for code, address in role_addresses(customer).items():
        if address.line1 is None:
            log.add(
                IssueCode.INCOMPLETE_ADDRESS,
                f"postAddressIds.{code}",
                "has no first line (addressLine1 is required)",
                f"addresses.{ADDRESS_ROLES[code]}",
            )
            continue
        by_body.setdefault(tuple(sorted(address_body(address).items())), []).append(code)
    return [PostalAddressDraft(roles=tuple(codes), body=dict(key)) for key, codes in by_body.items()]


def _same_address(raw: Mapping[str, Any], body: Mapping[str, Any], mapping: CustomerMapping) -> bool:
    scratch = IssueLog(mapping.quality, "brightpearl", None)
    return address_body(_read_address(raw, scratch, "default", mapping)) == dict(body)
