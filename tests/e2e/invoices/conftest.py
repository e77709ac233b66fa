"""The whole sandbox for invoices and payments (issue 14 item 3): the orders sandbox
(tests/e2e/orders/conftest.py: a seeded catalogue, a synced contact, Dynamics orders raised as a
CRM user raises them) with invoices-to-dataverse counted while the sandbox works off its queues.
Invoicing and payments raise no Brightpearl webhook: tests run the order poller and the
customer-payment poller (`poll_brightpearl_orders`, `poll_brightpearl_payments`) as the timers
would."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.brightpearl.orders_admin import handle_orders_admin
from tests.e2e.customers.conftest import BP_TOPIC, DV_TOPIC, NEVER, bp_server, dv_server, sandbox
from tests.e2e.orders.conftest import TO_BP, TO_DV, OrderSandbox, order_mapping, orders_sandbox
from tests.e2e.products.conftest import product_mapping

__all__ = ["bp_server", "dv_server", "orders_sandbox", "sandbox"]

INVOICES = "invoices-to-dataverse"
SUBSCRIPTIONS = (
    (DV_TOPIC, TO_BP),
    (BP_TOPIC, TO_DV),
    (DV_TOPIC, "customers-to-brightpearl"),
    (BP_TOPIC, INVOICES),
)


class InvoiceSandbox(OrderSandbox):
    """The orders sandbox, also waiting on invoices-to-dataverse."""

    def active(self) -> int:
        return sum(self.bus.counts(t, s).active for t, s in SUBSCRIPTIONS)

    def scheduled(self) -> int:
        return sum(self.bus.counts(t, s).scheduled for t, s in SUBSCRIPTIONS)

    # -- Brightpearl, as its users and the timers ------------------------------------------------
    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """A Brightpearl admin route (`/_sandbox/...`, sandbox/brightpearl/orders_admin.py)."""
        answer = handle_orders_admin(self.bp_sim, "POST", path.strip("/").split("/"), body or {})
        assert answer is not None and answer[0] == 200, answer
        return answer[1]

    def polls(self) -> None:
        """The order and payment pollers' rounds, then the flows work off what they published."""
        self.host.run_timer("poll_brightpearl_orders")
        self.host.run_timer("poll_brightpearl_payments")
        self.work()

    # -- Dynamics ------------------------------------------------------------------------------
    def invoices(self) -> list[dict[str, Any]]:
        return self.dv.rows("invoice")

    def invoice_of(self, salesorder: str) -> dict[str, Any]:
        rows = [r for r in self.invoices() if lookup(r.get("salesorderid")) == salesorder.lower()]
        assert len(rows) == 1, f"{len(rows)} invoices for salesorder {salesorder}"
        return rows[0]

    def invoice_lines(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            r for r in self.dv.rows("invoicedetail") if lookup(r.get("invoiceid")) == invoice["invoiceid"]
        ]

    def bp_order(self, order_id: int) -> dict[str, Any]:
        with self.bp_sim.state.lock:
            return dict(self.bp_sim.state.orders[order_id])


def lookup(value: Any) -> str:
    """A lookup's id as the simulator's table dump holds it ({"id": ..., "table": ...})."""
    return str(value.get("id") if isinstance(value, dict) else value or "").lower()


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> dict[str, str]:
    """The shipped order mapping; every timer runs only when a test runs it."""
    return {
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "ORDERS_DATAVERSE_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_ORDER_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PAYMENT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
    }


@pytest.fixture
def invoices_sandbox(orders_sandbox: OrderSandbox) -> Iterator[InvoiceSandbox]:
    box = InvoiceSandbox(
        **{name: getattr(orders_sandbox, name) for name in orders_sandbox.__dataclass_fields__}
    )
    try:
        yield box
    finally:
        orders_sandbox.host = box.host  # a host started by start_host is stopped by orders_sandbox
