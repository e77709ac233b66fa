"""The orders sandbox (tests/e2e/orders/conftest.py) with the seeded SKU variations
(sandbox/brightpearl/catalogue_seed.py `SKU_VARIATIONS`): their Brightpearl products seeded in the
simulator (no webhooks), their Dynamics products as an existing Dynamics catalogue has them
(sandbox/dataverse/seed.py `sku_variation_products`: other spellings, an EAN in bpi_ean, not
linked), priced in the shop's price list. The copy of mappings/orders.yaml strips the channel
prefix WEB- (sku_matching.channels.default)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.brightpearl.catalogue_seed import SKU_VARIATIONS, SkuVariation, seed_sku_variations
from sandbox.dataverse.seed import sku_variation_products
from tests.e2e.customers.conftest import NEVER
from tests.e2e.orders.conftest import (
    PRICE_LIST,
    OrderSandbox,
    bp_server,
    dv_server,
    order_mapping,
    orders_sandbox,
    sandbox,
)
from tests.e2e.products.conftest import product_mapping

__all__ = ["bp_server", "dv_server", "orders_sandbox", "sandbox"]

CHANNELS = ("  channels: {}", "  channels:\n    default: {strip_prefixes: [WEB-]}")
TIMERS = (
    "ORDERS_DATAVERSE_POLL_SCHEDULE",
    "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
    "BRIGHTPEARL_STOCK_POLL_SCHEDULE",
    "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE",
)


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> dict[str, str]:
    return {
        **dict.fromkeys(TIMERS, NEVER),
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path, CHANNELS)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
    }


@dataclass
class Variations:
    """The seeded variations by case: the Brightpearl product id and the Dynamics productid."""

    box: OrderSandbox
    brightpearl: dict[str, int] = field(default_factory=dict)
    dynamics: dict[str, str] = field(default_factory=dict)

    def of(self, case: str) -> SkuVariation:
        return next(v for v in SKU_VARIATIONS if v.case == case)

    def sku(self, case: str) -> str:
        """The Dynamics product number (what `box.raise_order` and `box.add_line` take)."""
        return self.of(case).dynamics_sku


@pytest.fixture
def variations(orders_sandbox: OrderSandbox) -> Iterator[Variations]:
    box = orders_sandbox
    out = Variations(box, brightpearl=seed_sku_variations(box.bp_sim.state))
    refs = box.shop.refs
    for case, body in sku_variation_products(refs.unit_group, refs.base_unit):
        product = box.dvc.create("products", body)
        box.dvc.create("productpricelevels", _price(box, product, 15))
        out.dynamics[case] = product
        box.shop.products[body["productnumber"]] = product
    yield out


def _price(box: OrderSandbox, product: str, amount: float) -> dict[str, Any]:
    refs = box.shop.refs
    return {
        "pricelevelid@odata.bind": f"/pricelevels({refs.price_lists[PRICE_LIST]})",
        "productid@odata.bind": f"/products({product})",
        "uomid@odata.bind": f"/uoms({refs.base_unit})",
        "pricingmethodcode": 1,
        "amount": amount,
    }
