"""Single-record requests: POST, PATCH (update or upsert by key), DELETE, one property or navigation."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.api.keys import duplicate_key
from sandbox.dataverse.protocol import (
    API_PREFIX,
    SimRequest,
    SimResponse,
    etag,
)
from sandbox.dataverse.schema import Table


class Crud(EngineBase):
    def _create_request(self, req: SimRequest, table: Table) -> SimResponse:
        body = self._decode_body(req)
        rid = self.create(table, body, req)
        return self._write_response(req, table, rid, created=True)

    def _write_response(
        self, req: SimRequest, table: Table, rid: str, *, created: bool, key_url: str | None = None
    ) -> SimResponse:
        url = f"{req.base_url}{API_PREFIX}{key_url or f'{table.entity_set}({rid})'}"
        if "return" in req.prefer and req.prefer["return"] == "representation":
            record = self.db.rows[table.logical_name][rid]
            select = self._select(table, req.params.get("$select"))
            body = self.render(table, record, select, req, entity=True)
            return SimResponse.json(
                201 if created else 200,
                body,
                {
                    "Preference-Applied": "return=representation",
                    "ETag": etag(record),
                },
            )
        return SimResponse.empty(204, {"OData-EntityId": url, "Location": url})

    def _patch(self, req: SimRequest, table: Table, key: dict[str, Any], key_text: str) -> SimResponse:
        """Update, or upsert when no record has the key (If-Match forbids creating, If-None-Match: *
        forbids updating)."""
        body = self._decode_body(req)
        record = self.find(table, key)
        if record is None:
            if req.header("if-match") is not None:
                raise self._missing(table, key)
        else:
            if req.header("if-none-match") == "*":
                raise duplicate_key()
            self._check_if_match(req, record)
        rid = self.upsert(table, key, record, body, req)
        key_url = None if key.get(table.primary_id) else f"{table.entity_set}({key_text})"
        return self._write_response(req, table, rid, created=record is None, key_url=key_url)

    def _delete_request(self, req: SimRequest, table: Table, key: dict[str, Any]) -> SimResponse:
        record = self.existing(table, key)
        self._check_if_match(req, record)
        self.delete(table, record, req)
        return SimResponse.empty(204)

    def _property(self, req: SimRequest, table: Table, key: dict[str, Any], rest: str) -> SimResponse:
        record = self.existing(table, key)
        parts = rest.split("/")
        name = parts[0]
        method = req.method.upper()
        navs = table.navigation()
        if len(parts) == 2 and parts[1] == "$ref" and name in navs and method == "DELETE":
            self.update(table, record, {f"{name}@odata.bind": None}, req)
            return SimResponse.empty(204)
        if len(parts) == 2 and parts[1] == "$ref" and name in navs and method == "PUT":
            payload = self._decode_body(req)
            self.update(table, record, {f"{name}@odata.bind": payload.get("@odata.id")}, req)
            return SimResponse.empty(204)
        if name in table.one_to_many and method == "GET" and len(parts) == 1:
            child_table, rows = self.children(table, record, name)
            select = self._select(child_table, req.params.get("$select"))
            return SimResponse.json(
                200,
                {
                    "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#{child_table.entity_set}",
                    "value": [self.render(child_table, r, select, req) for r in rows],
                },
            )
        column = table.columns.get(name)
        if column is None or len(parts) > 1:
            raise E.segment_not_found(name)
        if method == "GET":
            value = record.get(name)
            return SimResponse.json(
                200,
                {
                    "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#"
                    f"{table.entity_set}({record[table.primary_id]})/{name}",
                    "value": value,
                },
            )
        if method == "PUT":
            payload = self._decode_body(req)
            self.update(table, record, {name: payload.get("value")}, req)
            return SimResponse.empty(204)
        if method == "DELETE":
            self.update(table, record, {name: None}, req)
            return SimResponse.empty(204)
        raise self._no_resource(req)
