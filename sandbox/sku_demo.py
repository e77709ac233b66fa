"""The demo's SKU matching scene (`syncctl sandbox demo`, after the order scene; issue 18 item 2):
an existing Dynamics catalogue whose product numbers are spelt otherwise than the Brightpearl
SKUs (sandbox/brightpearl/catalogue_seed.py `SKU_VARIATIONS`, seeded in Brightpearl through
`POST /_sandbox/catalogue/sku-variations` and in Dynamics as a CRM user creates products).

1. An order of the variations SKU matching resolves (exact, mixed case, `ABC001` for `ABC-001`,
   leading zeros, an EAN only; the channel prefix too when the running mapping strips `WEB-`)
   becomes one Brightpearl order, each line on its product.
2. An order of a near miss is held for review with its candidates and scores; the operator's
   `syncctl review accept-sku` (the same code) links the products, the order goes through, and
   the next order of that product matches by the link.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sandbox.brightpearl.catalogue_seed import SKU_VARIATIONS
from sandbox.catalogue_demo import _ref
from sandbox.dataverse.seed import sku_variation_products
from sandbox.orders_demo import ROOT, SHIPPED_MAPPING, Echo, OrdersDemo, _wait

SHOWN = ("exact", "mixed case", "separators", "leading zeros", "channel prefix", "EAN only")


def _strips_web(values: dict[str, str]) -> bool:
    """Does the running host's order mapping strip the WEB- prefix (the channel case)?"""
    from shared.mapping.orders_config import read_order_mapping

    path = Path(values.get("ORDER_MAPPING_PATH") or SHIPPED_MAPPING)
    mapping = read_order_mapping(path if path.is_absolute() else ROOT / path)
    return mapping.sku_matching.affixes(mapping.brightpearl.channel_id).variant("WEB-X") == "X"


def _order(demo: OrdersDemo, level: str, unit: str, customer: str, lines: list[str]) -> str:
    """A submitted Dynamics order of one of each product (Dynamics productids)."""
    order = demo.created_id(
        "POST",
        "salesorders",
        {
            "name": "Demo order (SKU matching)",
            "customerid_contact@odata.bind": f"/contacts({customer})",
            "pricelevelid@odata.bind": f"/pricelevels({level})",
        },
    )
    for n, product in enumerate(lines, start=1):
        line = {
            "salesorderid@odata.bind": f"/salesorders({order})",
            "productid@odata.bind": f"/products({product})",
            "uomid@odata.bind": f"/uoms({unit})",
            "quantity": n,
        }
        demo.crm("POST", "salesorderdetails", line)
    demo.crm("PATCH", f"salesorders({order})", {"statecode": 1})
    return order


def _created(demo: OrdersDemo, order: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        mine = [
            o for o in demo.bp_orders().values() if str(o.get("externalRef", "")).lower() == order.lower()
        ]
        return mine[0] if mine else None

    return dict(_wait("the Brightpearl order", found, 60.0, lambda: demo.run_timer("poll_dataverse_orders")))


def sku_scene(
    values: dict[str, str], echo: Echo, *, host: str, master_key: str, customer: str, number: int
) -> None:
    from shared import runtime
    from shared.ops import review
    from shared.settings import load_settings

    demo = OrdersDemo(values, host=host, master_key=master_key)
    try:
        echo(f"[bold]{number}. SKU matching: a Dynamics catalogue spelt otherwise than Brightpearl's[/bold]")
        level, products = demo.priced_products("Retail GBP")
        if not products:
            echo("   -> no priced catalogue in Dynamics (start the sandbox with its catalogue): skipped")
            return
        unit_group, unit = _ref(products[0].get("defaultuomscheduleid")), products[0]["uomid"]
        bp_ids = {
            case: int(i) for case, i in demo.bp_admin("catalogue/sku-variations", {})["products"].items()
        }
        dv_ids: dict[str, str] = {}
        for case, body in sku_variation_products(unit_group, unit):
            dv_ids[case] = demo.created_id("POST", "products", body)
            price = {
                "pricelevelid@odata.bind": f"/pricelevels({level})",
                "productid@odata.bind": f"/products({dv_ids[case]})",
                "uomid@odata.bind": f"/uoms({unit})",
                "pricingmethodcode": 1,
                "amount": 15.0,
            }
            demo.crm("POST", "productpricelevels", price)
        shown = [c for c in SHOWN if c != "channel prefix" or _strips_web(values)]
        variations = {v.case: v for v in SKU_VARIATIONS}
        started = time.monotonic()
        order = _order(demo, level, unit, customer, [dv_ids[c] for c in shown])
        rows = {
            int(float(r["quantity"]["magnitude"])): r["productId"]
            for r in _created(demo, order)["orderRows"].values()
        }
        echo(f"   -> one Brightpearl order in {time.monotonic() - started:.1f}s, each line on its product:")
        for n, case in enumerate(shown, start=1):
            v = variations[case]
            ok = "ok" if rows.get(n) == bp_ids[case] else f"NOT {bp_ids[case]}"
            echo(f"      {case}: Dynamics {v.dynamics_sku!r} -> Brightpearl {v.brightpearl_sku!r} ({ok})")
        if "channel prefix" not in shown:
            echo(
                "      (channel prefix: add `channels: {default: {strip_prefixes: [WEB-]}}` to sku_matching)"
            )

        echo(f"[bold]{number + 1}. A near miss is never used: it waits for the operator[/bold]")
        near, lantern = dv_ids["near miss"], bp_ids["near miss"]
        held = _order(demo, level, unit, customer, [near])
        with runtime.override(settings=load_settings(values)):
            store = runtime.state_store()

            def flagged() -> review.ReviewItem | None:
                items = review.needs_review(store.audit, [review.SKU_FLOW], days=1)
                return next((i for i in items if i.record_id == held.lower()), None)

            item = _wait("the review list", flagged, 60.0, lambda: demo.run_timer("poll_dataverse_orders"))
            echo(f"   -> syncctl review list: {item.reason}: {item.description}")
            echo(f"   $ syncctl review accept-sku {near} {lantern}")
            review.accept_sku(
                store.links,
                store.audit,
                near,
                lantern,
                actor="sandbox demo",
                resync=lambda i: review.resync(i, actor="sandbox demo"),
                now=runtime.clock(),
            )
        bp = _created(demo, held)
        echo(f"   -> linked; the order went through: Brightpearl sales order {bp['id']}")
        again = _created(demo, _order(demo, level, unit, customer, [near]))
        echo(
            f"   -> the next order of that product matched by the link: Brightpearl sales order {again['id']}"
        )
    finally:
        demo.close()
