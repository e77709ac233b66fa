"""The demo's history scene (`syncctl sandbox demo`, after the order scene; issue 14): a web order
placed in Brightpearl appears in Dynamics; it is invoiced and paid; the customer returns an item
and a case opens; the return is refunded and the case is resolved; the customer's lifetime value
is printed before and after each step.

Everything goes through the running sandbox as the shop would: the web shop's order is the public
`POST /order-service/sales-order` (its `sales-order.created` webhook brings it to
orders-to-dataverse, which copies Brightpearl-born orders: order history); the accounting side
uses the Brightpearl simulator's admin routes (invoice, pay, refund); the return is the public
`POST /order-service/sales-credit` with `parentId`. Customer payments and sales credits raise no
webhook (reference §10.3), so the demo runs their pollers (`poll_brightpearl_payments`,
`poll_brightpearl_returns`) through the host's admin API instead of waiting for their schedule,
and the customer value flush (`flush_customer_value`) to write the figures at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.catalogue_demo import _ref, _wait_for
from sandbox.orders_demo import OrdersDemo

Echo = Callable[[str], None]
ACTIVE, RESOLVED = 0, 1  # incident statecode
PAID = 2  # invoice statecode
VALUE_COLUMNS = ("bpi_lifetimevalue", "bpi_ordercount", "bpi_openreturns")
TAX = Decimal("0.20")  # the T20 rows the web shop sends


def _until(
    what: str, check: Callable[[], Any], timeout: float, nudge: Callable[[], None] | None = None
) -> Any:
    """What `check` finds within `timeout` s; `nudge` (a poller or the flush) runs first and again
    every 5 s while nothing is found."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nudge is not None:
            nudge()
        found = _wait_for(check, min(5.0, max(deadline - time.monotonic(), 0.1)))
        if found:
            return found
    raise RuntimeError(f"timed out waiting for: {what}")


def _money(value: Any) -> str:
    return "none" if value in (None, "") else f"{Decimal(str(value)):.2f}"


class HistoryDemo(OrdersDemo):
    """The order scene's helpers plus what this scene reads: the customer's figures, cases and
    invoices."""

    def contact(self, contactid: str) -> dict[str, Any]:
        return next((r for r in self.rows("contact") if r["contactid"] == contactid.lower()), {})

    def value(self, contactid: str) -> str:
        row = self.contact(contactid)
        return (
            f"lifetime value {_money(row.get('bpi_lifetimevalue'))}, "
            f"{row.get('bpi_ordercount') or 0} order(s), {row.get('bpi_openreturns') or 0} open return(s)"
        )

    def figures(self, contactid: str) -> tuple[Any, ...]:
        row = self.contact(contactid)
        return tuple(row.get(c) for c in VALUE_COLUMNS)

    def salesorder_of(self, order_id: int) -> dict[str, Any] | None:
        return next((r for r in self.rows("salesorder") if r.get("bpi_brightpearlid") == str(order_id)), None)

    def case_of(self, credit_id: int) -> dict[str, Any] | None:
        return next((r for r in self.rows("incident") if r.get("bpi_brightpearlid") == str(credit_id)), None)

    def invoice_of(self, reference: str) -> dict[str, Any] | None:
        return next((r for r in self.rows("invoice") if r.get("bpi_brightpearlid") == reference), None)

    def moved(self, contactid: str, before: tuple[Any, ...], timeout: float = 60.0) -> str:
        """The customer's figures once they differ from `before` (the customer value flush is run
        until they do)."""
        _until(
            "the customer's figures in Dynamics",
            lambda: self.figures(contactid) != before,
            timeout,
            lambda: self.run_timer("flush_customer_value"),
        )
        return f"   -> the customer now: {self.value(contactid)}"


