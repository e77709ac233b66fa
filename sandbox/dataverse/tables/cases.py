"""Cases (incident): resolving one with an incident resolution (CloseIncident)."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse

UNBOUND_ACTIONS = ("CloseIncident",)


class Cases(EngineBase):
    def _table_action(self, call: ActionCall) -> SimResponse | None:
        if call.name == "CloseIncident" and call.table is None:
            return self._close_incident(call.req, call.body)
        return super()._table_action(call)

    def _close_incident(self, req: SimRequest, body: dict[str, Any]) -> SimResponse:
        table, record = self._activity_target(
            req, body.get("IncidentResolution"), "IncidentResolution", "incidentid", "incident"
        )
        if record.get("statecode") != 0:
            raise ODataError(400, E.INVALID_ARGUMENT, "The case is not active and cannot be resolved.")
        return self._close(req, body, "IncidentResolution", "incidentresolution", table, record, 1)
