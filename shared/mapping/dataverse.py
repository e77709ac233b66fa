"""Dataverse contact (+ parent account) <-> canonical Customer (reference dataverse-api.md §3.6, §10).

Reading takes the contact row as the Web API returns it (columns, `_parentcustomerid_value`,
`modifiedon`) and its parent account, either passed separately or expanded inline as
`parentcustomerid_account` (`$expand=parentcustomerid_account(...)`). Writing produces the
contact and account column payloads, the `parentcustomerid_account@odata.bind` reference
(alternate key `bpi_brightpearlid` or accountid) and UpsertMultiple targets keyed by the
`bpi_brightpearlid` alternate key.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.mapping.brightpearl import bp_id, parse_bp_time
from shared.mapping.columns import ENTITY_SETS, max_length
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
    iso2_to_name,
    normalise_email,
    normalise_phone,
)

ADDRESS_PARTS = {  # canonical Address attribute -> Dataverse column suffix
    "line1": "line1",
    "line2": "line2",
    "line3": "line3",
    "city": "city",
    "region": "stateorprovince",
    "postcode": "postalcode",
    "country": "country",
}
PARENT_ACCOUNT_BIND = "parentcustomerid_account@odata.bind"
_SAFE_KEY = re.compile(r"^[^/<>*%&:\\?+]{1,100}$")


def parse_dv_time(value: object) -> dt.datetime | None:
    """Dataverse ISO 8601 (UTC, Z): read like Brightpearl's; an unreadable time is unknown."""
    return parse_bp_time(value)


def key_reference(entity_set: str, column: str, value: str) -> str:
    """`accounts(bpi_brightpearlid='4')`: an alternate-key reference, single quotes doubled."""
    if not _SAFE_KEY.match(value):
        raise ValueError(
            f"{column} value cannot be used in a key reference (characters / < > * % & : \\ ? + not allowed)"
        )
    return f"{entity_set}({column}='{value.replace(chr(39), chr(39) * 2)}')"


