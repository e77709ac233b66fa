"""Orders (issue 13): Brightpearl and Dataverse calls per order, the rate-limited run, the status
write-back, and submit -> Brightpearl latency; one JSON with each target and pass/fail.

Sections (the real flows, shared/flows/orders_to_brightpearl.py and orders_to_dataverse.py, with
the real clients against both simulators over loopback, built as benchmarks/customers.py's Rig
builds the customer flows; links, ledger and audit in memory; calls are what the simulators
answered, retries included):

1. **atomic** (`--orders` Dynamics orders of `--lines` lines each, zero latency, no rate limit):
   the customers (Brightpearl contacts) and the products (Brightpearl SKUs) exist on both sides
   and are linked beforehand; the orders are created in Dynamics and submitted (statecode 1) as a
   CRM user would, then their notices reach `orders-to-brightpearl` as the Dataverse webhook sends
   them (one salesorder id per notice) in batches of host.json's `maxMessageBatchSize`. Counted:
   Brightpearl calls per order created (target <= 1.1: one atomic sales-order POST) and
   Dataverse calls per order (target <= 0.1: two `In` queries and one UpdateMultiple per batch).
   **naive** (`--naive` further orders, in the same run): the per-row way, built in this file
   from the same translation (shared/mapping/orders_translate.py): per order one Dataverse GET
   of the order, one query for its lines' ids and one GET per line, an order header POST
   (`/order-service/order`) and one row POST per row (reference §6.3), and one PATCH of
   `bpi_brightpearlid`. Both are reported with the ratio naive / atomic.
2. **rate_limited**: the same `--orders` in a fresh rig under Brightpearl's limit (the
   simulator's throttle and the client's rate budget: 200 requests per `--rate-window` seconds;
   60 s is the real limit, and 60 ms per Brightpearl call, 40 ms per Dataverse call, as
   benchmarks/customers.py's realistic profile). Completion time against the rate-limit bound =
   Brightpearl requests used / 200 x the window (target: within 1.2x). `--quick` scales the
   window down to 6 s (and the latencies to zero, as 1,000 sequential 60 ms calls alone would
   exceed a 30 s bound); the JSON says which ran (`rate_limited.mode`).
3. **status_writeback** (after section 1, on its 1,000 linked orders): Brightpearl users change
   the status of every order twice; `orders-to-dataverse` writes each change to Dynamics (target:
   <= 30 Dataverse calls per 1,000). First "Awaiting Payment" (-> Active / New), as one webhook
   per change (one id per notice) handed over in full host batches: the worst case. Then
   "Shipped" (-> Fulfilled, FulfillSalesOrder), as Brightpearl sends a burst to a hook with
   `idSetAccepted`: the simulator's webhook dispatcher gathers the ids raised within its window
   (0.05 s) into id sets, and each id set becomes notices of `ids_per_notice` (100) ids as the
   ingress splits them. The target is judged on the id-set shape.
4. **submit_latency** (benchmarks/latency.py's running sandbox: Azurite, both simulators in this
   process with `--latency-ms` (50) per API call, the local bus, the Functions host as its own
   process with the tree's settings, webhooks registered): three Dynamics contacts (the customers
   flow links them to Brightpearl) and five Brightpearl products (their webhooks bring them into
   Dynamics, linked), priced in a Dynamics price list of their own; then `--samples` orders of `--lines`
   lines entered by a CRM user and submitted one every `--interval` s, each timed from the submit
   (statecode 1: the Update webhook -> ingress -> bus -> orders-to-brightpearl) until the
   Brightpearl simulator holds a sales order with that externalRef (checked every 50 ms).
   Target: p50 < 2 s.

Usage: .venv/bin/python -m benchmarks.orders [--orders 1000] [--lines 5] [--naive 100]
       [--quick | --rate-window 60] [--samples 30] [--interval 2] [--latency-ms 50]
       [--skip-status] [--skip-rate-limited] [--skip-latency] [--out benchmarks/results/orders.json]

About eight minutes with the defaults on 2 cores (the rate-limited run alone is close to its
bound: about 5 minutes for 1,000 orders at 200 requests a minute); `--quick` about three. Writes
benchmarks/results/orders.json (after each section, so an interrupted run keeps what it
measured).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.catalogue import (  # noqa: E402
    Catalogue,
    Counted,
    host_batch_size,
    target,
    wait_until,
    write,
)
from benchmarks.customers import Rig, person  # noqa: E402
from benchmarks.latency import Sandbox, Watch, figures, host_json_batch, running_sandbox, wait_for, watching  # noqa: E402
from benchmarks.latency import person as latency_person  # noqa: E402
from sandbox import catalogue_solution, orders_solution  # noqa: E402
from sandbox.azurite import free_port  # noqa: E402
from sandbox.catalogue_solution import CatalogueRefs  # noqa: E402
from sandbox.dataverse.inprocess import in_process_client  # noqa: E402
from sandbox.demo import Endpoints, crm_contact, register_webhooks  # noqa: E402
from shared.brightpearl.idset import parse_id_set  # noqa: E402
from shared.bus.local import LocalBus  # noqa: E402
from shared.dataverse import odata  # noqa: E402
from shared.dataverse.client import DataverseClient  # noqa: E402
from shared.dataverse.errors import DataverseValidationError  # noqa: E402
from shared.events import Envelope, notices_in_chunks  # noqa: E402
from shared.flows.orders_spec import SALESORDER_COLUMNS, SALESORDERDETAIL_COLUMNS, STATUS_EVENT  # noqa: E402
from shared.flows.orders_to_brightpearl import OrdersToBrightpearl  # noqa: E402
from shared.flows.orders_to_dataverse import OrdersToDataverse  # noqa: E402
from shared.flows.stock_to_dataverse import KEY  # noqa: E402
from shared.mapping.orders_config import OrderMapping, load_order_mapping  # noqa: E402
from shared.mapping.orders_translate import address_columns, order_from_dataverse, sales_order_body  # noqa: E402
from shared.mapping.products_config import load_product_mapping  # noqa: E402
from shared.settings import WebhookSettings  # noqa: E402
from shared.sync.outcomes import chunked  # noqa: E402

TARGETS = {
    "brightpearl_calls_per_order": 1.1,
    "dataverse_calls_per_order": 0.1,
    "rate_limited_over_bound": 1.2,
    "status_dataverse_calls_per_1000": 30,
    "latency_p50_seconds": 2.0,
}
SKUS = 20  # products on both sides; each order's lines are consecutive ones
CUSTOMERS = 50  # contacts on both sides; orders go round them
PRICE = Decimal("12.50")
SUBMITTED = {"statecode": 1, "statuscode": 3}  # Submitted / In Progress: the default trigger
RATE_LIMIT = 200
QUICK_WINDOW = 6.0
SANDBOX_PRICE_LIST = "Orders benchmark GBP"
DV_TOPIC, TO_BP_SUBSCRIPTION = "dataverse-changes", "orders-to-brightpearl"
IDS_PER_NOTICE = int(WebhookSettings.model_fields["ids_per_notice"].default)  # the ingress's split
MAX_WEBHOOK_IDS = int(WebhookSettings.model_fields["max_ids"].default)


# ------------------------------------------------------------------------------ the shop on both sides
def price_item(client: DataverseClient, refs: CatalogueRefs, price_list: str, product: str) -> None:
    """The product at PRICE in the price list, in the catalogue's base unit (as a CRM user)."""
    client.create(
        "productpricelevels",
        {
            "pricelevelid@odata.bind": f"/pricelevels({price_list})",
            "productid@odata.bind": f"/products({product})",
            "uomid@odata.bind": f"/uoms({refs.base_unit})",
            "pricingmethodcode": 1,
            "amount": float(PRICE),
        },
    )


