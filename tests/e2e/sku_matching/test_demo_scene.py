"""The demo's SKU matching scene (sandbox/sku_demo.py) against the orders sandbox, as
`syncctl sandbox demo` runs it over HTTP: the variations reach their Brightpearl products, the
near miss is held for review, accepted with the operator's command's code, then goes through,
and the next order of that product matches by the link."""

from __future__ import annotations

import pytest

from sandbox.sku_demo import sku_scene
from tests.e2e.orders.conftest import OrderSandbox

pytestmark = pytest.mark.timeout(300)


def test_the_demo_scene_shows_each_variation_and_the_review_loop(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    mug = box.shop.products["MUG-1"]  # a catalogue product, as the products flow leaves it
    box.dvc.update("products", mug, {"bpi_brightpearlid": str(box.shop.bp_products["MUG-1"])})
    box.dvc.update("products", mug, {"statecode": 0, "statuscode": 1})
    lines: list[str] = []

    sku_scene(
        box.values,
        lines.append,
        host=box.host.api_url,
        master_key=box.values.get("LOCAL_MASTER_KEY", ""),
        customer=box.shop.customer,
        number=15,
    )

    text = "\n".join(lines)
    for case in ("exact", "mixed case", "separators", "leading zeros", "EAN only"):
        [line] = [x for x in lines if x.strip().startswith(f"{case}:")]
        assert line.endswith("(ok)"), text
    assert "SkuNeedsReview" in text and "SKU similarity" in text, text
    assert "the order went through: Brightpearl sales order" in text, text
    assert "matched by the link: Brightpearl sales order" in text, text