def id_reference(entity_set: str, guid: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", guid):
        raise ValueError(f"{entity_set} id is not a GUID")
    return f"{entity_set}({guid})"


# --- what to fetch ------------------------------------------------------------------------------


def contact_select(mapping: CustomerMapping) -> list[str]:
    """The contact columns `dataverse_to_canonical` reads (for `$select`), sorted."""
    dv = mapping.dataverse
    columns = {"contactid", "modifiedon", "_parentcustomerid_value", dv.contact_key}
    columns |= {c for c in dv.contact_columns.values() if c}
    if dv.marketing_consent.column:
        columns.add(dv.marketing_consent.column)
    for slot in dv.addresses:
        columns |= {f"{slot}_{suffix}" for suffix in ADDRESS_PARTS.values()}
    columns |= {t.column for t in mapping.customer_group.dataverse_columns if t.entity == "contact"}
    columns |= {cf.dataverse for cf in mapping.custom_fields}
    return sorted(columns)


def account_select(mapping: CustomerMapping) -> list[str]:
    """The account columns read for the parent account (for `$select`), sorted."""
    settings = mapping.dataverse.account
    columns = {"accountid", "modifiedon", "name", "telephone1", "websiteurl", settings.key}
    columns |= {f"{settings.address_slot}_{suffix}" for suffix in ADDRESS_PARTS.values()}
    columns |= {t.column for t in mapping.customer_group.dataverse_columns if t.entity == "account"}
    return sorted(columns)


def required_columns(mapping: CustomerMapping) -> dict[str, list[str]]:
    """Columns each Dataverse table must have for this mapping (for the environment check).

    Everything the translators read or write, without system columns and lookup values;
    `bpi_*` entries come from the integration's solution, the rest are standard columns.
    """
    system = {"contactid", "accountid", "modifiedon", "_parentcustomerid_value"}
    out = {"contact": [c for c in contact_select(mapping) if c not in system]}
    if mapping.dataverse.account.enabled:
        out["account"] = [c for c in account_select(mapping) if c not in system]
    return out


def contact_query(mapping: CustomerMapping) -> dict[str, str]:
    """`$select` and `$expand` query options that fetch a contact with its parent account inline."""
    query = {"$select": ",".join(contact_select(mapping))}
    if mapping.dataverse.account.enabled:
        query["$expand"] = f"parentcustomerid_account($select={','.join(account_select(mapping))})"
    return query


# --- reading ----------------------------------------------------------------------------------


def _read_address(
    row: Mapping[str, Any], slot: str, entity: str, log: IssueLog, canonical: str, mapping: CustomerMapping
) -> Address | None:
    values: dict[str, Any] = {}
    for attr, suffix in ADDRESS_PARTS.items():
        column = f"{slot}_{suffix}"
        raw = row.get(column)
        if attr == "country":
            field = column if entity == "contact" else f"account.{column}"
            values[attr] = (
                log.take(country_to_iso2(raw, mapping.countries.aliases), field, canonical) if raw else None
            )
        else:
            values[attr] = raw
    address = Address(**values)
    return None if address.is_empty() else address


def _strict_bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(raw)
    return raw


def _whole_number(raw: object) -> int:
    if not isinstance(raw, (int, float, str)):
        raise ValueError(raw)
    return int(raw)


DATAVERSE_CUSTOM = CustomFieldWire(
    field=lambda cf: cf.dataverse,
    read_bool=_strict_bool,
    read_int=_whole_number,
    option_id=lambda raw: raw,
    is_option=lambda option, raw: option.dataverse == raw,
    write_option=lambda option: option.dataverse,
    option_noun="choice",
)


def dataverse_to_canonical(
    contact: Mapping[str, Any],
    mapping: CustomerMapping,
    *,
    account: Mapping[str, Any] | None = None,
) -> Translation[Customer]:
    """Translate a Dataverse contact row (and its parent account row) into a canonical Customer."""
    record_id = contact.get("contactid")
    log = IssueLog(mapping.quality, "dataverse", str(record_id) if record_id else None)
    columns = mapping.dataverse.contact_columns

    def col(field: str) -> Any:
        column = columns.get(field)
        return contact.get(column) if column else None

    last_name = clean_text(col("name.last_name"))
    last_name_column = columns.get("name.last_name")
    if last_name is None and last_name_column:
        log.add(IssueCode.MISSING_LAST_NAME, last_name_column, "is empty", "name.last_name")
    name = PersonName(
        salutation=col("name.salutation"), first_name=col("name.first_name"), last_name=last_name
    )

    emails = {
        slot: log.take(
            normalise_email(col(f"emails.{slot}")), columns.get(f"emails.{slot}") or slot, f"emails.{slot}"
        )
        for slot in ("primary", "secondary", "tertiary")
    }
    roles: dict[str, Address | None] = {"default": None, "billing": None, "shipping": None}
    for slot, slot_roles in mapping.dataverse.addresses.items():
        address = _read_address(contact, slot, "contact", log, f"addresses.{slot_roles[0]}", mapping)
        for role in slot_roles:
            roles[role] = address
    region = mapping.quality.phone_region(
        *(getattr(roles[r], "country", None) for r in ("billing", "default", "shipping"))
    )
    phones = {
        slot: log.take(
            normalise_phone(col(f"phones.{slot}"), region),
            columns.get(f"phones.{slot}") or slot,
            f"phones.{slot}",
        )
        for slot in ("telephone", "secondary", "mobile", "fax")
    }

    expanded = "parentcustomerid_account" in contact  # $expand answers null when the parent is no account
    if account is None and isinstance(contact.get("parentcustomerid_account"), Mapping):
        account = contact["parentcustomerid_account"]
    parent = contact.get("_parentcustomerid_value")
    parent_type = contact.get("_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
    if (
        account is None
        and not expanded
        and parent
        and parent_type != "contact"
        and mapping.dataverse.account.enabled
    ):
        raise MappingInputError(
            f"contact {record_id} has parent customer {parent}; pass its account row "
            "(or $expand=parentcustomerid_account)"
        )

    organisation = None
    settings = mapping.dataverse.account
    if account is not None and settings.enabled and clean_text(account.get("name")):
        org_address = _read_address(
            account, settings.address_slot, "account", log, "organisation.address", mapping
        )
        org_region = region
        if org_address is not None and org_address.country and mapping.quality.phone_region_from_address:
            org_region = org_address.country
        key_value = account.get(settings.key)
        organisation = Organisation(
            name=account["name"],
            phone=log.take(
                normalise_phone(account.get("telephone1"), org_region),
                "account.telephone1",
                "organisation.phone",
            ),
            website=account.get("websiteurl"),
            address=org_address,
            brightpearl_id=bp_id(key_value),
            dataverse_id=account.get("accountid"),
        )

    group = _read_group(contact, account, mapping, log)

    consent = None
    mc = mapping.dataverse.marketing_consent
    if mc.column and isinstance(contact.get(mc.column), bool):
        consent = not contact[mc.column] if mc.inverted else contact[mc.column]

    tags_raw = col("tags")
    tags = tuple(tags_raw.split(",")) if isinstance(tags_raw, str) else ()

    custom = {
        cf.name: custom_from_wire(DATAVERSE_CUSTOM, cf, contact.get(cf.dataverse), log)
        for cf in mapping.custom_fields
    }

    times = [
        t
        for t in (
            parse_dv_time(contact.get("modifiedon")),
            parse_dv_time(account.get("modifiedon")) if account else None,
        )
        if t
    ]
    key_value = contact.get(mapping.dataverse.contact_key)
    customer = Customer(
        name=name,
        emails=Emails(**emails),
        phones=Phones(**phones),
        website=col("website"),
        organisation=organisation,
        addresses=Addresses(**roles),
        customer_group=group,
        marketing_consent=consent,
        tags=tags,
        custom_fields=custom,
        ids=ExternalIds(
            dataverse=str(record_id) if record_id else None,
            brightpearl=bp_id(key_value),
        ),
        modified_at=max(times) if times else None,
        source_system="dataverse",
    )
    return Translation(customer, log.issues)


def _read_group(
    contact: Mapping[str, Any], account: Mapping[str, Any] | None, mapping: CustomerMapping, log: IssueLog
) -> str | None:
    """The canonical group from the first Dataverse column that names exactly one group.

    A column whose value several groups share (e.g. Relationship Type 9 for trade and
    wholesale) only decides when no column is unambiguous; then `prefer_on_read` picks.
    """
    cg = mapping.customer_group
    if not cg.enabled:
        return None
    fallback: str | None = None
    for target in cg.dataverse_columns:
        row = contact if target.entity == "contact" else account
        value = row.get(target.column) if row is not None else None
        if value in (None, ""):
            continue
        matches = mapping.groups_for_dataverse_value(target.column, value)
        if len(matches) == 1:
            return matches[0].group
        if not matches:
            field = target.column if target.entity == "contact" else f"account.{target.column}"
            log.add(
                IssueCode.UNMAPPABLE_VALUE,
                field,
                f"value {value!r} has no entry in customer_group.values",
                "customer_group",
            )
            return None
        fallback = fallback or mapping.group_from_dataverse(target.column, value)
    return fallback


# --- writing ----------------------------------------------------------------------------------


@dataclass
class DataverseCustomerPayload:
    """Columns to write to Dataverse for one customer.

    `contact` never contains its key column; address the row by `contact_key_value`
    (alternate key) or `contact_id`. `account` is None when the customer has no
    organisation (or accounts are disabled); the contact binds to it through
    `contact[PARENT_ACCOUNT_BIND]`, so write the account first.
    """

    contact: dict[str, Any]
    contact_key_column: str
    contact_key_value: str | None
    contact_id: str | None = None
    account: dict[str, Any] | None = None
    account_key_column: str | None = None
    account_key_value: str | None = None
    account_id: str | None = None

    def contact_upsert_target(self, columns: dict[str, Any] | None = None) -> dict[str, Any]:
        """One `Targets` item of contacts/Microsoft.Dynamics.CRM.UpsertMultiple.

        Addressed by contactid when it is known (a contact linked by e-mail that has no
        Brightpearl id yet gets its key column set in the body), else by the alternate key,
        which creates the row when it does not exist. `columns` replaces the full column set,
        e.g. with `contact_delta(...)` for an update.
        """
        return self._target(
            "contact",
            self.contact_key_column,
            self.contact_key_value,
            self.contact_id,
            self.contact if columns is None else columns,
        )

    def account_upsert_target(self, columns: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if self.account is None:
            return None
        assert self.account_key_column is not None
        return self._target(
            "account",
            self.account_key_column,
            self.account_key_value,
            self.account_id,
            self.account if columns is None else columns,
        )

    def contact_delta(self, current: Mapping[str, Any] | None) -> dict[str, Any]:
        """Only the contact columns that differ from the current row (Dataverse: send deltas only).

        The parent-account bind is kept when the current parent is not known to be the same
        account (compared by accountid, or by the expanded account's key column).
        """
        if current is None:
            return dict(self.contact)
        delta = {
            column: value
            for column, value in self.contact.items()
            if column != PARENT_ACCOUNT_BIND and not _same_value(current.get(column), value)
        }
        if PARENT_ACCOUNT_BIND in self.contact and not self._same_parent(current):
            delta[PARENT_ACCOUNT_BIND] = self.contact[PARENT_ACCOUNT_BIND]
        return delta

    def account_delta(self, current: Mapping[str, Any] | None) -> dict[str, Any]:
        if self.account is None:
            return {}
        if current is None:
            return dict(self.account)
        return {c: v for c, v in self.account.items() if not _same_value(current.get(c), v)}

    def _same_parent(self, current: Mapping[str, Any]) -> bool:
        parent_id = current.get("_parentcustomerid_value")
        if self.account_id and parent_id:
            return str(parent_id).lower() == self.account_id.lower()
        expanded = current.get("parentcustomerid_account")
        if isinstance(expanded, Mapping) and self.account_key_column and self.account_key_value:
            return str(expanded.get(self.account_key_column) or "") == self.account_key_value
        return False

    @staticmethod
    def _target(
        entity: str, key_column: str, key_value: str | None, row_id: str | None, columns: dict[str, Any]
    ) -> dict[str, Any]:
        entity_set = ENTITY_SETS[entity]
        head: dict[str, Any] = {"@odata.type": f"Microsoft.Dynamics.CRM.{entity}"}
        if row_id:
            head["@odata.id"] = id_reference(entity_set, row_id)
            if key_value:
                head[key_column] = key_value  # addressed by id: the key is an ordinary column here
        elif key_value:
            head["@odata.id"] = key_reference(entity_set, key_column, key_value)
        else:
            raise ValueError(f"{entity} row has neither {key_column} nor an id")
        return {**head, **columns}


def _same_value(current: object, desired: object) -> bool:
    if current in (None, "") and desired in (None, ""):
        return True
    return current == desired


def address_columns(
    address: Address | None, slot: str, entity: str, log: IssueLog, canonical: str, mapping: CustomerMapping
) -> dict[str, Any]:
    """`{slot}_line1` … `{slot}_country` columns (all of them; None clears a part)."""
    out: dict[str, Any] = {}
    for attr, suffix in ADDRESS_PARTS.items():
        column = f"{slot}_{suffix}"
        value = getattr(address, attr) if address is not None else None
        if attr == "country" and value is not None:
            value = iso2_to_name(value, mapping.countries.dataverse_names)
        field = column if entity == "contact" else f"account.{column}"
        out[column] = log.take(check_length(value, max_length(entity, column)), field, canonical)
    return out


def contact_field_values(customer: Customer) -> dict[str, Any]:
    """The canonical values that `dataverse.contact_columns` in the mapping can name (tags as a list)."""
    return {
        "name.salutation": customer.name.salutation,
        "name.first_name": customer.name.first_name,
        "name.last_name": customer.name.last_name,
        "emails.primary": customer.emails.primary,
        "emails.secondary": customer.emails.secondary,
        "emails.tertiary": customer.emails.tertiary,
        "phones.telephone": customer.phones.telephone,
        "phones.secondary": customer.phones.secondary,
        "phones.mobile": customer.phones.mobile,
        "phones.fax": customer.phones.fax,
        "website": customer.website,
        "tags": list(customer.tags) or None,
    }


def canonical_to_dataverse(
    customer: Customer, mapping: CustomerMapping, *, account_id: str | None = None
) -> Translation[DataverseCustomerPayload]:
    """Translate a canonical Customer into Dataverse contact (+ account) columns.

    `account_id` is the Dataverse accountid of the customer's organisation when the caller
    knows it (from the link table); it is used for the bind when `account.bind` is `id`.
    """
    log = IssueLog(mapping.quality, "dataverse", customer.ids.dataverse)
    dv = mapping.dataverse
    contact: dict[str, Any] = {}
    values = contact_field_values(customer)
    values["tags"] = ", ".join(values["tags"]) if values["tags"] else None
    for field, column in dv.contact_columns.items():
        if column is None:
            continue
        limit = max_length("contact", column)
        contact[column] = log.take(check_length(values[field], limit), column, field)

    for slot, roles in dv.addresses.items():
        address = next(
            (getattr(customer.addresses, r) for r in roles if getattr(customer.addresses, r)), None
        )
        contact.update(address_columns(address, slot, "contact", log, f"addresses.{roles[0]}", mapping))

    mc = dv.marketing_consent
    if mc.column and customer.marketing_consent is not None:
        contact[mc.column] = (not customer.marketing_consent) if mc.inverted else customer.marketing_consent

    account: dict[str, Any] | None = None
    account_key_value = None
    settings = dv.account
    org = customer.organisation
    known_account_id = account_id or (org.dataverse_id if org else None)
    if org is not None and settings.enabled:
        account = {
            "name": log.take(
                check_length(org.name, max_length("account", "name")), "account.name", "organisation"
            ),
        }
        # only the parts the mapping derives from a Brightpearl contact are written (and cleared)
        if settings.phone_from:
            account["telephone1"] = org.phone
        if settings.website_from:
            account["websiteurl"] = log.take(
                check_length(org.website, max_length("account", "websiteurl")),
                "account.websiteurl",
                "organisation",
            )
        if settings.address_from:
            account.update(
                address_columns(
                    org.address, settings.address_slot, "account", log, "organisation.address", mapping
                )
            )
        account_key_value = org.brightpearl_id
        if settings.bind == "id" and known_account_id:
            contact[PARENT_ACCOUNT_BIND] = "/" + id_reference("accounts", known_account_id)
        elif account_key_value:
            contact[PARENT_ACCOUNT_BIND] = "/" + key_reference("accounts", settings.key, account_key_value)
        elif known_account_id:
            contact[PARENT_ACCOUNT_BIND] = "/" + id_reference("accounts", known_account_id)

    cg = mapping.customer_group
    if cg.enabled and cg.dataverse_columns:
        row = mapping.group_row_or_issue(customer.customer_group, log)
        for target in cg.dataverse_columns:
            value = row.dataverse.get(target.column) if row is not None else None
            if target.entity == "contact":
                contact[target.column] = value
            elif account is not None and value is not None:
                account[target.column] = value  # an account is shared: never cleared from one contact

    for cf in mapping.custom_fields:
        ok, value = custom_to_wire(DATAVERSE_CUSTOM, cf, customer.custom_fields.get(cf.name), log)
        if ok:
            contact[cf.dataverse] = value

    payload = DataverseCustomerPayload(
        contact=contact,
        contact_key_column=dv.contact_key,
        contact_key_value=customer.ids.brightpearl,
        contact_id=customer.ids.dataverse,
        account=account,
        account_key_column=settings.key if account is not None else None,
        account_key_value=account_key_value,
        account_id=known_account_id if account is not None else None,
    )
    return Translation(payload, log.issues)
