"""order-service: sales orders and credits, rows, statuses, notes, custom fields, order search."""

from __future__ import annotations

import re
from typing import Any

from sandbox.brightpearl.envelope import Reply, Req, found, id_set, ok
from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.routes.base import RouteBase


class OrderRoutes(RouteBase):
    def render_order(self, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        out["orderRows"] = {
            rid: {k: v for k, v in row.items() if not k.startswith("_")}
            for rid, row in record["orderRows"].items()
        }
        out["orderStatus"] = dict(record["orderStatus"])
        return out

    def render_sales_order(self, record: dict[str, Any]) -> dict[str, Any]:
        """Sales order GET (reference §6.2): the order GET fields plus the sales-order POST
        names (`customerId`, `customer.id`, `ref`, `statusId`, `channelId`, `rows[]`) and the
        read-only `total`, `isCanceled` (null when the account has no cancelled status)."""
        out = self.render_order(record)
        totals = record["totalValue"]
        status_id = record["orderStatus"]["orderStatusId"]
        cancelled = self.state.cancelled_status
        out.update(
            customerId=record["parties"]["customer"]["contactId"],
            customer={"id": record["parties"]["customer"]["contactId"]},
            ref=record["reference"],
            statusId=status_id,
            channelId=record["assignment"]["current"]["channelId"],
            isCanceled=None if cancelled is None else status_id == cancelled,
            total={
                "net": totals["net"],
                "tax": totals["taxAmount"],
                "gross": totals["total"],
                "baseNet": totals["baseNet"],
                "baseTax": totals["baseTaxAmount"],
                "baseGross": totals["baseTotal"],
            },
            rows=[
                {
                    "id": int(rid),
                    "productId": row["productId"],
                    "name": row["productName"],
                    "sku": row["productSku"],
                    "quantity": row["quantity"]["magnitude"],
                    "taxCode": row["rowValue"]["taxCode"],
                    "net": row["rowValue"]["rowNet"]["value"],
                    "tax": row["rowValue"]["rowTax"]["value"],
                    "nominalCode": row["nominalCode"],
                    "externalRef": row.get("externalRef", ""),
                    "productPrice": row["productPrice"]["value"],
                    "discountPercentage": row["discountPercentage"],
                    "sequence": int(row["orderRowSequence"]),
                    "taxClassId": row["rowValue"]["taxClassId"],
                    "taxCalculator": row["rowValue"]["taxCalculator"],
                    "bundleParent": row["composition"]["bundleParent"],
                    "bundleChild": row["composition"]["bundleChild"],
                    "parentRowId": row["composition"]["parentOrderRowId"],
                }
                for rid, row in record["orderRows"].items()
            ],
        )
        return out

    def post_sales_order(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_sales_order(req.body or {}, "SO"))

    def post_sales_credit(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_sales_order(req.body or {}, "SC"))

    def post_order(self, req: Req, m: re.Match[str]) -> Reply:
        """Generic order POST: header only, rows come via /order/{id}/row (reference §6.3)."""
        body = req.body or {}
        code = body.get("orderTypeCode")
        if code not in ("SO", "SC"):
            raise bad(f"orderTypeCode {code!r} must be SO or SC in this simulator", "ORDC-001")
        parties = body.get("parties") or {}
        customer = (parties.get("customer") or {}).get("contactId")
        with self.state.lock:
            oid = self.state.create_sales_order(
                {
                    "customer": {"id": customer},
                    "ref": body.get("reference", ""),
                    "statusId": (body.get("orderStatus") or {}).get(
                        "orderStatusId", self.state.default_status[code]
                    ),
                    "warehouseId": body.get("warehouseId", 2),
                    "parentId": body.get("parentOrderId", 0),
                    "rows": [{"name": "placeholder", "quantity": 1, "taxCode": "N", "net": 0, "tax": 0}],
                },
                code,
                quiet=True,
            )
            self.state.orders[oid]["orderRows"].clear()
            self.state._touch_order(self.state.orders[oid], "order.created")
        return ok(oid)

    def post_order_row(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.add_row(int(m["id"]), req.body))

    def get_orders(self, req: Req, m: re.Match[str]) -> Reply:
        kind = "SO" if req.path.startswith("order-service/sales-order") else None
        render = self.render_sales_order if kind else self.render_order
        with self.state.lock:
            items = [
                render(self.state.orders[i])
                for i in id_set(m["ids"], self.config.get_limit)
                if i in self.state.orders and (kind is None or self.state.orders[i]["orderTypeCode"] == kind)
            ]
            if "customFields" in req.params.get("includeOptional", ""):
                for item in items:
                    item["customFields"] = self.state.render_custom_fields(item["id"])
        if not items and self.config.order_get_empty == "404":
            raise ApiError(404, "CMNC-404", "No Order Found")
        return ok(items)

    def options_orders(self, req: Req, m: re.Match[str]) -> Reply:
        return self._options(req, m, self.state.orders, "/" + req.path.split("/")[1])

    def patch_order_row(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.patch_row(int(m["id"]), int(m["row"]), req.body))

    def delete_order_row(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.delete_row(int(m["id"]), int(m["row"]))
        return Reply(200, None)

    def put_sales_order_rows(self, req: Req, m: re.Match[str]) -> Reply:
        """Sales order row PUT (reference §6.2): per-row statuses and errors; 207 when they differ."""
        statuses, errors = self.state.put_rows(int(m["id"]), id_set(m["ids"]), req.body)
        mixed = len(set(statuses.values())) > 1
        return ok({"resourceStatuses": statuses, "resourceErrors": errors}, status=207 if mixed else 200)

    def post_order_status(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_order_status(req.body))

    def put_order_status(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.set_order_status(int(m["id"]), req.body)
        return ok({})

    def post_order_note(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.add_note(int(m["id"]), req.body))

    def get_order_notes(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            self.state.order(int(m["id"]))
            return found(list(self.state.order_notes.get(int(m["id"]), [])), "Order Note")

    def get_order_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            self.state.order(int(m["id"]))
            return ok(self.state.render_custom_fields(int(m["id"])))

    def patch_order_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.patch_order_custom_fields(int(m["id"]), req.body))

    def get_order_statuses(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = id_set(m["ids"]) if m["ids"] else sorted(self.state.order_statuses)
            items = [dict(self.state.order_statuses[i]) for i in ids if i in self.state.order_statuses]
        items.sort(key=lambda s: (s["orderTypeCode"], s["sortOrder"]))
        return found(items, "Order Status")

    def get_custom_field_meta(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            items = list(self.state.order_custom_field_meta.values())
        if m["ids"]:
            wanted = set(id_set(m["ids"]))
            items = [i for i in items if i["id"] in wanted]
        return found(items, "Custom Field")

    def post_sales_order_close(self, req: Req, m: re.Match[str]) -> Reply:
        """Sales Order Close (reference §6.9; the path is UNCONFIRMED, the simulator's choice):
        invoice the order (`taxDate` optional). Closing an invoiced order is refused, as for a
        sales credit; the reply is the order's invoices."""
        body = req.body if isinstance(req.body, dict) else {}
        oid = int(m["id"])
        with self.state.lock:
            if self.state.order(oid)["orderTypeCode"] != "SO":
                raise bad(f"order {oid} is not a sales order", "ORDC-093")
            out = self.state.invoice_order(oid, {"taxDate": body["taxDate"]} if body.get("taxDate") else {})
        return ok(out["invoices"])

    def get_sales_credits(self, req: Req, m: re.Match[str]) -> Reply:
        if not m["ids"]:
            raise bad("an ID set is required for sales-credit GET", "ORDC-070")
        ids = id_set(m["ids"], self.config.get_limit)
        with self.state.lock:
            items = [
                self.render_order(self.state.orders[i])
                for i in ids
                if i in self.state.orders and self.state.orders[i]["orderTypeCode"] == "SC"
            ]
        if not items:
            raise ApiError(404, "CMNC-404", "No Sales Credit Found")
        return ok(items, status=207 if len(items) < len(ids) else 200)
