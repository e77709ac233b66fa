"""Sales orders, opportunities and invoices with their lines (reference dataverse-api.md §10.4-§10.6,
§10.9, §10.11): line pricing (price list membership, unit, write-in lines), line amounts and header
totals, the order state machine (only Active orders are editable), and closing an order
(FulfillSalesOrder, CancelSalesOrder).

Pricing of an existing-product line (`isproductoverridden` false): the product, a unit (`uomid`) of
the product's unit group, and an item for that product and unit in the header's price list are
required; otherwise the write is refused with the pricing error the reference names in
`pricingerrorcode` (2 Missing Price Level, 10 Missing UOM, 11 Product Not In Price Level). Whether
the real service refuses or only flags the line is UNCONFIRMED in the reference; the simulator
refuses, so a client can never leave an unpriced line behind. Unless `ispriceoverridden`, the
line's `priceperunit` comes from the price list item. A write-in line (`isproductoverridden`
true) carries `productdescription` and its own `priceperunit`, and no product.

Amounts: line `baseamount` = priceperunit x quantity, `extendedamount` = baseamount -
manualdiscountamount + tax; header `totallineitemamount` = sum of (baseamount -
manualdiscountamount), `totaldiscountamount` = discountamount + discountpercentage % of the line
total, `totalamountlessfreight` = line total - discount, `totaltax` = sum of line tax,
`totalamount` = totalamountlessfreight + freightamount + totaltax, `totalamount_base` =
totalamount / exchangerate.

Order states: 0 Active, 1 Submitted, 2 Canceled (CancelSalesOrder only), 3 Fulfilled
(FulfillSalesOrder only), 4 Invoiced. Only Active orders (and their lines) can be edited, and
lines deleted (so an order that is not Active cannot be deleted with its lines either);
Active <-> Submitted and Active/Submitted -> Invoiced by PATCH; Canceled, Fulfilled and Invoiced
are final (the reference documents no way back).
"""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse, utc_iso
from sandbox.dataverse.schema import Table

# (header table, line table, the line's lookup to its header)
HEADERS = (
    ("salesorder", "salesorderdetail", "salesorderid"),
    ("invoice", "invoicedetail", "invoiceid"),
    ("opportunity", "opportunityproduct", "opportunityid"),
)
LINE_TABLES = {line: head for head, line, _ in HEADERS}
UNBOUND_ACTIONS = ("CancelSalesOrder",)
OPEN_ORDER_STATES = (0, 1)  # Active, Submitted: the states an order can be closed from
FINAL_ORDER_STATES = {2: "Canceled", 3: "Fulfilled", 4: "Invoiced"}
# pricingerrorcode values the reference names (§10.5)
MISSING_PRICE_LEVEL, MISSING_UOM, NOT_IN_PRICE_LEVEL = 2, 10, 11


def pricing_error(code: int, message: str) -> ODataError:
    return ODataError(400, E.INVALID_ARGUMENT, f"{message} (pricingerrorcode {code}).")


def _num(value: Any) -> float:
    return float(value or 0)


def price_from_item(item: dict[str, Any], product: dict[str, Any]) -> float:
    """A price list item's unit price by its pricing method (§10.9 `pricingmethodcode`)."""
    method = item.get("pricingmethodcode") or 1
    pct = _num(item.get("percentage"))
    if method == 1:
        return _num(item.get("amount"))
    if method == 2:
        return _num(product.get("price")) * pct / 100
    cost = _num(product.get("currentcost" if method in (3, 4) else "standardcost"))
    if method in (3, 5):  # markup on cost
        return cost * (1 + pct / 100)
    return cost / (1 - pct / 100) if pct < 100 else cost  # margin on cost


