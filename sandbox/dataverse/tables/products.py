"""Products: a family must be active before its products; publishing a family (PublishProductHierarchy)."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse
from sandbox.dataverse.schema import Table


class Products(EngineBase):
    def _table_transition(self, table: Table, new: dict[str, Any], state: int) -> None:
        if table.logical_name == "product" and state == 0 and isinstance(new.get("parentproductid"), dict):
            parent = self.db.rows["product"].get(new["parentproductid"]["id"])
            if parent is not None and parent.get("statecode") != 0:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    "The product cannot be published because its parent product family is not active.",
                )
        super()._table_transition(table, new, state)

    def _table_action(self, call: ActionCall) -> SimResponse | None:
        table, key = call.table, call.key
        if (
            call.name == "PublishProductHierarchy"
            and table is not None
            and table.logical_name == "product"
            and key
        ):
            record = self.existing(table, key)
            with self.db.transaction():
                self._publish(table, record, call.req)
            return SimResponse.empty(204)
        return super()._table_action(call)

    def _publish(self, table: Table, record: dict[str, Any], req: SimRequest) -> None:
        if record.get("statecode") != 0:
            record = self.update(table, record, {"statecode": 0, "statuscode": 1}, req)
        for child in self.referencing("product", "parentproductid", record["productid"]):
            self._publish(table, child, req)
