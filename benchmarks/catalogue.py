"""Catalogue and stock (issue 12): backfill cost, a stock storm, stock latency; one JSON.

Three sections, each with its targets beside the figures and pass/fail per target:

1. **backfill** (in this process): a Brightpearl catalogue of `--products` products priced in
   `--lists` SELL price lists (sandbox/brightpearl/catalogue_seed.py) is backfilled into a bare
   Dynamics (sandbox/catalogue_solution.py: unit group, GBP and EUR) by the real flows,
   `products-to-dataverse` then `prices-to-dataverse`, with the real clients against both
   simulators over loopback (zero latency, no rate limit; links, ledger and audit in memory).
   The backfill lists the products (`product-search`, counted) and publishes notices of 100
   ids; the flows get them in batches of host.json's `maxMessageBatchSize` notices, the
   products flow first (the prices flow retries a product Dynamics does not have yet; in the
   Functions host both subscriptions take the same notices at once). Calls are what the
   simulators answered (retries included). The **naive** mode does the same work for
   `--naive` further products record by record (one product GET, one price GET, one Dataverse
   write per product and one per price item) through the same clients in the same run.
2. **stock_storm** (the running sandbox, as benchmarks/latency.py starts it: Azurite, both
   simulators in this process with 50 ms per API call, the local bus, the local Functions host
   as its own process with the tree's settings and pollers, webhooks registered):
   `--storm-products` products created in Brightpearl (their product.created webhooks bring
   them into Dynamics), then `--events` stock corrections spread evenly over `--storm-seconds`,
   each raising `product.modified.on-hand-modified`. The simulator's id-set window is
   `--webhook-window`, default 0: one webhook per event while its dispatcher keeps up (each
   event matches two registered hooks, product.modified and its on-hand sub-event; the bus's
   duplicate detection drops the second notice). Counted from the first event until every
   figure is exact and the stock subscription is empty: Brightpearl requests (everything the
   simulator admitted, pollers included), Dataverse writes (every non-GET request), and every
   product's `bpi_availablestock` compared with the simulator's availability (the mapping's
   default figure: `onHand` over all warehouses). **stock_storm_id_sets** repeats it with
   Brightpearl gathering one event's ids raised within `--id-set-window` s into one webhook
   (idSetAccepted; 0.05 s, the simulator's default).
3. **stock_latency** (the same sandbox, afterwards): `--samples` single stock corrections, one
   every `--interval` seconds on different products, each timed from the correction until
   Dynamics holds the new figure (checked every 50 ms in this process). `--batch-wait` overrides
   host.json's maxBatchWaitTime, as in benchmarks/latency.py.

Usage: .venv/bin/python -m benchmarks.catalogue [--products 10000] [--lists 3] [--naive 200]
       [--events 5000] [--storm-products 200] [--storm-seconds 60] [--webhook-window 0]
       [--id-set-window 0.05] [--samples 100] [--interval 2] [--latency-ms 50] [--batch-wait S]
       [--skip-backfill | --skip-sandbox] [--out benchmarks/results/catalogue.json]

About eight minutes with the defaults on 2 cores (the backfill half a minute). Writes
benchmarks/results/catalogue.json (after each section, so an interrupted run keeps what it
measured).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.customers import Rig, _delta  # noqa: E402
from benchmarks.latency import Sandbox, _percentile, host_json_batch, running_sandbox  # noqa: E402
from sandbox import catalogue_solution  # noqa: E402
from sandbox.brightpearl.catalogue_seed import seed_catalogue  # noqa: E402
from sandbox.catalogue_solution import CatalogueRefs  # noqa: E402
from shared.bus.local import LocalBus  # noqa: E402
from shared.dataverse import odata  # noqa: E402
from shared.events import Envelope  # noqa: E402
from shared.flows.prices_to_dataverse import CURRENCY_AMOUNT, QUANTITY_BREAK, PricesToDataverse  # noqa: E402
from shared.flows.products_spec import PRODUCTS  # noqa: E402
from shared.flows.products_to_dataverse import ProductsToDataverse  # noqa: E402
from shared.flows.stock_spec import STOCK_EVENT  # noqa: E402
from shared.flows.stock_to_dataverse import AVAILABLE, KEY  # noqa: E402
from shared.mapping.prices import PriceListEntry, PriceSettings  # noqa: E402
from shared.mapping.products_config import load_product_mapping  # noqa: E402
from shared.sync.backfill import Backfill  # noqa: E402
from shared.sync.fakes import MemoryStateStore  # noqa: E402
from shared.sync.outcomes import chunked  # noqa: E402

SELL_LISTS = ("Retail GBP", "Trade GBP", "Retail EUR")  # the simulator's SELL lists (ids 2, 3, 4)
BP_TOPIC = "brightpearl-changes"
STOCK_SUBSCRIPTION = "stock-to-dataverse"
WAREHOUSE = 2  # the simulator's main warehouse
TARGETS = {
    "combined_calls_per_1000_products": 40,
    "storm_dataverse_writes_share_of_events": 0.02,
    "storm_brightpearl_calls_share_of_events": 0.03,
    "latency_p50_seconds": 1.0,
    "latency_p95_seconds": 3.0,
}
CHECK_EVERY = 0.05


def target(figure: float | None, limit: float, *, strict: bool = False) -> dict[str, Any]:
    """A figure beside its target (at most `limit`, or below it when `strict`), and whether it meets it."""
    met = figure is not None and (figure < limit if strict else figure <= limit)
    return {"figure": figure, "target": f"{'<' if strict else '<='} {limit:g}", "pass": met}


def host_batch_size() -> int:
    return int(
        json.loads((ROOT / "host.json").read_text())["extensions"]["serviceBus"]["maxMessageBatchSize"]
    )


# ------------------------------------------------------------------------------ 1. backfill
def backfill_rig() -> tuple[Rig, CatalogueRefs]:
    """benchmarks/customers.py's rig (both simulators at zero latency, no rate limit, the real
    clients, state in memory) with the catalogue provisioned: the shipped mapping's unit group,
    GBP and EUR; the flows create the price lists."""
    rig = Rig(None, realistic=False)
    catalogue_solution.provision_simulator(rig.dv_server.simulator)
    mapping = load_product_mapping()
    refs = catalogue_solution.seed_simulator(
        rig.dv_server.simulator,
        unit_group=mapping.unit_group.name,
        base_unit=mapping.unit_group.default_unit,
        price_lists=(),
    )
    return rig, refs


class Counted:
    """Calls both simulators answered between `start()` and `stop()`, by route / kind."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.bp: dict[str, int] = {}
        self.dv: dict[str, int] = {}
        self.seconds = 0.0

    def __enter__(self) -> Counted:
        self._bp0, self._dv0 = self.rig.calls()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        bp1, dv1 = self.rig.calls()
        self.bp, self.dv = _delta(bp1, self._bp0), _delta(dv1, self._dv0)

    def figures(self, products: int) -> dict[str, Any]:
        bp, dv = sum(self.bp.values()), sum(self.dv.values())
        return {
            "seconds": round(self.seconds, 1),
            "brightpearl_calls": bp,
            "dataverse_calls": dv,
            "combined_calls": bp + dv,
            "combined_calls_per_1000_products": round((bp + dv) * 1000 / products, 1),
            "brightpearl_calls_by_route": self.bp,
            "dataverse_calls_by_kind": self.dv,
        }


