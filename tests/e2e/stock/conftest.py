"""The products' whole sandbox (tests/e2e/products/conftest.py) with the stock flow's view: the
stock flow's subscription drained too, its two timers run only when a test runs them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.test_stock_fakes_agree import correct
from tests.e2e.customers.conftest import BP_TOPIC, NEVER, Sandbox, bp_server, sandbox
from tests.e2e.products.conftest import ProductSandbox, dv_server, product_mapping, products_sandbox

__all__ = ["bp_server", "dv_server", "products_sandbox", "sandbox"]

STOCK_FLOW = "stock-to-dataverse"
PRODUCTS_FLOW = "products-to-dataverse"


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> dict[str, str]:
    return {
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
    }


class StockSandbox:
    """Drives the sandbox: Brightpearl stock changes, both flows drained, retries run."""

    def __init__(self, sb: ProductSandbox) -> None:
        self.sb = sb

    def correct(self, product_id: int, quantity: int, warehouse_id: int = 2) -> None:
        correct(self.sb.bp, product_id, warehouse_id, quantity)  # raises on-hand-modified

    def settle(self, timeout: float = 120.0) -> None:
        """Deliver every webhook, drain both flows and run their retry copies until none is left."""
        deadline = time.monotonic() + timeout
        for _ in range(40):
            while not self.sb.bp_sim.dispatcher.idle():
                if time.monotonic() > deadline:
                    raise AssertionError("Brightpearl webhooks still undelivered")
                time.sleep(0.02)
            self.sb.host.wait_idle(timeout=timeout)
            scheduled = sum(self.sb.bus.counts(BP_TOPIC, f).scheduled for f in (STOCK_FLOW, PRODUCTS_FLOW))
            if not scheduled and self.sb.bp_sim.dispatcher.idle():
                return
            self.sb.clock.advance(61)
        raise AssertionError("retry copies still scheduled")

    def stock(self, product_id: int) -> Any:
        value = self.sb.product(product_id).get("bpi_availablestock")
        return None if value is None else float(value)

    def storm(self, corrections: list[dict[str, int]]) -> None:
        """Stock corrections through the simulator's admin route (each raises its own event)."""
        url = f"{self.sb.values['BRIGHTPEARL_BASE_URL']}/_sandbox/catalogue/stock"
        answer = httpx.post(url, json={"corrections": corrections}, timeout=60)
        assert answer.status_code == 200, answer.text

    def requests(self) -> int:
        """Brightpearl API requests the simulator has answered."""
        return sum(self.sb.bp_sim.requests.values())

    def run(self, timer: str) -> None:
        self.sb.host.run_timer(timer)
        self.sb.host.wait_idle(timeout=60)


@pytest.fixture
def stock_sandbox(products_sandbox: ProductSandbox) -> StockSandbox:
    return StockSandbox(products_sandbox)


__all__ += ["Sandbox", "StockSandbox"]
