"""Contacts and what hangs off them: postal addresses, custom fields, tags and groups
(contact-service writes, their validation, and contact.* events)."""

from __future__ import annotations

import re
from typing import Any

import pycountry

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.core import StateCore, existing
from sandbox.brightpearl.records.jsonpatch import apply_patch, deep_copy, patch_operations

COUNTRIES = sorted(pycountry.countries, key=lambda c: c.alpha_3)
COUNTRY_IDS = {c.alpha_3: i + 1 for i, c in enumerate(COUNTRIES)}
COUNTRY_BY_ID = {i + 1: c for i, c in enumerate(COUNTRIES)}

PATCHABLE_CONTACT_PATHS: list[tuple[str, set[str]]] = [
    (r"/salutation", {"test", "add", "replace", "remove"}),
    (r"/firstName", {"test", "add", "replace"}),
    (r"/lastName", {"test", "add", "replace"}),
    (r"/communication/telephones/(PRI|SEC|MOB|FAX)", {"test", "add", "replace", "remove", "move", "copy"}),
    (r"/communication/emails/(PRI|SEC|TER)/email", {"test", "add", "replace", "remove", "move", "copy"}),
    (r"/marketingDetails/isReceiveEmailNewsletter", {"test", "replace"}),
    (r"/leadTime", {"replace"}),
    (r"/companyId", {"replace"}),
]


