"""Stock reservations (allocation) of sales order rows per warehouse (reference §6.10, §8.1).

`POST /warehouse-service/order/{orderId}/reservation/warehouse/{warehouseId}` with
`{"products":[{"productId","salesOrderRowId","quantity"}]}` reserves units of order rows in one
warehouse; `GET /warehouse-service/order/{orderId}/reservation` lists what the order holds.
The rules the simulator applies (the reference gives the paths and body only; the refusals'
codes and texts are the simulator's, in Brightpearl's error envelope, UNCONFIRMED):

- every line is checked before any is applied (one refusal reserves nothing);
- a row may not hold more than its open quantity: ordered, less what is reserved for it in any
  warehouse and what is on its goods-out notes (`WHSR-004`);
- a warehouse may not reserve more than it has on hand (`onHand` = in stock less allocated,
  reservations included; `WHSR-005`);
- a reservation is allocation: availability shows it as `allocated` and takes it off `onHand`,
  and each product reserved raises `product.modified.on-hand-modified`;
- a goods-out note consumes the reservation of its rows in its warehouse: once an order holds
  reservations, a note line may not exceed what its row has reserved in the note's warehouse
  (`WHSB-039`; `check_reserved` / `consume_reserved`, called by the goods-out POST), also once
  its reservations are used up. An order that never reserved keeps the older shortcut (the note
  allocates by itself), which the sandbox's admin route and older tests use;
- cancelling an order removes its reservations (§6.6).

The GET answer's shape is UNCONFIRMED: a list of `{"warehouseId", "products": [...]}` (the POST
body's per-warehouse form), empty when nothing is reserved.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.core import StateCore, existing


class ReservationStore(StateCore):
    # order id -> warehouse id -> row id -> units reserved
    reservations: dict[int, dict[int, dict[str, int]]]
    # read: provided by the other stores
    warehouses: dict[int, dict[str, Any]]
    orders: dict[int, dict[str, Any]]
    products: dict[int, dict[str, Any]]
    stock: dict[int, dict[int, int]]
    order: Callable[[int], dict[str, Any]]
    allocated: Callable[[int], dict[int, int]]
    _noted: Callable[[int, str], Decimal]
    _touch_order: Callable[..., None]

    def _reset_reservations(self) -> None:
        self.reservations = {}

    # --- the API -----------------------------------------------------------------------------
    def reserve(self, oid: int, wid: int, body: Any) -> None:
        with self.lock:
            order = self.order(oid)
            if order["orderTypeCode"] != "SO":
                raise bad(
                    f"order {oid} is a {order['orderTypeCode']}: only sales orders reserve stock", "WHSR-001"
                )
            existing(self.warehouses, wid, f"Warehouse {wid} not found")
            lines = body.get("products") if isinstance(body, dict) else None
            if not isinstance(lines, list) or not lines:
                raise bad("products must be a non-empty list", "WHSR-002")
            rows: dict[str, int] = {}
            units: dict[int, int] = {}
            for i, line in enumerate(lines):
                where = f"products[{i}]"
                rid = str(line.get("salesOrderRowId")) if isinstance(line, dict) else ""
                row = order["orderRows"].get(rid)
                pid = line.get("productId") if isinstance(line, dict) else None
                if row is None or row["productId"] != pid:
                    raise bad(f"{where}: row {rid} of product {pid!r} is not on order {oid}", "WHSR-003")
                qty = line.get("quantity")
                if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                    raise bad(f"{where}.quantity must be a positive integer", "WHSR-002")
                if not self.products.get(pid, {}).get("stock", {}).get("stockTracked"):
                    raise bad(f"{where}: product {pid} is not stock-tracked; nothing to reserve", "WHSR-006")
                rows[rid] = rows.get(rid, 0) + qty
                open_qty = self.open_quantity(oid, rid)
                if rows[rid] > open_qty:
                    raise bad(
                        f"{where}: cannot reserve {rows[rid]} of row {rid}: only {open_qty} of its "
                        f"{Decimal(row['quantity']['magnitude']).normalize():f} units are neither "
                        "reserved nor on goods-out notes",
                        "WHSR-004",
                    )
                units[pid] = units.get(pid, 0) + qty
                on_hand = self.stock.get(pid, {}).get(wid, 0) - self.allocated(pid).get(wid, 0)
                if units[pid] > on_hand:
                    raise bad(
                        f"{where}: cannot reserve {units[pid]} of product {pid} in warehouse {wid}: "
                        f"{max(on_hand, 0)} on hand",
                        "WHSR-005",
                    )
            held = self.reservations.setdefault(oid, {}).setdefault(wid, {})
            for rid, qty in rows.items():
                held[rid] = held.get(rid, 0) + qty
            self._touch_order(order)
            for pid in units:
                self.emit("product.modified.on-hand-modified", [pid])

    def order_reservations(self, oid: int) -> list[dict[str, Any]]:
        with self.lock:
            order = self.order(oid)
            out = []
            for wid, rows in sorted(self.reservations.get(oid, {}).items()):
                products = [
                    {
                        "productId": order["orderRows"][rid]["productId"],
                        "salesOrderRowId": int(rid),
                        "quantity": qty,
                    }
                    for rid, qty in sorted(rows.items(), key=lambda kv: int(kv[0]))
                    if qty > 0 and rid in order["orderRows"]
                ]
                if products:
                    out.append({"warehouseId": wid, "products": products})
            return out

    # --- what the other stores ask ------------------------------------------------------------
    def open_quantity(self, oid: int, rid: str) -> int:
        """Units of an order row neither reserved (any warehouse) nor on goods-out notes."""
        row = self.order(oid)["orderRows"][rid]
        reserved = sum(rows.get(rid, 0) for rows in self.reservations.get(oid, {}).values())
        return int(Decimal(row["quantity"]["magnitude"]) - self._noted(oid, rid)) - reserved

    def reserved_units(self, pid: int) -> dict[int, int]:
        """Units of `pid` reserved by any order, by warehouse (allocated, not yet on a note)."""
        out: dict[int, int] = {}
        for oid, by_warehouse in self.reservations.items():
            rows = (self.orders.get(oid) or {}).get("orderRows", {})
            for wid, held in by_warehouse.items():
                for rid, qty in held.items():
                    if qty > 0 and (rows.get(rid) or {}).get("productId") == pid:
                        out[wid] = out.get(wid, 0) + qty
        return out

    def check_reserved(self, oid: int, warehouses: list[dict[str, Any]]) -> None:
        """Once an order holds reservations, its notes come out of them: each note line at most
        what its row has reserved in the note's warehouse (WHSB-039)."""
        held = self.reservations.get(oid)
        if held is None:  # never reserved: the note allocates by itself (the older shortcut)
            return
        wanted: dict[tuple[int, str], int] = {}
        for wi, wh in enumerate(warehouses):
            for pi, line in enumerate(wh["products"]):
                key = (wh["warehouseId"], str(line["salesOrderRowId"]))
                wanted[key] = wanted.get(key, 0) + int(line["quantity"])
                reserved = held.get(key[0], {}).get(key[1], 0)
                if wanted[key] > reserved:
                    raise ApiError(
                        400,
                        "WHSB-039",
                        f"warehouses[{wi}].products[{pi}]: {wanted[key]} of row {key[1]} on a note in "
                        f"warehouse {key[0]}, but only {reserved} reserved there",
                    )

    def consume_reserved(self, oid: int, warehouses: list[dict[str, Any]]) -> None:
        """A note created: its lines leave the reservation (they stay allocated, on the note)."""
        held = self.reservations.get(oid)
        if not held:
            return
        for wh in warehouses:
            rows = held.get(wh["warehouseId"], {})
            for line in wh["products"]:
                rid = str(line["salesOrderRowId"])
                if rid in rows:
                    rows[rid] = max(rows[rid] - int(line["quantity"]), 0)

    def drop_reservations(self, oid: int) -> None:
        """A cancelled order holds nothing (reference §6.6)."""
        dropped = self.reservations.pop(oid, None)
        if dropped:
            rows = self.orders.get(oid, {}).get("orderRows", {})
            for pid in {rows[r]["productId"] for held in dropped.values() for r in held if r in rows}:
                self.emit("product.modified.on-hand-modified", [pid])
