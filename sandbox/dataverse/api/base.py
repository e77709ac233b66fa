"""What every part of the engine shares: the schema, configuration, clock and rows, and a few helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import API_PREFIX, SimRequest, SimResponse, etag
from sandbox.dataverse.schema import Schema, Table
from sandbox.dataverse.store import Database


@dataclass
class ActionCall:
    """One action request: `POST [set(key)/]Microsoft.Dynamics.CRM.<name>` or `POST /<name>`."""

    req: SimRequest
    name: str
    table: Table | None  # None: unbound (called at the service root or on no table)
    key: dict[str, Any] | None  # None: not bound to one record
    body: dict[str, Any]


class EngineBase:
    """The state the engine's parts (`api/`, `tables/`) read and write (`Engine` sets it), and the
    hooks through which a table module (`tables/`) adds its behaviour to the generic code.

    A table module overrides a hook for its own tables and calls `super()` for any other table,
    so several table modules can each add to the same hook.
    """

    schema: Schema
    config: SimulatorConfig
    clock: Clock
    db: Database
    autonumber: int

    def _no_resource(self, req: SimRequest) -> ODataError:
        return ODataError(
            404,
            "",
            "No HTTP resource was found that matches the request URI "
            f"'{req.base_url}{API_PREFIX}{req.path}'.",
        )

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

    def referencing(self, table_name: str, column: str, record_id: str) -> list[dict[str, Any]]:
        """Rows of `table_name` whose lookup `column` points at `record_id`, in insertion order
        (from the store's lookup index, checked against each row)."""
        rows = self.db.rows[table_name]
        return [
            r
            for i in self.db.referencing_ids(table_name, column, record_id)
            if (r := rows.get(i)) is not None
            and isinstance(r.get(column), dict)
            and r[column]["id"] == record_id
        ]

    def follow(self, record: dict[str, Any], column: str, target: str) -> dict[str, Any] | None:
        """The `target` row the record's lookup `column` points at (None if unset or elsewhere)."""
        value = record.get(column)
        if not isinstance(value, dict) or value["table"] != target:
            return None
        return self.db.rows[target].get(value["id"])

    def currency_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The transactioncurrency row the record's `transactioncurrencyid` points at, if any."""
        ref = record.get("transactioncurrencyid")
        if isinstance(ref, dict):
            return self.db.rows["transactioncurrency"].get(ref["id"]) or None
        return None

    @staticmethod
    def _check_if_match(req: SimRequest, record: dict[str, Any]) -> None:
        """Optimistic concurrency: an If-Match other than `*` must name the record's current ETag."""
        if_match = req.header("if-match")
        if if_match not in (None, "*") and if_match != etag(record):
            raise ODataError(
                412,
                E.CONCURRENCY_MISMATCH,
                "The version of the existing record doesn't match the RowVersion property provided.",
            )

    # -- hooks for table modules (tables/); each does nothing for a table without special rules --
    def _parent_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        """The header record a line record belongs to (it inherits the header's currency)."""
        return None

    def _table_computed(self, table: Table, record: dict[str, Any]) -> None:
        """Set the table's computed columns on a record about to be stored."""

    def _table_transition(self, table: Table, new: dict[str, Any], state: int) -> None:
        """Check a state change to `state` that the generic state machine allowed."""

    def _after_write(self, table: Table, record: dict[str, Any]) -> None:
        """After a record is created or updated, inside the same transaction."""

    def _after_delete(self, table: Table, record: dict[str, Any]) -> None:
        """After a record is deleted, inside the same transaction."""

    def _table_action(self, call: ActionCall) -> SimResponse | None:
        """Perform the action if it is this table's; else None (404 when no table module takes it)."""
        return None
