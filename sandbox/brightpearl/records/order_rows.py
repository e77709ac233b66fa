"""Order rows: parsing and validating posted rows, the stored row, and row POST and PATCH."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.amounts import fmt, money
from sandbox.brightpearl.records.core import StateCore, existing
from sandbox.brightpearl.records.jsonpatch import apply_patch, deep_copy, patch_operations


class OrderRowStore(StateCore):
    products: dict[int, dict[str, Any]]  # read: rows name existing products
    tax_codes: dict[int, dict[str, Any]]  # read: rows name the account's tax codes
    goods_out: dict[int, dict[str, Any]]  # read: a row cannot drop below what is noted

    # provided by OrderStore
    order: Callable[[int], dict[str, Any]]
    _touch_order: Callable[..., None]

    def _parse_rows(self, rows: Any, sign: int = 1) -> list[dict[str, Any]]:
        if not isinstance(rows, list) or not rows:
            raise bad("rows must be a non-empty list", "ORDC-020")
        parsed = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise bad(f"rows[{index}] must be an object", "ORDC-021")
            pid = row.get("productId")
            if pid is not None and pid not in self.products:
                raise bad(f"rows[{index}].productId {pid!r} does not exist", "ORDC-022")
            if pid is None and not row.get("name"):
                raise bad(f"rows[{index}] needs productId or name", "ORDC-023")
            quantity = money(row.get("quantity", "x"), f"rows[{index}].quantity")
            if quantity <= 0:
                raise bad(f"rows[{index}].quantity must be positive, got {row.get('quantity')!r}", "ORDC-024")
            product = self.products.get(pid) if pid else None
            if product and product["stock"].get("stockTracked") and quantity != quantity.to_integral_value():
                raise bad(f"rows[{index}].quantity must be whole for a stock-tracked product", "ORDC-024")
            tax_code = row.get("taxCode")
            tax = next((t for t in self.tax_codes.values() if t["code"] == tax_code), None)
            if tax is None:
                raise bad(f"rows[{index}].taxCode {tax_code!r} is not a tax code of this account", "ORDC-025")
            net = money(row.get("net", 0), f"rows[{index}].net")
            row_tax = money(row.get("tax", 0), f"rows[{index}].tax")
            parsed.append(
                {
                    "product": product,
                    "productId": pid,
                    "name": row.get("name"),
                    "quantity": quantity,
                    "tax": tax,
                    "net": net * sign,
                    "rowTax": row_tax * sign,
                    "nominalCode": str(row.get("nominalCode", "4000")),
                    "externalRef": row.get("externalRef"),
                }
            )
        return parsed

    def _order_row(
        self, row: dict[str, Any], sequence: int, currency: str, item_cost: bool
    ) -> dict[str, Any]:
        """The stored form of a parsed row; `_stockTracked` is internal and never rendered.
        Rows posted with an order carry an item cost; rows added later do not."""
        product = row["product"]
        record: dict[str, Any] = {
            "orderRowSequence": str(sequence * 10),
            "productId": row["productId"] or 0,
            "productName": row["name"] or (product["salesChannels"][0].get("productName") if product else ""),
            "productSku": (product or {}).get("identity", {}).get("sku", ""),
            "quantity": {"magnitude": fmt(row["quantity"])},
        }
        if item_cost:
            record["itemCost"] = {"currencyCode": currency, "value": "0.0000"}
        record.update(
            {
                "productPrice": {"currencyCode": currency, "value": fmt(row["net"] / row["quantity"])},
                "discountPercentage": "0.00",
                "rowValue": {
                    "taxRate": fmt(Decimal(row["tax"]["rate"])),
                    "taxCode": row["tax"]["code"],
                    "taxClassId": row["tax"]["id"],
                    "taxCalculator": "brightpearl",
                    "rowNet": {"value": fmt(row["net"])},
                    "rowTax": {"value": fmt(row["rowTax"], 2)},
                },
                "nominalCode": row["nominalCode"],
                "composition": {"bundleParent": False, "bundleChild": False, "parentOrderRowId": 0},
                "_stockTracked": bool(product and product["stock"].get("stockTracked")),
            }
        )
        if row["externalRef"]:
            record["externalRef"] = row["externalRef"]
        return record

    def add_row(self, oid: int, body: Any) -> int:
        with self.lock:
            order = self.order(oid)
            if order["invoices"]:
                raise bad("rows cannot be added once the order is invoiced", "ORDC-030")
            if not isinstance(body, dict):
                raise bad("A JSON body is required", "CMNC-010")
            flat = {
                "productId": body.get("productId"),
                "name": body.get("productName"),
                "quantity": body.get(
                    "magnitude",
                    (body.get("quantity") or {}).get("magnitude")
                    if isinstance(body.get("quantity"), dict)
                    else body.get("quantity"),
                ),
                "taxCode": body.get("taxCode"),
                "net": body.get("rowNet", 0)
                if not isinstance(body.get("rowNet"), dict)
                else body["rowNet"].get("value"),
                "tax": body.get("rowTax", 0)
                if not isinstance(body.get("rowTax"), dict)
                else body["rowTax"].get("value"),
            }
            before = set(order["orderRows"])
            row = self._parse_rows([flat])[0]
            rid = self.next_id("row", 1)
            order["orderRows"][str(rid)] = self._order_row(
                row, len(before) + 1, order["currency"]["orderCurrencyCode"], item_cost=False
            )
            self._touch_order(order)
            return rid

    def _noted(self, oid: int, row_id: str) -> Decimal:
        """How much of an order row is on goods-out notes already."""
        return sum(
            (
                Decimal(line["quantity"])
                for n in self.goods_out.values()
                if n["orderId"] == oid
                for line in n["orderRows"].get(row_id, [])
            ),
            Decimal(0),
        )

    def put_rows(
        self, oid: int, row_ids: list[int], body: Any
    ) -> tuple[dict[str, int], dict[str, list[dict[str, str]]]]:
        """Sales order row PUT (reference §6.2): each `{id, productId|name, quantity, taxCode,
        net, tax}` replaces its row; ids must be in the URL set. Rows are judged one by one
        (per-row statuses and errors); none change once the order is invoiced."""
        with self.lock:
            order = self.order(oid)
            if order["invoices"]:
                raise bad("rows cannot be changed once the order is invoiced", "ORDC-031")
            if not isinstance(body, list) or not body:
                raise bad("the body must be a non-empty list of rows", "ORDC-037")
            statuses: dict[str, int] = {}
            errors: dict[str, list[dict[str, str]]] = {}
            changed = False
            for index, item in enumerate(body):
                rid = item.get("id") if isinstance(item, dict) else None
                key = str(rid) if rid is not None else f"[{index}]"
                try:
                    if rid not in row_ids:
                        raise bad(f"rows[{index}].id {rid!r} is not in the URL's row id set", "ORDC-038")
                    current = existing(
                        order["orderRows"], str(rid), f"Order row {rid} not found on order {oid}"
                    )
                    flat = {k: v for k, v in item.items() if k != "id"}
                    row = self._parse_rows([flat])[0]
                    noted = self._noted(oid, str(rid))
                    if row["quantity"] < noted:
                        raise bad(
                            f"rows[{index}].quantity cannot drop below the {noted} on goods-out notes",
                            "ORDC-034",
                        )
                    if noted and row["productId"] != current["productId"]:
                        raise bad(
                            f"rows[{index}]: the product of a row on goods-out notes cannot change",
                            "ORDC-039",
                        )
                except ApiError as exc:
                    statuses[key] = exc.status
                    message = exc.message.replace("rows[0]", f"rows[{index}]", 1)
                    errors[key] = [{"code": exc.code, "message": message}]
                    continue
                sequence = int(current["orderRowSequence"]) // 10
                replaced = self._order_row(
                    row, sequence, order["currency"]["orderCurrencyCode"], item_cost="itemCost" in current
                )
                replaced["orderRowSequence"] = current["orderRowSequence"]
                order["orderRows"][str(rid)] = replaced
                statuses[key], errors[key] = 200, []
                changed = True
            if changed:
                self._touch_order(order)
            return statuses, errors

    def delete_row(self, oid: int, row_id: int) -> None:
        """Row DELETE (reference §6.5 names it; the rules follow PATCH): never once invoiced,
        never a row already on goods-out notes."""
        with self.lock:
            order = self.order(oid)
            existing(order["orderRows"], str(row_id), f"Order row {row_id} not found on order {oid}")
            if order["invoices"]:
                raise bad("rows cannot be deleted once the order is invoiced", "ORDC-036")
            if self._noted(oid, str(row_id)):
                raise bad(f"row {row_id} is on goods-out notes and cannot be deleted", "ORDC-036")
            del order["orderRows"][str(row_id)]
            self._touch_order(order)

    def patch_row(self, oid: int, row_id: int, ops: Any) -> dict[str, Any]:
        """Row PATCH (reference §6.5): a few paths, never once the order is invoiced."""
        allowed = {
            "/quantity/magnitude",
            "/rowValue/rowNet/value",
            "/rowValue/rowTax/value",
            "/nominalCode",
            "/rowValue/taxCalculator",
            "/orderRowSequence",
        }
        with self.lock:
            order = self.order(oid)
            row = existing(order["orderRows"], str(row_id), f"Order row {row_id} not found on order {oid}")
            if order["invoices"]:
                raise bad("rows cannot be changed once the order is invoiced", "ORDC-031")
            ops = patch_operations(ops)
            work = deep_copy(row)
            for index, op in enumerate(ops):
                path = op.get("path") if isinstance(op, dict) else None
                if path not in allowed:
                    raise bad(f"path {path!r} cannot be patched on an order row", "ORDC-032")
                if op.get("op") not in ("replace", "test") or (
                    path == "/rowValue/taxCalculator" and op.get("op") != "replace"
                ):
                    raise bad(f"operation {op.get('op')!r} is not allowed on {path}", "ORDC-033")
                value = op.get("value")
                if path == "/quantity/magnitude":
                    quantity = money(value, "quantity.magnitude")
                    if quantity <= 0 or (row["_stockTracked"] and quantity != quantity.to_integral_value()):
                        raise bad(f"quantity {value!r} is not a valid quantity for this row", "ORDC-024")
                    noted = self._noted(oid, str(row_id))
                    if quantity < noted:
                        raise bad(
                            f"quantity cannot drop below the {noted} already on goods-out notes", "ORDC-034"
                        )
                    value = fmt(quantity)
                elif path in ("/rowValue/rowNet/value", "/rowValue/rowTax/value"):
                    value = fmt(money(value, path[1:].replace("/", ".")))
                elif path == "/rowValue/taxCalculator" and value not in ("brightpearl", "manual", "avalara"):
                    raise bad("taxCalculator must be brightpearl, manual or avalara", "ORDC-035")
                apply_patch(work, dict(op, value=value), index)
            order["orderRows"][str(row_id)] = work
            self._touch_order(order)
            return {k: v for k, v in work.items() if not k.startswith("_")}