class ContactStore(StateCore):
    contacts: dict[int, dict[str, Any]]
    addresses: dict[int, dict[str, Any]]
    contact_custom_fields: dict[int, dict[str, Any]]
    contact_custom_field_codes: set[str]
    contact_custom_field_meta: dict[str, dict[str, Any]]  # customer custom-field-meta-data by code
    groups: dict[int, dict[str, Any]]
    tags: dict[int, dict[str, Any]]
    price_lists: dict[int, dict[str, Any]]  # read: a contact's price list must exist

    def _reset_contacts(self) -> None:
        self.contacts = {}
        self.addresses = {}
        self.contact_custom_fields = {}
        self.contact_custom_field_codes = {"PCF_LOYALTY", "PCF_NOTES"}
        self.contact_custom_field_meta = {
            "PCF_LOYALTY": {"id": 1, "code": "PCF_LOYALTY", "name": "Loyalty", "customFieldType": "TEXT"},
            "PCF_NOTES": {"id": 2, "code": "PCF_NOTES", "name": "Notes", "customFieldType": "TEXTAREA"},
        }
        self.groups = {
            1: {"id": 1, "name": "VIP customers", "description": "Priority service", "contactIds": set()},
            2: {"id": 2, "name": "Trade", "description": "Trade accounts", "contactIds": set()},
        }
        self.tags = {
            1: {"tagId": 1, "tagName": "newsletter", "tagDescription": ""},
            2: {"tagId": 2, "tagName": "wholesale", "tagDescription": ""},
        }
        self._counters.update({"group": 3, "tag": 3})

    def _seed_contacts(self, count: int) -> list[int]:
        fake, rng = self.faker, self.rng
        created: list[int] = []
        for _ in range(count):
            first, last = fake.first_name(), fake.last_name()
            n = self._counters.get("contact", 1)
            address_id = self._add_address(
                {
                    "addressLine1": fake.street_address().replace("\n", ", ")[:100],
                    "addressLine3": fake.city(),
                    "addressLine4": fake.county(),
                    "postalCode": fake.postcode(),
                    "countryIsoCode": rng.choice(["GBR"] * 6 + ["IRL", "FRA", "USA"]),
                }
            )
            body = {
                "firstName": first[:32],
                "lastName": last[:32],
                "salutation": rng.choice(["Mr", "Ms", "Dr", ""]) or None,
                "postAddressIds": {"DEF": address_id, "BIL": address_id, "DEL": address_id},
                "communication": {
                    "emails": {"PRI": {"email": f"{first}.{last}.{n}@example.com".lower()}},
                    "telephones": {"PRI": fake.phone_number()},
                },
                "organisation": {"name": fake.company()} if rng.random() < 0.4 else None,
                "financialDetails": {
                    "priceListId": rng.choice([2, 2, 2, 3]),
                    "currencyId": 1,
                    "taxCodeId": 1,
                },
                "relationshipToAccount": {"isSupplier": rng.random() < 0.05, "isStaff": False},
            }
            created.append(self.create_contact({k: v for k, v in body.items() if v is not None}, quiet=True))
        return created

    def _add_address(self, body: dict[str, Any], contact_id: int = 0) -> int:
        if not isinstance(body, dict):
            raise bad("postal address must be a JSON object", "CMNC-010")
        line1 = body.get("addressLine1")
        if not isinstance(line1, str) or not line1.strip():
            raise bad("addressLine1 is required", "CNTC-201")
        record: dict[str, Any] = {"contactId": contact_id}
        for key in ("addressLine1", "addressLine2", "addressLine3", "addressLine4", "postalCode"):
            value = body.get(key)
            if value is not None:
                if not isinstance(value, str) or len(value) > 100:
                    raise bad(f"{key} must be text of at most 100 characters", "CNTC-202")
                record[key] = value
        iso = body.get("countryIsoCode")
        cid = body.get("countryId")
        if iso is not None:
            country = pycountry.countries.get(alpha_3=str(iso).upper()) if len(str(iso)) == 3 else None
            if country is None:
                raise bad(f"countryIsoCode {iso!r} is not an ISO 3166 alpha-3 code", "CNTC-203")
        elif cid is not None:
            country = COUNTRY_BY_ID.get(cid) if isinstance(cid, int) else None
            if country is None:
                raise bad(f"countryId {cid!r} is not a known country", "CNTC-204")
        else:
            raise bad("either countryIsoCode or countryId is required", "CNTC-205")
        record.update(
            countryIsoCode=country.alpha_3,
            countryIsoCode2=country.alpha_2,
            countryId=COUNTRY_IDS[country.alpha_3],
        )
        address_id = self.next_id("address")
        record["addressId"] = address_id
        self.addresses[address_id] = record
        return address_id

    def create_address(self, body: dict[str, Any]) -> int:
        with self.lock:
            return self._add_address(body)

    def update_address(self, address_id: int, body: dict[str, Any]) -> None:
        with self.lock:
            old = existing(self.addresses, address_id, f"Postal address {address_id} not found")
            new_id = self._add_address(body, old["contactId"])
            new = self.addresses.pop(new_id)
            self._counters["address"] -= 1
            new["addressId"] = address_id
            self.addresses[address_id] = new
            if old["contactId"] in self.contacts:
                self._touch_contact(old["contactId"])

    def create_contact(self, body: dict[str, Any], quiet: bool = False) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            for key in ("salutation", "firstName", "lastName"):
                value = body.get(key)
                if value is not None and (not isinstance(value, str) or len(value) > 32):
                    raise bad(f"{key} must be text of at most 32 characters", "CNTC-101")
            org = body.get("organisation") or {}
            org_name = org.get("name") if isinstance(org, dict) else body.get("organisation")
            if not (body.get("firstName") or body.get("lastName") or org_name):
                raise bad("A contact needs a firstName, lastName or organisation name", "CNTC-102")
            comm = body.get("communication") or {}
            emails = _emails(comm.get("emails", body.get("emails", {})))
            for code, email in emails.items():
                if "@" not in email["email"] or len(email["email"]) > 255:
                    raise bad(f"emails.{code} {email['email']!r} is not an e-mail address", "CNTC-103")
            phones = comm.get("telephones", body.get("telephones", {})) or {}
            if not isinstance(phones, dict) or any(k not in ("PRI", "SEC", "MOB", "FAX") for k in phones):
                raise bad("telephones keys must be PRI, SEC, MOB or FAX", "CNTC-104")
            addresses = body.get("postAddressIds") or {}
            if not isinstance(addresses, dict) or any(k not in ("DEF", "BIL", "DEL") for k in addresses):
                raise bad("postAddressIds keys must be DEF, BIL or DEL", "CNTC-105")
            for kind, aid in addresses.items():
                if aid not in self.addresses:
                    raise bad(f"postAddressIds.{kind}: postal address {aid!r} does not exist", "CNTC-106")
                if self.addresses[aid]["contactId"]:  # as on association (reference §5.5)
                    raise bad(
                        f"postAddressIds.{kind}: postal address {aid} belongs to another contact", "CNTC-108"
                    )
            fin = dict(body.get("financialDetails") or {})
            if "priceListId" in body:
                fin["priceListId"] = body["priceListId"]
            if fin.get("priceListId") is not None and fin["priceListId"] not in self.price_lists:
                raise bad(f"priceListId {fin['priceListId']!r} does not exist", "CNTC-107")
            rel = body.get("relationshipToAccount") or {}
            contact_id = self.next_id("contact", 200)
            now = self.now()
            record = {
                "contactId": contact_id,
                "isPrimaryContact": True,
                "postAddressIds": dict(addresses),
                "communication": {
                    "emails": emails,
                    "telephones": dict(phones),
                    "messagingVoips": dict(comm.get("messagingVoips", body.get("messagingVoips", {})) or {}),
                    "websites": dict(comm.get("websites", body.get("websites", {})) or {}),
                },
                "contactStatus": {
                    "current": {
                        "contactStatusName": "Customer",
                        "contactStatusId": body.get("contactStatusId", 1),
                    },
                    "history": [
                        {
                            "contactStatusName": "Customer",
                            "contactStatusId": 1,
                            "occuredOn": now,
                            "staffContactId": 4,
                        }
                    ],
                },
                "relationshipToAccount": {
                    "isSupplier": bool(rel.get("isSupplier", body.get("isSupplier", False))),
                    "isStaff": bool(rel.get("isStaff", body.get("isStaff", False))),
                },
                "marketingDetails": {
                    "isReceiveEmailNewsletter": bool(
                        (body.get("marketingDetails") or {}).get(
                            "isReceiveEmailNewsletter", body.get("isReceiveEmailNewsletter", False)
                        )
                    )
                },
                "financialDetails": {
                    "priceListId": fin.get("priceListId") or 2,
                    "nominalCode": str(fin.get("nominalCode", "4000")),
                    "taxCodeId": fin.get("taxCodeId", 1),
                    "creditLimit": fin.get("creditLimit", 0),
                    "creditTermDays": fin.get("creditTermDays", 30),
                    "currencyId": fin.get("currencyId", 1),
                    "discountPercentage": "0.00",
                },
                "assignment": {
                    "current": {"staffOwnerContactId": 0, "leadSourceId": 0, "accountReference": ""}
                },
                "companyId": 0,
                "createdByid": 4,
                "createdOn": now,
                "updatedOn": now,
                "_tags": set(),
            }
            for key in ("salutation", "firstName", "lastName"):
                if body.get(key):
                    record[key] = body[key]
            if org_name:
                record["organisation"] = {"organisationId": contact_id, "name": org_name}
            self.contacts[contact_id] = record
            for aid in addresses.values():
                self.addresses[aid]["contactId"] = contact_id
            if not quiet:
                self.emit("contact.created", [contact_id])
            return contact_id

    def _touch_contact(self, contact_id: int) -> None:
        self.contacts[contact_id]["updatedOn"] = self.now()
        self.emit("contact.modified", [contact_id])

    def contact(self, contact_id: int) -> dict[str, Any]:
        return existing(self.contacts, contact_id, "No Contact Found")

    def patch_contact(self, contact_id: int, ops: Any) -> dict[str, Any]:
        with self.lock:
            record = self.contact(contact_id)
            ops = patch_operations(ops)
            work = deep_copy(record)
            for index, op in enumerate(ops):
                if not isinstance(op, dict) or "op" not in op or "path" not in op:
                    raise bad(f"patch operation {index} needs op and path", "CMNC-011")
                for path in [op["path"]] + ([op["from"]] if "from" in op else []):
                    allowed = next(
                        (ops_ for pat, ops_ in PATCHABLE_CONTACT_PATHS if re.fullmatch(pat, path)), None
                    )
                    if allowed is None:
                        raise bad(f"path {path} cannot be patched on a contact", "CNTC-110")
                    if op["op"] not in allowed:
                        raise bad(f"operation {op['op']} is not allowed on {path}", "CNTC-111")
                if op["path"] in ("/firstName", "/lastName", "/salutation") and op["op"] in (
                    "add",
                    "replace",
                ):
                    value = op.get("value")
                    if not isinstance(value, str) or len(value) > 32:
                        raise bad(f"{op['path'][1:]} must be text of at most 32 characters", "CNTC-101")
                if (
                    op["path"].endswith("/email")
                    and op["op"] in ("add", "replace")
                    and "@" not in str(op.get("value"))
                ):
                    raise bad(f"{op['path']} {op.get('value')!r} is not an e-mail address", "CNTC-103")
                apply_patch(work, op, index)
            work["updatedOn"] = self.now()
            self.contacts[contact_id] = work
            self.emit("contact.modified", [contact_id])
            return work

    def link_addresses(self, contact_id: int, links: Any) -> None:
        with self.lock:
            record = self.contact(contact_id)
            if not isinstance(links, list):
                raise bad("body must be a list of {postalAddressId, type}", "CMNC-010")
            for link in links:
                aid = link.get("postalAddressId") if isinstance(link, dict) else None
                address = self.addresses.get(aid)
                if address is None:
                    raise bad(f"postal address {aid!r} does not exist", "CNTC-106")
                if address["contactId"] not in (0, contact_id):
                    raise bad(f"postal address {aid} belongs to another contact", "CNTC-108")
                if link.get("type") not in (None, "DEF", "BIL", "DEL"):
                    raise bad(f"type {link.get('type')!r} must be DEF, BIL or DEL", "CNTC-105")
            for link in links:
                self.addresses[link["postalAddressId"]]["contactId"] = contact_id
                if link.get("type"):
                    record["postAddressIds"][link["type"]] = link["postalAddressId"]
            self._touch_contact(contact_id)

    def patch_contact_custom_fields(self, contact_id: int, ops: Any) -> dict[str, Any]:
        with self.lock:
            self.contact(contact_id)
            fields = deep_copy(self.contact_custom_fields.get(contact_id, {}))
            if not isinstance(ops, list):
                raise bad("PATCH body must be a JSON Patch array", "CMNC-010")
            for index, op in enumerate(ops):
                code = str(op.get("path", "")).strip("/").split("/")[0]
                if code not in self.contact_custom_field_codes:
                    raise bad(f"custom field {code!r} does not exist", "CNTC-120")
                apply_patch(fields, op, index)
            self.contact_custom_fields[contact_id] = fields
            self._touch_contact(contact_id)
            return fields

    def tag_contacts(self, contact_ids: list[int], tag_id: int) -> None:
        with self.lock:
            if tag_id not in self.tags:
                raise ApiError(404, "CMNC-404", f"Tag {tag_id} not found")
            found = [c for c in contact_ids if c in self.contacts]
            if not found:
                raise ApiError(404, "CMNC-404", "No Contact Found")
            for cid in found:
                if tag_id not in self.contacts[cid]["_tags"]:
                    self.contacts[cid]["_tags"].add(tag_id)
                    self._touch_contact(cid)

    def untag_contact(self, contact_id: int, tag_id: int) -> None:
        with self.lock:
            record = self.contact(contact_id)
            if tag_id in record["_tags"]:
                record["_tags"].discard(tag_id)
                self._touch_contact(contact_id)

    def create_tag(self, body: Any) -> int:
        with self.lock:
            name = body.get("tagName") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name.strip() or len(name) > 64:
                raise bad("tagName is required (at most 64 characters)", "CNTC-130")
            if any(t["tagName"].lower() == name.lower() for t in self.tags.values()):
                raise bad(f"tag {name!r} already exists", "CNTC-131")
            tag_id = self.next_id("tag")
            self.tags[tag_id] = {
                "tagId": tag_id,
                "tagName": name,
                "tagDescription": body.get("tagDescription", ""),
            }
            return tag_id

    def add_group_members(self, group_id: int, body: Any) -> None:
        with self.lock:
            group = existing(self.groups, group_id, f"Contact group {group_id} not found")
            ids = body.get("contactIds") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
                raise bad("contactIds must be a non-empty list of contact ids", "CNTC-140")
            missing = [i for i in ids if i not in self.contacts]
            if missing:
                raise bad(f"contacts {missing} do not exist", "CNTC-141")
            for cid in ids:
                if cid not in group["contactIds"]:
                    group["contactIds"].add(cid)
                    self.contacts[cid]["assignment"]["current"]["contactGroupId"] = group_id
                    self._touch_contact(cid)

    def create_group(self, body: Any) -> int:
        with self.lock:
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise bad("name is required", "CNTC-142")
            gid = self.next_id("group")
            self.groups[gid] = {
                "id": gid,
                "name": name,
                "description": body.get("description", ""),
                "contactIds": set(),
            }
            return gid


def _emails(value: Any) -> dict[str, dict[str, str]]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise bad("emails must map PRI/SEC/TER to addresses", "CNTC-103")
    out = {}
    for code, item in value.items():
        if code not in ("PRI", "SEC", "TER"):
            raise bad(f"emails key {code!r} must be PRI, SEC or TER", "CNTC-103")
        email = item.get("email") if isinstance(item, dict) else item
        if not isinstance(email, str):
            raise bad(f"emails.{code} must be an e-mail address", "CNTC-103")
        out[code] = {"email": email}
    return out
