"""Actions (bound and unbound): the request's action handed to the table module that performs it."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.protocol import SimRequest, SimResponse
from sandbox.dataverse.schema import Table


class Actions(EngineBase):
    def _action(
        self, req: SimRequest, action: str, table: Table | None, key: dict[str, Any] | None
    ) -> SimResponse:
        response = self._table_action(ActionCall(req, action, table, key, self._decode_body(req)))
        if response is None:
            raise E.segment_not_found(action)
        return response
