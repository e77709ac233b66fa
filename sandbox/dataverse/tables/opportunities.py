"""Opportunities: closing one as won or lost (WinOpportunity, LoseOpportunity)."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse

UNBOUND_ACTIONS = ("WinOpportunity", "LoseOpportunity")


class Opportunities(EngineBase):
    def _table_action(self, call: ActionCall) -> SimResponse | None:
        if call.name in UNBOUND_ACTIONS and call.table is None:
            return self._close_opportunity(call.req, call.body, won=call.name == "WinOpportunity")
        return super()._table_action(call)

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
