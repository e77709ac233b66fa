"""Order rows: parsing and validating posted rows, the stored row, and row POST and PATCH."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import bad
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
                    noted = sum(
                        (
                            Decimal(line["quantity"])
                            for n in self.goods_out.values()
                            if n["orderId"] == oid
                            for line in n["orderRows"].get(str(row_id), [])
                        ),
                        Decimal(0),
                    )
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