def run_flow(flow: Any, envelopes: list[Envelope], batch: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for group in chunked(envelopes, batch):
        for outcome in flow.handle(list(group)):
            outcomes[type(outcome).__name__] = outcomes.get(type(outcome).__name__, 0) + 1
    return outcomes


def dynamics_lists(rig: Rig, lists: tuple[str, ...]) -> dict[int, str]:
    """Brightpearl price list id -> the Dynamics price list the batched run created (setup)."""
    state = rig.bp_server.simulator.state
    bp_lists = {p["name"]["text"]: i for i, p in state.price_lists.items()}
    rows = rig.dv.query("pricelevels", select=["pricelevelid", "name"], filter=odata.in_("name", list(lists)))
    levels = {r["name"]: r["pricelevelid"] for r in rows}
    return {bp_lists[n]: levels[n] for n in lists}


def naive_backfill(rig: Rig, refs: CatalogueRefs, ids: list[int], by_id: dict[int, str]) -> dict[str, int]:
    """The same work record by record: per product one product GET, one price GET, one
    Dataverse product write, and one Dataverse write per price item."""
    list_set = ",".join(map(str, by_id))
    written = {"products": 0, "price_items": 0}
    unit = f"/uoms({refs.base_unit})"
    for pid in ids:
        product = rig.bp.request("GET", f"/product-service/product/{pid}").response[0]
        prices = rig.bp.request("GET", f"/product-service/product-price/{pid}/price-list/{list_set}").response
        productid = rig.dv.create(
            "products",
            {
                "productnumber": product["identity"]["sku"],
                "name": product["salesChannels"][0]["productName"],
                KEY: str(pid),
                "producttypecode": 1,
                "quantitydecimal": 0,
                "defaultuomscheduleid@odata.bind": f"/uomschedules({refs.unit_group})",
                "defaultuomid@odata.bind": unit,
            },
        )
        written["products"] += 1
        for entry in prices[0]["priceLists"] if prices else []:
            amount = (entry.get("quantityPrice") or {}).get(QUANTITY_BREAK)
            if amount is None or entry["priceListId"] not in by_id:
                continue
            rig.dv.create(
                "productpricelevels",
                {
                    "pricelevelid@odata.bind": f"/pricelevels({by_id[entry['priceListId']]})",
                    "productid@odata.bind": f"/products({productid})",
                    "uomid@odata.bind": unit,
                    "amount": float(amount),
                    "pricingmethodcode": CURRENCY_AMOUNT,
                },
            )
            written["price_items"] += 1
    return written


def backfill_once(rig: Rig, flows: tuple[Any, Any], store: MemoryStateStore, products: int) -> dict[str, Any]:
    """One backfill: list the products (notices of 100 ids), then hand the notices to the
    products flow and then to the prices flow in host-sized batches."""
    envelopes: list[Envelope] = []
    listing = Backfill(
        PRODUCTS,
        "brightpearl",
        client=rig.bp,
        cursors=store.cursors,
        publish=envelopes.extend,
        clock=lambda: datetime.now(UTC),
        source_name="/brightpearl/bench",
    )
    batch = host_batch_size()
    with Counted(rig) as listed:
        listing.run()
    counted: dict[str, Counted] = {"listing": listed}
    out: dict[str, Any] = {"notices": len(envelopes), "notices_per_batch": batch}
    for name, flow in zip(("products_flow", "prices_flow"), flows, strict=True):
        print(f"  {name}: {len(envelopes)} notices, {batch} a batch", flush=True)
        with Counted(rig) as counted[name]:
            outcomes = run_flow(flow, envelopes, batch)
        out[name] = {**counted[name].figures(products), "outcomes": outcomes}
    out["listing"] = listed.figures(products)
    total = sum(c.figures(products)["combined_calls"] for c in counted.values())
    out["combined_calls"] = total
    out["combined_calls_per_1000_products"] = round(total * 1000 / products, 1)
    out["seconds"] = round(sum(c.seconds for c in counted.values()), 1)
    db = rig.dv_server.simulator.engine.db.rows
    out["after"] = {
        "dynamics_products": len(db.get("product", {})),
        "dynamics_price_items": len(db.get("productpricelevel", {})),
    }
    return out


def backfill_section(products: int, lists: int, naive: int) -> dict[str, Any]:
    exported = SELL_LISTS[:lists]
    rig, refs = backfill_rig()
    try:
        state = rig.bp_server.simulator.state
        seed_catalogue(state, products=products, archived=0, services=0)
        store = rig.store
        ports: dict[str, Any] = {
            "brightpearl": rig.bp,
            "dataverse": rig.dv,
            "store": store,
            "publish": lambda envs: None,
        }
        flows = (
            ProductsToDataverse(mapping=load_product_mapping(), **ports),
            PricesToDataverse(
                settings=PriceSettings(lists={n: PriceListEntry(export=True) for n in exported}), **ports
            ),
        )
        first = backfill_once(rig, flows, store, products)
        print(f"  again, nothing changed ({first['seconds']:.0f} s the first time)", flush=True)
        again = backfill_once(rig, flows, store, products)
        out: dict[str, Any] = {
            "mode": "real flows in this process, real clients, both simulators over loopback (zero "
            "latency); links, ledger and audit in memory",
            "products": products,
            "price_lists": list(exported),
            "first_run": first,
            "second_run_nothing_changed": again,
        }
        if naive:
            print(f"  naive: {naive} products", flush=True)
            # more of the same catalogue, seeded after the backfills (a seed has at least 40)
            naive_ids = seed_catalogue(state, products=max(naive, 40), archived=0, services=0).products[
                :naive
            ]
            by_id = dynamics_lists(rig, exported)
            with Counted(rig) as naive_calls:
                written = naive_backfill(rig, refs, naive_ids, by_id)
            naive_figures = naive_calls.figures(naive)
            out["naive"] = {
                "products": naive,
                "what": "per product: one product GET, one price GET, one Dataverse product write, "
                "one Dataverse write per price item",
                "written": written,
                **naive_figures,
            }
            out["ratio_naive_over_batched_calls_per_1000"] = round(
                naive_figures["combined_calls_per_1000_products"] / first["combined_calls_per_1000_products"],
                1,
            )
        out["targets"] = {
            "combined_calls_per_1000_products": target(
                first["combined_calls_per_1000_products"], TARGETS["combined_calls_per_1000_products"]
            )
        }
        return out
    finally:
        rig.close()


# ------------------------------------------------------------------------------ 2. and 3. the sandbox
class Catalogue:
    """The running sandbox seen from the catalogue: products and stock on both sides, in process."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.state = sb.bp_sim.state
        self.bus = LocalBus(sb.values["LOCAL_BUS_PATH"])

    def create_products(self, count: int, timeout: float = 300.0) -> list[int]:
        """Products entered in Brightpearl (product.created webhooks); waits until Dynamics has them."""
        tag = uuid.uuid4().hex[:6].upper()
        ids = [
            self.state.create_product(
                {
                    "brandId": 1,
                    "identity": {"sku": f"STORM-{tag}-{n:04d}"},
                    "salesChannels": [
                        {"salesChannelName": "Brightpearl", "productName": f"Storm Mug {tag} {n}"}
                    ],
                    "stock": {"stockTracked": True},
                }
            )
            for n in range(count)
        ]
        wait_until(lambda: set(map(str, ids)) <= set(self.dynamics_stock()), timeout, "products in Dynamics")
        return ids

    def dynamics_stock(self) -> dict[str, float | None]:
        """bpi_availablestock of every Dynamics product, by Brightpearl id (read in this process)."""
        with self.sb.dv_sim.lock:
            rows = list(self.sb.dv_sim.engine.db.rows.get("product", {}).values())
        return {
            str(r[KEY]): None if r.get(AVAILABLE) is None else float(r[AVAILABLE]) for r in rows if r.get(KEY)
        }

    def on_hand(self, pid: int) -> float:
        """The figure the mapping's defaults ask for: onHand summed over every warehouse."""
        with self.state.lock:
            return float((self.state.availability(pid) or {}).get("total", {}).get("onHand", 0))

    def wrong(self, ids: list[int]) -> list[int]:
        held = self.dynamics_stock()
        return [p for p in ids if held.get(str(p)) != self.on_hand(p)]

    def settled(self) -> bool:
        if not self.sb.bp_sim.dispatcher.idle():
            return False
        counts = self.bus.counts(BP_TOPIC, STOCK_SUBSCRIPTION)
        return not counts.active and not counts.scheduled

    def dv_writes(self) -> int:
        calls = self.sb.http.get(f"{self.sb.dv_url}/_sandbox/counters").json()["calls"]
        return sum(int(v) for k, v in calls.items() if not str(k).startswith("GET"))

    def stock_deliveries(self, since: int) -> list[dict[str, Any]]:
        log = self.sb.bp_sim.dispatcher.log.snapshot()[since:]
        return [e for e in log if e["event"] == STOCK_EVENT and e.get("outcome") == "delivered"]


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def storm_plan(ids: list[int], events: int, seed: int = 1) -> list[tuple[int, int]]:
    """`events` (product, delta) corrections of 1..5 units, none taking a product below zero."""
    rng = random.Random(seed)
    level = dict.fromkeys(ids, 0)
    plan = []
    for _ in range(events):
        pid, delta = rng.choice(ids), rng.randint(1, 5)
        delta = -delta if level[pid] >= delta and rng.random() < 0.5 else delta
        level[pid] += delta
        plan.append((pid, delta))
    return plan


def storm(cat: Catalogue, ids: list[int], events: int, seconds: float, timeout: float) -> dict[str, Any]:
    plan = storm_plan(ids, events)
    log0 = len(cat.sb.bp_sim.dispatcher.log.snapshot())
    bp0, dv0 = cat.sb.bp_by_endpoint(), cat.dv_writes()
    began = time.monotonic()
    for n, (pid, delta) in enumerate(plan):  # evenly over `seconds`, as warehouse users make them
        time.sleep(max(0.0, began + n * seconds / events - time.monotonic()))
        cat.state.adjust_stock(pid, WAREHOUSE, delta)
    raised = time.monotonic() - began
    waited = wait_until(lambda: cat.settled() and not cat.wrong(ids), timeout, "the storm's figures exact")
    bp = _delta(cat.sb.bp_by_endpoint(), bp0)
    bp_calls, dv_writes = sum(bp.values()), cat.dv_writes() - dv0
    wrong = cat.wrong(ids)
    deliveries = cat.stock_deliveries(log0)
    ids_delivered = sum(len(str(d["ids"]).split(",")) for d in deliveries)
    return {
        "events": events,
        "products": len(ids),
        "seconds_raising_events": round(raised, 1),
        "seconds_after_last_event_until_exact_and_drained": round(waited, 1),
        "webhook_deliveries": len(deliveries),
        "ids_per_delivery_mean": round(ids_delivered / max(len(deliveries), 1), 2),
        "brightpearl_requests": bp_calls,
        "brightpearl_requests_by_endpoint": bp,
        "dataverse_writes": dv_writes,
        "products_exact": len(ids) - len(wrong),
        "products_wrong": wrong,
        "targets": {
            "dataverse_writes_share_of_events": target(
                round(dv_writes / events, 4), TARGETS["storm_dataverse_writes_share_of_events"]
            ),
            "brightpearl_calls_share_of_events": target(
                round(bp_calls / events, 4), TARGETS["storm_brightpearl_calls_share_of_events"]
            ),
            "final_values_exact": {
                "figure": f"{len(ids) - len(wrong)}/{len(ids)}",
                "target": "all",
                "pass": not wrong,
            },
        },
    }


def latency(cat: Catalogue, ids: list[int], samples: int, interval: float, drain: float) -> dict[str, Any]:
    """Single stock corrections, one every `interval` s on other products, timed until Dynamics has them."""
    pending: dict[int, tuple[float, float]] = {}  # product -> (expected figure, when corrected)
    seen: list[float] = []
    lock, stop = threading.Lock(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with lock:
                waiting = dict(pending)
            if waiting:
                held, now = cat.dynamics_stock(), time.monotonic()
                with lock:
                    for pid, (expected, t0) in waiting.items():
                        if held.get(str(pid)) == expected:
                            seen.append(now - t0)
                            del pending[pid]
            stop.wait(CHECK_EVERY)

    thread = threading.Thread(target=watch, name="stock-latency-watch", daemon=True)
    thread.start()
    began = time.monotonic()
    try:
        for n in range(samples):
            time.sleep(max(0.0, began + n * interval - time.monotonic()))
            pid = ids[n % len(ids)]
            with cat.state.lock:  # the correction and the figure it leads to, together
                cat.state.adjust_stock(pid, WAREHOUSE, 1 + n % 3)
                expected = cat.on_hand(pid)
                t0 = time.monotonic()
            with lock:
                pending[pid] = (expected, t0)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            with lock:
                if not pending:
                    break
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=10)
    values = sorted(seen)
    p50 = round(statistics.median(values), 2) if values else None
    p95 = round(_percentile(values, 95), 2) if values else None
    return {
        "samples": samples,
        "arrived": len(values),
        "seconds_between_samples": interval,
        "p50_seconds": p50,
        "p95_seconds": p95,
        "max_seconds": round(values[-1], 2) if values else None,
        "mean_seconds": round(statistics.fmean(values), 2) if values else None,
        "targets": {
            "p50_seconds": target(p50, TARGETS["latency_p50_seconds"], strict=True),
            "p95_seconds": target(p95, TARGETS["latency_p95_seconds"], strict=True),
            "all_arrived": {
                "figure": f"{len(values)}/{samples}",
                "target": "all",
                "pass": len(values) == samples,
            },
        },
    }


def sandbox_sections(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="catalogue-") as tmp,
        running_sandbox(Path(tmp), latency_ms=args.latency_ms, batch_wait=args.batch_wait) as sb,
    ):
        catalogue_solution.provision_simulator(sb.dv_sim)  # the catalogue's columns and keys on product
        sb.bp_sim.configure(webhook_batch_seconds=args.webhook_window)
        cat = Catalogue(sb)
        print(f"[sandbox] up (host log {sb.log_path}); {args.storm_products} products …", flush=True)
        started = time.monotonic()
        ids = cat.create_products(args.storm_products)
        took = time.monotonic() - started
        print(
            f"[stock storm] {args.events} events over {args.storm_seconds:g} s ({took:.0f} s to create)",
            flush=True,
        )
        out["stock_storm"] = {
            "mode": "the running sandbox (benchmarks/latency.py's): webhooks -> ingress -> local bus -> "
            "stock flow in the Functions host process; simulators with "
            f"{args.latency_ms:g} ms per API call",
            "webhook_id_set_window_seconds": args.webhook_window,
            **storm(cat, ids, args.events, args.storm_seconds, timeout=600),
        }
        print(json.dumps(out["stock_storm"]["targets"]), flush=True)
        if args.id_set_window:
            print(
                f"[stock storm, id sets] the same with a {args.id_set_window:g} s id-set window", flush=True
            )
            sb.bp_sim.configure(webhook_batch_seconds=args.id_set_window)
            out["stock_storm_id_sets"] = {
                "mode": "as stock_storm, but Brightpearl gathers the ids of one event raised within "
                f"{args.id_set_window:g} s into one webhook (idSetAccepted, the simulator's default window)",
                "webhook_id_set_window_seconds": args.id_set_window,
                **storm(cat, ids, args.events, args.storm_seconds, timeout=600),
            }
            print(json.dumps(out["stock_storm_id_sets"]["targets"]), flush=True)
            sb.bp_sim.configure(webhook_batch_seconds=args.webhook_window)
        print(f"[stock latency] {args.samples} corrections, one every {args.interval:g} s", flush=True)
        out["stock_latency"] = {
            "mode": f"the same sandbox, {args.latency_ms:g} ms per simulated API call; arrival checked every "
            f"{CHECK_EVERY * 1000:.0f} ms",
            "host_json_service_bus": host_json_batch(args.batch_wait),
            **latency(cat, ids, args.samples, args.interval, drain=90),
        }
        errors = re.findall(r"^.*(?:Traceback|ERROR).*$", sb.log_path.read_text(errors="replace"), re.M)
        out["host_log_error_lines"] = len(errors)
        cat.bus.close()
    return out


