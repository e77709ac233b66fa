"""The products' whole sandbox (tests/e2e/products/conftest.py) with the prices flow's view: the
prices flow's subscription drained beside the products flow's, retry copies run on the fake
clock, Dynamics price lists and price list items read as a Dynamics user sees them.

The mapping is the products folder's (mappings/products.yaml naming the seeded unit group and
price list) exporting one more Brightpearl list by name, "Retail CHF", which Brightpearl has
only when a test adds it (`add_chf_price_list`) and Dynamics never has a currency for."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.customers.conftest import BP_TOPIC, NEVER, Sandbox, bp_server, sandbox
from tests.e2e.products.conftest import ProductSandbox, dv_server, product_mapping, products_sandbox

__all__ = ["Sandbox", "bp_server", "dv_server", "products_sandbox", "sandbox"]

PRICES_FLOW = "prices-to-dataverse"
PRODUCTS_FLOW = "products-to-dataverse"
RETAIL_GBP, TRADE_GBP, RETAIL_EUR, RETAIL_CHF = 2, 3, 4, 5  # Brightpearl price list ids
CHF_LIST = "Retail CHF"  # the sandbox Dynamics has GBP, EUR and USD, not CHF


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> dict[str, str]:
    path = product_mapping(tmp_path)
    text = path.read_text()
    old = '    "Retail EUR": {export: true}\n'
    assert old in text, f"mappings/products.yaml changed: {old!r} not found"
    path.write_text(text.replace(old, f'{old}    "{CHF_LIST}": {{export: true}}\n'))
    return {
        "PRODUCT_MAPPING_PATH": str(path),
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
    }


class PricesSandbox:
    """Drives the sandbox: Brightpearl prices changed as its users change them, both flows
    drained and their retries run; Dynamics price lists and items looked at."""

    def __init__(self, sb: ProductSandbox) -> None:
        self.sb = sb

    # -- Brightpearl -----------------------------------------------------------------------------
    def put_prices(self, product_id: int, prices: dict[int, str]) -> None:
        """product-price PUT (reference §7.3): the quantity-1 price in each list; raises
        product.modified (the simulator's assumption, shared/flows/prices_spec.py)."""
        body = {"priceLists": [{"priceListId": k, "quantityPrice": {"1": v}} for k, v in prices.items()]}
        self.sb.bp.request("PUT", f"/product-service/product-price/{product_id}/price-list", json=body)

    def admin_prices(self, changes: list[dict[str, Any]]) -> None:
        """The simulator's bulk price admin route: set a list's breaks, or remove them (None)."""
        url = f"{self.sb.values['BRIGHTPEARL_BASE_URL']}/_sandbox/catalogue/prices"
        answer = httpx.post(url, json={"prices": changes}, timeout=60)
        assert answer.status_code == 200, answer.text

    def add_chf_price_list(self) -> None:
        """A Brightpearl user adds a SELL price list in Swiss francs (no API is documented)."""
        state = self.sb.bp_sim.state
        with state.lock:
            state.currencies[4] = {"id": 4, "code": "CHF", "symbol": "CHF"}
            state.price_lists[RETAIL_CHF] = {
                "id": RETAIL_CHF,
                "code": "RETAIL-CHF",
                "name": {"languageCode": "EN", "text": CHF_LIST, "format": "PLAINTEXT"},
                "currencyCode": "CHF",
                "currencySymbol": "CHF",
                "currencyId": 4,
                "priceListTypeCode": "SELL",
                "gross": True,
            }

    # -- driving ---------------------------------------------------------------------------------
    def deliver(self, timeout: float = 120.0) -> None:
        """Every webhook delivered and every notice worked off; retry copies stay scheduled."""
        deadline = time.monotonic() + timeout
        while True:
            while not self.sb.bp_sim.dispatcher.idle():
                if time.monotonic() > deadline:
                    raise AssertionError("Brightpearl webhooks still undelivered")
                time.sleep(0.02)
            self.sb.host.wait_idle(timeout=timeout)
            if self.sb.bp_sim.dispatcher.idle():
                return

    def settle(self, timeout: float = 120.0) -> None:
        """Deliver, then move the fake clock past the flows' retry copies until none is left."""
        for _ in range(40):
            self.deliver(timeout)
            if not self.scheduled(PRICES_FLOW) and not self.scheduled(PRODUCTS_FLOW):
                return
            self.sb.clock.advance(61)
        raise AssertionError("retry copies still scheduled")

    def scheduled(self, flow: str) -> int:
        return self.sb.bus.counts(BP_TOPIC, flow).scheduled

    # -- Dynamics --------------------------------------------------------------------------------
    def price_lists(self) -> dict[str, dict[str, Any]]:
        """Dynamics price lists by name."""
        return {str(r["name"]): r for r in self.sb.dv.rows("pricelevel")}

    def items(self, product_id: int) -> dict[str, dict[str, Any]]:
        """The product's Dynamics price list items by price list name (one per list expected)."""
        product = self.sb.product(product_id)["productid"]
        names = {str(r["pricelevelid"]).lower(): str(r["name"]) for r in self.sb.dv.rows("pricelevel")}
        rows = [r for r in self.sb.dv.rows("productpricelevel") if _ref(r, "productid") == product.lower()]
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            name = names[_ref(row, "pricelevelid")]
            assert name not in out, f"two items of product {product_id} in price list {name}"
            out[name] = row
        return out

    def amounts(self, product_id: int) -> dict[str, float]:
        return {name: float(row["amount"]) for name, row in self.items(product_id).items()}

    def dead_letters(self) -> list[Any]:
        return self.sb.dead_letters(BP_TOPIC, PRICES_FLOW)


def _ref(row: dict[str, Any], lookup: str) -> str:
    """A lookup's id as the simulator's table dump holds it."""
    value = row.get(f"_{lookup}_value", row.get(lookup))
    if isinstance(value, dict):
        value = value.get("id")
    return str(value or "").lower()


@pytest.fixture
def prices_sandbox(products_sandbox: ProductSandbox) -> PricesSandbox:
    return PricesSandbox(products_sandbox)


__all__ += ["PricesSandbox"]
