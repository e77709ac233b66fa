"""The whole sandbox for returns -> cases (issue 14 item 2): the orders sandbox
(tests/e2e/orders/conftest.py: a Dynamics order raised by a CRM user reaches Brightpearl and is
linked), plus Brightpearl sales credits of that order, the sales-credit poller
(`poll_brightpearl_returns`, run by the tests) and the returns-to-dataverse flow, which opens,
resolves and cancels Dynamics cases (incident). The mapping is mappings/returns.yaml, or a copy
with edits (`returns_mapping`) through RETURNS_MAPPING_PATH.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.store import AuditEntry
from tests.e2e.customers.conftest import BP_TOPIC, DV_TOPIC, NEVER, ROOT, bp_server, dv_server, sandbox
from tests.e2e.orders.conftest import TO_BP, TO_DV, OrderSandbox, order_mapping, orders_sandbox
from tests.e2e.products.conftest import product_mapping

__all__ = ["bp_server", "dv_server", "orders_sandbox", "sandbox"]

FLOW = "returns-to-dataverse"
POLLER = "poll_brightpearl_returns"
REASON_FIELD = "PCF_RETURNREASON"


def returns_mapping(folder: Path, *edits: tuple[str, str]) -> Path:
    """A copy of mappings/returns.yaml with `(old, new)` text edits."""
    text = (ROOT / "mappings" / "returns.yaml").read_text()
    for old, new in edits:
        assert old in text, f"mappings/returns.yaml changed: {old!r} not found"
        text = text.replace(old, new)
    path = folder / "returns.yaml"
    path.write_text(text)
    return path


@dataclass
class ReturnSandbox(OrderSandbox):
    """The orders sandbox seen from the returns flow."""

    @classmethod
    def of_orders(cls, box: OrderSandbox) -> ReturnSandbox:
        return cls(**{f.name: getattr(box, f.name) for f in fields(OrderSandbox)})

    # -- Brightpearl, as its users change it --------------------------------------------------
    def bp_order_id(self, salesorder: str) -> int:
        return int(self.bp_order_of(salesorder)["id"])

    def credit(
        self, parent: int, lines: list[tuple[str, int]], *, reason: str | None = None, ref: str = "RMA-1"
    ) -> int:
        """A sales credit (return) of Brightpearl order `parent` for `lines` (SKU, quantity) at the
        shop's prices, with 20 % tax, through the public POST; `reason` in its reason field."""
        order = self.bp_sim.state.orders.get(parent)
        customer = order["parties"]["customer"]["contactId"] if order else self.shop.bp_customer
        rows = []
        for sku, quantity in lines:
            net = SKU_PRICES[sku] * quantity
            rows.append(
                {
                    "productId": self.shop.bp_products[sku],
                    "quantity": quantity,
                    "taxCode": "T20",
                    "net": f"{net:.2f}",
                    "tax": f"{net * Decimal('0.2'):.2f}",
                }
            )
        body = {"customer": {"id": customer}, "ref": ref, "currency": {"code": "GBP"}, "rows": rows}
        if parent:
            body["parentId"] = parent
        credit = int(self.bp.request("POST", "/order-service/sales-credit/", json=body).response)
        if reason is not None:
            self.set_reason(credit, reason)
        return credit

    def set_reason(self, credit: int, reason: str) -> None:
        """The account's return-reason field (a text sales custom field), set on the credit."""
        with self.bp_sim.state.lock:
            self.bp_sim.state.order_custom_field_meta.setdefault(
                REASON_FIELD,
                {
                    "id": 40,
                    "code": REASON_FIELD,
                    "name": "Return reason",
                    "customFieldType": "TEXT",
                    "required": False,
                },
            )
        ops = [{"op": "add", "path": f"/{REASON_FIELD}", "value": reason}]
        self.bp.request("PATCH", f"/order-service/order/{credit}/custom-field", json=ops)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST /_sandbox/<path> of the Brightpearl simulator (in-process)."""
        from sandbox.brightpearl.admin import handle_admin

        status, answer = handle_admin(self.bp_sim, "POST", path, {}, body or {})
        assert status == 200, answer
        return answer

    def refund(self, credit: int, **body: Any) -> int:
        return int(self.admin(f"sales-credits/{credit}/refund", body)["paymentId"])

    def cancel(self, credit: int) -> None:
        self.admin(f"sales-credits/{credit}/cancel")

    # -- driving ---------------------------------------------------------------------------------
    def poll_credits(self) -> None:
        """The sales-credit poller once, then work off what it published (and retries)."""
        self.host.run_timer(POLLER)
        self.work()

    def active(self) -> int:
        return super().active() + self.bus.counts(BP_TOPIC, FLOW).active

    def scheduled(self) -> int:
        return super().scheduled() + self.bus.counts(BP_TOPIC, FLOW).scheduled

    # -- looking ---------------------------------------------------------------------------------
    def cases(self, credit: int | None = None) -> list[dict[str, Any]]:
        rows = self.dv.rows("incident")
        return [r for r in rows if credit is None or r.get("bpi_brightpearlid") == str(credit)]

    def case(self, credit: int) -> dict[str, Any]:
        found = self.cases(credit)
        assert len(found) == 1, f"cases of credit {credit}: {len(found)}"
        return found[0]

    def resolutions(self, case: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.dv.rows("incidentresolution")
            if _lookup_id(r.get("incidentid") or r.get("_incidentid_value")).lower() == case.lower()
        ]

    def credit_audit(self, credit: int) -> list[AuditEntry]:
        return [
            e
            for e in self.store.audit.for_record("sales-credit", "brightpearl", str(credit))
            if e.flow == FLOW
        ]

    def returns_dead_letters(self) -> list[Any]:
        return self.dead_letters(BP_TOPIC, FLOW)


SKU_PRICES = {"MUG-1": Decimal("12.50"), "TEE-1": Decimal("20.00"), "CAP-1": Decimal("8.00")}


def _lookup_id(value: Any) -> str:
    return str(value.get("id") if isinstance(value, dict) else value or "")


@pytest.fixture
def returns_settings(tmp_path: Path) -> dict[str, str]:
    """What a test module adds for the returns flow (default: the shipped mapping)."""
    return {}


@pytest.fixture
def sandbox_settings(tmp_path: Path, returns_settings: dict[str, str]) -> dict[str, str]:
    """The orders sandbox's settings (tests/e2e/orders/conftest.py); timers run only when a test
    runs them (the sales-credit poller: `poll_credits`)."""
    return {
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "ORDERS_DATAVERSE_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
        "BRIGHTPEARL_ORDER_POLL_SCHEDULE": NEVER,
        "RETURNS_POLL_SCHEDULE": NEVER,
        **returns_settings,
    }


@pytest.fixture
def returns_sandbox(orders_sandbox: OrderSandbox) -> Iterator[ReturnSandbox]:
    box = ReturnSandbox.of_orders(orders_sandbox)
    try:
        yield box
    finally:
        orders_sandbox.host = box.host  # a host start_host started is stopped by orders_sandbox


__all__ += ["DV_TOPIC", "FLOW", "TO_BP", "TO_DV"]