# ------------------------------------------------------------------------------ main
OPTIONS: tuple[tuple[str, type, float | None, str], ...] = (
    ("--products", int, 10_000, "products in the backfill"),
    ("--lists", int, 3, "SELL price lists exported, 1 to 3"),
    ("--naive", int, 200, "products backfilled record by record"),
    ("--events", int, 5_000, "stock webhooks in the storm"),
    ("--storm-products", int, 200, "products the storm spreads over"),
    ("--storm-seconds", float, 60.0, "the storm's duration"),
    ("--webhook-window", float, 0.0, "the simulator's id-set window in the storm, seconds"),
    ("--id-set-window", float, 0.05, "then a storm with this id-set window (0: none)"),
    ("--samples", int, 100, "single stock corrections timed"),
    ("--interval", float, 2.0, "seconds between latency samples"),
    ("--latency-ms", float, 50.0, "added to every simulated API call"),
    ("--batch-wait", float, None, "override host.json's maxBatchWaitTime, seconds"),
)


def write(out: Path, results: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, kind, default, text in OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")
    parser.add_argument("--skip-backfill", action="store_true", help="only the sandbox sections")
    parser.add_argument("--skip-sandbox", action="store_true", help="only the backfill section")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "catalogue.json")
    args = parser.parse_args(argv)
    if not 1 <= args.lists <= len(SELL_LISTS):
        parser.error(f"--lists must be 1 to {len(SELL_LISTS)}")
    if args.products < 40 or args.events < 1 or args.samples < 1 or args.storm_products < 1:
        parser.error(
            "--products must be at least 40 (a catalogue seed), --events, --samples and "
            "--storm-products at least 1"
        )
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "catalogue and stock (benchmarks/catalogue.py, issue 12)",
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": vars(args) | {"out": str(args.out)},
    }
    if not args.skip_backfill:
        print(f"[backfill] {args.products} products x {args.lists} price lists", flush=True)
        results["backfill"] = backfill_section(args.products, args.lists, args.naive)
        write(args.out, results)
    if not args.skip_sandbox:
        results.update(sandbox_sections(args))
        write(args.out, results)
    results["targets"] = {
        f"{section}.{name}": t["pass"]
        for section in ("backfill", "stock_storm", "stock_storm_id_sets", "stock_latency")
        for name, t in (results.get(section) or {}).get("targets", {}).items()
    }
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    write(args.out, results)
    print(json.dumps(results, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
