"""The simulator's Web API engine: `Engine` composes one part per concern and routes a request to it.

Transport-free: `Engine.handle(SimRequest) -> SimResponse`. The HTTP app and `$batch` both
call it, so a batch part behaves exactly like a direct request. The parts are in `api/` (keys,
records, values, rules, states, single-record requests, reads, queries, change tracking, bulk,
actions) and `tables/` (behaviour particular to a table family); see docs/sandbox-dataverse.md.
"""

from __future__ import annotations

import uuid

from sandbox.dataverse import errors as E
from sandbox.dataverse import query as Q
from sandbox.dataverse.api.actions import Actions
from sandbox.dataverse.api.bulk import BULK_MESSAGES, Bulk
from sandbox.dataverse.api.changes import Changes
from sandbox.dataverse.api.crud import Crud
from sandbox.dataverse.api.keys import KEY_FORBIDDEN, Keys, split_resource_path
from sandbox.dataverse.api.queries import Queries
from sandbox.dataverse.api.reads import Reads
from sandbox.dataverse.api.records import Records
from sandbox.dataverse.api.rules import Rules
from sandbox.dataverse.api.states import States
from sandbox.dataverse.api.values import Values
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.metadata import MetadataService
from sandbox.dataverse.protocol import (
    API_PREFIX,
    JSON_CT,
    SimRequest,
    SimResponse,
    User,
    etag,
    new_guid,
    parse_prefer,
    utc_iso,
)
from sandbox.dataverse.schema import Schema
from sandbox.dataverse.store import Database
from sandbox.dataverse.tables import cases, opportunities, orders
from sandbox.dataverse.tables.cases import Cases
from sandbox.dataverse.tables.opportunities import Opportunities
from sandbox.dataverse.tables.orders import Orders
from sandbox.dataverse.tables.products import Products

__all__ = [
    "API_PREFIX",
    "BULK_MESSAGES",
    "JSON_CT",
    "KEY_FORBIDDEN",
    "Engine",
    "Q",
    "SimRequest",
    "SimResponse",
    "User",
    "etag",
    "new_guid",
    "parse_prefer",
    "split_resource_path",
    "utc_iso",
]

# Actions called at the service root (`POST /CloseIncident`); each table module lists its own.
UNBOUND_ACTIONS = orders.UNBOUND_ACTIONS + cases.UNBOUND_ACTIONS + opportunities.UNBOUND_ACTIONS


class Engine(
    # Request handlers first, then the record machinery they share, then the table modules,
    # whose hooks chain through super() down to EngineBase's defaults.
    Crud,
    Queries,
    Changes,
    Bulk,
    Actions,
    Reads,
    Records,
    Rules,
    Values,
    States,
    Keys,
    Orders,
    Products,
    Cases,
    Opportunities,
):
    def __init__(self, schema: Schema, config: SimulatorConfig, clock: Clock) -> None:
        self.schema = schema
        self.config = config
        self.clock = clock
        self.db = Database(schema)
        self.autonumber = 1000
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
        if path in UNBOUND_ACTIONS:
            if method != "POST":
                raise self._no_resource(req)
            return self._action(req, path, None, None)
        set_name, key_text, rest = split_resource_path(path)
        table = self.schema.by_set.get(set_name)
        if table is None:
            raise E.segment_not_found(set_name)
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
            raise E.segment_not_found(rest)
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
