"""The orders sandbox (tests/e2e/orders/conftest.py) with fulfilment automation switched on in
its copy of mappings/orders.yaml: orders that reach the Brightpearl status "Ready to ship" (a
status the test adds to the simulated account, mapped in its copy of order_status.yaml) are
reserved in warehouses 2 then 3 and noted. Helpers read Brightpearl's own state (reservations,
goods-out notes) and the Dynamics lines' bpi_quantityreserved / bpi_quantityreleased."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.customers.conftest import BP_TOPIC, NEVER, Sandbox
from tests.e2e.orders.conftest import (
    OrderSandbox,
    bp_server,
    dv_server,
    order_mapping,
    orders_sandbox,
    sandbox,
)
from tests.e2e.products.conftest import product_mapping

__all__ = ["bp_server", "dv_server", "orders_sandbox", "sandbox"]

FLOW = "fulfilment-to-brightpearl"
READY = "Ready to ship"
OFF = "fulfilment:\n  enabled: false"
ON = "fulfilment:\n  enabled: true"
TIMERS = (
    "ORDERS_DATAVERSE_POLL_SCHEDULE",
    "BRIGHTPEARL_ORDER_POLL_SCHEDULE",
    "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
    "BRIGHTPEARL_STOCK_POLL_SCHEDULE",
    "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE",
)
WAREHOUSES = ("  warehouses: []           # warehouse ids to reserve from, in order", "  warehouses: [2, 3]")


def fulfilment_mapping(folder: Path, *edits: tuple[str, str]) -> Path:
    """orders.yaml with `edits`, beside an order_status.yaml that maps "Ready to ship" (Submitted)."""
    path = order_mapping(folder, *edits)
    status_file = folder / "order_status.yaml"
    status_file.write_text(
        status_file.read_text() + f"  {READY}:\n    statecode: 1\n    statuscode: 3\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def mapping_edits() -> tuple[tuple[str, str], ...]:
    """The edits of orders.yaml (a test module overrides this fixture): fulfilment on, status
    trigger "Ready to ship" (the shipped default), warehouses 2 then 3."""
    return ((OFF, ON), WAREHOUSES)


@pytest.fixture
def sandbox_settings(tmp_path: Path, mapping_edits: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Timers run only when a test runs them."""
    return {
        **dict.fromkeys(TIMERS, NEVER),
        "ORDER_MAPPING_PATH": str(fulfilment_mapping(tmp_path, *mapping_edits)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
    }


class FulfilmentSandbox(OrderSandbox):
    """The orders sandbox that also waits for the fulfilment flow (and the stock flow beside it)."""

    @classmethod
    def of(cls, box: Sandbox) -> FulfilmentSandbox:
        return cls(**{f.name: getattr(box, f.name) for f in fields(OrderSandbox)})

    def active(self) -> int:
        mine = (FLOW, "stock-to-dataverse")
        return super().active() + sum(self.bus.counts(BP_TOPIC, s).active for s in mine)

    def scheduled(self) -> int:
        mine = (FLOW, "stock-to-dataverse")
        return super().scheduled() + sum(self.bus.counts(BP_TOPIC, s).scheduled for s in mine)

    # -- Brightpearl, as its users and warehouse act ------------------------------------------------
    def status_id(self, name: str = READY) -> int:
        """The id of the account's sales-order status `name`, added when it has none."""
        with self.bp_sim.state.lock:
            for sid, status in self.bp_sim.state.order_statuses.items():
                if status["name"] == name and status["orderTypeCode"] == "SO":
                    return int(sid)
        body = {"name": name, "orderTypeCode": "SO"}
        return int(self.bp.request("POST", "/order-service/order-status", json=body).response)

    def set_status(self, bp_order: int, name: str = READY) -> None:
        """A Brightpearl user moves the order to status `name` (raises order.modified.order-status)."""
        body = {"orderStatusId": self.status_id(name)}
        self.bp.request("PUT", f"/order-service/order/{bp_order}/status", json=body)

    def add_stock(self, sku: str, units: int, warehouse: int = 2) -> None:
        """A stock correction (goods arriving): raises product.modified.on-hand-modified."""
        correction = {"productId": self.shop.bp_products[sku], "quantity": units, "reason": "Goods in"}
        body = {"corrections": [{**correction, "locationId": 2}]}
        self.bp.request("POST", f"/warehouse-service/warehouse/{warehouse}/stock-correction", json=body)

    def notes(self, bp_order: int) -> list[dict[str, Any]]:
        """The order's goods-out notes in Brightpearl, oldest first."""
        with self.bp_sim.state.lock:
            notes = self.bp_sim.state.goods_out.items()
            found = [{**note, "id": nid} for nid, note in notes if note["orderId"] == bp_order]
        return sorted(found, key=lambda n: n["id"])

    def noted(self, bp_order: int) -> dict[str, int]:
        """SKU -> units on the order's goods-out notes."""
        skus = {v: k for k, v in self.shop.bp_products.items()}
        out: dict[str, int] = {}
        for note in self.notes(bp_order):
            for parts in note["orderRows"].values():
                for part in parts:
                    sku = skus[part["productId"]]
                    out[sku] = out.get(sku, 0) + int(part["quantity"])
        return out

    def note_shape(self, bp_order: int) -> list[tuple[int, dict[str, int]]]:
        """Each note as (warehouse, SKU -> units)."""
        skus = {v: k for k, v in self.shop.bp_products.items()}
        return [
            (
                note["warehouseId"],
                {skus[p["productId"]]: int(p["quantity"]) for ps in note["orderRows"].values() for p in ps},
            )
            for note in self.notes(bp_order)
        ]

    def reserved(self, bp_order: int) -> int:
        """Units the order still holds reserved (not yet on a note)."""
        with self.bp_sim.state.lock:
            held = self.bp_sim.state.reservations.get(bp_order, {})
            return sum(q for rows in held.values() for q in rows.values())

    def line_figures(self, order: str) -> dict[str, tuple[float | None, float | None]]:
        """SKU -> (bpi_quantityreserved, bpi_quantityreleased) of the Dynamics order's lines."""
        skus = {v.lower(): k for k, v in self.shop.products.items()}
        out = {}
        for line in self.dv_lines(order):
            product = line.get("productid")
            pid = str(product.get("id") if isinstance(product, dict) else product or "").lower()
            out[skus[pid]] = (line.get("bpi_quantityreserved"), line.get("bpi_quantityreleased"))
        return out

    def flow_audit(self, bp_order: int) -> list[tuple[str, str | None]]:
        entries = self.store.audit.for_record("order", "brightpearl", str(bp_order))
        return [(str(e.result.value), e.reason_code) for e in entries if e.flow == FLOW]


@pytest.fixture
def box(orders_sandbox: OrderSandbox) -> Iterator[FulfilmentSandbox]:
    box = FulfilmentSandbox.of(orders_sandbox)
    try:
        yield box
    finally:
        box.host.stop()  # one a test started (start_host); the orders fixture stops the first
