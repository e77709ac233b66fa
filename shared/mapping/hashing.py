"""Content hashes for echo suppression: "what I would write" vs "what the target holds".

`content_hash(customer, target)` hashes only the canonical fields that `target` receives
under the mapping (e.g. Brightpearl never receives tags or address line 3 separately,
Dataverse never receives ids), in the shape the target stores them (lengths truncated to the
target's limits, address line 3 folded into line 2 for Brightpearl). Values in a Customer are
already normalised (whitespace, e-mail case, postcodes, ISO countries), and the JSON is
serialised with sorted keys, so the same content always gives the same hash. Names keep
their case: "mcdonald" -> "McDonald" is a real edit that must sync.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from shared.mapping.brightpearl import ROLE_CODES, address_body
from shared.mapping.columns import BRIGHTPEARL_LIMITS, max_length
from shared.mapping.config import CustomerMapping, load_customer_mapping
from shared.mapping.dataverse import contact_field_values
from shared.model.customer import Address, Customer, System

HASH_VERSION = "c1"  # bump when the projection changes, so stored hashes are not compared across versions


def _cut(value: str | None, limit: int | None) -> str | None:
    return value[:limit] if value is not None and limit is not None else value


def _address(address: Address | None) -> dict[str, Any] | None:
    return address.model_dump() if address is not None else None


def _custom(customer: Customer, mapping: CustomerMapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cf in mapping.custom_fields:
        value = customer.custom_fields.get(cf.name)
        if isinstance(value, str):
            value = _cut(value, cf.max_length)
        out[cf.name] = value.isoformat() if isinstance(value, dt.date) else value
    return out


def project_for_dataverse(customer: Customer, mapping: CustomerMapping) -> dict[str, Any]:
    dv = mapping.dataverse
    values = contact_field_values(customer)
    out: dict[str, Any] = {}
    for field, column in dv.contact_columns.items():
        if column is not None:
            value = values[field]
            out[field] = _cut(value, max_length("contact", column)) if isinstance(value, str) else value
    if dv.marketing_consent.column:
        out["marketing_consent"] = customer.marketing_consent
    for slot, roles in dv.addresses.items():
        address = next(
            (getattr(customer.addresses, r) for r in roles if getattr(customer.addresses, r)), None
        )
        out[f"address.{slot}"] = _address(address)
    org = customer.organisation
    if dv.account.enabled:
        out["organisation"] = (
            None
            if org is None
            else {
                "name": _cut(org.name, max_length("account", "name")),
                "phone": org.phone if dv.account.phone_from else None,
                "website": org.website if dv.account.website_from else None,
                "address": _address(org.address) if dv.account.address_from else None,
            }
        )
    cg = mapping.customer_group
    if cg.enabled:
        # the group is only stored where a column receives it: on the contact, or on the
        # account when there is one (otherwise it could never be read back and would never match)
        on_contact = any(t.entity == "contact" for t in cg.dataverse_columns)
        on_account = (
            dv.account.enabled
            and org is not None
            and any(t.entity == "account" for t in cg.dataverse_columns)
        )
        if on_contact or on_account:
            out["customer_group"] = customer.customer_group
    out["custom_fields"] = _custom(customer, mapping)
    return out


def project_for_brightpearl(customer: Customer, mapping: CustomerMapping) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name.salutation": _cut(customer.name.salutation, BRIGHTPEARL_LIMITS["salutation"]),
        "name.first_name": _cut(customer.name.first_name, BRIGHTPEARL_LIMITS["firstName"]),
        "name.last_name": _cut(customer.name.last_name, BRIGHTPEARL_LIMITS["lastName"]),
        "emails": customer.emails.model_dump(),
        "phones": customer.phones.model_dump(),
        "website": customer.website,
        "organisation": customer.organisation.name if customer.organisation else None,
        "marketing_consent": customer.marketing_consent,
        "custom_fields": _custom(customer, mapping),
    }
    for role, code in ROLE_CODES.items():
        address = getattr(customer.addresses, role)
        out[f"address.{code}"] = address_body(address) if address is not None and address.line1 else None
    if mapping.customer_group.enabled:
        out["customer_group"] = customer.customer_group
    return out


def project_for_target(customer: Customer, target_system: System, mapping: CustomerMapping) -> dict[str, Any]:
    """The canonical fields `target_system` receives, as it would store them."""
    if target_system == "dataverse":
        return project_for_dataverse(customer, mapping)
    if target_system == "brightpearl":
        return project_for_brightpearl(customer, mapping)
    raise ValueError(f"unknown target system {target_system!r}")


def content_hash(customer: Customer, target_system: System, mapping: CustomerMapping | None = None) -> str:
    """Stable hash of what `target_system` would hold for this customer (hex, version-prefixed)."""
    mapping = mapping or load_customer_mapping()
    projection = project_for_target(customer, target_system, mapping)
    text = json.dumps(projection, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{HASH_VERSION}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"
