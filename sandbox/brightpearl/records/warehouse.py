"""Warehouses and goods-out notes: creating notes against order rows, note updates, and the
pick/pack/ship events that move stock and shipping status (warehouse-service writes)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.core import StateCore, existing


class WarehouseStore(StateCore):
    warehouses: dict[int, dict[str, Any]]
    goods_out: dict[int, dict[str, Any]]
    # read and changed: shipping moves stock and the order's shipping status
    stock: dict[int, dict[int, int]]
    orders: dict[int, dict[str, Any]]

    # provided by OrderStore
    order: Callable[[int], dict[str, Any]]
    _touch_order: Callable[..., None]

    def _reset_warehouse(self) -> None:
        self.goods_out = {}
        self.warehouses = {
            2: {
                "id": 2,
                "name": "Main Warehouse",
                "typeCode": "WAREHOUSE",
                "typeDescription": "Warehouse",
                "address": {"addressId": 1},
                "clickAndCollectEnabled": False,
            },
            3: {
                "id": 3,
                "name": "London Store",
                "typeCode": "STORE",
                "typeDescription": "Store",
                "address": {"addressId": 2},
                "clickAndCollectEnabled": True,
            },
            4: {
                "id": 4,
                "name": "3PL North",
                "typeCode": "3PL",
                "typeDescription": "3PL",
                "address": {"addressId": 3},
                "clickAndCollectEnabled": False,
            },
        }

    def create_goods_out(self, oid: int, body: Any) -> list[int]:
        with self.lock:
            order = self.order(oid)
            if order["orderTypeCode"] != "SO":
                raise bad("goods-out notes are for sales orders", "WHSB-030")
            whs = body.get("warehouses") if isinstance(body, dict) else None
            if not isinstance(whs, list) or not whs:
                raise bad("warehouses must be a non-empty list", "WHSB-031")
            already: dict[str, Decimal] = {}
            for note in self.goods_out.values():
                if note["orderId"] == oid:
                    for rid, lines in note["orderRows"].items():
                        already[rid] = already.get(rid, Decimal(0)) + sum(
                            Decimal(x["quantity"]) for x in lines
                        )
            planned = dict(already)
            for wi, wh in enumerate(whs):
                if wh.get("warehouseId") not in self.warehouses:
                    raise bad(
                        f"warehouses[{wi}].warehouseId {wh.get('warehouseId')!r} does not exist", "WHSB-032"
                    )
                products = wh.get("products")
                if not isinstance(products, list) or not products:
                    raise bad(f"warehouses[{wi}].products must be a non-empty list", "WHSB-033")
                for pi, line in enumerate(products):
                    rid = str(line.get("salesOrderRowId"))
                    row = order["orderRows"].get(rid)
                    if row is None or row["productId"] != line.get("productId"):
                        raise bad(
                            f"warehouses[{wi}].products[{pi}]: row {rid} of product "
                            f"{line.get('productId')!r} is not on order {oid}",
                            "WHSB-034",
                        )
                    qty = line.get("quantity")
                    if not isinstance(qty, int) or qty <= 0:
                        raise bad(
                            f"warehouses[{wi}].products[{pi}].quantity must be a positive integer", "WHSB-035"
                        )
                    planned[rid] = planned.get(rid, Decimal(0)) + qty
                    if planned[rid] > Decimal(row["quantity"]["magnitude"]):
                        raise bad(
                            f"row {rid} would be over-fulfilled ({planned[rid]} > "
                            f"{Decimal(row['quantity']['magnitude'])})",
                            "WHSB-038",
                        )
            ids = []
            for wh in whs:
                nid = self.next_id("gon", 1)
                now = self.now()
                rows: dict[str, list[dict[str, Any]]] = {}
                for line in wh["products"]:
                    rows.setdefault(str(line["salesOrderRowId"]), []).append(
                        {
                            "productId": line["productId"],
                            "quantity": line["quantity"],
                            "locationId": 2,
                            "externalRef": line.get("externalRef", ""),
                        }
                    )
                self.goods_out[nid] = {
                    "orderId": oid,
                    "warehouseId": wh["warehouseId"],
                    "targetWarehouseId": 0,
                    "transfer": bool(wh.get("transfer", False)),
                    "priority": bool(body.get("priority", False)),
                    "externalRef": wh.get("externalRef", ""),
                    "sequence": len(ids) + 1,
                    "createdOn": now,
                    "createdBy": 4,
                    "releaseDate": wh.get("releaseDate") or now,
                    "labelUri": "",
                    "lastEventVersion": 0,
                    "status": {"printed": False, "picked": False, "packed": False, "shipped": False},
                    "shipping": {
                        "shippingMethodId": body.get("shippingMethodId", 0),
                        "reference": "",
                        "boxes": 0,
                        "weight": "0.000",
                    },
                    "orderRows": rows,
                    "events": [],
                    "updatedOn": now,
                }
                ids.append(nid)
                self.emit("goods-out-note.created", [nid])
            self._touch_order(order)
            for pid in {line["productId"] for wh in whs for line in wh["products"]}:
                self.emit("product.modified.on-hand-modified", [pid])
            return ids

    def update_goods_out(self, nid: int, body: Any) -> None:
        with self.lock:
            note = existing(self.goods_out, nid, f"Goods-out note {nid} not found")
            if not isinstance(body, dict):
                raise bad("A JSON body is required", "CMNC-010")
            if "priority" in body:
                note["priority"] = bool(body["priority"])
            shipping = body.get("shipping") or {}
            for key in ("shippingMethodId", "reference", "boxes", "weight"):
                if key in shipping:
                    note["shipping"][key] = shipping[key]
            if "labelUri" in body:
                note["labelUri"] = body["labelUri"]
            note["updatedOn"] = self.now()
            self.emit("goods-out-note.modified", [nid])

    def goods_out_events(self, nid: int, body: Any, if_match: str | None) -> None:
        codes = {
            "PRI": ("printed", True),
            "UPR": ("printed", False),
            "PIC": ("picked", True),
            "UPI": ("picked", False),
            "PAC": ("packed", True),
            "UPA": ("packed", False),
            "SHW": ("shipped", True),
        }
        names = {
            "PRI": "printed",
            "UPR": "un-printed",
            "PIC": "picked",
            "UPI": "un-picked",
            "PAC": "packed",
            "UPA": "un-packed",
            "SHW": "shipped",
        }
        with self.lock:
            note = existing(self.goods_out, nid, f"Goods-out note {nid} not found")
            if if_match is not None and if_match.strip('"') != str(note["lastEventVersion"]):
                raise ApiError(
                    412, "WHSB-412", f"lastEventVersion is {note['lastEventVersion']}, not {if_match}"
                )
            events = body.get("events") if isinstance(body, dict) else None
            if not isinstance(events, list) or not events:
                raise bad("events must be a non-empty list", "WHSB-040")
            for i, event in enumerate(events):
                if event.get("eventCode") not in codes:
                    raise bad(
                        f"events[{i}].eventCode {event.get('eventCode')!r} is not one of {sorted(codes)}",
                        "WHSB-041",
                    )
                if not event.get("occured"):
                    raise bad(f"events[{i}].occured is required", "WHSB-042")
                if not isinstance(event.get("eventOwnerId"), int):
                    raise bad(f"events[{i}].eventOwnerId must be a contact id", "WHSB-043")
            if note["status"]["shipped"]:
                raise bad("the note is shipped; no more events can be added", "WHSB-044")
            fired = []
            for event in events:
                code = event["eventCode"]
                if code == "SHW":
                    for earlier in ("PRI", "PIC", "PAC"):
                        field = codes[earlier][0]
                        if not note["status"][field]:
                            note["status"][field] = True
                            note["status"][f"{field}On"] = self.now()
                            note["events"].append(
                                {
                                    "eventCode": earlier,
                                    "occured": event["occured"],
                                    "eventOwnerId": event["eventOwnerId"],
                                }
                            )
                field, value = codes[code]
                note["status"][field] = value
                if value:
                    note["status"][f"{field}On"] = self.now()
                    note["status"][f"{field}ById"] = event["eventOwnerId"]
                note["events"].append(
                    {"eventCode": code, "occured": event["occured"], "eventOwnerId": event["eventOwnerId"]}
                )
                note["lastEventVersion"] += 1
                fired.append(names[code])
            note["updatedOn"] = self.now()
            for name in fired:
                self.emit(f"goods-out-note.modified.{name}", [nid])
            if note["status"]["shipped"]:
                for lines in note["orderRows"].values():
                    for line in lines:
                        level = self.stock.setdefault(line["productId"], {})
                        level[note["warehouseId"]] = level.get(note["warehouseId"], 0) - line["quantity"]
                        self.emit("product.modified.on-hand-modified", [line["productId"]])
                order = self.orders.get(note["orderId"])
                if order is not None:
                    before = order.get("shippingStatusCode")
                    self._touch_order(order)
                    if order["shippingStatusCode"] == "ASS" and before != "ASS":
                        self.emit("order.modified.fully-shipped", [order["id"]])
