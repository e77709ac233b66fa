"""Rules every record follows: defaults, currency, required columns, keys, duplicates, computed columns."""

from __future__ import annotations

import random
import string
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.api.keys import duplicate_key
from sandbox.dataverse.api.states import bad_state, bad_status
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    SimRequest,
)
from sandbox.dataverse.schema import Table


class Rules(EngineBase):
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
                # Draft, unless the org flag is on and there is no parent family (§10.7)
                if table.draft_on_create and (
                    not self.products_active_on_create() or record.get("parentproductid") is not None
                ):
                    state = 2
                record["statecode"] = state
            if state not in table.states:
                raise bad_state(table, state)
            if record.get("statuscode") is None:
                record["statuscode"] = table.states[state].default_status
            elif record["statuscode"] not in table.states[state].statuses:
                raise bad_status(table, state, record["statuscode"])
        if "transactioncurrencyid" in table.columns and record.get("transactioncurrencyid") is None:
            inherited = None
            parent = self._parent_of(table, record)
            if parent is not None:
                inherited = parent[1].get("transactioncurrencyid")
            record["transactioncurrencyid"] = inherited or self.base_currency_ref()
        if "exchangerate" in table.columns and table.logical_name != "transactioncurrency":
            # a money record's snapshot of its currency's rate; a currency keeps its own (§10.13)
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
        cur = self.currency_of(record)
        return float(cur.get("exchangerate") or 1) if cur else 1.0

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
            raise duplicate_key()
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
            elif column.computed and column.computed.startswith("base:"):  # <money>_base (§10.13)
                value = record.get(column.computed.removeprefix("base:"))
                rate = record.get("exchangerate") or self._exchange_rate(record)
                record[column.name] = None if value is None else round(float(value) / float(rate or 1), 2)
        self._table_computed(table, record)


def _key_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, (int, float)) and isinstance(b, str):
        return str(a) == b
    if isinstance(b, (int, float)) and isinstance(a, str):
        return a == str(b)
    return bool(a == b)