class Shop:
    """benchmarks/customers.py's rig with the catalogue and orders provisioned in Dynamics, and
    customers and products on both sides, linked: what the customer and catalogue flows leave."""

    def __init__(self, *, realistic: bool = False, rate_window: float = 60.0) -> None:
        self.rig = Rig(None, realistic=realistic, rate_window=rate_window)
        sim = self.rig.dv_server.simulator
        catalogue_solution.provision_simulator(sim)
        orders_solution.provision_simulator(sim)
        self.refs: CatalogueRefs = catalogue_solution.seed_simulator(sim)
        self.price_list = self.refs.price_lists["Retail GBP"]
        self.mapping: OrderMapping = load_order_mapping()
        self.bp_state = self.rig.bp_server.simulator.state
        self.dv = in_process_client(sim)  # seeding as CRM users: not through the integration's client
        links = self.rig.store.links
        people = [person(700_000 + i) for i in range(CUSTOMERS)]
        self.contacts = self.rig.seed_dataverse(people)
        for dv_id, bp_id in zip(self.contacts, self.rig.seed_brightpearl(people), strict=True):
            links.link("customer", "dataverse", dv_id.lower(), "brightpearl", bp_id)
        self.products: list[str] = []
        for n in range(SKUS):
            sku = f"ORD-{n:03d}"
            bp_id = self.bp_state.create_product(
                {
                    "brandId": 1,
                    "identity": {"sku": sku},
                    "salesChannels": [{"salesChannelName": "Brightpearl", "productName": f"Order Mug {n}"}],
                    "stock": {"stockTracked": True},
                },
                quiet=True,
            )
            product = self.dv.create(
                "products",
                {
                    "name": f"Order Mug {n}",
                    "productnumber": sku,
                    "quantitydecimal": 0,
                    "producttypecode": 1,
                    "defaultuomscheduleid@odata.bind": f"/uomschedules({self.refs.unit_group})",
                    "defaultuomid@odata.bind": f"/uoms({self.refs.base_unit})",
                },
            )
            price_item(self.dv, self.refs, self.price_list, product)
            links.link("product", "dataverse", product.lower(), "brightpearl", str(bp_id))
            self.products.append(product)
        self._orders = 0

    def submitted_orders(self, count: int, lines: int) -> list[str]:
        """`count` Dynamics orders of `lines` priced lines (20 % tax), created and submitted."""
        ids = []
        for _ in range(count):
            n = self._orders = self._orders + 1
            order = self.dv.create(
                "salesorders",
                {
                    "name": f"Benchmark order {n}",
                    "customerid_contact@odata.bind": f"/contacts({self.contacts[n % CUSTOMERS]})",
                    "pricelevelid@odata.bind": f"/pricelevels({self.price_list})",
                },
            )
            for j in range(lines):
                quantity = 1 + (n + j) % 3
                self.dv.create(
                    "salesorderdetails",
                    {
                        "salesorderid@odata.bind": f"/salesorders({order})",
                        "productid@odata.bind": f"/products({self.products[(n + j) % SKUS]})",
                        "uomid@odata.bind": f"/uoms({self.refs.base_unit})",
                        "quantity": quantity,
                        "tax": float(PRICE * quantity * Decimal("0.2")),
                        "sequencenumber": j + 1,
                    },
                )
            self.dv.update("salesorders", order, SUBMITTED)
            ids.append(order.lower())
        return ids

    def close(self) -> None:
        self.dv.close()
        self.rig.close()

    # -- the flows, as their from_runtime builds them but on this rig's adapters --------------
    def ports(self) -> dict[str, Any]:
        return {
            "brightpearl": self.rig.bp,
            "dataverse": self.rig.dv,
            "store": self.rig.store,
            "publish": lambda envs: None,
        }

    def to_brightpearl(self) -> OrdersToBrightpearl:
        return OrdersToBrightpearl(mapping=self.mapping, **self.ports())

    def to_dataverse(self) -> OrdersToDataverse:
        return OrdersToDataverse(statuses=self.mapping.statuses, **self.ports())

    # -- looking (in process, not counted) ------------------------------------------------------
    def brightpearl_orders(self, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Brightpearl orders by externalRef (= the Dynamics salesorder id), for the orders named."""
        wanted = set(order_ids)
        found: dict[str, list[dict[str, Any]]] = {}
        with self.bp_state.lock:
            for record in self.bp_state.orders.values():
                if record.get("externalRef") in wanted:
                    found.setdefault(record["externalRef"], []).append(record)
        return found

    def dynamics_column(self, order_ids: list[str], *columns: str) -> dict[str, Any]:
        """Column values of the Dynamics orders named (one column: the value; more: a tuple)."""
        sim, wanted = self.rig.dv_server.simulator, set(order_ids)
        with sim.lock:
            rows = list(sim.engine.db.rows.get("salesorder", {}).values())
        values = {str(r["salesorderid"]).lower(): tuple(r.get(c) for c in columns) for r in rows}
        return {k: v if len(columns) > 1 else v[0] for k, v in values.items() if k in wanted}


def handled(flow: Any, envelopes: list[Envelope], batch: int) -> dict[str, int]:
    """Hand the envelopes to the flow `batch` at a time; outcomes counted by kind and reason."""
    outcomes: Counter[str] = Counter()
    for group in chunked(envelopes, batch):
        outcomes.update(
            " ".join([type(o).__name__, getattr(o, "reason", "")]).strip() for o in flow.handle(group)
        )
    return dict(outcomes)


def order_notices(order_ids: list[str]) -> list[Envelope]:
    """As the Dataverse webhook of each submit sends them: one salesorder id per notice."""
    return [
        envelope
        for order_id in order_ids
        for envelope in notices_in_chunks(
            "dataverse",
            "salesorder",
            [order_id],
            per_notice=1,
            version=uuid.uuid4().hex,
            source="/dataverse/bench",
            origin="webhook",
            observed_at=datetime.now(UTC),
        )
    ]


def brightpearl_notices(id_sets: list[list[str]]) -> list[Envelope]:
    """Brightpearl `order` notices: each id set (one webhook) split into IDS_PER_NOTICE ids a
    notice, as the ingress does (shared/webhooks.py parse_brightpearl_webhook)."""
    return [
        envelope
        for ids in id_sets
        for envelope in notices_in_chunks(
            "brightpearl",
            "order",
            ids,
            per_notice=IDS_PER_NOTICE,
            version=uuid.uuid4().hex,
            source="/brightpearl/bench",
            origin="webhook",
            observed_at=datetime.now(UTC),
        )
    ]


def created_check(shop: Shop, order_ids: list[str], lines: int) -> dict[str, Any]:
    """Exactly one Brightpearl order per Dynamics order, each with every line as a row."""
    found = shop.brightpearl_orders(order_ids)
    rows = [len(orders[0]["orderRows"]) for orders in found.values()]
    written = shop.dynamics_column(order_ids, "bpi_brightpearlid")
    return {
        "dynamics_orders_with_bpi_brightpearlid": sum(1 for v in written.values() if v),
        "dynamics_orders": len(order_ids),
        "brightpearl_orders": sum(len(v) for v in found.values()),
        "dynamics_orders_with_more_than_one": sum(1 for v in found.values() if len(v) > 1),
        "dynamics_orders_missing": len(set(order_ids) - set(found)),
        "orders_with_all_rows": sum(1 for r in rows if r == lines),
    }


def per_order(counted: Counted, orders: int, created: int) -> dict[str, Any]:
    bp, dv = sum(counted.bp.values()), sum(counted.dv.values())
    return {
        "seconds": round(counted.seconds, 1),
        "brightpearl_calls": bp,
        "dataverse_calls": dv,
        "brightpearl_calls_per_order_created": round(bp / max(created, 1), 3),
        "dataverse_calls_per_order": round(dv / max(orders, 1), 3),
        "brightpearl_calls_by_route": counted.bp,
        "dataverse_calls_by_kind": counted.dv,
    }


# ------------------------------------------------------------------------------ 1. atomic vs naive
def naive_orders(shop: Shop, order_ids: list[str]) -> int:
    """The per-row way, from the same translation: per order a GET of the order, a query for its
    lines' ids, a GET per line, a header POST and a row POST per row, and a PATCH of
    bpi_brightpearlid. Customers and products come from the links (no calls). Returns the orders
    created."""
    dv, bp, links = shop.rig.dv, shop.rig.bp, shop.rig.store.links
    line_select = [*SALESORDERDETAIL_COLUMNS, "modifiedon"]
    created = 0
    for order_id in order_ids:
        header = dv.get(
            "salesorders",
            order_id,
            select=[*SALESORDER_COLUMNS, *address_columns()],
            expand="transactioncurrencyid($select=isocurrencycode)",
            annotations=True,
        )
        row = {**header.values, **header.annotations}
        line_ids = [
            r.id
            for r in dv.query(
                "salesorderdetails",
                select=["salesorderdetailid"],
                filter=odata.lookup_eq("salesorderid", order_id),
            )
        ]
        lines = [
            dv.get(
                "salesorderdetails", i, select=line_select, expand="productid($select=productnumber)"
            ).values
            for i in line_ids
        ]
        order = order_from_dataverse(row, lines).value
        customer = links.get("customer", "dataverse", order.customer.id if order.customer else "")
        products = {
            line.sku: int(link.id_in("brightpearl") or 0)
            for line in order.lines
            if line.sku and (link := links.get("product", "dataverse", line.product_id or ""))
        }
        body, problems = sales_order_body(
            order, shop.mapping, customer_id=int(customer.id_in("brightpearl") or 0), product_ids=products
        )
        if body is None:
            raise RuntimeError(f"naive mode: order {order_id} cannot be mapped: {problems}")
        header = {
            "orderTypeCode": "SO",
            "reference": body.get("ref", ""),
            "parties": {"customer": {"contactId": body["customer"]["id"]}},
        }
        new_id = int(bp.request("POST", "/order-service/order", json=header).response)
        for r in body["rows"]:
            bp.request(
                "POST",
                f"/order-service/order/{new_id}/row",
                json={
                    "productId": r.get("productId"),
                    "productName": r.get("name"),
                    "quantity": {"magnitude": str(r["quantity"])},
                    "taxCode": r["taxCode"],
                    "rowNet": {"value": str(r["net"])},
                    "rowTax": {"value": str(r["tax"])},
                },
            )
        with contextlib.suppress(DataverseValidationError):  # as the flow: the link holds the id
            dv.update("salesorders", order_id, {"bpi_brightpearlid": str(new_id)})
        created += 1
    return created


def atomic_section(shop: Shop, orders: int, lines: int, naive: int) -> dict[str, Any]:
    batch = host_batch_size()
    ids = shop.submitted_orders(orders, lines)
    flow = shop.to_brightpearl()
    print(f"  atomic: {orders} orders, {batch} notices a batch", flush=True)
    with Counted(shop.rig) as counted:
        outcomes = handled(flow, order_notices(ids), batch)
    check = created_check(shop, ids, lines)
    out: dict[str, Any] = {
        "mode": "real flow orders-to-brightpearl in this process, real clients, both simulators over "
        "loopback (zero latency, no rate limit); one salesorder id per notice (the Dataverse webhook), "
        f"{batch} notices a batch (host.json maxMessageBatchSize)",
        "orders": orders,
        "lines_per_order": lines,
        "atomic": {**per_order(counted, orders, check["brightpearl_orders"]), "outcomes": outcomes, **check},
    }
    if naive:
        naive_ids = shop.submitted_orders(naive, lines)
        print(f"  naive: {naive} orders", flush=True)
        with Counted(shop.rig) as naive_counted:
            made = naive_orders(shop, naive_ids)
        out["naive"] = {
            "orders": naive,
            "what": "per order: Dataverse GET of the order, a query for its lines' ids, a GET per line; "
            "Brightpearl order header POST and one row POST per row; one PATCH of bpi_brightpearlid",
            **per_order(naive_counted, naive, made),
        }
        a, n = out["atomic"], out["naive"]
        out["ratios_naive_over_atomic"] = {
            key: round(n[key] / max(a[key], 0.001), 1)
            for key in ("brightpearl_calls_per_order_created", "dataverse_calls_per_order")
        }
    out["targets"] = {
        "brightpearl_calls_per_order": target(
            out["atomic"]["brightpearl_calls_per_order_created"], TARGETS["brightpearl_calls_per_order"]
        ),
        "dataverse_calls_per_order": target(
            out["atomic"]["dataverse_calls_per_order"], TARGETS["dataverse_calls_per_order"]
        ),
        "exactly_one_order_each": {
            "figure": f"{check['brightpearl_orders']}/{orders}",
            "target": "one per Dynamics order, every row",
            "pass": check["brightpearl_orders"] == orders == check["orders_with_all_rows"],
        },
    }
    out["_ids"] = ids  # for the status section; dropped before writing
    return out


# ------------------------------------------------------------------------------ 2. rate limited
def rate_limited_section(orders: int, lines: int, window: float, quick: bool) -> dict[str, Any]:
    shop = Shop(realistic=True, rate_window=window)
    try:
        if quick:  # 1,000 sequential 60 ms calls alone would exceed a 30 s bound
            shop.rig.bp_server.simulator.configure(latency_ms=0.0)
            shop.rig.http.patch(
                f"{shop.rig.dv_server.url}/_sandbox/config", json={"latency_ms": 0}
            ).raise_for_status()
        ids = shop.submitted_orders(orders, lines)
        batch = host_batch_size()  # the seeding above sent no Brightpearl request: the window is empty
        print(f"  rate limited: {orders} orders, {RATE_LIMIT} requests / {window:g} s", flush=True)
        with Counted(shop.rig) as counted:
            outcomes = handled(shop.to_brightpearl(), order_notices(ids), batch)
        check = created_check(shop, ids, lines)
        requests = sum(counted.bp.values())
        bound = requests / RATE_LIMIT * window
        ratio = round(counted.seconds / bound, 3) if bound else None
        throttle = shop.rig.bp_server.simulator.throttle
        return {
            "mode": ("quick" if quick else "real limit")
            + f": {RATE_LIMIT} Brightpearl requests per {window:g} s (simulator throttle and client "
            "rate budget)"
            + (", zero latency" if quick else ", 60 ms per Brightpearl call, 40 ms per Dataverse call"),
            "quick": quick,
            "rate_window_seconds": window,
            "orders": orders,
            "seconds": round(counted.seconds, 1),
            "brightpearl_requests": requests,
            "rate_limit_bound_seconds": round(bound, 1),
            "seconds_over_bound": ratio,
            "throttled_responses": throttle.rejected,  # a fresh simulator: all of them this run's
            "busiest_window_requests": throttle.max_in_any_window(),
            **per_order(counted, orders, check["brightpearl_orders"]),
            "outcomes": outcomes,
            **check,
            "targets": {
                "seconds_over_bound": target(ratio, TARGETS["rate_limited_over_bound"]),
                "exactly_one_order_each": {
                    "figure": f"{check['brightpearl_orders']}/{orders}",
                    "target": "one per Dynamics order",
                    "pass": check["brightpearl_orders"] == orders,
                },
            },
        }
    finally:
        shop.close()


# ------------------------------------------------------------------------------ 3. status write-back
def brightpearl_status(shop: Shop, name: str) -> int:
    state = shop.bp_state
    with state.lock:
        for sid, status in state.order_statuses.items():
            if status["name"] == name and status["orderTypeCode"] == "SO":
                return int(sid)
    return int(state.create_order_status({"name": name, "orderTypeCode": "SO"}))


def change_statuses(shop: Shop, bp_ids: list[int], name: str) -> None:
    """A Brightpearl user moves every order to status `name` (no API request: the UI)."""
    sid = brightpearl_status(shop, name)
    for oid in bp_ids:
        shop.bp_state.set_order_status(oid, {"orderStatusId": sid})


def delivered_id_sets(shop: Shop, since: int) -> list[list[str]]:
    """The id sets of the order-status webhooks the simulator sent after log entry `since`."""
    entries = shop.rig.bp_server.simulator.dispatcher.log.snapshot()[since:]
    out = []
    for entry in entries:
        if entry["event"] == STATUS_EVENT and entry.get("attempt") == 1:
            out.append([str(i) for i in parse_id_set(str(entry["ids"]), max_ids=MAX_WEBHOOK_IDS)])
    return out


def writeback(
    shop: Shop, envelopes: list[Envelope], bp_ids: list[int], want: tuple[int, int]
) -> dict[str, Any]:
    dv_ids = [str(o["externalRef"]) for o in shop.bp_state.orders.values() if o["id"] in set(bp_ids)]
    batch = host_batch_size()
    with Counted(shop.rig) as counted:
        outcomes = handled(shop.to_dataverse(), envelopes, batch)
    states = shop.dynamics_column(dv_ids, "statecode", "statuscode")
    dv = sum(counted.dv.values())
    return {
        "status_changes": len(bp_ids),
        "notices": len(envelopes),
        "ids_per_notice_mean": round(len(bp_ids) / max(len(envelopes), 1), 1),
        "notices_per_batch": batch,
        "seconds": round(counted.seconds, 1),
        "dataverse_calls": dv,
        "dataverse_calls_per_1000": round(dv * 1000 / max(len(bp_ids), 1), 1),
        "brightpearl_calls": sum(counted.bp.values()),
        "dataverse_calls_by_kind": counted.dv,
        "brightpearl_calls_by_route": counted.bp,
        "outcomes": outcomes,
        "dynamics_orders_in_wanted_state": sum(1 for s in states.values() if s == want),
    }


def status_section(shop: Shop, dv_ids: list[str]) -> dict[str, Any]:
    found = shop.brightpearl_orders(dv_ids)
    bp_ids = sorted(int(v[0]["id"]) for v in found.values())
    # one webhook per change, in full host batches: the worst case
    print(f"  status write-back: {len(bp_ids)} changes, one id per notice", flush=True)
    change_statuses(shop, bp_ids, "Awaiting Payment")
    one_by_one = writeback(shop, brightpearl_notices([[str(i)] for i in bp_ids]), bp_ids, (0, 1))
    # a burst to a hook with idSetAccepted: the simulator gathers the ids into id sets
    sim = shop.rig.bp_server.simulator
    sim.state.create_webhook(
        {
            "subscribeTo": STATUS_EVENT,
            "httpMethod": "POST",
            "uriTemplate": f"http://127.0.0.1:{free_port()}/webhooks/brightpearl",  # nobody: QoS 0, no retry
            "bodyTemplate": '{"id": "${resource-id}"}',
            "contentType": "application/json",
            "idSetAccepted": True,
        }
    )
    since = len(sim.dispatcher.log.snapshot())
    print(f"  status write-back: {len(bp_ids)} changes, id sets", flush=True)
    change_statuses(shop, bp_ids, "Shipped")
    wait_until(
        lambda: sim.dispatcher.idle() and sum(map(len, delivered_id_sets(shop, since))) >= len(bp_ids),
        60,
        "the status webhooks",
    )
    id_sets = delivered_id_sets(shop, since)
    in_sets = writeback(shop, brightpearl_notices(id_sets), bp_ids, (3, 100001))
    in_sets["webhooks"] = len(id_sets)
    out: dict[str, Any] = {
        "mode": "real flow orders-to-dataverse in this process (section 1's rig, zero latency); "
        f"statuses changed by Brightpearl users; notices in batches of {host_batch_size()}",
        "one_id_per_notice": {
            "brightpearl_status": "Awaiting Payment -> Active / New (PATCH in $batch)",
            **one_by_one,
        },
        "id_sets": {
            "brightpearl_status": "Shipped -> Fulfilled / Complete (FulfillSalesOrder in $batch)",
            "webhook_id_set_window_seconds": sim.config.webhook_batch_seconds,
            **in_sets,
        },
    }
    out["targets"] = {
        "dataverse_calls_per_1000_id_sets": target(
            in_sets["dataverse_calls_per_1000"], TARGETS["status_dataverse_calls_per_1000"]
        ),
        "every_change_written": {
            "figure": f"{in_sets['dynamics_orders_in_wanted_state']}/{len(bp_ids)}, "
            f"{one_by_one['dynamics_orders_in_wanted_state']}/{len(bp_ids)}",
            "target": "all, both shapes",
            "pass": in_sets["dynamics_orders_in_wanted_state"]
            == one_by_one["dynamics_orders_in_wanted_state"]
            == len(bp_ids),
        },
    }
    return out


# ------------------------------------------------------------------------------ 4. submit latency
class SandboxShop:
    """The running sandbox (benchmarks/latency.py's) with an order's prerequisites made the way
    users make them: Dynamics contacts (the customers flow creates and links them in Brightpearl),
    Brightpearl products (their webhooks bring them into Dynamics, linked), and price list items
    for them in the Dynamics price list the orders use."""

    def __init__(self, sb: Sandbox, customers: int, products: int) -> None:
        self.sb = sb
        catalogue_solution.provision_simulator(sb.dv_sim)
        orders_solution.provision_simulator(sb.dv_sim)
        # again, now that salesorder has its integration columns (the Update step filters on them)
        said: list[str] = []
        register_webhooks(sb.values, Endpoints.from_settings(sb.values, sb.host_port), said.append)
        if any("not registered" in line for line in said):
            raise RuntimeError(f"webhook registration failed: {'; '.join(said)}")
        unit = load_product_mapping().unit_group
        # a price list of its own: the host's prices flow keeps Dynamics' lists named like
        # Brightpearl's (Retail GBP ...) to Brightpearl's prices, and these products have none
        self.refs = catalogue_solution.seed_simulator(
            sb.dv_sim,
            unit_group=unit.name,
            base_unit=unit.default_unit,
            price_lists=((SANDBOX_PRICE_LIST, "GBP"),),
        )
        self.price_list = self.refs.price_lists[SANDBOX_PRICE_LIST]
        people = [latency_person("ord") for _ in range(customers)]
        self.contacts = [self.crm("POST", "contacts", crm_contact(p)) for p in people]
        emails = {p["email"] for p in people}
        wait_until(lambda: emails <= sb.bp_emails(), 300, "the customers in Brightpearl")
        bp_ids = Catalogue(sb).create_products(products)
        with sb.dv_sim.lock:
            rows = list(sb.dv_sim.engine.db.rows.get("product", {}).values())
        by_bp = {str(r.get(KEY)): str(r["productid"]) for r in rows}
        self.products = [by_bp[str(i)] for i in bp_ids]
        with in_process_client(sb.dv_sim) as client:
            for product in self.products:
                price_item(client, self.refs, self.price_list, product)
        self.made = 0

    def crm(self, method: str, path: str, body: dict[str, Any]) -> str:
        """A write by a CRM user (its webhooks go to the host); the id of what it made."""
        out = self.sb.http.post(
            f"{self.sb.dv_url}/_sandbox/crm", json={"method": method, "path": path, "body": body}
        ).json()
        if out["status"] >= 300:
            raise RuntimeError(f"the Dataverse simulator refused {method} {path}: {out['body']}")
        entity = (out.get("headers") or {}).get("OData-EntityId", "")
        return entity.rsplit("(", 1)[-1].rstrip(")").lower()

    def draft_order(self, lines: int) -> str:
        """An Active order with its lines, as a CRM user enters it (not submitted yet)."""
        n = self.made = self.made + 1
        order = self.crm(
            "POST",
            "salesorders",
            {
                "name": f"Latency order {n}",
                "customerid_contact@odata.bind": f"/contacts({self.contacts[n % len(self.contacts)]})",
                "pricelevelid@odata.bind": f"/pricelevels({self.price_list})",
            },
        )
        for j in range(lines):
            self.crm(
                "POST",
                "salesorderdetails",
                {
                    "salesorderid@odata.bind": f"/salesorders({order})",
                    "productid@odata.bind": f"/products({self.products[(n + j) % len(self.products)]})",
                    "uomid@odata.bind": f"/uoms({self.refs.base_unit})",
                    "quantity": 1,
                    "tax": float(PRICE * Decimal("0.2")),
                    "sequencenumber": j + 1,
                },
            )
        return order

    def submit(self, order: str) -> None:
        self.crm("PATCH", f"salesorders({order})", SUBMITTED)

    def brightpearl_refs(self) -> set[str]:
        state = self.sb.bp_sim.state
        with state.lock:
            return {str(o.get("externalRef") or "").lower() for o in state.orders.values()}


def latency_section(args: argparse.Namespace) -> dict[str, Any]:
    """Submit -> Brightpearl order through the running sandbox: `--samples` orders of `--lines`
    lines, each entered in Dynamics beforehand and submitted one every `--interval` s (the
    Update webhook -> ingress -> local bus -> orders-to-brightpearl in the host process), timed
    from the submit until the simulator holds a sales order with that externalRef (checked every
    50 ms in this process)."""
    with (
        tempfile.TemporaryDirectory(prefix="orders-") as tmp,
        running_sandbox(Path(tmp), latency_ms=args.latency_ms, batch_wait=None) as sb,
    ):
        print(f"  sandbox up (host log {sb.log_path}); customers and products …", flush=True)
        shop = SandboxShop(sb, customers=3, products=SKUS // 4)
        drafts = [shop.draft_order(args.lines) for _ in range(args.samples + 1)]
        # the drafts' own notices (an order and its lines, not submitted: skipped) are worked off
        # first, so that no sample waits behind them
        bus = LocalBus(sb.values["LOCAL_BUS_PATH"])

        def drained() -> bool:
            counts = bus.counts(DV_TOPIC, TO_BP_SUBSCRIPTION)
            return not counts.active and not counts.scheduled

        wait_until(drained, 300, "the drafts' notices")
        bus.close()
        watch = Watch(shop.brightpearl_refs)
        with watching(watch):
            warm = drafts.pop(0)  # tokens, metadata, the first batch: not latency
            watch.add(warm)
            shop.submit(warm)
            wait_for((watch,), 120)
            if watch.pending():
                raise RuntimeError(f"the warm-up order did not reach Brightpearl in 120 s; see {sb.log_path}")
            watch = Watch(shop.brightpearl_refs)
        with watching(watch):
            began = time.monotonic()
            for n, order in enumerate(drafts):
                time.sleep(max(0.0, began + n * args.interval - time.monotonic()))
                watch.add(order)
                shop.submit(order)
            wait_for((watch,), 120)
        result = figures(watch)
        log = sb.log_path.read_text(errors="replace")
        errors = re.findall(r"^.*(?:Traceback|ERROR).*$", log, re.M)
        dead_letters = Counter(re.findall(r"dead-lettered \[(\w+)\]", log))
        if args.keep_log:
            shutil.copyfile(sb.log_path, args.keep_log)
    p50 = result.get("p50_seconds")
    return {
        "mode": "the running sandbox (benchmarks/latency.py's): Dataverse Update webhook -> ingress -> "
        f"local bus -> orders-to-brightpearl in the Functions host process; {args.latency_ms:g} ms per "
        "simulated API call; Brightpearl's real 200 requests a minute",
        "host_json_service_bus": host_json_batch(None),
        "lines_per_order": args.lines,
        "seconds_between_samples": args.interval,
        **result,
        "host_log_error_lines": len(errors),
        "host_log_dead_letters_by_reason": dict(dead_letters),
        "targets": {
            "p50_seconds": target(p50, TARGETS["latency_p50_seconds"], strict=True),
            "all_arrived": {
                "figure": f"{result['arrived']}/{result['samples']}",
                "target": "all",
                "pass": result["arrived"] == result["samples"],
            },
        },
    }


# ------------------------------------------------------------------------------ main
def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "orders (benchmarks/orders.py, issue 13)",
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    print(f"[atomic] {args.orders} orders x {args.lines} lines (+ {args.naive} naive)", flush=True)
    shop = Shop()
    try:
        results["atomic_vs_naive"] = section = atomic_section(shop, args.orders, args.lines, args.naive)
        ids = section.pop("_ids")
        write(args.out, results)
        if not args.skip_status:
            print(f"[status] {args.orders} status changes each way", flush=True)
            results["status_writeback"] = status_section(shop, ids)
            write(args.out, results)
    finally:
        shop.close()
    if not args.skip_rate_limited:
        window = QUICK_WINDOW if args.quick else args.rate_window
        print(f"[rate limited] {args.orders} orders, {RATE_LIMIT} requests per {window:g} s", flush=True)
        results["rate_limited"] = rate_limited_section(args.orders, args.lines, window, args.quick)
        write(args.out, results)
    if not args.skip_latency:
        print(f"[submit latency] {args.samples} orders through the sandbox", flush=True)
        results["submit_latency"] = latency_section(args)
        write(args.out, results)
    results["targets"] = {
        f"{section}.{name}": t["pass"]
        for section in ("atomic_vs_naive", "rate_limited", "status_writeback", "submit_latency")
        for name, t in (results.get(section) or {}).get("targets", {}).items()
    }
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    write(args.out, results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000, help="Dynamics orders (default 1000)")
    parser.add_argument("--lines", type=int, default=5, help="lines per order (default 5)")
    parser.add_argument("--naive", type=int, default=100, help="orders created the per-row way (0: none)")
    parser.add_argument(
        "--rate-window", type=float, default=60.0, help="seconds per 200 Brightpearl requests (real: 60)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"the rate-limited run scaled: 200 per {QUICK_WINDOW:g} s, no latency",
    )
    parser.add_argument("--skip-rate-limited", action="store_true")
    parser.add_argument("--skip-status", action="store_true")
    parser.add_argument("--skip-latency", action="store_true", help="no sandbox latency section")
    parser.add_argument("--samples", type=int, default=30, help="orders submitted in the latency section")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between latency samples")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every simulated API call")
    parser.add_argument("--keep-log", type=Path, help="copy the sandbox host's log here at the end")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "orders.json")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.lines < 1 or args.naive < 0 or args.rate_window <= 0:
        parser.error("--orders and --lines must be at least 1, --naive not negative, --rate-window positive")
    results = run(args)
    print(json.dumps(results, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
