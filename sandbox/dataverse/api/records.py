"""Record writes: a body applied to a record; create, update, upsert and delete, with their events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse import query as Q
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.api.keys import duplicate_key
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    SimRequest,
    new_guid,
    utc_iso,
    visible,
)
from sandbox.dataverse.schema import Table
from sandbox.dataverse.store import Event


class Records(EngineBase):
    def apply_body(
        self, table: Table, body: dict[str, Any], req: SimRequest, *, creating: bool, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Validate `body` and write it into `record`; return the attributes actually written."""
        written: dict[str, Any] = {}
        navs = table.navigation()
        deferred_children: list[tuple[str, list[Any]]] = []
        for name, value in body.items():
            if name in ("@odata.type", "@odata.id", "@odata.etag", "@odata.context"):
                if name == "@odata.type" and value != table.odata_type:
                    raise ODataError(
                        400,
                        E.PAYLOAD_ERROR,
                        f"The '@odata.type' '{value}' does not match entity '{table.odata_type}'.",
                    )
                continue
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                if nav in navs:
                    column, target_table = navs[nav]
                    if value is None:
                        record[column.name] = None
                        written[column.name] = None
                        continue
                    if not isinstance(value, str):
                        raise ODataError(
                            400,
                            E.PAYLOAD_ERROR,
                            f"Error identified in Payload provided by the user for Entity :"
                            f"'{table.entity_set}': the value of '{name}' must be a string.",
                        )
                    ref_table, ref_record = self.resolve_reference(value, req)
                    if ref_table.logical_name != target_table:
                        raise ODataError(
                            400,
                            E.PAYLOAD_ERROR,
                            f"Error identified in Payload provided by the user for Entity :"
                            f"'{table.entity_set}': '{nav}' expects "
                            f"'{target_table}', got '{ref_table.logical_name}'.",
                        )
                    ref = {"id": ref_record[ref_table.primary_id], "table": target_table, "nav": nav}
                    record[column.name] = ref
                    written[column.name] = ref
                    continue
                if nav in table.one_to_many:
                    continue  # associating collections on create: accepted, not modelled further
                raise ODataError(
                    400,
                    E.PAYLOAD_ERROR,
                    f"Error identified in Payload provided by the user for Entity :'{table.entity_set}' ---> "
                    f"System.Exception: Microsoft.OData.ODataException: An undeclared property '{nav}' which "
                    "only has property annotations in the payload but no property value was found in the "
                    "payload. In OData, only declared navigation properties and declared named streams can "
                    "be represented as properties without values.",
                )
            if "@" in name:
                continue  # instance annotations in a payload are ignored
            if name in navs and isinstance(value, dict):
                # deep insert of a single-valued navigation property
                column, target_table = navs[name]
                child_table = self.schema.tables[target_table]
                child_id = self.create(child_table, value, req)
                ref = {"id": child_id, "table": target_table, "nav": name}
                record[column.name] = ref
                written[column.name] = ref
                continue
            if name in table.one_to_many and isinstance(value, list):
                deferred_children.append((name, value))
                continue
            column = table.columns.get(name)
            if column is None or column.is_lookup:
                t = table.odata_type
                raise ODataError(
                    400,
                    "0x0",
                    "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
                    f"Invalid property '{name}' was found in entity '{t}'. ---> "
                    "Microsoft.OData.ODataException: Does not support untyped value in non-open type.",
                )
            if column.type == "pk":
                if creating and (not isinstance(value, str) or not Q.GUID_RE.fullmatch(value)):
                    raise ODataError(400, E.INVALID_ARGUMENT, f"'{name}' must be a GUID.")
                continue
            if column.readonly:
                if self.config.readonly_writes == "reject":
                    raise ODataError(
                        400,
                        E.INVALID_ARGUMENT,
                        f"The '{name}' attribute of the '{table.logical_name}' entity is read-only.",
                    )
                continue
            if column.create_only and not creating:
                continue
            checked = self._check_value(table, column, value)
            record[name] = checked
            written[name] = checked
        record["__children"] = deferred_children
        return written

    def create(
        self,
        table: Table,
        body: dict[str, Any],
        req: SimRequest,
        *,
        key_values: dict[str, Any] | None = None,
        record_id: str | None = None,
    ) -> str:
        with self.db.transaction():
            record: dict[str, Any] = {}
            written = self.apply_body(table, body, req, creating=True, record=record)
            children = record.pop("__children", [])
            if key_values:
                for col, val in key_values.items():
                    if record.get(col) is None:
                        record[col] = val
                        written[col] = val
            given_id = body.get(table.primary_id)
            rid = (record_id or given_id or new_guid()).lower()
            if rid in self.db.rows[table.logical_name]:
                raise duplicate_key()
            record[table.primary_id] = rid
            self._defaults_on_create(table, record, written, req)
            self._validate_record(table, record, req, creating=True, exclude=None)
            now = utc_iso(self.clock.now())
            user_ref = {"id": req.user.id, "table": "systemuser", "nav": "ownerid"}
            for col in ("createdon", "modifiedon"):
                if col in table.columns:
                    record[col] = now
            for col in ("ownerid", "createdby", "modifiedby"):
                if col in table.columns:
                    record[col] = dict(user_ref, nav=col)
            version = self.db.next_version()
            record["versionnumber"] = version
            record["__seq"] = self.db.next_seq()
            record["__created_version"] = version
            self._computed(table, record)
            self.db.put(table.logical_name, rid, record)
            for nav, items in children:
                spec = table.one_to_many[nav]
                child_table = self.schema.tables[spec["table"]]
                child_column = child_table.columns[spec["column"]]
                nav_name = next(
                    (n for n, t in child_column.navigation.items() if t == table.logical_name), spec["column"]
                )
                for item in items:
                    if not isinstance(item, dict):
                        raise ODataError(400, E.PAYLOAD_ERROR, f"Items of '{nav}' must be objects.")
                    self.create(
                        child_table, {**item, f"{nav_name}@odata.bind": f"/{table.entity_set}({rid})"}, req
                    )
            self._after_write(table, record)
            self.db.emit(
                Event(
                    "Create",
                    table.logical_name,
                    rid,
                    visible(record),
                    req.user.id,
                    post_image=visible(record),
                    correlation_id=req.header("x-ms-correlation-request-id"),
                )
            )
        return rid

    def upsert(
        self,
        table: Table,
        key: dict[str, Any],
        record: dict[str, Any] | None,
        body: dict[str, Any],
        req: SimRequest,
    ) -> str:
        """Create the record `key` addresses (`record` None) or update `record`; returns its id.

        An alternate key's values go into a created record and are never overwritten by an update.
        """
        if record is None:
            alt = None if table.primary_id in key else key
            return self.create(table, body, req, key_values=alt, record_id=key.get(table.primary_id))
        strip = [] if table.primary_id in key else list(key)
        return str(self.update(table, record, body, req, strip_keys=strip)[table.primary_id])

    @contextmanager
    def _as_admin(self, admin: bool) -> Iterator[None]:
        """While an administrator's column update runs, read-only records may be written."""
        before = getattr(self, "_admin_update", False)
        self._admin_update = admin
        try:
            yield
        finally:
            self._admin_update = before

    def update(
        self,
        table: Table,
        record: dict[str, Any],
        body: dict[str, Any],
        req: SimRequest,
        *,
        strip_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        admin = req.user.kind == "application" and self.config.application_users_are_admins
        with self.db.transaction(), self._as_admin(admin and "statecode" not in body):
            if not body.keys() <= {"statecode", "statuscode"}:
                self._require_editable(table, record)
            pre = visible(record)
            updated = json.loads(json.dumps({k: v for k, v in record.items() if not k.startswith("__")}))
            updated.update({k: v for k, v in record.items() if k.startswith("__")})
            body = dict(body)
            for col in strip_keys or []:
                body.pop(col, None)
            written = self.apply_body(table, body, req, creating=False, record=updated)
            updated.pop("__children", None)
            self._state_transition(table, record, updated, written)
            self._validate_record(table, updated, req, creating=False, exclude=record[table.primary_id])
            if "modifiedon" in table.columns:
                updated["modifiedon"] = utc_iso(self.clock.now())
            if "modifiedby" in table.columns:
                updated["modifiedby"] = {"id": req.user.id, "table": "systemuser", "nav": "modifiedby"}
            updated["versionnumber"] = self.db.next_version()
            self._computed(table, updated)
            self.db.put(table.logical_name, updated[table.primary_id], updated)
            self._after_write(table, updated)
            target = dict(written)
            target[table.primary_id] = updated[table.primary_id]
            for col in ("modifiedon", "modifiedby"):
                if col in updated:
                    target[col] = updated[col]
            self.db.emit(
                Event(
                    "Update",
                    table.logical_name,
                    updated[table.primary_id],
                    target,
                    req.user.id,
                    pre_image=pre,
                    post_image=visible(updated),
                    correlation_id=req.header("x-ms-correlation-request-id"),
                )
            )
        return updated

    def delete(self, table: Table, record: dict[str, Any], req: SimRequest) -> None:
        rid = record[table.primary_id]
        with self.db.transaction():
            for rel in table.relationships:
                child_table = self.schema.tables[rel.table]
                children = self.referencing(rel.table, rel.column, rid)
                if not children:
                    continue
                if rel.delete == "restrict":
                    raise ODataError(
                        405,
                        E.CANNOT_DELETE_ASSOCIATION,
                        f"The object you tried to delete is associated with another object and cannot be "
                        f"deleted. ({len(children)} {child_table.logical_name} record(s) reference this "
                        f"{table.logical_name} through '{rel.column}'.)",
                    )
            for rel in table.relationships:
                child_table = self.schema.tables[rel.table]
                for child in self.referencing(rel.table, rel.column, rid):
                    if rel.delete == "cascade":
                        self.delete(child_table, child, req)
                    elif rel.delete == "removelink":
                        self.update(child_table, child, {f"{child[rel.column]['nav']}@odata.bind": None}, req)
            self.db.remove(table.logical_name, rid)
            self._after_delete(table, record)
            self.db.emit(
                Event(
                    "Delete",
                    table.logical_name,
                    rid,
                    {},
                    req.user.id,
                    pre_image=visible(record),
                    correlation_id=req.header("x-ms-correlation-request-id"),
                )
            )