def history_scene(
    values: dict[str, str],
    client: Any,
    echo: Echo,
    *,
    host: str,
    master_key: str,
    customer: str,
    number: int = 12,
    timeout: float = 60.0,
) -> None:
    """The history scene for the Dynamics contact `customer` (synced to Brightpearl in scene 1);
    `client` is a Brightpearl client (the web shop's and the warehouse's API calls)."""
    demo = HistoryDemo(values, host=host, master_key=master_key)
    try:
        echo(f"[bold]{number}. A web order is placed in Brightpearl[/bold]")
        contact = demo.contact(customer)
        bp_customer = contact.get("bpi_brightpearlid")
        _, products = demo.priced_products("Retail GBP")
        if not bp_customer or len(products) < 2:
            echo(
                "   -> nothing to order: the demo's customer is not in Brightpearl yet, or Dynamics has no "
                "catalogue products (start the sandbox without --no-catalogue and run the demo again)"
            )
            return
        echo(f"   (the customer before: {demo.value(customer)})")
        rows, bought = [], []
        for product, quantity in ((products[2 % len(products)], 2), (products[3 % len(products)], 1)):
            bought.append(f"{quantity} x {product.get('productnumber')}")
            net = Decimal("14.50") * quantity
            rows.append(
                {
                    "productId": int(product["bpi_brightpearlid"]),
                    "quantity": str(quantity),
                    "taxCode": "T20",
                    "net": f"{net:.2f}",
                    "tax": f"{net * TAX:.2f}",
                }
            )
        ref = f"WEB-{time.strftime('%H%M%S')}"
        body = {
            "customer": {"id": int(bp_customer)},
            "ref": ref,
            "currency": {"code": "GBP"},
            "channelId": 1,
            "rows": rows,
        }
        started = time.monotonic()
        order_id = int(client.request("POST", "/order-service/sales-order/", json=body).response)
        echo(
            f"   (Brightpearl sales order {order_id}, ref {ref}, channel 1: {', '.join(bought)} at 14.50 "
            "net each, 20 % tax)"
        )
        so = _until(
            "the Dynamics order",
            lambda: demo.salesorder_of(order_id),
            timeout,
            None,
        )
        lines = [
            r for r in demo.rows("salesorderdetail") if _ref(r.get("salesorderid")) == so["salesorderid"]
        ]
        echo(
            f"   -> Dynamics order {so.get('ordernumber') or so['salesorderid']} with {len(lines)} lines, "
            f"total {_money(so.get('totalamount'))}, bpi_origin {so.get('bpi_origin')} (read-only by "
            f"convention) in {time.monotonic() - started:.1f}s; linked to Brightpearl order {order_id}"
        )

        echo(f"[bold]{number + 1}. It is invoiced and paid in Brightpearl[/bold]")
        before = demo.figures(customer)
        invoiced = demo.bp_admin(f"orders/{order_id}/invoice", {})
        reference = str(invoiced["invoices"][0]["invoiceReference"])
        demo.bp_admin(f"orders/{order_id}/pay", {})
        echo(f"   (invoice {reference}; paid in full by card)")
        invoice = _until(
            "the Dynamics invoice paid",
            lambda: (i := demo.invoice_of(reference)) and i.get("statecode") == PAID and i,
            timeout,
            lambda: demo.run_timer("poll_brightpearl_payments"),
        )
        echo(
            f"   -> Dynamics invoice '{invoice.get('name')}': Paid, amount paid "
            f"{_money(invoice.get('bpi_amountpaid'))}"
        )
        echo(demo.moved(customer, before, timeout))

        echo(f"[bold]{number + 2}. The customer returns one item[/bold]")
        before = demo.figures(customer)
        [first] = rows[:1]
        credit_body = {
            "customer": {"id": int(bp_customer)},
            "ref": f"RMA-{ref}",
            "parentId": order_id,
            "currency": {"code": "GBP"},
            "channelId": 1,
            "rows": [{**first, "quantity": "1", "net": "14.50", "tax": f"{Decimal('14.50') * TAX:.2f}"}],
        }
        started = time.monotonic()
        credit_id = int(client.request("POST", "/order-service/sales-credit", json=credit_body).response)
        returned = bought[0].split(" x ")[1]
        echo(f"   (Brightpearl sales credit {credit_id} for order {order_id}: 1 x {returned}, 14.50 net)")
        case = _until(
            "the Dynamics case",
            lambda: demo.case_of(credit_id),
            timeout,
            lambda: demo.run_timer("poll_brightpearl_returns"),
        )
        echo(
            f"   -> Dynamics case '{case.get('title')}' "
            f"({'Active' if case.get('statecode') == ACTIVE else case.get('statecode')}) "
            f"in {time.monotonic() - started:.1f}s"
        )
        echo(demo.moved(customer, before, timeout))

        echo(f"[bold]{number + 3}. The return is refunded in Brightpearl[/bold]")
        before = demo.figures(customer)
        refund = demo.bp_admin(f"sales-credits/{credit_id}/refund", {})
        started = time.monotonic()
        echo(
            f"   (refund payment {refund.get('paymentId')}: {Decimal('14.50') * (1 + TAX):.2f} back to the "
            "card)"
        )
        case = _until(
            "the case resolved",
            lambda: (c := demo.case_of(credit_id)) and c.get("statecode") == RESOLVED and c,
            timeout,
            lambda: demo.run_timer("poll_brightpearl_returns"),
        )
        echo(f"   -> Dynamics case '{case.get('title')}': Resolved in {time.monotonic() - started:.1f}s")
        echo(demo.moved(customer, before, timeout))  # the refunded return is no longer open
    finally:
        demo.close()
