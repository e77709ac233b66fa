"""The simulator's Web API engine: routes one OData request to CRUD, queries, bulk, actions.

Transport-free: `Engine.handle(SimRequest) -> SimResponse`. The HTTP app and `$batch` both
call it, so a batch part behaves exactly like a direct request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from sandbox.dataverse import errors as E
from sandbox.dataverse import query as Q
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.schema import Column, Schema, Table
from sandbox.dataverse.store import Database, Event

API_PREFIX = "/api/data/v9.2/"
JSON_CT = "application/json; odata.metadata=minimal"
KEY_FORBIDDEN = set("/<>*%&:\\?+")
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple", "DeleteMultiple")
_LOOKUP_VALUE_RE = re.compile(r"_(\w+)_value")


@dataclass
class User:
    id: str
    name: str
    kind: str = "application"  # application | interactive


@dataclass
class SimRequest:
    method: str
    path: str  # after /api/data/v9.2/, percent-decoded
    query: str  # raw query string (percent-encoded)
    headers: dict[str, str]  # lower-case names
    body: bytes
    user: User
    base_url: str
    content_ids: dict[str, str] = field(default_factory=dict)  # batch: "$1" -> entity URL

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def prefer(self) -> dict[str, str]:
        return parse_prefer(self.header("prefer") or "")


@dataclass
class SimResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
        h = {"Content-Type": JSON_CT, "OData-Version": "4.0"}
        h.update(headers or {})
        return cls(status, h, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> SimResponse:
        h = {"OData-Version": "4.0"}
        h.update(headers or {})
        return cls(status, h, b"")

    @classmethod
    def error(cls, exc: ODataError) -> SimResponse:
        return cls.json(exc.status, exc.body(), exc.headers)


def parse_prefer(header: str) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for part in Q.split_top_level(header.replace('"', "\x00").replace("\x00", '"')):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            prefs[k.strip().lower()] = v.strip().strip('"')
        else:
            prefs[part.strip().lower()] = ""
    return prefs


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_guid() -> str:
    return str(uuid.uuid4())


class Engine:
    def __init__(self, schema: Schema, config: SimulatorConfig, clock: Clock) -> None:
        self.schema = schema
        self.config = config
        self.clock = clock
        self.db = Database(schema)
        self.autonumber = 1000
        from sandbox.dataverse.metadata import MetadataService  # imports this module

        self.metadata = MetadataService(self)

    # =============================================================================== routing
    def handle(self, req: SimRequest) -> SimResponse:
        try:
            return self._route(req)
        except ODataError as exc:
            return SimResponse.error(exc)

    def _route(self, req: SimRequest) -> SimResponse:
        path = req.path.strip("/")
        method = req.method.upper()
        self.metadata.settle_keys()
        if path == "":
            return SimResponse.json(
                200,
                {
                    "@odata.context": f"{req.base_url}{API_PREFIX}$metadata",
                    "value": [
                        {"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}
                        for t in self.schema.tables.values()
                    ],
                },
            )
        if path in ("WhoAmI", "WhoAmI()"):
            if method != "GET":
                raise self._no_resource(req)
            return SimResponse.json(
                200,
                {
                    "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#"
                    "Microsoft.Dynamics.CRM.WhoAmIResponse",
                    "BusinessUnitId": uuid.uuid5(uuid.NAMESPACE_URL, self.config.organization_id).hex,
                    "UserId": req.user.id,
                    "OrganizationId": self.config.organization_id,
                },
            )
        if path.startswith("EntityDefinitions"):
            return self.metadata.handle(req, path)
        if path in ("PublishXml", "PublishAllXml", "InsertOptionValue"):
            return self.metadata.action(req, path)
        if path in ("CloseIncident", "CancelSalesOrder", "WinOpportunity", "LoseOpportunity"):
            if method != "POST":
                raise self._no_resource(req)
            return self._action(req, path, None, None)
        set_name, key_text, rest = split_resource_path(path)
        table = self.schema.by_set.get(set_name)
        if table is None:
            raise ODataError(404, E.SEGMENT_NOT_FOUND, f"Resource not found for the segment '{set_name}'.")
        if key_text is None:
            if rest is None:
                if method == "GET":
                    return self._query(req, table)
                if method == "POST":
                    return self._create_request(req, table)
                raise ODataError(
                    405, "0x80060888", f"The requested resource does not support http method '{method}'."
                )
            if rest == "$count":
                if method != "GET":
                    raise self._no_resource(req)
                rows = self._filtered(req, table)
                return SimResponse(
                    200,
                    {"Content-Type": "text/plain", "OData-Version": "4.0"},
                    str(min(len(rows), 5000)).encode(),
                )
            if rest.startswith("Microsoft.Dynamics.CRM."):
                action = rest.removeprefix("Microsoft.Dynamics.CRM.")
                if method != "POST":
                    raise self._no_resource(req)
                if action in BULK_MESSAGES:
                    return self._bulk(req, table, action)
                return self._action(req, action, table, None)
            raise ODataError(404, E.SEGMENT_NOT_FOUND, f"Resource not found for the segment '{rest}'.")
        key = self._parse_key(table, key_text)
        if rest is None:
            if method == "GET":
                return self._retrieve(req, table, key)
            if method == "PATCH":
                return self._patch(req, table, key, key_text)
            if method == "DELETE":
                return self._delete_request(req, table, key)
            raise self._no_resource(req)
        if rest.startswith("Microsoft.Dynamics.CRM."):
            if method != "POST":
                raise self._no_resource(req)
            return self._action(req, rest.removeprefix("Microsoft.Dynamics.CRM."), table, key)
        return self._property(req, table, key, rest)

    def _no_resource(self, req: SimRequest) -> ODataError:
        return ODataError(
            404,
            "",
            "No HTTP resource was found that matches the request URI "
            f"'{req.base_url}{API_PREFIX}{req.path}'.",
        )

    # =============================================================================== keys
    def _parse_key(self, table: Table, text: str) -> dict[str, Any]:
        """`(guid)`, `(pk=guid)`, `(k='v')`, `(k1='a',k2=2)`, `(_x_value=guid)` -> {column: value}."""
        text = text.strip()
        if Q.GUID_RE.fullmatch(text):
            return {table.primary_id: text.lower()}
        try:
            tokens = Q.tokenize(text)
        except ODataError as exc:
            raise self._bad_key(table) from exc
        pairs: dict[str, Any] = {}
        i = 0
        while i < len(tokens):
            if (
                i + 2 >= len(tokens)
                or tokens[i].kind != "ident"
                or tokens[i + 1].kind != "punct"
                or tokens[i + 1].value != "="
            ):
                raise self._bad_key(table)
            name, tok = tokens[i].value, tokens[i + 2]
            if tok.kind not in ("str", "num", "guid", "datetime", "bool"):
                raise self._bad_key(table)
            value = tok.value
            if isinstance(value, datetime):
                value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(value, str) and KEY_FORBIDDEN & set(value):
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"Key value for '{name}' contains a character that is not supported in a key "
                    "in the request URI (one of / < > * % & : \\ ? +).",
                )
            m = re.fullmatch(r"_(\w+)_value", name)
            pairs[m.group(1) if m else name] = value
            i += 3
            if i < len(tokens):
                if tokens[i].kind != "punct" or tokens[i].value != ",":
                    raise self._bad_key(table)
                i += 1
        names = set(pairs)
        if names == {table.primary_id}:
            return {table.primary_id: str(pairs[table.primary_id]).lower()}
        for columns in table.alternate_keys.values():
            if names == set(columns):
                return pairs
        raise self._bad_key(table)

    def _bad_key(self, table: Table) -> ODataError:
        t = table.odata_type
        return ODataError(
            400,
            "0x80060888",
            f"The key in the request URI is not valid for resource '{t}'. Ensure that the names and "
            f"number of key properties match the declared or alternate key properties for the "
            f"resource '{t}'.",
        )

    def find(self, table: Table, key: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.db.rows[table.logical_name]
        if table.primary_id in key:
            return rows.get(str(key[table.primary_id]).lower())
        rid = self.db.find_by_key(table.logical_name, key)
        return rows.get(rid) if rid is not None else None

    def _raw_value(self, record: dict[str, Any], column: str) -> Any:
        value = record.get(column)
        if isinstance(value, dict) and "id" in value:
            return value["id"]
        return value

    def _missing(self, table: Table, key: dict[str, Any]) -> ODataError:
        if table.primary_id in key:
            return ODataError(
                404, E.NOT_FOUND, f"{table.logical_name} With Id = {key[table.primary_id]} Does Not Exist"
            )
        shown = ",".join(f"{k}:{v}" for k, v in key.items())
        return ODataError(
            404,
            "0x80060891",
            f"A record with the specified key values does not exist in {table.logical_name} entity "
            f"(keys: {shown})",
        )

    def resolve_reference(self, ref: str, req: SimRequest) -> tuple[Table, dict[str, Any]]:
        """'/contacts(guid)', 'contacts(k='v')', absolute URL or '$1' -> (table, record)."""
        ref = ref.strip()
        if ref.startswith("$"):
            target = req.content_ids.get(ref)
            if target is None:
                raise ODataError(
                    400,
                    E.PAYLOAD_ERROR,
                    f"Content-ID Reference: '{ref}' does not exist in the batch context.",
                )
            ref = target
        if "://" in ref:
            marker = ref.find(API_PREFIX)
            if marker == -1:
                raise ODataError(400, E.PAYLOAD_ERROR, f"The reference '{ref}' is not a valid entity URL.")
            ref = ref[marker + len(API_PREFIX) :]
        ref = unquote(ref.lstrip("/"))
        if ref.startswith(API_PREFIX.lstrip("/")):
            ref = ref[len(API_PREFIX) - 1 :]
        set_name, key_text, rest = split_resource_path(ref)
        table = self.schema.by_set.get(set_name)
        if table is None or key_text is None or rest is not None:
            raise ODataError(
                400,
                E.PAYLOAD_ERROR,
                f"Error identified in Payload provided by the user: the reference '{ref}' "
                "is not a valid entity reference.",
            )
        key = self._parse_key(table, key_text)
        record = self.find(table, key)
        if record is None:
            raise self._missing(table, key)
        return table, record

    # =============================================================================== writes
    def _decode_body(self, req: SimRequest) -> dict[str, Any]:
        if not req.body:
            return {}
        try:
            body = json.loads(req.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ODataError(
                400, E.PAYLOAD_ERROR, f"Error identified in Payload provided by the user: {exc}"
            ) from exc
        if not isinstance(body, dict):
            raise ODataError(
                400,
                E.PAYLOAD_ERROR,
                "Error identified in Payload provided by the user: the payload must be a JSON object.",
            )
        return body

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

    def _check_value(self, table: Table, column: Column, value: Any) -> Any:
        name = column.name
        if value is None:
            if column.required == "system":
                raise ODataError(
                    400,
                    E.REQUIRED_FIELD_MISSING,
                    f"Attribute '{name}' cannot be set to NULL: it is required by the system.",
                )
            return None
        kind = column.type
        if kind in ("string", "memo"):
            if not isinstance(value, str):
                raise ODataError(
                    400,
                    "0x0",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Edm.String' for property '{name}'.",
                )
            if column.max_length is not None and len(value) > column.max_length:
                raise ODataError(
                    400,
                    E.STRING_TOO_LONG,
                    f"A validation error occurred.  The length of the '{name}' attribute of the "
                    f"'{table.logical_name}' entity exceeded the maximum allowed length of "
                    f"'{column.max_length}'.",
                )
            return value
        if kind in ("int", "picklist", "state", "status"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ODataError(
                    400,
                    "0x0",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Edm.Int32' for property '{name}'.",
                )
            if kind == "picklist" and column.options and value not in column.options:
                raise ODataError(
                    400,
                    E.PICKLIST_OUT_OF_RANGE,
                    f"A validation error occurred. The value {value} of '{name}' on record of type "
                    f"'{table.logical_name}' is outside the valid range.",
                )
            self._range(table, column, value)
            return value
        if kind in ("decimal", "money"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ODataError(
                    400,
                    "0x0",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Edm.Decimal' for property '{name}'.",
                )
            self._range(table, column, value)
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ODataError(
                    400,
                    "0x0",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Edm.Boolean' for property '{name}'.",
                )
            return value
        if kind == "datetime":
            if not isinstance(value, str) or not Q.DATETIME_RE.fullmatch(value):
                raise ODataError(
                    400,
                    "0x0",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Edm.DateTimeOffset' for property '{name}'.",
                )
            return Q._parse_datetime(value).strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "guid":
            if not isinstance(value, str) or not Q.GUID_RE.fullmatch(value):
                raise ODataError(
                    400,
                    "0x0",
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'Edm.Guid' for property '{name}'.",
                )
            return value.lower()
        return value

    def _range(self, table: Table, column: Column, value: float) -> None:
        if (column.minimum is not None and value < column.minimum) or (
            column.maximum is not None and value > column.maximum
        ):
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"A validation error occurred. The value {value} of '{column.name}' on record of type "
                f"'{table.logical_name}' is outside the valid range ({column.minimum} to {column.maximum}).",
            )

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
                raise ODataError(412, E.DUPLICATE_RECORD, "A record with matching key values already exists.")
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
                    _visible(record),
                    req.user.id,
                    post_image=_visible(record),
                    correlation_id=req.header("x-ms-correlation-request-id"),
                )
            )
        return rid

    def update(
        self,
        table: Table,
        record: dict[str, Any],
        body: dict[str, Any],
        req: SimRequest,
        *,
        strip_keys: list[str] | None = None,
    ) -> dict[str, Any]:
        with self.db.transaction():
            if table.editable_states is not None and record.get("statecode") not in table.editable_states:
                only_state = body.keys() <= {"statecode", "statuscode"}
                if not only_state:
                    raise ODataError(
                        400,
                        E.INVALID_ARGUMENT,
                        f"This {table.logical_name} can not be edited because it is not active. "
                        "Only active orders can be edited.",
                    )
            pre = _visible(record)
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
                    post_image=_visible(updated),
                    correlation_id=req.header("x-ms-correlation-request-id"),
                )
            )
        return updated

    def delete(self, table: Table, record: dict[str, Any], req: SimRequest) -> None:
        rid = record[table.primary_id]
        with self.db.transaction():
            for rel in table.relationships:
                child_table = self.schema.tables[rel.table]
                children = [
                    r
                    for r in self.db.rows[rel.table].values()
                    if isinstance(r.get(rel.column), dict) and r[rel.column]["id"] == rid
                ]
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
                for child in [
                    r
                    for r in self.db.rows[rel.table].values()
                    if isinstance(r.get(rel.column), dict) and r[rel.column]["id"] == rid
                ]:
                    if rel.delete == "cascade":
                        self.delete(child_table, child, req)
                    elif rel.delete == "removelink":
                        self.update(child_table, child, {f"{child[rel.column]['nav']}@odata.bind": None}, req)
            self.db.remove(table.logical_name, rid)
            parent = self._parent_of(table, record)
            if parent is not None:
                self._recompute_totals(*parent)
            self.db.emit(
                Event(
                    "Delete",
                    table.logical_name,
                    rid,
                    {},
                    req.user.id,
                    pre_image=_visible(record),
                    correlation_id=req.header("x-ms-correlation-request-id"),
                )
            )

    # -- record rules -----------------------------------------------------------------------------
    def _defaults_on_create(
        self, table: Table, record: dict[str, Any], written: dict[str, Any], req: SimRequest
    ) -> None:
        for column in table.columns.values():
            if record.get(column.name) is None and column.default is not None:
                record[column.name] = column.default
        if table.autonumber and not record.get(table.autonumber["column"]):
            self.autonumber += 1
            suffix = "".join(random.choices(string.ascii_uppercase + string.digits, k=6))
            record[table.autonumber["column"]] = (
                f"{table.autonumber['prefix']}-{self.autonumber:05d}-{suffix}"
            )
        if table.states:
            state = record.get("statecode")
            if state is None:
                state = 0
                if (
                    table.draft_on_create
                    and not self.config.products_active_on_create
                    and record.get("parentproductid") is None
                ):
                    state = 2
                record["statecode"] = state
            if state not in table.states:
                raise ODataError(
                    400,
                    E.PICKLIST_OUT_OF_RANGE,
                    f"{state} is not a valid statecode for {table.logical_name}.",
                )
            if record.get("statuscode") is None:
                record["statuscode"] = table.states[state].default_status
            elif record["statuscode"] not in table.states[state].statuses:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"{record['statuscode']} is not a valid status code for state code "
                    f"{table.logical_name}State.{table.states[state].name} on {table.logical_name}.",
                )
        if "transactioncurrencyid" in table.columns and record.get("transactioncurrencyid") is None:
            inherited = None
            parent = self._parent_of(table, record)
            if parent is not None:
                inherited = parent[1].get("transactioncurrencyid")
            record["transactioncurrencyid"] = inherited or self.base_currency_ref()
        if "exchangerate" in table.columns:
            record["exchangerate"] = self._exchange_rate(record)

    def base_currency_ref(self) -> dict[str, Any] | None:
        for rec in self.db.rows["transactioncurrency"].values():
            if rec.get("isocurrencycode") == self.config.base_currency:
                return {
                    "id": rec["transactioncurrencyid"],
                    "table": "transactioncurrency",
                    "nav": "transactioncurrencyid",
                }
        return None

    def _exchange_rate(self, record: dict[str, Any]) -> float:
        ref = record.get("transactioncurrencyid")
        if isinstance(ref, dict):
            cur = self.db.rows["transactioncurrency"].get(ref["id"])
            if cur:
                return float(cur.get("exchangerate") or 1)
        return 1.0

    def _state_transition(
        self, table: Table, old: dict[str, Any], new: dict[str, Any], written: dict[str, Any]
    ) -> None:
        if not table.states or ("statecode" not in written and "statuscode" not in written):
            return
        state = new.get("statecode")
        if state not in table.states:
            raise ODataError(
                400, E.PICKLIST_OUT_OF_RANGE, f"{state} is not a valid statecode for {table.logical_name}."
            )
        spec = table.states[state]
        if "statecode" in written and state != old.get("statecode") and spec.action_only:
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"This message can not be used to set the state of {table.logical_name} to {spec.name}. "
                f"In order to set state of {table.logical_name} to {spec.name}, use the "
                f"{spec.action_only}Request message instead.",
            )
        if "statecode" in written and "statuscode" not in written:
            new["statuscode"] = spec.default_status
        if new.get("statuscode") not in spec.statuses:
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"{new.get('statuscode')} is not a valid status code for state code "
                f"{table.logical_name}State.{spec.name} on {table.logical_name}.",
            )
        if table.logical_name == "product" and state == 0 and isinstance(new.get("parentproductid"), dict):
            parent = self.db.rows["product"].get(new["parentproductid"]["id"])
            if parent is not None and parent.get("statecode") != 0:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    "The product cannot be published because its parent product family is not active.",
                )

    def _validate_record(
        self, table: Table, record: dict[str, Any], req: SimRequest, *, creating: bool, exclude: str | None
    ) -> None:
        for column in table.columns.values():
            if column.type == "pk":
                continue
            if column.required == "system" and record.get(column.name) is None and creating:
                raise ODataError(
                    400,
                    E.REQUIRED_FIELD_MISSING,
                    f"A validation error occurred. The value of '{column.name}' on record of "
                    f"type '{table.logical_name}' is required and cannot be null.",
                )
            if (
                column.required == "application"
                and self.config.enforce_application_required
                and record.get(column.name) is None
            ):
                raise ODataError(
                    400,
                    E.REQUIRED_FIELD_MISSING,
                    f"A validation error occurred. The value of '{column.name}' on record of "
                    f"type '{table.logical_name}' is required.",
                )
        if self.db.key_owner(table.logical_name, record) is not None:
            raise ODataError(412, E.DUPLICATE_RECORD, "A record with matching key values already exists.")
        if (req.header("mscrm.suppressduplicatedetection") or "").lower() == "false":
            for rule in table.duplicate_rules:
                values = [record.get(c) for c in rule]
                if any(v in (None, "") for v in values):
                    continue
                for other_id, other in self.db.rows[table.logical_name].items():
                    if other_id in (exclude, record.get(table.primary_id)):
                        continue
                    if all(_key_equal(other.get(c), v) for c, v in zip(rule, values, strict=True)):
                        raise ODataError(
                            self.config.duplicate_detection_status,
                            E.DUPLICATE_DETECTED,
                            "A record was not created or updated because a duplicate of the current record "
                            "already exists.",
                        )

    def _computed(self, table: Table, record: dict[str, Any]) -> None:
        if "isauthvalueset" in table.columns:
            record["isauthvalueset"] = bool(record.get("authvalue"))
        for column in table.columns.values():
            if column.computed == "fullname":
                parts = [record.get("firstname"), record.get("lastname")]
                record[column.name] = " ".join(p for p in parts if p) or None
            elif column.computed in ("address1", "address2"):
                prefix = column.computed
                parts = [
                    record.get(f"{prefix}_{p}")
                    for p in ("line1", "line2", "line3", "city", "stateorprovince", "postalcode", "country")
                ]
                record[column.name] = "\r\n".join(p for p in parts if p) or None
        if table.logical_name in ("salesorderdetail", "invoicedetail"):
            qty = float(record.get("quantity") or 0)
            price = float(record.get("priceperunit") or 0)
            record["baseamount"] = round(qty * price, 2)
            record["extendedamount"] = round(
                qty * price - float(record.get("manualdiscountamount") or 0) + float(record.get("tax") or 0),
                2,
            )

    def _parent_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        for rel_table, line_table, column in (
            ("salesorder", "salesorderdetail", "salesorderid"),
            ("invoice", "invoicedetail", "invoiceid"),
        ):
            if table.logical_name == line_table and isinstance(record.get(column), dict):
                parent = self.db.rows[rel_table].get(record[column]["id"])
                if parent is not None:
                    return self.schema.tables[rel_table], parent
        return None

    def _after_write(self, table: Table, record: dict[str, Any]) -> None:
        parent = self._parent_of(table, record)
        if parent is not None:
            parent_table, parent_record = parent
            if (
                parent_table.editable_states is not None
                and parent_record.get("statecode") not in parent_table.editable_states
            ):
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"This {parent_table.logical_name} can not be edited because it is not "
                    "active. Only active orders can be edited.",
                )
            self._recompute_totals(parent_table, parent_record)

    def _recompute_totals(self, table: Table, record: dict[str, Any]) -> None:
        line_table, column = (
            ("salesorderdetail", "salesorderid")
            if table.logical_name == "salesorder"
            else ("invoicedetail", "invoiceid")
        )
        rid = record[table.primary_id]
        lines = [
            r
            for r in self.db.rows[line_table].values()
            if isinstance(r.get(column), dict) and r[column]["id"] == rid
        ]
        updated = dict(record)
        total_lines = round(
            sum(float(r.get("baseamount") or 0) - float(r.get("manualdiscountamount") or 0) for r in lines), 2
        )
        tax = round(sum(float(r.get("tax") or 0) for r in lines), 2)
        discount = float(record.get("discountamount") or 0)
        pct = float(record.get("discountpercentage") or 0)
        discount_total = round(discount + total_lines * pct / 100, 2)
        freight = float(record.get("freightamount") or 0)
        updated["totallineitemamount"] = total_lines
        updated["totaltax"] = tax
        if "totaldiscountamount" in table.columns:
            updated["totaldiscountamount"] = discount_total
        if "totalamountlessfreight" in table.columns:
            updated["totalamountlessfreight"] = round(total_lines - discount_total, 2)
        updated["totalamount"] = round(total_lines - discount_total + freight + tax, 2)
        rate = float(record.get("exchangerate") or 1) or 1
        updated["totalamount_base"] = round(updated["totalamount"] / rate, 2)
        if any(updated.get(k) != record.get(k) for k in updated):
            updated["versionnumber"] = self.db.next_version()
            self.db.put(table.logical_name, rid, updated)

    # =============================================================================== requests
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
        body = self._decode_body(req)
        record = self.find(table, key)
        if_match = req.header("if-match")
        if_none_match = req.header("if-none-match")
        if record is None:
            if if_match is not None:
                raise self._missing(table, key)
            rid = key.get(table.primary_id)
            alt = None if table.primary_id in key else key
            new_id = self.create(table, body, req, key_values=alt, record_id=rid)
            key_url = None if rid else f"{table.entity_set}({key_text})"
            return self._write_response(req, table, new_id, created=True, key_url=key_url)
        if if_none_match == "*":
            raise ODataError(412, E.DUPLICATE_RECORD, "A record with matching key values already exists.")
        if if_match not in (None, "*") and if_match != etag(record):
            raise ODataError(
                412,
                E.CONCURRENCY_MISMATCH,
                "The version of the existing record doesn't match the RowVersion property provided.",
            )
        strip = [] if table.primary_id in key else list(key)
        updated = self.update(table, record, body, req, strip_keys=strip)
        key_url = None if table.primary_id in key else f"{table.entity_set}({key_text})"
        return self._write_response(req, table, updated[table.primary_id], created=False, key_url=key_url)

    def _delete_request(self, req: SimRequest, table: Table, key: dict[str, Any]) -> SimResponse:
        record = self.find(table, key)
        if record is None:
            raise self._missing(table, key)
        if_match = req.header("if-match")
        if if_match not in (None, "*") and if_match != etag(record):
            raise ODataError(
                412,
                E.CONCURRENCY_MISMATCH,
                "The version of the existing record doesn't match the RowVersion property provided.",
            )
        self.delete(table, record, req)
        return SimResponse.empty(204)

    def _property(self, req: SimRequest, table: Table, key: dict[str, Any], rest: str) -> SimResponse:
        record = self.find(table, key)
        if record is None:
            raise self._missing(table, key)
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
            spec = table.one_to_many[name]
            child_table = self.schema.tables[spec["table"]]
            rows = [
                r
                for r in self.db.rows[child_table.logical_name].values()
                if isinstance(r.get(spec["column"]), dict)
                and r[spec["column"]]["id"] == record[table.primary_id]
            ]
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
            raise ODataError(404, E.SEGMENT_NOT_FOUND, f"Resource not found for the segment '{name}'.")
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

    # =============================================================================== reads
    def _select(self, table: Table, text: str | None) -> list[str] | None:
        if not text:
            return None
        result = []
        for name in (n.strip() for n in text.split(",")):
            m = re.fullmatch(r"_(\w+)_value", name)
            col = table.columns.get(m.group(1) if m else name)
            if col is None or col.write_only or (m and not col.is_lookup):
                raise self._unknown_property(table, name)
            result.append(col.name)
        return result

    def _unknown_property(self, table: Table, name: str) -> ODataError:
        return ODataError(
            400, "0x0", f"Could not find a property named '{name}' on type '{table.odata_type}'."
        )

    def annotations_wanted(self, req: SimRequest) -> list[str]:
        raw = req.prefer.get("odata.include-annotations")
        if raw is None:
            return []
        return [p.strip() for p in raw.split(",") if p.strip()]

    def render(
        self,
        table: Table,
        record: dict[str, Any],
        select: list[str] | None,
        req: SimRequest,
        *,
        entity: bool = False,
        expand: list[Q.ExpandItem] | None = None,
    ) -> dict[str, Any]:
        wanted = self.annotations_wanted(req)

        def want(annotation: str) -> bool:
            return any(
                w == "*" or w == annotation or (w.endswith("*") and annotation.startswith(w[:-1]))
                for w in wanted
            )

        out: dict[str, Any] = {}
        if entity:
            cols = (req.params.get("$select") or "").replace(" ", "") if select else ""
            out["@odata.context"] = (
                f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}({cols})/$entity"
                if cols
                else f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}/$entity"
            )
        out["@odata.etag"] = etag(record)
        names = select if select is not None else [c for c in table.columns]
        fmt = "OData.Community.Display.V1.FormattedValue"
        for name in names:
            column = table.columns[name]
            if column.write_only:
                continue
            value = record.get(name)
            if column.is_lookup:
                prop = f"_{name}_value"
                out[prop] = value["id"] if isinstance(value, dict) else None
                if isinstance(value, dict):
                    target = self.schema.tables[value["table"]]
                    target_rec = self.db.rows[target.logical_name].get(value["id"])
                    if want(fmt):
                        out[f"{prop}@{fmt}"] = (target_rec or {}).get(target.primary_name)
                    if want("Microsoft.Dynamics.CRM.associatednavigationproperty"):
                        out[f"{prop}@Microsoft.Dynamics.CRM.associatednavigationproperty"] = value.get(
                            "nav", name
                        )
                    if want("Microsoft.Dynamics.CRM.lookuplogicalname"):
                        out[f"{prop}@Microsoft.Dynamics.CRM.lookuplogicalname"] = value["table"]
                continue
            out[name] = value
            if value is not None and want(fmt):
                if column.type in ("picklist", "state", "status") and value in column.options:
                    out[f"{name}@{fmt}"] = column.options[value]
                elif column.type == "money":
                    out[f"{name}@{fmt}"] = f"{self._currency_symbol(record)}{float(value):,.2f}"
                elif column.type == "bool":
                    out[f"{name}@{fmt}"] = "Yes" if value else "No"
        out[table.primary_id] = record[table.primary_id]
        for item in expand or []:
            out[item.nav] = self._expand(table, record, item, req)
        return out

    def _currency_symbol(self, record: dict[str, Any]) -> str:
        ref = record.get("transactioncurrencyid")
        if isinstance(ref, dict):
            cur = self.db.rows["transactioncurrency"].get(ref["id"])
            if cur:
                return str(cur.get("currencysymbol") or "")
        return ""

    def _expand(self, table: Table, record: dict[str, Any], item: Q.ExpandItem, req: SimRequest) -> Any:
        navs = table.navigation()
        if item.nav in navs:
            column, target_name = navs[item.nav]
            value = record.get(column.name)
            if not isinstance(value, dict) or value["table"] != target_name:
                return None
            target = self.schema.tables[target_name]
            target_rec = self.db.rows[target_name].get(value["id"])
            if target_rec is None:
                return None
            select = self._select(target, item.options.get("$select"))
            nested = Q.parse_expand(item.options["$expand"]) if "$expand" in item.options else None
            return self.render(target, target_rec, select, req, expand=nested)
        if item.nav in table.one_to_many:
            spec = table.one_to_many[item.nav]
            child_table = self.schema.tables[spec["table"]]
            rows = [
                r
                for r in self.db.rows[child_table.logical_name].values()
                if isinstance(r.get(spec["column"]), dict)
                and r[spec["column"]]["id"] == record[table.primary_id]
            ]
            if "$filter" in item.options:
                node = Q.parse_filter(item.options["$filter"])
                self._check_paths(child_table, node)
                rows = [r for r in rows if Q.evaluate(node, r, self._resolver(child_table))]
            select = self._select(child_table, item.options.get("$select"))
            return [self.render(child_table, r, select, req) for r in sorted(rows, key=lambda r: r["__seq"])]
        raise self._unknown_property(table, item.nav)

    def _retrieve(self, req: SimRequest, table: Table, key: dict[str, Any]) -> SimResponse:
        record = self.find(table, key)
        if record is None:
            raise self._missing(table, key)
        params = req.params
        select = self._select(table, params.get("$select"))
        expand = Q.parse_expand(params["$expand"]) if params.get("$expand") else None
        inm = req.header("if-none-match")
        if inm and inm != "null" and inm == etag(record) and not expand and not self.annotations_wanted(req):
            return SimResponse.empty(304, {"ETag": etag(record)})
        body = self.render(table, record, select, req, entity=True, expand=expand)
        headers = {"ETag": etag(record)}
        if self.annotations_wanted(req):
            headers["Preference-Applied"] = (
                f'odata.include-annotations="{req.prefer["odata.include-annotations"]}"'
            )
        return SimResponse.json(200, body, headers)

    def _resolver(self, table: Table) -> Q.Resolver:
        # One resolver serves one request, during which the schema does not change: the
        # navigation maps and split paths are worked out once, not once per row (a filter on
        # a 10,000-row table evaluates the same paths 10,000 times).
        nav_cache: dict[str, dict[str, tuple[Column, str]]] = {}
        path_cache: dict[str, list[tuple[str, str | None]]] = {}

        def navigation(t: Table) -> dict[str, tuple[Column, str]]:
            navs = nav_cache.get(t.logical_name)
            if navs is None:
                navs = nav_cache[t.logical_name] = t.navigation()
            return navs

        def split(path: str) -> list[tuple[str, str | None]]:
            parts = path_cache.get(path)
            if parts is None:
                parts = []
                for part in path.split("/"):
                    m = _LOOKUP_VALUE_RE.fullmatch(part)
                    parts.append((part, m.group(1) if m else None))
                path_cache[path] = parts
            return parts

        def resolve(row: dict[str, Any], path: str) -> Any:
            current_table, current = table, row
            parts = split(path)
            for i, (part, lookup) in enumerate(parts):
                last = i == len(parts) - 1
                if lookup is not None:
                    value = current.get(lookup)
                    return value["id"] if isinstance(value, dict) else None
                if last:
                    value = current.get(part)
                    return value.get("id") if isinstance(value, dict) else value
                navs = navigation(current_table)
                if part in navs:
                    column, target = navs[part]
                    value = current.get(column.name)
                    if not isinstance(value, dict) or value["table"] != target:
                        return None
                    current_table = self.schema.tables[target]
                    nxt = self.db.rows[target].get(value["id"])
                    if nxt is None:
                        return None
                    current = nxt
                    continue
                value = current.get(part)
                if isinstance(value, dict):
                    return value.get("id")
                return value
            return None

        return resolve

    def _check_paths(self, table: Table, node: Any) -> None:
        for path in Q.paths_in(node):
            current = table
            parts = path.split("/")
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                m = re.fullmatch(r"_(\w+)_value", part)
                if m:
                    col = current.columns.get(m.group(1))
                    if col is None or not col.is_lookup or not last:
                        raise self._unknown_property(current, part)
                    break
                navs = current.navigation()
                if not last and part in navs:
                    current = self.schema.tables[navs[part][1]]
                    continue
                col = current.columns.get(part)
                if col is None or col.write_only:
                    raise self._unknown_property(current, part)

    def _filtered(self, req: SimRequest, table: Table) -> list[dict[str, Any]]:
        params = req.params
        rows = list(self.db.rows[table.logical_name].values())
        if params.get("$filter"):
            node = Q.parse_filter(params["$filter"])
            self._check_paths(table, node)
            resolve = self._resolver(table)
            rows = [r for r in rows if Q.evaluate(node, r, resolve)]
        return rows

    def _query(self, req: SimRequest, table: Table) -> SimResponse:
        params = req.params
        if "$skip" in params:
            raise ODataError(400, "0x80060888", "The query parameter '$skip' is not supported.")
        if "odata.track-changes" in req.prefer or "$deltatoken" in params:
            return self._track_changes(req, table)
        select = self._select(table, params.get("$select"))
        expand = Q.parse_expand(params["$expand"]) if params.get("$expand") else None
        rows = self._filtered(req, table)
        order = Q.parse_orderby(params["$orderby"]) if params.get("$orderby") else []
        for col, _ in order:
            self._check_paths(table, Q.Path(col))
        rows.sort(key=lambda r: r["__seq"])
        resolve = self._resolver(table)
        for col, desc in reversed(order):
            rows.sort(key=lambda r, c=col: _sort_key(resolve(r, c)), reverse=desc)
        headers: dict[str, str] = {}
        applied = []
        page_size = self.config.max_page_size
        maxpage = req.prefer.get("odata.maxpagesize")
        if maxpage is not None:
            try:
                page_size = max(1, min(int(maxpage), self.config.max_page_size))
            except ValueError as exc:
                raise ODataError(400, "0x80060888", f"Invalid odata.maxpagesize '{maxpage}'.") from exc
            applied.append(f"odata.maxpagesize={page_size}")
        elif params.get("$top"):
            try:
                top = int(params["$top"])
            except ValueError as exc:
                raise ODataError(400, "0x80060888", f"Invalid $top '{params['$top']}'.") from exc
            rows = rows[:top]
        total = len(rows)
        offset = 0
        if "$skiptoken" in params:
            offset = self._decode_skiptoken(params["$skiptoken"], req)
        page = rows[offset : offset + page_size]
        body: dict[str, Any] = {
            "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}"
            + (f"({params['$select'].replace(' ', '')})" if select else ""),
        }
        if params.get("$count") == "true":
            body["@odata.count"] = min(total, 5000)
        wanted = self.annotations_wanted(req)
        if wanted:
            applied.append(f'odata.include-annotations="{req.prefer["odata.include-annotations"]}"')
            if any(w in ("*", "Microsoft.Dynamics.CRM.totalrecordcount") for w in wanted):
                body["@Microsoft.Dynamics.CRM.totalrecordcount"] = (
                    total if params.get("$count") == "true" else -1
                )
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > 5000
        body["value"] = [self.render(table, r, select, req, expand=expand) for r in page]
        if offset + page_size < total:
            body["@odata.nextLink"] = self._next_link(req, offset + page_size, offset // page_size + 2)
        if applied:
            headers["Preference-Applied"] = ",".join(applied)
        return SimResponse.json(200, body, headers)

    def _query_fingerprint(self, req: SimRequest) -> str:
        params = {k: v for k, v in parse_qsl(req.query, keep_blank_values=True) if k != "$skiptoken"}
        return hashlib.sha256((req.path + json.dumps(sorted(params.items()))).encode()).hexdigest()[:16]

    def _next_link(
        self, req: SimRequest, offset: int, page_number: int, extra: dict[str, Any] | None = None
    ) -> str:
        cookie_data = {"o": offset, "q": self._query_fingerprint(req), **(extra or {})}
        paging = base64.urlsafe_b64encode(json.dumps(cookie_data).encode()).decode()
        cookie = (
            f'<cookie pagenumber="{page_number}" pagingcookie="{quote(paging)}" '
            f'istracking="{"True" if extra else "False"}" />'
        )
        kept = "&".join(
            p
            for p in req.query.split("&")
            if p and not p.startswith("%24skiptoken=") and not p.startswith("$skiptoken=")
        )
        sep = "&" if kept else ""
        return f"{req.base_url}{API_PREFIX}{req.path}?{kept}{sep}$skiptoken={quote(cookie, safe='')}"

    def _decode_skiptoken(self, token: str, req: SimRequest, *, want: str | None = None) -> Any:
        m = re.search(r'pagingcookie="([^"]*)"', token)
        try:
            assert m is not None
            data = json.loads(base64.urlsafe_b64decode(unquote(m.group(1)).encode()))
        except Exception as exc:
            raise ODataError(
                400, "0x80060888", "The $skiptoken is not valid. Follow @odata.nextLink verbatim."
            ) from exc
        if data.get("q") != self._query_fingerprint(req):
            raise ODataError(
                400,
                "0x80060888",
                "The $skiptoken does not belong to this query. Follow @odata.nextLink verbatim.",
            )
        return data if want == "all" else int(data["o"])

    # -- change tracking --------------------------------------------------------------------
    def _track_changes(self, req: SimRequest, table: Table) -> SimResponse:
        params = req.params
        for option in ("$filter", "$orderby", "$expand", "$top"):
            if option in params:
                raise ODataError(
                    400,
                    "0x80060888",
                    f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
                )
        if not table.change_tracking:
            raise ODataError(
                400, "0x80060888", f"Change tracking is not enabled for entity '{table.logical_name}'."
            )
        select = self._select(table, params.get("$select"))
        since: int | None = None
        if "$deltatoken" in params:
            since = self._parse_delta_token(params["$deltatoken"])
        page_size = self.config.max_page_size
        maxpage = req.prefer.get("odata.maxpagesize")
        if maxpage is not None:
            page_size = max(1, min(int(maxpage), self.config.max_page_size))
        offset, snapshot = 0, self.db.version
        if "$skiptoken" in params:
            data = self._decode_skiptoken(params["$skiptoken"], req, want="all")
            offset, snapshot = int(data["o"]), int(data["v"])
        rows = sorted(self.db.rows[table.logical_name].values(), key=lambda r: r["__seq"])
        items: list[dict[str, Any]] = []
        if since is None:
            items = [
                self.render(table, r, select, req)
                for r in rows
                if r["__created_version"] <= snapshot and r["versionnumber"] <= snapshot
            ]
        else:
            items = [
                self.render(table, r, select, req) for r in rows if since < r["versionnumber"] <= snapshot
            ]
            present = set(self.db.rows[table.logical_name])
            for version, tname, rid in self.db.deletions:
                if tname == table.logical_name and since < version <= snapshot and rid not in present:
                    items.append(
                        {
                            "@odata.context": (
                                f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}/$deletedEntity"
                            ),
                            "id": rid,
                            "reason": "deleted",
                        }
                    )
        page = items[offset : offset + page_size]
        context = f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}" + (
            f"({params['$select'].replace(' ', '')})" if select else ""
        )
        body: dict[str, Any] = {
            "@odata.context": context + ("/$delta" if since is not None else ""),
            "value": page,
        }
        if offset + page_size < len(items):
            body["@odata.nextLink"] = self._next_link(
                req, offset + page_size, offset // page_size + 2, {"v": snapshot}
            )
        else:
            stamp = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%m/%d/%Y %H:%M:%S")
            token = f"{snapshot}!{stamp}"
            sel = f"$select={quote(params['$select'].replace(' ', ''), safe=',_')}&" if select else ""
            body["@odata.deltaLink"] = (
                f"{req.base_url}{API_PREFIX}{table.entity_set}?{sel}$deltatoken={quote(token, safe='')}"
            )
        applied = ["odata.track-changes"]
        if maxpage is not None:
            applied.append(f"odata.maxpagesize={page_size}")
        return SimResponse.json(200, body, {"Preference-Applied": ",".join(applied)})

    def _parse_delta_token(self, token: str) -> int:
        m = re.fullmatch(r"(\d+)!(\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})", token)
        if not m:
            raise ODataError(400, "0x80060888", f"The delta token '{token}' is not valid.")
        issued = datetime.strptime(m.group(2), "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC).timestamp()
        if self.clock.now() - issued > self.config.change_tracking_expiry_days * 86400:
            # HTTP status and code UNCONFIRMED; message as reported in CTISSUE.
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        return int(m.group(1))

    # =============================================================================== bulk
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
                    key: dict[str, Any]
                    if "@odata.id" in target:
                        ref = str(target["@odata.id"]).lstrip("/")
                        set_name, key_text, _ = split_resource_path(ref)
                        if set_name != table.entity_set or key_text is None:
                            raise ODataError(
                                400,
                                E.PAYLOAD_ERROR,
                                f"Targets[{index}]: '@odata.id' must address {table.entity_set}.",
                            )
                        key = self._parse_key(table, key_text)
                    elif table.primary_id in data:
                        key = {table.primary_id: str(data[table.primary_id]).lower()}
                    else:
                        raise ODataError(
                            400,
                            E.PAYLOAD_ERROR,
                            f"Targets[{index}]: needs '@odata.id' or '{table.primary_id}'.",
                        )
                    record = self.find(table, key)
                    if record is None:
                        rid = key.get(table.primary_id)
                        alt = None if table.primary_id in key else key
                        self.create(table, data, req, key_values=alt, record_id=rid)
                    else:
                        strip = [] if table.primary_id in key else list(key)
                        self.update(table, record, data, req, strip_keys=strip)
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

    # =============================================================================== actions
    def _action(
        self, req: SimRequest, action: str, table: Table | None, key: dict[str, Any] | None
    ) -> SimResponse:
        body = self._decode_body(req)
        if (
            action == "FulfillSalesOrder"
            and (table is None or table.logical_name == "salesorder")
            and key is None
        ):
            return self._close_order(req, body, fulfilled=True)
        if action == "CancelSalesOrder":
            return self._close_order(req, body, fulfilled=False)
        if action == "CloseIncident" and table is None:
            return self._close_incident(req, body)
        if action in ("WinOpportunity", "LoseOpportunity") and table is None:
            return self._close_opportunity(req, body, won=action == "WinOpportunity")
        if (
            action == "PublishProductHierarchy"
            and table is not None
            and table.logical_name == "product"
            and key
        ):
            record = self.find(table, key)
            if record is None:
                raise self._missing(table, key)
            with self.db.transaction():
                self._publish(table, record, req)
            return SimResponse.empty(204)
        raise ODataError(404, E.SEGMENT_NOT_FOUND, f"Resource not found for the segment '{action}'.")

    def _publish(self, table: Table, record: dict[str, Any], req: SimRequest) -> None:
        if record.get("statecode") != 0:
            record = self.update(table, record, {"statecode": 0, "statuscode": 1}, req)
        for child in list(self.db.rows["product"].values()):
            parent = child.get("parentproductid")
            if isinstance(parent, dict) and parent["id"] == record["productid"]:
                self._publish(table, child, req)

    def _activity_target(
        self, req: SimRequest, activity: Any, param: str, bind: str, expected: str
    ) -> tuple[Table, dict[str, Any]]:
        if not isinstance(activity, dict) or (
            activity.get("@odata.type") != f"Microsoft.Dynamics.CRM.{expected}close"
            and activity.get("@odata.type") != f"Microsoft.Dynamics.CRM.{expected}resolution"
            and activity.get("@odata.type") != f"Microsoft.Dynamics.CRM.{expected}"
        ):
            raise ODataError(400, E.PAYLOAD_ERROR, f"'{param}' must be an entity with '@odata.type'.")
        ref = activity.get(f"{bind}@odata.bind")
        if not isinstance(ref, str):
            raise ODataError(400, E.PAYLOAD_ERROR, f"'{param}' must bind '{bind}@odata.bind'.")
        return self.resolve_reference(ref, req)

    def _status_param(self, body: dict[str, Any], table: Table, state: int) -> int:
        status = body.get("Status")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ODataError(400, E.PAYLOAD_ERROR, "'Status' must be an integer status code.")
        if status == -1:
            return table.states[state].default_status
        if status not in table.states[state].statuses:
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"{status} is not a valid status code for state code "
                f"{table.logical_name}State.{table.states[state].name} on {table.logical_name}.",
            )
        return status

    def _force_state(
        self, table: Table, record: dict[str, Any], state: int, status: int, req: SimRequest
    ) -> None:
        updated = dict(record)
        pre = _visible(record)
        updated["statecode"], updated["statuscode"] = state, status
        updated["modifiedon"] = utc_iso(self.clock.now())
        updated["versionnumber"] = self.db.next_version()
        self.db.put(table.logical_name, record[table.primary_id], updated)
        self.db.emit(
            Event(
                "Update",
                table.logical_name,
                record[table.primary_id],
                {"statecode": state, "statuscode": status, table.primary_id: record[table.primary_id]},
                req.user.id,
                pre_image=pre,
                post_image=_visible(updated),
            )
        )

    def _close_order(self, req: SimRequest, body: dict[str, Any], *, fulfilled: bool) -> SimResponse:
        table, record = self._activity_target(
            req, body.get("OrderClose"), "OrderClose", "salesorderid", "order"
        )
        if table.logical_name != "salesorder":
            raise ODataError(400, E.PAYLOAD_ERROR, "OrderClose must reference a salesorder.")
        if record.get("statecode") not in (0, 1):
            raise ODataError(400, E.INVALID_ARGUMENT, "The order is not active and cannot be closed.")
        state = 3 if fulfilled else 2
        status = self._status_param(body, table, state)
        with self.db.transaction():
            close = {k: v for k, v in body["OrderClose"].items() if k != "@odata.type"}
            self.create(self.schema.tables["orderclose"], close, req)
            self._force_state(table, record, state, status, req)
        return SimResponse.empty(204)

    def _close_incident(self, req: SimRequest, body: dict[str, Any]) -> SimResponse:
        table, record = self._activity_target(
            req, body.get("IncidentResolution"), "IncidentResolution", "incidentid", "incident"
        )
        if record.get("statecode") != 0:
            raise ODataError(400, E.INVALID_ARGUMENT, "The case is not active and cannot be resolved.")
        status = self._status_param(body, table, 1)
        with self.db.transaction():
            res = {k: v for k, v in body["IncidentResolution"].items() if k != "@odata.type"}
            self.create(self.schema.tables["incidentresolution"], res, req)
            self._force_state(table, record, 1, status, req)
        return SimResponse.empty(204)

    def _close_opportunity(self, req: SimRequest, body: dict[str, Any], *, won: bool) -> SimResponse:
        activity = body.get("OpportunityClose")
        if not isinstance(activity, dict) or not isinstance(activity.get("opportunityid@odata.bind"), str):
            raise ODataError(400, E.PAYLOAD_ERROR, "'OpportunityClose' must bind 'opportunityid@odata.bind'.")
        table, record = self.resolve_reference(activity["opportunityid@odata.bind"], req)
        state = 1 if won else 2
        status = self._status_param(body, table, state)
        with self.db.transaction():
            self._force_state(table, record, state, status, req)
        return SimResponse.empty(204)


def etag(record: dict[str, Any]) -> str:
    return f'W/"{record["versionnumber"]}"'


def _visible(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("__")}


def _key_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, (int, float)) and isinstance(b, str):
        return str(a) == b
    if isinstance(b, (int, float)) and isinstance(a, str):
        return a == str(b)
    return bool(a == b)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.lower())
    if isinstance(value, bool):
        return (1, int(value))
    return (1, value)


def split_resource_path(path: str) -> tuple[str, str | None, str | None]:
    """'contacts(k='a)b')/x' -> ('contacts', "k='a)b'", 'x'); quote-aware."""
    i = 0
    while i < len(path) and path[i] not in "(/":
        i += 1
    name = path[:i]
    key: str | None = None
    if i < len(path) and path[i] == "(":
        j = i + 1
        in_quote = False
        while j < len(path):
            ch = path[j]
            if ch == "'":
                if in_quote and j + 1 < len(path) and path[j + 1] == "'":
                    j += 2
                    continue
                in_quote = not in_quote
            elif ch == ")" and not in_quote:
                break
            j += 1
        if j >= len(path):
            raise ODataError(400, "0x80060888", f"Bad request: unbalanced parentheses in '{path}'.")
        key = path[i + 1 : j]
        i = j + 1
    rest = None
    if i < len(path):
        if path[i] != "/":
            raise ODataError(404, E.SEGMENT_NOT_FOUND, f"Resource not found for the segment '{path}'.")
        rest = path[i + 1 :] or None
    return name, key, rest
