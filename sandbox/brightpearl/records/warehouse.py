"""Warehouses, goods-out notes and stock corrections: creating notes against order rows, note
updates, the pick/pack/ship events that move stock and shipping status, stock corrections
(reference §8.4) and the goods movements both leave behind (warehouse-service writes).

Goods movements (`goods-movement-search`, reference §4.1 names only the path): one per
product and note that moved stock, `goodsNoteTypeCode` `SC` for a stock correction and `GO`
for a shipped goods-out note. Their fields follow third-party client code (columns
goodsMovementId, goodsNoteId, goodsNoteTypeCode, productId, warehouseId, quantity,
destinationLocationId, currencyCode, updatedOn): UNCONFIRMED.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.amounts import money
from sandbox.brightpearl.records.core import StateCore, existing


class WarehouseStore(StateCore):
    warehouses: dict[int, dict[str, Any]]
    goods_out: dict[int, dict[str, Any]]
    # read and changed: shipping moves stock and the order's shipping status
    stock: dict[int, dict[int, int]]
    orders: dict[int, dict[str, Any]]
    stock_corrections: dict[int, dict[str, Any]]
    goods_movements: dict[int, dict[str, Any]]
    # read: products and their cost prices (a correction's value); provided by ProductStore
    products: dict[int, dict[str, Any]]
    prices: dict[int, dict[int, dict[str, str]]]
    product: Callable[[int], dict[str, Any]]
    touch_product: Callable[..., None]

    # provided by OrderStore
    order: Callable[[int], dict[str, Any]]
    _touch_order: Callable[..., None]
    # provided by ReservationStore (records/reservations.py)
    check_reserved: Callable[[int, list[dict[str, Any]]], None]
    consume_reserved: Callable[[int, list[dict[str, Any]]], None]

    def _reset_warehouse(self) -> None:
        self.goods_out = {}
        self.stock_corrections = {}
        self.goods_movements = {}
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
            self.check_reserved(oid, whs)  # notes come out of the order's reservations
            self.consume_reserved(oid, whs)
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
            codes_sent = [e["eventCode"] for e in events]
            if "SHW" in codes_sent[:-1]:
                raise bad("SHW must be the last event: none can follow the shipment", "WHSB-044")
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
                        self._record_movement(
                            nid, "GO", line["productId"], note["warehouseId"], -line["quantity"], None
                        )
                        self.emit("product.modified.on-hand-modified", [line["productId"]])
                order = self.orders.get(note["orderId"])
                if order is not None:
                    self._touch_order(order)  # raises order.modified.fully-shipped when it is

    # --- stock corrections (§8.4) --------------------------------------------------------
    def correct_stock(self, warehouse_id: int, body: Any) -> list[int]:
        """Stock-correction POST: every correction is checked before any is applied; each
        becomes a correction note (ids returned in order), a goods movement and a
        `product.modified.on-hand-modified` event. Adding stock to an archived product sets
        it back to LIVE (`product.modified`)."""
        with self.lock:
            existing(self.warehouses, warehouse_id, f"Warehouse {warehouse_id} not found")
            corrections = body.get("corrections") if isinstance(body, dict) else None
            if not isinstance(corrections, list) or not corrections:
                raise bad("corrections must be a non-empty list", "WHSC-001")
            planned: dict[int, int] = {}
            for i, c in enumerate(corrections):
                self._check_correction(i, c, warehouse_id, planned)
            ids = []
            for c in corrections:
                pid, qty = c["productId"], c["quantity"]
                nid = self.next_id("correction", 1)
                level = self.stock.setdefault(pid, {})
                level[warehouse_id] = level.get(warehouse_id, 0) + qty
                value = self._unit_value(pid, c.get("cost"))
                moved = self._record_movement(nid, "SC", pid, warehouse_id, qty, value, c.get("batchId"))
                self.stock_corrections[nid] = {
                    "goodsNoteId": nid,
                    "warehouseId": warehouse_id,
                    "reason": c["reason"],
                    "goodsMoved": [
                        {
                            "productId": pid,
                            "quantity": qty,
                            "destinationLocationId": c["locationId"],
                            "productValue": value,
                            "batchGoodsNoteId": c.get("batchId", nid if qty > 0 else 0),
                            "createdOn": moved["createdOn"],
                            "createdBy": moved["createdBy"],
                        }
                    ],
                }
                if isinstance(c.get("orderId"), int):
                    self.stock_corrections[nid]["orderId"] = c["orderId"]
                if qty > 0 and self.products[pid]["status"] == "ARCHIVED":
                    self.products[pid]["status"] = "LIVE"
                    self.touch_product(pid)
                self.emit("product.modified.on-hand-modified", [pid])
                ids.append(nid)
            return ids

    def _check_correction(self, i: int, c: Any, warehouse_id: int, planned: dict[int, int]) -> None:
        where = f"corrections[{i}]"
        if not isinstance(c, dict):
            raise bad(f"{where} must be an object", "WHSC-001")
        pid = c.get("productId")
        if not isinstance(pid, int) or pid not in self.products:
            raise bad(f"{where}.productId {pid!r} is not a product", "WHSC-005")
        if not self.products[pid]["stock"].get("stockTracked"):
            raise bad(f"{where}.productId {pid} is not stock-tracked", "WHSC-006")
        qty = c.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty == 0:
            raise bad(f"{where}.quantity must be a non-zero integer", "WHSC-002")
        if not c.get("reason"):
            raise bad(f"{where}.reason is required", "WHSC-003")
        if not isinstance(c.get("locationId"), int):
            raise bad(f"{where}.locationId is required", "WHSC-004")
        if "cost" in c:
            cost = c["cost"]
            if qty < 0:
                raise bad(f"{where}.cost is only allowed when adding stock", "WHSC-007")
            if not isinstance(cost, dict) or not isinstance(cost.get("currency"), str):
                raise bad(f"{where}.cost must be {{currency, value}}", "WHSC-008")
            money(cost.get("value"), f"{where}.cost.value")
        if "batchId" in c and qty > 0:
            raise bad(f"{where}.batchId is only allowed when removing stock", "WHSC-009")
        planned[pid] = planned.get(pid, self.stock.get(pid, {}).get(warehouse_id, 0)) + qty
        if planned[pid] < 0:
            raise bad(
                f"{where}: cannot remove {-qty} of product {pid}; warehouse {warehouse_id} holds "
                f"{planned[pid] - qty}",
                "WHSC-070",
            )

    def _unit_value(self, pid: int, cost: Any) -> dict[str, Any]:
        """The value of one unit: the cost given, else the product's cost price list (id 1)."""
        if isinstance(cost, dict):
            return {"currency": cost["currency"], "value": str(cost["value"])}
        return {"currency": "GBP", "value": self.prices.get(pid, {}).get(1, {}).get("1", "0.00")}

    def _record_movement(
        self,
        note_id: int,
        note_type: str,
        pid: int,
        warehouse_id: int,
        qty: int,
        value: dict[str, Any] | None,
        batch_id: Any = None,
    ) -> dict[str, Any]:
        mid = self.next_id("goods-movement", 1)
        now = self.now()
        value = value or self._unit_value(pid, None)
        self.goods_movements[mid] = record = {
            "goodsMovementId": mid,
            "goodsNoteId": note_id,
            "goodsNoteTypeCode": note_type,
            "productId": pid,
            "warehouseId": warehouse_id,
            "quantity": qty,
            "destinationLocationId": 2,
            "batchGoodsNoteId": batch_id if isinstance(batch_id, int) else 0,
            "currencyCode": value["currency"],
            "productValue": value["value"],
            "createdOn": now,
            "createdBy": 4,
            "updatedOn": now,
        }
        return record

    def stock_correction_notes(self, warehouse_id: int, ids: list[int]) -> list[dict[str, Any]]:
        with self.lock:
            existing(self.warehouses, warehouse_id, f"Warehouse {warehouse_id} not found")
            return [
                self.stock_corrections[i]
                for i in ids
                if i in self.stock_corrections and self.stock_corrections[i]["warehouseId"] == warehouse_id
            ]
