"""An invoice for a Brightpearl order Dynamics does not have yet (no `order` link) is retried with
reason OrderNotInDynamics, never written without its salesorder; once the order is in Dynamics
(linked), the retry makes the invoice; if it never arrives, the retries end in a dead letter naming
the reason. Order history (`history:` in mappings/orders.yaml, which brings Brightpearl-born orders
first) is switched off here, so nothing brings the order but the test; with it on, the order is
brought first (the last test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.customers.conftest import BP_TOPIC, NEVER, ROOT
from tests.e2e.invoices.conftest import INVOICES, InvoiceSandbox, lookup
from tests.e2e.orders.conftest import PRICE_LIST, order_mapping
from tests.e2e.products.conftest import product_mapping

HISTORY_ON = "history:\n  enabled: true"


def history_shipped() -> bool:
    return HISTORY_ON in (ROOT / "mappings" / "orders.yaml").read_text()


@pytest.fixture
def history() -> bool:
    """Order history as the mapping says (a test parametrizes it on)."""
    return False


@pytest.fixture
def sandbox_settings(tmp_path: Path, history: bool) -> dict[str, str]:
    """As the folder's, with order history off unless the test turns it on, and few retry
    attempts so the end of the retries is reached."""
    edits = [] if history or not history_shipped() else [(HISTORY_ON, "history:\n  enabled: false")]
    return {
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path, *edits)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "ORDERS_DATAVERSE_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_ORDER_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PAYMENT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
        "RETRY_MAX_ATTEMPTS": "4",
    }


def web_order(box: InvoiceSandbox) -> int:
    """A sales order placed in Brightpearl (a web shop's), invoiced there; its id."""
    body: dict[str, Any] = {
        "customer": {"id": box.shop.bp_customer},
        "ref": "WEB-1001",
        "currency": {"code": "GBP"},
        "rows": [
            {
                "productId": box.shop.bp_products["MUG-1"],
                "quantity": 2,
                "taxCode": "T20",
                "net": "25.00",
                "tax": "5.00",
            },
            {"name": "Gift wrap", "quantity": 1, "taxCode": "T20", "net": "2.50", "tax": "0.50"},
        ],
    }
    order = box.bp.create_sales_order(body)
    box.admin(f"orders/{order}/invoice", {"invoiceReference": "SI-WEB-1001"})
    return order


def test_an_invoice_waits_for_its_order_then_links_to_it(invoices_sandbox: InvoiceSandbox) -> None:
    box = invoices_sandbox
    order = web_order(box)
    box.host.run_timer("poll_brightpearl_orders")
    box.host.wait_idle(timeout=90)
    assert box.invoices() == []  # no salesorder to link to: nothing written
    assert box.bus.counts(BP_TOPIC, INVOICES).scheduled == 1  # retried later
    assert box.dead_letters(BP_TOPIC, INVOICES) == []

    # the order arrives in Dynamics (as the history flow brings it) and is linked
    salesorder = box.dvc.create(
        "salesorders",
        {
            "name": "Web order WEB-1001",
            "customerid_contact@odata.bind": f"/contacts({box.shop.customer})",
            "pricelevelid@odata.bind": f"/pricelevels({box.shop.refs.price_lists[PRICE_LIST]})",
        },
    )
    box.store.links.link("order", "brightpearl", str(order), "dataverse", salesorder)
    box.work()
    invoice = box.invoice_of(salesorder)
    assert invoice["bpi_brightpearlid"] == "SI-WEB-1001"
    assert lookup(invoice["customerid"]) == box.shop.customer.lower()
    assert len(box.invoice_lines(invoice)) == 2
    assert box.dead_letters(BP_TOPIC, INVOICES) == []


def test_an_invoice_whose_order_never_arrives_ends_in_a_dead_letter_naming_the_reason(
    invoices_sandbox: InvoiceSandbox,
) -> None:
    box = invoices_sandbox
    order = web_order(box)
    box.polls()  # works off every retry on the fake clock
    assert box.invoices() == []
    [dead] = box.dead_letters(BP_TOPIC, INVOICES)
    assert dead.dead_letter_reason == "RetriesExhausted"
    assert "OrderNotInDynamics" in dead.dead_letter_error_description
    assert f"order {order}" in dead.dead_letter_error_description


@pytest.mark.skipif(
    not history_shipped(), reason="order history (issue 14 item 1) is not in mappings/orders.yaml"
)
@pytest.mark.parametrize("history", [True])
def test_with_order_history_the_order_is_brought_first_then_invoiced(
    invoices_sandbox: InvoiceSandbox, history: bool
) -> None:
    box = invoices_sandbox
    order = web_order(box)
    box.polls()
    link = box.store.links.get("order", "brightpearl", str(order))
    assert link is not None and link.is_linked
    salesorder = str(link.id_in("dataverse"))
    invoice = box.invoice_of(salesorder)
    assert invoice["bpi_brightpearlid"] == "SI-WEB-1001"
    assert len(box.invoice_lines(invoice)) == 2
    assert box.dead_letters(BP_TOPIC, INVOICES) == []