class Orders(EngineBase):
    def _next_sequence(self, table: Table, record: dict[str, Any], header: dict[str, Any]) -> None:
        """A new line goes last: Dynamics numbers the lines of a quote, order or invoice in the
        order they were added (sequencenumber; the form's move up/down reorders them)."""
        column = next(c for _, line, c in HEADERS if line == table.logical_name)
        header_id = header[column]  # the header's primary id has the lookup's name
        taken = [
            int(r.get("sequencenumber") or 0)
            for r in self.referencing(table.logical_name, column, header_id)
            if r.get(table.primary_id) != record.get(table.primary_id)
        ]
        record["sequencenumber"] = max(taken, default=0) + 1

    def _header_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        for rel_table, line_table, column in HEADERS:
            if table.logical_name == line_table and isinstance(record.get(column), dict):
                parent = self.db.rows[rel_table].get(record[column]["id"])
                if parent is not None:
                    return self.schema.tables[rel_table], parent
        return None

    def _parent_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        header = self._header_of(table, record)
        if header is not None:
            return header
        if table.logical_name in ("salesorder", "opportunity", "invoice"):
            price_list = self.follow(record, "pricelevelid", "pricelevel")
            if price_list is not None:  # a header without a currency takes its price list's
                return self.schema.tables["pricelevel"], price_list
        return super()._parent_of(table, record)

    # -- pricing ---------------------------------------------------------------------------------
    def _price_line(self, table: Table, record: dict[str, Any]) -> None:
        header = self._header_of(table, record)
        name = table.logical_name
        if record.get("isproductoverridden"):
            if record.get("productid") is not None:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"A write-in {name} (isproductoverridden true) cannot have a 'productid'; "
                    "name the product in 'productdescription'.",
                )
            if not record.get("productdescription"):
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"'productdescription' is required for a write-in {name} (isproductoverridden true).",
                )
            return
        product = self.follow(record, "productid", "product")
        if product is None:
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"'productid' is required for an existing-product {name}; for a write-in product "
                "set 'isproductoverridden' true and 'productdescription'.",
            )
        unit = self.follow(record, "uomid", "uom")
        if unit is None:
            raise pricing_error(MISSING_UOM, f"'uomid' is required for an existing-product {name}")
        group = product.get("defaultuomscheduleid") or {}
        unit_group = unit.get("uomscheduleid") or {}
        if group.get("id") != unit_group.get("id"):
            raise pricing_error(
                MISSING_UOM,
                f"The unit '{unit.get('name')}' ('uomid') is not in the unit group of product "
                f"'{product.get('productnumber')}'",
            )
        price_list_ref = header[1].get("pricelevelid") if header else None
        if not isinstance(price_list_ref, dict):
            raise pricing_error(
                MISSING_PRICE_LEVEL,
                f"The {header[0].logical_name if header else 'header'} has no price list ('pricelevelid'); "
                f"an existing-product {name} needs one",
            )
        item = next(
            (
                row
                for row in self.referencing("productpricelevel", "pricelevelid", price_list_ref["id"])
                if (row.get("productid") or {}).get("id") == product["productid"]
                and (row.get("uomid") or {}).get("id") in (None, unit["uomid"])
            ),
            None,
        )
        if item is None:
            raise pricing_error(
                NOT_IN_PRICE_LEVEL,
                f"Product '{product.get('productnumber')}' with unit '{unit.get('name')}' is not in the "
                f"price list of the {header[0].logical_name if header else 'header'}",
            )
        if not record.get("ispriceoverridden"):
            record["priceperunit"] = round(price_from_item(item, product), 2)

    def _table_computed(self, table: Table, record: dict[str, Any]) -> None:
        if table.logical_name in LINE_TABLES:
            header = self._header_of(table, record)
            if header is not None:  # a line of a closed order is refused before it is priced
                self._require_editable(*header)
                if "sequencenumber" in table.columns and record.get("sequencenumber") is None:
                    self._next_sequence(table, record, header[1])
            if table.logical_name != "invoicedetail":
                self._price_line(table, record)
            base = _num(record.get("quantity")) * _num(record.get("priceperunit"))
            record["baseamount"] = round(base, 2)
            record["extendedamount"] = round(
                base - _num(record.get("manualdiscountamount")) + _num(record.get("tax")), 2
            )
        elif table.logical_name in LINE_TABLES.values():
            self._set_totals(table, record)
        super()._table_computed(table, record)

    # -- totals ----------------------------------------------------------------------------------
    def _set_totals(self, table: Table, record: dict[str, Any]) -> None:
        line_table, column = next((line, col) for head, line, col in HEADERS if head == table.logical_name)
        lines = self.referencing(line_table, column, record[table.primary_id])
        total_lines = round(
            sum(_num(r.get("baseamount")) - _num(r.get("manualdiscountamount")) for r in lines), 2
        )
        tax = round(sum(_num(r.get("tax")) for r in lines), 2)
        pct = _num(record.get("discountpercentage"))
        discount_total = round(_num(record.get("discountamount")) + total_lines * pct / 100, 2)
        record["totallineitemamount"] = total_lines
        record["totaltax"] = tax
        if "totaldiscountamount" in table.columns:
            record["totaldiscountamount"] = discount_total
        if "totalamountlessfreight" in table.columns:
            record["totalamountlessfreight"] = round(total_lines - discount_total, 2)
        total = round(total_lines - discount_total + _num(record.get("freightamount")) + tax, 2)
        record["totalamount"] = total
        rate = _num(record.get("exchangerate")) or 1
        record["totalamount_base"] = round(total / rate, 2)

    def _recompute_totals(self, table: Table, record: dict[str, Any]) -> None:
        updated = dict(record)
        self._set_totals(table, updated)
        if any(updated.get(k) != record.get(k) for k in updated):
            updated["versionnumber"] = self.db.next_version()
            if "modifiedon" in table.columns:  # the header is updated with its totals (change tracking)
                updated["modifiedon"] = utc_iso(self.clock.now())
            self.db.put(table.logical_name, record[table.primary_id], updated)

    # -- writes and the state machine --------------------------------------------------------------
    def _after_write(self, table: Table, record: dict[str, Any]) -> None:
        parent = self._header_of(table, record)
        if parent is not None:
            parent_table, parent_record = parent
            self._require_editable(parent_table, parent_record)
            self._recompute_totals(parent_table, parent_record)
        super()._after_write(table, record)

    def _after_delete(self, table: Table, record: dict[str, Any]) -> None:
        parent = self._header_of(table, record)
        if parent is not None:  # also when the order itself is deleted: a closed order stays whole
            self._require_editable(*parent)
            self._recompute_totals(*parent)
        super()._after_delete(table, record)

    def _table_transition(self, table: Table, new: dict[str, Any], state: int) -> None:
        if table.logical_name == "salesorder":
            old = self.db.rows["salesorder"].get(new["salesorderid"]) or {}
            before = old.get("statecode")
            if before in FINAL_ORDER_STATES:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    f"This salesorder is {FINAL_ORDER_STATES[before]} and its state cannot be changed. "
                    "Only active orders can be edited.",
                )
        super()._table_transition(table, new, state)

    # -- actions -------------------------------------------------------------------------------
    def _table_action(self, call: ActionCall) -> SimResponse | None:
        on_orders = call.table is None or call.table.logical_name == "salesorder"
        if call.name == "FulfillSalesOrder" and on_orders and call.key is None:
            return self._close_order(call.req, call.body, fulfilled=True)
        if call.name == "CancelSalesOrder" and on_orders and call.key is None:
            return self._close_order(call.req, call.body, fulfilled=False)
        return super()._table_action(call)

    def _close_order(self, req: SimRequest, body: dict[str, Any], *, fulfilled: bool) -> SimResponse:
        table, record = self._activity_target(
            req, body.get("OrderClose"), "OrderClose", "salesorderid", "order"
        )
        if table.logical_name != "salesorder":
            raise ODataError(400, E.PAYLOAD_ERROR, "OrderClose must reference a salesorder.")
        if record.get("statecode") not in OPEN_ORDER_STATES:
            state = FINAL_ORDER_STATES.get(record.get("statecode"), str(record.get("statecode")))
            raise ODataError(
                400, E.INVALID_ARGUMENT, f"The order is {state}, not active, and cannot be closed."
            )
        return self._close(req, body, "OrderClose", "orderclose", table, record, 3 if fulfilled else 2)
