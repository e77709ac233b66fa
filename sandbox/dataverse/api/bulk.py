"""Bulk messages: CreateMultiple, UpdateMultiple, UpsertMultiple (DeleteMultiple refused)."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.api.keys import split_resource_path
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    API_PREFIX,
    SimRequest,
    SimResponse,
)
from sandbox.dataverse.schema import Table

BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple", "DeleteMultiple")


class Bulk(EngineBase):
    def bulk_supported(self, table: Table, message: str) -> bool:
        return message in table.bulk

    def _bulk(self, req: SimRequest, table: Table, message: str) -> SimResponse:
        if message == "DeleteMultiple":
            raise ODataError(400, E.NOT_IMPLEMENTED, "DeleteMultiple has not yet been implemented.")
        if not self.bulk_supported(table, message):
            # exact wording for an unsupported table UNCONFIRMED
            raise ODataError(
                400,
                E.NOT_IMPLEMENTED,
                f"The '{message}' message is not supported for entity '{table.logical_name}'.",
            )
        body = self._decode_body(req)
        targets = body.get("Targets")
        if not isinstance(targets, list) or not targets:
            raise ODataError(
                400,
                E.PAYLOAD_ERROR,
                "Error identified in Payload provided by the user: 'Targets' must be a non-empty array.",
            )
        ids: list[str] = []
        with self.db.transaction():  # all-or-nothing on standard tables
            for index, target in enumerate(targets):
                if not isinstance(target, dict) or target.get("@odata.type") != table.odata_type:
                    raise ODataError(
                        400, E.PAYLOAD_ERROR, f"Targets[{index}]: '@odata.type' must be '{table.odata_type}'."
                    )
                data = {k: v for k, v in target.items() if k not in ("@odata.type", "@odata.id")}
                if message == "CreateMultiple":
                    ids.append(self.create(table, data, req))
                elif message == "UpdateMultiple":
                    rid = data.pop(table.primary_id, None)
                    record = self.db.rows[table.logical_name].get(str(rid).lower()) if rid else None
                    if record is None:
                        raise ODataError(
                            404,
                            E.NOT_FOUND,
                            f"{table.logical_name.capitalize()} With Ids = {rid} Do Not Exist",
                        )
                    self.update(table, record, data, req)
                else:
                    key = self._target_key(table, target, data, index)
                    self.upsert(table, key, self.find(table, key), data, req)
        if message == "CreateMultiple":
            return SimResponse.json(
                200,
                {
                    "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#"
                    "Microsoft.Dynamics.CRM.CreateMultipleResponse",
                    "Ids": ids,
                },
            )
        return SimResponse.empty(204)

    def _target_key(
        self, table: Table, target: dict[str, Any], data: dict[str, Any], index: int
    ) -> dict[str, Any]:
        """An UpsertMultiple target's key: its `@odata.id` (primary or alternate key) or its id column."""
        if "@odata.id" in target:
            ref = str(target["@odata.id"]).lstrip("/")
            set_name, key_text, _ = split_resource_path(ref)
            if set_name != table.entity_set or key_text is None:
                raise ODataError(
                    400,
                    E.PAYLOAD_ERROR,
                    f"Targets[{index}]: '@odata.id' must address {table.entity_set}.",
                )
            return self._parse_key(table, key_text)
        if table.primary_id in data:
            return {table.primary_id: str(data[table.primary_id]).lower()}
        raise ODataError(
            400,
            E.PAYLOAD_ERROR,
            f"Targets[{index}]: needs '@odata.id' or '{table.primary_id}'.",
        )
