"""contact-service: contacts, postal addresses, custom fields, tags, groups, contact search."""

from __future__ import annotations

import re
from typing import Any

from sandbox.brightpearl.envelope import Reply, Req, found, id_set, ok
from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.routes.base import RouteBase


class ContactRoutes(RouteBase):
    def addresses_by_contact(self) -> dict[int, list[dict[str, Any]]]:
        """Every postal address grouped by owning contact (built once per request, not per contact)."""
        grouped: dict[int, list[dict[str, Any]]] = {}
        for address in self.state.addresses.values():
            grouped.setdefault(address["contactId"], []).append(address)
        return grouped

    def render_contact(
        self, record: dict[str, Any], addresses: dict[int, list[dict[str, Any]]] | None
    ) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        out["contactTags"] = ",".join(str(t) for t in sorted(record["_tags"]))
        if addresses is not None:
            out["postalAddresses"] = list(addresses.get(record["contactId"], []))
        return out

    def get_contacts(self, req: Req, m: re.Match[str]) -> Reply:
        """Contact GET pages instead of failing above the limit (reference §5.1)."""
        limit = self.config.contact_get_limit
        with self.state.lock:
            ids = id_set(m["ids"]) if m["ids"] else sorted(self.state.contacts)
            if req.params.get("sort", "").upper() == "CONTACTID.DESC":
                ids = sorted(ids, reverse=True)
            present = [i for i in ids if i in self.state.contacts]
            try:
                first = int(req.params.get("firstResult", 1))
                size = min(int(req.params.get("pageSize", limit)), limit)
            except ValueError as exc:
                raise bad("firstResult and pageSize must be integers", "CMNC-024") from exc
            page = present[first - 1 : first - 1 + size]
            addresses = (
                self.addresses_by_contact()
                if "postalAddresses" in req.params.get("includeOptional", "")
                else None
            )
            items = [self.render_contact(self.state.contacts[i], addresses) for i in page]
            if "customFields" in req.params.get("includeOptional", ""):  # optional section, reference §5.1
                for item in items:
                    item["customFields"] = dict(self.state.contact_custom_fields.get(item["contactId"], {}))
        if not items:
            raise ApiError(404, "CMNC-404", "No Contact Found")
        pagination = {
            "resultsAvailable": len(present),
            "resultsReturned": len(items),
            "firstResult": first,
            "lastResult": first + len(items) - 1,
            "morePagesAvailable": first - 1 + len(items) < len(present),
        }
        return ok(
            items, pagination=pagination, sorting={"contactId": "DESC" if ids and ids[0] > ids[-1] else "ASC"}
        )

    def post_contact(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_contact(req.body or {}))

    def patch_contact(self, req: Req, m: re.Match[str]) -> Reply:
        record = self.state.patch_contact(int(m["id"]), req.body)
        with self.state.lock:
            return ok([self.render_contact(record, None)])

    def get_contact_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            self.state.contact(int(m["id"]))
            return ok(dict(self.state.contact_custom_fields.get(int(m["id"]), {})))

    def get_contact_custom_field_meta(self, req: Req, m: re.Match[str]) -> Reply:
        """The customer custom fields' definitions (items as the order ones, reference §6.8)."""
        return self._custom_field_meta(m, "contact_custom_field_meta")

    def patch_contact_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.patch_contact_custom_fields(int(m["id"]), req.body))

    def put_contact_addresses(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.link_addresses(int(m["id"]), req.body)
        return ok({})

    def post_contact_tag(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.tag_contacts(id_set(m["ids"], self.config.get_limit), int(m["tag"]))
        return ok({})

    def delete_contact_tag(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.untag_contact(int(m["id"]), int(m["tag"]))
        return Reply(200, None)

    def post_address(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_address(req.body or {}))

    def get_addresses(self, req: Req, m: re.Match[str]) -> Reply:
        if not m["ids"]:
            raise bad("an ID set is required for postal-address GET", "CNTC-200")
        return self._by_ids(m, "addresses", "Postal Address")

    def put_address(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.update_address(int(m["id"]), req.body or {})
        return ok({})

    def get_groups(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = id_set(m["ids"]) if m["ids"] else sorted(self.state.groups)
            items = [
                {k: (sorted(v) if isinstance(v, set) else v) for k, v in self.state.groups[i].items()}
                for i in ids
                if i in self.state.groups
            ]
        return found(items, "Contact Group")

    def post_group(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_group(req.body))

    def post_group_members(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.add_group_members(int(m["id"]), req.body)
        return ok({})

    def get_tags(self, req: Req, m: re.Match[str]) -> Reply:
        return self._listing(m, "tags", "Tag")

    def post_tag(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_tag(req.body))
