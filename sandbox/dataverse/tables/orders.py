"""Sales orders and invoices: line amounts and header totals, and closing an order (fulfil or cancel)."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse
from sandbox.dataverse.schema import Table

# (header table, line table, the line's lookup to its header)
HEADERS = (
    ("salesorder", "salesorderdetail", "salesorderid"),
    ("invoice", "invoicedetail", "invoiceid"),
)
UNBOUND_ACTIONS = ("CancelSalesOrder",)


class Orders(EngineBase):
    def _header_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        for rel_table, line_table, column in HEADERS:
            if table.logical_name == line_table and isinstance(record.get(column), dict):
                parent = self.db.rows[rel_table].get(record[column]["id"])
                if parent is not None:
                    return self.schema.tables[rel_table], parent
        return None

    def _parent_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        return self._header_of(table, record) or super()._parent_of(table, record)

    def _table_computed(self, table: Table, record: dict[str, Any]) -> None:
        if table.logical_name in ("salesorderdetail", "invoicedetail"):
            qty = float(record.get("quantity") or 0)
            price = float(record.get("priceperunit") or 0)
            record["baseamount"] = round(qty * price, 2)
            record["extendedamount"] = round(
                qty * price - float(record.get("manualdiscountamount") or 0) + float(record.get("tax") or 0),
                2,
            )
        super()._table_computed(table, record)

    def _after_write(self, table: Table, record: dict[str, Any]) -> None:
        parent = self._header_of(table, record)
        if parent is not None:
            parent_table, parent_record = parent
            self._require_editable(parent_table, parent_record)
            self._recompute_totals(parent_table, parent_record)
        super()._after_write(table, record)

    def _after_delete(self, table: Table, record: dict[str, Any]) -> None:
        parent = self._header_of(table, record)
        if parent is not None:
            self._recompute_totals(*parent)
        super()._after_delete(table, record)

    def _recompute_totals(self, table: Table, record: dict[str, Any]) -> None:
        line_table, column = next((line, col) for head, line, col in HEADERS if head == table.logical_name)
        rid = record[table.primary_id]
        lines = self.referencing(line_table, column, rid)
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

    def _table_action(self, call: ActionCall) -> SimResponse | None:
        on_orders = call.table is None or call.table.logical_name == "salesorder"
        if call.name == "FulfillSalesOrder" and on_orders and call.key is None:
            return self._close_order(call.req, call.body, fulfilled=True)
        if call.name == "CancelSalesOrder":
            return self._close_order(call.req, call.body, fulfilled=False)
        return super()._table_action(call)

    def _close_order(self, req: SimRequest, body: dict[str, Any], *, fulfilled: bool) -> SimResponse:
        table, record = self._activity_target(
            req, body.get("OrderClose"), "OrderClose", "salesorderid", "order"
        )
        if table.logical_name != "salesorder":
            raise ODataError(400, E.PAYLOAD_ERROR, "OrderClose must reference a salesorder.")
        if record.get("statecode") not in (0, 1):
            raise ODataError(400, E.INVALID_ARGUMENT, "The order is not active and cannot be closed.")
        return self._close(req, body, "OrderClose", "orderclose", table, record, 3 if fulfilled else 2)
