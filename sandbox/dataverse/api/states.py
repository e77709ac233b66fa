"""State machines: statecode and statuscode on write, editable states, close actions forcing a state."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    SimRequest,
    SimResponse,
    utc_iso,
    visible,
)
from sandbox.dataverse.schema import Table
from sandbox.dataverse.store import Event


def bad_state(table: Table, state: Any) -> ODataError:
    return ODataError(
        400, E.PICKLIST_OUT_OF_RANGE, f"{state} is not a valid statecode for {table.logical_name}."
    )


def bad_status(table: Table, state: int, status: Any) -> ODataError:
    return ODataError(
        400,
        E.INVALID_ARGUMENT,
        f"{status} is not a valid status code for state code "
        f"{table.logical_name}State.{table.states[state].name} on {table.logical_name}.",
    )


class States(EngineBase):
    def _state_transition(
        self, table: Table, old: dict[str, Any], new: dict[str, Any], written: dict[str, Any]
    ) -> None:
        if not table.states or ("statecode" not in written and "statuscode" not in written):
            return
        state = new.get("statecode")
        if state not in table.states:
            raise bad_state(table, state)
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
            raise bad_status(table, state, new.get("statuscode"))
        self._table_transition(table, new, state)

    def _status_param(self, body: dict[str, Any], table: Table, state: int) -> int:
        status = body.get("Status")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ODataError(400, E.PAYLOAD_ERROR, "'Status' must be an integer status code.")
        if status == -1:
            return table.states[state].default_status
        if status not in table.states[state].statuses:
            raise bad_status(table, state, status)
        return status

    def _require_editable(self, table: Table, record: dict[str, Any]) -> None:
        """Tables with `editable_states` (orders) refuse changes in any other state, except from an
        administrator's update (`admin_update`, SimulatorConfig.application_users_are_admins)."""
        if getattr(self, "_admin_update", False):
            return
        if table.editable_states is not None and record.get("statecode") not in table.editable_states:
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"This {table.logical_name} can not be edited because it is not active. "
                "Only active orders can be edited.",
            )

    def _close(
        self,
        req: SimRequest,
        body: dict[str, Any],
        param: str,
        activity_table: str,
        table: Table,
        record: dict[str, Any],
        state: int,
    ) -> SimResponse:
        """A close action: record the activity in `body[param]` and force `record` into `state`
        (with the request's `Status`, -1 for the state's default)."""
        status = self._status_param(body, table, state)
        with self.db.transaction():
            activity = {k: v for k, v in body[param].items() if k != "@odata.type"}
            self.create(self.schema.tables[activity_table], activity, req)
            self._force_state(table, record, state, status, req)
        return SimResponse.empty(204)

    def _force_state(
        self, table: Table, record: dict[str, Any], state: int, status: int, req: SimRequest
    ) -> None:
        updated = dict(record)
        pre = visible(record)
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
                post_image=visible(updated),
            )
        )

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
