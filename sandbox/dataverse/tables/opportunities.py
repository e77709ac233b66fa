"""Opportunities: closing one as won or lost (WinOpportunity, LoseOpportunity) with an
`OpportunityClose` activity and a `Status` (reference dataverse-api.md §10.4). Only an Open
opportunity can be closed. Its lines (opportunityproduct) are priced and totalled like order
lines (tables/orders.py)."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse

UNBOUND_ACTIONS = ("WinOpportunity", "LoseOpportunity")
STATE_NAMES = {0: "Open", 1: "Won", 2: "Lost"}


class Opportunities(EngineBase):
    def _table_action(self, call: ActionCall) -> SimResponse | None:
        if call.name in UNBOUND_ACTIONS and call.table is None:
            return self._close_opportunity(call.req, call.body, won=call.name == "WinOpportunity")
        return super()._table_action(call)

    def _close_opportunity(self, req: SimRequest, body: dict[str, Any], *, won: bool) -> SimResponse:
        table, record = self._activity_target(
            req, body.get("OpportunityClose"), "OpportunityClose", "opportunityid", "opportunity"
        )
        if table.logical_name != "opportunity":
            raise ODataError(400, E.PAYLOAD_ERROR, "OpportunityClose must reference an opportunity.")
        if record.get("statecode") != 0:
            state = STATE_NAMES.get(record.get("statecode"), str(record.get("statecode")))
            raise ODataError(
                400, E.INVALID_ARGUMENT, f"The opportunity is {state}, not open, and cannot be closed."
            )
        return self._close(req, body, "OpportunityClose", "opportunityclose", table, record, 1 if won else 2)
