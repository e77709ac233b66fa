"""The demo's order scene (`syncctl sandbox demo`, after the catalogue): a Dynamics user raises
an order for the demo's customer with two catalogue products and submits it; it becomes one
Brightpearl sales order; a Brightpearl user moves it to "Ready to ship" and the integration
allocates it (fulfilment automation, issue 18: a reservation and one goods-out note per warehouse;
the Dynamics lines show the quantities reserved and released); the warehouse ships the note
(tracking reference, shipped); Dynamics shows the order Fulfilled with the shipped date and tracking.

The sandbox runs the demo with fulfilment automation on (`demo_settings`, which `sandbox up`
applies: a copy of the shipped mappings/orders.yaml with `fulfilment.enabled: true` under
.sandbox/); with a mapping of your own where it is off, the warehouse makes the note by hand.

Everything goes through the running sandbox as a user would: the Dataverse simulator's CRM
surface (`/_sandbox/crm`, which fires the webhook steps `sandbox up` registered), Brightpearl's
warehouse admin routes (which raise the goods-out webhooks), and the host's timers only when a
webhook did not arrive (the order pollers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from sandbox.catalogue_demo import _ref, _wait_for
from shared.mapping.fulfilment_config import FulfilmentSettings
from shared.mapping.orders_config import read_order_mapping

Echo = Callable[[str], None]
FULFILLED = 3
TRACKING = "DEMO-TRACK-1"
ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MAPPING = "mappings/orders.yaml"
DEMO_MAPPING = "orders.demo.yaml"
READY = "Ready to ship"  # the demo's trigger status (added to the simulated account when missing)
SUBMITTED = {"statecode": 1, "statuscode": 3}  # where order_status.yaml puts READY: Submitted / In Progress


def demo_settings(values: dict[str, str]) -> dict[str, str]:
    """`values` with fulfilment automation on for the demo: when ORDER_MAPPING_PATH names the
    shipped mappings/orders.yaml (or nothing), a copy with `fulfilment.enabled: true` beside the
    local bus (.sandbox/ by default), with a status file that maps "Ready to ship" too. A mapping
    of your own is left as it is."""
    current = values.get("ORDER_MAPPING_PATH") or SHIPPED_MAPPING
    if Path(current).resolve() != (ROOT / SHIPPED_MAPPING).resolve() and current != SHIPPED_MAPPING:
        return values
    folder = Path(values.get("LOCAL_BUS_PATH") or ".sandbox/bus.sqlite3").parent
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    source = ROOT / SHIPPED_MAPPING
    text = source.read_text(encoding="utf-8")
    turned_on = text.replace("fulfilment:\n  enabled: false", "fulfilment:\n  enabled: true")
    if turned_on == text:
        return values  # the shipped file changed shape: leave the sandbox as configured
    statuses = yaml.safe_load((source.parent / "order_status.yaml").read_text(encoding="utf-8"))
    statuses.setdefault("statuses", {}).setdefault(READY, dict(SUBMITTED))
    (folder / "order_status.yaml").write_text(yaml.safe_dump(statuses, sort_keys=False), encoding="utf-8")
    (folder / DEMO_MAPPING).write_text(turned_on, encoding="utf-8")
    return {**values, "ORDER_MAPPING_PATH": str(folder / DEMO_MAPPING)}


def fulfilment_of(values: dict[str, str]) -> FulfilmentSettings:
    """The `fulfilment:` settings the running host reads (ORDER_MAPPING_PATH, relative to the app root)."""
    path = Path(values.get("ORDER_MAPPING_PATH") or SHIPPED_MAPPING)
    return read_order_mapping(path if path.is_absolute() else ROOT / path).fulfilment


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

    def goods_out(self, order_id: int) -> dict[str, dict[str, Any]]:
        notes = self.http.get(f"{self.brightpearl}/_sandbox/state/goods-out").json()
        return {k: v for k, v in dict(notes).items() if v.get("orderId") == order_id}

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

        fulfilment = fulfilment_of(demo_settings(values))  # as `sandbox up` started the host
        if fulfilment.enabled and fulfilment.trigger.when == "status":
            notes = allocation_scene(demo, values, echo, bp, order, fulfilment, number + 1)
        else:
            echo(f"[bold]{number + 1}. The warehouse makes a goods-out note in Brightpearl[/bold]")
            echo("   (fulfilment automation is off in this sandbox's orders.yaml: made by hand)")
            notes = demo.bp_admin(f"orders/{bp['id']}/goods-out", {})["goodsOutNoteIds"]
        echo(f"[bold]{number + 2}. The warehouse ships it in Brightpearl[/bold]")
        started = time.monotonic()
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


def allocation_scene(
    demo: OrdersDemo,
    values: dict[str, str],
    echo: Echo,
    bp: dict[str, Any],
    order: str,
    fulfilment: FulfilmentSettings,
    number: int,
) -> list[int]:
    """A Brightpearl user moves the order to the trigger status; the integration reserves its rows
    and makes the goods-out note(s); the Dynamics lines show what is reserved and released. The
    products get stock first where the warehouse lacks it (a stock correction, as goods in)."""
    from shared.brightpearl.client import BrightpearlClient
    from shared.settings import load_settings

    status = fulfilment.trigger.statuses[0]
    echo(f"[bold]{number}. Brightpearl: the order is '{status}'; the integration allocates it[/bold]")
    client = BrightpearlClient.from_settings(load_settings(values).brightpearl)
    try:
        known = {s.name: s.status_id for s in client.get_order_statuses() if s.order_type_code == "SO"}
        status_id = known.get(status) or int(
            client.request(
                "POST", "/order-service/order-status", json={"name": status, "orderTypeCode": "SO"}
            ).response
        )
        rows = [r for r in (bp.get("orderRows") or {}).values() if int(r.get("productId") or 0)]
        wanted: dict[int, int] = {}
        for row in rows:
            wanted[int(row["productId"])] = wanted.get(int(row["productId"]), 0) + int(
                float(row["quantity"]["magnitude"])
            )
        warehouse = (fulfilment.warehouses or (int(bp.get("warehouseId") or 2),))[0]
        levels = client.get_product_availability(list(wanted))
        short = [
            {"productId": pid, "quantity": units, "reason": "Demo goods in", "locationId": 2}
            for pid, units in wanted.items()
            if pid in levels
            and (
                levels[pid].warehouses.get(warehouse) is None
                or levels[pid].warehouses[warehouse].on_hand < units
            )
        ]
        if short:
            client.create_stock_correction(warehouse, short)
            echo(f"   (goods in first: {len(short)} product(s) short in warehouse {warehouse})")
        started = time.monotonic()
        client.set_order_status(int(bp["id"]), int(status_id))
    finally:
        client.close()

    def noted() -> dict[str, dict[str, Any]] | None:
        return demo.goods_out(int(bp["id"])) or None

    notes = _wait_for(noted, 20.0)
    if not notes:  # the order poller backstops a lost status webhook
        demo.run_timer("poll_brightpearl_orders")
        notes = _wait_for(noted, 20.0)
    if not notes:
        echo("   (no goods-out note from the integration: fulfilment is off in the host's orders.yaml?)")
        return [int(n) for n in demo.bp_admin(f"orders/{bp['id']}/goods-out", {})["goodsOutNoteIds"]]
    shape = "; ".join(
        f"note {nid} in warehouse {n.get('warehouseId')}: "
        + ", ".join(
            f"row {rid} x{sum(int(p['quantity']) for p in parts)}" for rid, parts in n["orderRows"].items()
        )
        for nid, n in sorted(notes.items())
    )
    echo(f"   -> reserved and released on goods-out notes in {time.monotonic() - started:.1f}s ({shape})")

    def shown() -> list[dict[str, Any]] | None:
        lines = [
            r
            for r in demo.rows("salesorderdetail")
            if str(_ref(r.get("salesorderid"))).lower() == order.lower()
        ]
        return lines if lines and all(r.get("bpi_quantityreleased") for r in lines) else None

    lines = _wait("the Dynamics lines' quantities", shown, 30.0, lambda: None)
    figures = ", ".join(
        f"{_num(r.get('quantity'))} ordered / {_num(r.get('bpi_quantityreserved'))} reserved / "
        f"{_num(r.get('bpi_quantityreleased'))} released"
        for r in lines
    )
    echo(f"   -> Dynamics order lines: {figures}")
    return [int(n) for n in sorted(notes, key=int)]


def _num(value: Any) -> str:
    return f"{float(value or 0):g}"
