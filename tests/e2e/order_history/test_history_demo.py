"""The demo's history scene (sandbox/history_demo.py, `syncctl sandbox demo`) through the whole
sandbox: a web order placed in Brightpearl appears in Dynamics, is invoiced and paid, an item is
returned (a case opens) and refunded (the case is resolved), and the customer's lifetime value
printed after each step moves as issue 14 says: invoiced net, less the credit.

The host runs on a fake clock: while the scene waits, the test moves it past any retry copy a
flow scheduled, as time would pass in the running sandbox."""

from __future__ import annotations

import re
import threading
from typing import Any

from sandbox.history_demo import history_scene
from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.orders.conftest import OrderSandbox

FLOWS = (
    "orders-to-dataverse",
    "invoices-to-dataverse",
    "returns-to-dataverse",
    "customer-value-to-dataverse",
    "timeline-to-dataverse",
)


def _run_scene(box: OrderSandbox, lines: list[str]) -> None:
    """The scene in a thread; meanwhile the fake clock moves past scheduled retry copies."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            history_scene(
                box.values,
                box.bp,
                lines.append,
                host=box.host.api_url,
                master_key=box.values["LOCAL_MASTER_KEY"],
                customer=box.shop.customer,
                number=12,
                timeout=60,
            )
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive():
        thread.join(0.3)
        box.host.wait_idle(timeout=60)
        if any(box.bus.counts(BP_TOPIC, f).scheduled for f in FLOWS):
            box.clock.advance(61)
    if "error" in out:
        raise out["error"]


def test_the_history_scene_shows_order_invoice_case_refund_and_the_lifetime_value(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    # the shop's products as the products flow leaves them: active, carrying their Brightpearl id
    for sku, product in box.shop.products.items():
        box.dvc.update(
            "products",
            product,
            {"statecode": 0, "statuscode": 1, "bpi_brightpearlid": str(box.shop.bp_products[sku])},
        )
    lines: list[str] = []

    _run_scene(box, lines)

    text = "\n".join(lines)
    for heading in (
        "12. A web order is placed in Brightpearl",
        "13. It is invoiced and paid in Brightpearl",
        "14. The customer returns one item",
        "15. The return is refunded in Brightpearl",
    ):
        assert heading in text, text
    assert "bpi_origin Brightpearl" in text
    assert re.search(r"Dynamics invoice 'Invoice SI-\d+ for order .*': Paid, amount paid 52\.20", text), text
    assert re.search(r"Dynamics case 'Return for order WEB-\d+' \(Active\)", text), text
    assert re.search(r"Dynamics case 'Return for order WEB-\d+': Resolved", text), text
    values = re.findall(r"the customer now: lifetime value ([\d.]+), (\d+) order\(s\), (\d+) open", text)
    # invoiced net 43.50 (3 x 14.50); the return takes 14.50 off and is open; the refund closes it
    assert values == [("43.50", "1", "0"), ("29.00", "1", "1"), ("29.00", "1", "0")], text
    [order] = [r for r in box.dv.rows("salesorder") if r.get("bpi_origin") == "Brightpearl"]
    assert len([r for r in box.dv.rows("incident") if r.get("statecode") == 1]) == 1
    assert box.dead_lettered("orders-to-dataverse") == []
    assert order["bpi_brightpearlid"]
