"""warehouse-service: warehouses, availability, reservations of order rows, goods-out notes and
their events, stock corrections (POST and GET), goods-movement search (in `search.py`)."""

from __future__ import annotations

import re

from sandbox.brightpearl.envelope import Reply, Req, found, id_set, ok
from sandbox.brightpearl.errors import ApiError
from sandbox.brightpearl.routes.base import RouteBase


class WarehouseRoutes(RouteBase):
    def get_warehouses(self, req: Req, m: re.Match[str]) -> Reply:
        return self._listing(m, "warehouses", "Warehouse")

    def get_availability(self, req: Req, m: re.Match[str]) -> Reply:
        # The reference documents no id-set limit for availability (§1.3 lists product,
        # product-price, order ...); the simulator applies the same `get_limit` (200), which
        # issue 12 plans with, and answers more ids with 400 CMNC-031 like the other GETs.
        with self.state.lock:
            out = {}
            for pid in id_set(m["ids"], self.config.get_limit):
                level = self.state.availability(pid)
                if level is not None:
                    out[str(pid)] = level
        if not out:
            raise ApiError(404, "CMNC-404", "No Product Availability Found")
        return ok(out)

    def post_goods_out(self, req: Req, m: re.Match[str]) -> Reply:
        ids = self.state.create_goods_out(int(m["id"]), req.body)
        return ok(ids[0] if len(ids) == 1 else ids)

    def get_goods_out(self, req: Req, m: re.Match[str]) -> Reply:
        limit = self.config.goods_out_get_limit
        orders = None if m["orders"] == "*" else set(id_set(m["orders"], limit))
        notes = set(id_set(m["ids"], limit)) if m["ids"] else None
        with self.state.lock:
            out = {
                str(nid): {k: v for k, v in note.items() if k != "updatedOn"}
                for nid, note in sorted(self.state.goods_out.items())
                if (orders is None or note["orderId"] in orders) and (notes is None or nid in notes)
            }
        if not out:
            raise ApiError(404, "CMNC-404", "No Goods Out Note Found")
        return ok(out)

    def put_goods_out(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.update_goods_out(int(m["id"]), req.body)
        return ok({})

    def post_goods_out_event(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.goods_out_events(int(m["id"]), req.body, req.headers.get("if-match"))
        return ok({})

    def post_reservation(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.reserve(int(m["id"]), int(m["warehouse"]), req.body)
        return ok({})

    def get_reservations(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.order_reservations(int(m["id"])))

    def post_stock_correction(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.correct_stock(int(m["id"]), req.body))

    def get_stock_corrections(self, req: Req, m: re.Match[str]) -> Reply:
        ids = id_set(m["ids"], self.config.get_limit)  # at most 200 note ids (§8.4)
        return found(self.state.stock_correction_notes(int(m["id"]), ids), "Stock Correction")
