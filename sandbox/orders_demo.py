"""The demo's order scene (`syncctl sandbox demo`, after the catalogue): a Dynamics user raises
an order for the demo's customer with two catalogue products and submits it; it becomes one
Brightpearl sales order; the warehouse ships it in Brightpearl (a goods-out note, tracking
reference, shipped); Dynamics shows the order Fulfilled with the shipped date and tracking.

Everything goes through the running sandbox as a user would: the Dataverse simulator's CRM
surface (`/_sandbox/crm`, which fires the webhook steps `sandbox up` registered), Brightpearl's
warehouse admin routes (which raise the goods-out webhooks), and the host's timers only when a
webhook did not arrive (the order pollers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from sandbox.catalogue_demo import _ref, _wait_for

Echo = Callable[[str], None]
FULFILLED = 3
TRACKING = "DEMO-TRACK-1"


class OrdersDemo:
    def __init__(self, values: dict[str, str], *, host: str, master_key: str) -> None:
        self.brightpearl = values.get("BRIGHTPEARL_BASE_URL", "http://127.0.0.1:8101").rstrip("/")
        self.dataverse = values.get("DATAVERSE_URL", "http://127.0.0.1:8102").rstrip("/")
        self.host = host.rstrip("/")
        self.master_key = master_key
        self.http = httpx.Client(timeout=60)

    def close(self) -> None:
        self.http.close()

    def crm(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        out = self.http.post(
            f"{self.dataverse}/_sandbox/crm", json={"method": method, "path": path, "body": body}
        )
        out.raise_for_status()
        answer: dict[str, Any] = out.json()
        if answer["status"] >= 300:
            raise RuntimeError(f"Dynamics refused {method} {path}: {answer['body']}")
        return answer

    def created_id(self, method: str, path: str, body: Any) -> str:
        return str(self.crm(method, path, body)["headers"]["OData-EntityId"]).rsplit("(", 1)[1].rstrip(")")

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.dataverse}/_sandbox/tables/{table}").json()["rows"])

    def bp_orders(self) -> dict[str, dict[str, Any]]:
        return dict(self.http.get(f"{self.brightpearl}/_sandbox/state/orders").json())

    def bp_admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        out = self.http.post(f"{self.brightpearl}/_sandbox/{path}", json=body)
        out.raise_for_status()
        return dict(out.json())

    def run_timer(self, name: str) -> None:
        self.http.post(
            f"{self.host.removesuffix('/api')}/admin/functions/{name}",
            headers={"x-functions-key": self.master_key},
            json={},
        ).raise_for_status()

    def priced_products(self, price_list: str) -> tuple[str, list[dict[str, Any]]]:
        """The price list's id and the linked catalogue products priced in it (with their unit)."""
        lists = [r for r in self.rows("pricelevel") if r.get("name") == price_list]
        if not lists:
            return "", []
        level = lists[0]["pricelevelid"]
        priced = {
            _ref(i.get("productid")): i
            for i in self.rows("productpricelevel")
            if _ref(i.get("pricelevelid")) == level
        }
        products = [
            dict(p, uomid=_ref(priced[p["productid"]].get("uomid")))
            for p in self.rows("product")
            if p.get("bpi_brightpearlid") and p.get("statecode") == 0 and p["productid"] in priced
        ]
        products.sort(key=lambda p: str(p.get("productnumber")))
        return level, products


def _wait(what: str, check: Callable[[], Any], timeout: float, nudge: Callable[[], None]) -> Any:
    """What `check` finds within `timeout`; with nothing after half of it (no webhook), `nudge`
    (the backstop poller) runs once."""
    found = _wait_for(check, timeout / 2)
    if not found:
        nudge()
        found = _wait_for(check, timeout / 2)
    if not found:
        raise RuntimeError(f"timed out waiting for: {what}")
    return found


def order_scene(
    values: dict[str, str], echo: Echo, *, host: str, master_key: str, customer: str, number: int = 9
) -> None:
    """The order scene for the Dynamics contact `customer` (synced in scene 1)."""
    demo = OrdersDemo(values, host=host, master_key=master_key)
    try:
        echo(f"[bold]{number}. A sales order is submitted in Dynamics[/bold]")
        level, products = demo.priced_products("Retail GBP")
        if len(products) < 2:
            echo(
                "   -> Dynamics has no priced catalogue products to order: start the sandbox with its "
                "catalogue (`syncctl sandbox up` without --no-catalogue) and run the demo again"
            )
            return
        currency = next(
            (
                c["transactioncurrencyid"]
                for c in demo.rows("transactioncurrency")
                if c.get("isocurrencycode") == "GBP"
            ),
            None,
        )
        header: dict[str, Any] = {
            "name": "Demo order",
            "customerid_contact@odata.bind": f"/contacts({customer})",
            "pricelevelid@odata.bind": f"/pricelevels({level})",
            "freightamount": 4.95,
        }
        if currency:
            header["transactioncurrencyid@odata.bind"] = f"/transactioncurrencies({currency})"
        order = demo.created_id("POST", "salesorders", header)
        for product, quantity in ((products[0], 2), (products[1], 1)):
            line = {
                "salesorderid@odata.bind": f"/salesorders({order})",
                "productid@odata.bind": f"/products({product['productid']})",
                "uomid@odata.bind": f"/uoms({product['uomid']})",
                "quantity": quantity,
            }
            demo.crm("POST", "salesorderdetails", line)
        started = time.monotonic()
        demo.crm("PATCH", f"salesorders({order})", {"statecode": 1})
        [dv] = [r for r in demo.rows("salesorder") if r["salesorderid"] == order]
        echo(
            f"   (Dynamics order {dv.get('ordernumber')}: 2 x {products[0].get('productnumber')}, "
            f"1 x {products[1].get('productnumber')}, freight 4.95; total {dv.get('totalamount')})"
        )

        def created() -> dict[str, Any] | None:
            found = [
                o for o in demo.bp_orders().values() if str(o.get("externalRef", "")).lower() == order.lower()
            ]
            return found[0] if found else None

        bp = _wait("the Brightpearl order", created, 60.0, lambda: demo.run_timer("poll_dataverse_orders"))
        rows = bp.get("orderRows") or {}
        echo(
            f"   -> Brightpearl sales order {bp['id']} (ref {bp.get('reference')}) with {len(rows)} rows "
            f"in {time.monotonic() - started:.1f}s; created once, its id written back to Dynamics"
        )

        echo(f"[bold]{number + 1}. The warehouse ships it in Brightpearl[/bold]")
        started = time.monotonic()
        notes = demo.bp_admin(f"orders/{bp['id']}/goods-out", {})["goodsOutNoteIds"]
        for note in notes:
            demo.bp_admin(f"goods-out/{note}/ship", {"reference": TRACKING})
        echo(f"   (goods-out note {', '.join(str(n) for n in notes)} shipped, tracking {TRACKING})")

        def fulfilled() -> dict[str, Any] | None:
            [row] = [r for r in demo.rows("salesorder") if r["salesorderid"] == order]
            return row if row.get("statecode") == FULFILLED else None

        row = _wait(
            "the Dynamics order fulfilled", fulfilled, 60.0, lambda: demo.run_timer("poll_brightpearl_orders")
        )
        echo(
            f"   -> Dynamics order {row.get('ordernumber')}: Fulfilled, "
            f"shipped on {row.get('bpi_shippedon')}, tracking {row.get('bpi_trackingreference')} "
            f"in {time.monotonic() - started:.1f}s"
        )
    finally:
        demo.close()
