"""Order history (issue 14): a backfill of Brightpearl's sales orders with their credits and
payments into Dynamics, through every flow that consumes them; calls per 1,000 orders on each
side, records per second under Brightpearl's real limit, and peak memory. One JSON with each
target and pass/fail.

What runs (the real flows, clients and pollers; both simulators over loopback):

- **Brightpearl** (seeded in the simulator, not counted): `--orders` sales orders (default 20,000)
  of `--lines` rows each (default 5) for `--orders`/10 customers, a tenth of them in EUR, on 50
  products of which 5 have no Dynamics product (their rows become write-in lines); 80 % of the
  orders invoiced; `--credits` sales credits (default 2,000, parentId an invoiced order, one
  row each) and `--payments` customer payments (default 15,000: receipts on invoiced orders,
  full or in part, and a refund (PAYMENT) for half of the credits, capped by the total).
- **Dynamics** (seeded, not counted): the shared schema plan provisioned (orders, invoices,
  cases, customer value columns), the catalogue's currencies and price lists, a contact per
  customer (linked to its Brightpearl contact in the state store, as the customers flow leaves
  them) and the 45 products with price list items.
- **The backfill** (counted), in two phases, each published as the real code publishes it:
  1. orders: `syncctl backfill orders --from brightpearl` (shared/sync/backfill.py with the
     orders spec's lister: order-search by orderId, 500 a page, 100 ids a notice);
  2. credits: `syncctl backfill returns` (the returns spec's lister: order-search of sales
     credits), or, in a tree without it, the sales-credit poller from the beginning of time.
  The payments come with their orders: the invoices flow reads each invoiced order's customer
  payments, so its invoice arrives Paid or Partial (checked: `invoices_paid_by_the_backfill`).
- **Payments again** (counted apart, not in the backfill's calls): then the customer-payment
  poller (shared/flows/invoices_poller.py) from the beginning of time, as `syncctl backfill
  invoices` would: an `order` notice for every order with a payment, to every order consumer.
  Dynamics must hold the same afterwards (`payments_again_change_nothing`); its cost is per
  1,000 payments.
  Every notice goes, in host batches of host.json's `maxMessageBatchSize`, to each registered
  flow whose spec consumes its entity (shared/sync/registry.py: orders-to-dataverse (order
  history), invoices-to-dataverse, returns-to-dataverse, customer-value-to-dataverse,
  timeline-to-dataverse, fulfilment-to-brightpearl), built by their own `from_runtime()` on this
  run's adapters (the shipped mappings/*.yaml). orders-to-dataverse handles a batch first (it
  creates the Dynamics orders the others link to), the rest after it, as their subscriptions
  would in any order. A RetryLater outcome is redelivered (attempt + 1) to its flow when the
  bus would: after the delay of the app's retry policy (shared/resilience.py BackoffPolicy from
  RETRY_*, a server-given delay honoured), waited for in real time; at RETRY_MAX_ATTEMPTS it
  counts as dead-lettered (RetriesExhausted). The retries' calls and waits count. Then the
  customer value flush (shared/flows/customer_value_flush.py) writes the customers' figures.
- **Counted**: every request each simulator answered during the backfill (Brightpearl by route,
  Dataverse by kind), retries and throttled answers included; per flow too (each flow's
  batch is measured on its own). Target: Brightpearl + Dataverse <= 60 per 1,000 orders.
- **Limits** (the real ones): Brightpearl's 200 requests per `--rate-window` seconds (60: the
  real limit) in the simulator's throttle and in the client's rate budget, 60 ms per Brightpearl
  call as benchmarks/customers.py's realistic profile; Dataverse's service protection as its
  simulator enforces it (6,000 requests per 300 s per user, reference dataverse-api.md §8: a 429
  with Retry-After, which the client waits out), zero latency otherwise. records/s = orders /
  the wall time of the whole backfill; each system's bound (Brightpearl requests / 200 x window,
  Dataverse requests / 6,000 x 300 s) is reported beside it: the larger one is what a real run
  cannot beat. `--quick` scales the Brightpearl window to 6 s (and the size to 1,000 orders,
  100 credits, 750 payments unless given), so its records/s is NOT a real-limit figure (the
  JSON says so).
- **Memory**: the simulators run in a child process (forked before any thread starts), and so
  does the state store, which in Azure is Table Storage, not the host's memory: by default the
  tests' in-memory store in a process of its own (benchmarks/store_process.py; the flows call it
  through a pipe); `--state azurite` uses Table Storage in Azurite (real, but it slows down past
  some 100,000 rows: fine for small runs), `--state memory` keeps it in this process (its links
  and claims, about 2.5 KB each as Python objects, then count too). Audit rows are counted, not
  kept (written only to Azurite). So the peak resident set of this process
  (`resource.getrusage` ru_maxrss) is the integration's: the flows (built afresh for every batch,
  as the host's FreshFlow does), the clients and the notices. Target <= 300 MB.

Usage: .venv/bin/python -m benchmarks.history [--orders 20000] [--lines 5] [--credits 2000]
       [--payments 15000] [--rate-window 60] [--quick] [--state process|azurite|memory]
       [--out benchmarks/results/history.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import platform
import random
import resource
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.catalogue import write  # noqa: E402
from benchmarks.store_process import RemoteStateStore, StoreProcess  # noqa: E402
from sandbox.azurite import AzuriteTable  # noqa: E402
from shared import runtime  # noqa: E402
from shared.brightpearl.client import BrightpearlClient  # noqa: E402
from shared.brightpearl.ratebudget import RateBudget  # noqa: E402
from shared.brightpearl.settings import BrightpearlSettings  # noqa: E402
from shared.dataverse.client import DataverseClient  # noqa: E402
from shared.dataverse.credentials import SandboxCredential  # noqa: E402
from shared.events import Envelope  # noqa: E402
from shared.outcomes import DeadLetter, RetryLater  # noqa: E402
from shared.resilience import BackoffPolicy  # noqa: E402
from shared.settings import load_settings  # noqa: E402
from shared.store.state import StateStore  # noqa: E402
from shared.sync import registry  # noqa: E402
from shared.sync.backfill import Backfill  # noqa: E402
from shared.sync.fakes import MemoryStateStore  # noqa: E402
from shared.sync.outcomes import chunked  # noqa: E402
from shared.sync.spec import EntitySpec, FlowSpec, load  # noqa: E402

TARGETS = {"calls_per_1000_orders": 60.0, "peak_memory_mb": 300.0}
RATE_LIMIT = 200
DATAVERSE_LIMIT, DATAVERSE_WINDOW = 6_000, 300.0  # service protection per user (the simulator's default)
QUICK_WINDOW = 6.0
QUICK_SIZE = {"orders": 1_000, "credits": 100, "payments": 750}
FULL_SIZE = {"orders": 20_000, "credits": 2_000, "payments": 15_000}
PRODUCTS, WRITE_IN_PRODUCTS = 50, 5  # the last 5 SKUs have no Dynamics product
EUR_SHARE, INVOICED_SHARE = 0.1, 0.8
PAYMENT_POLL_EVERY = 5.0  # seconds between payment poller rounds the rate budget skipped
FIRST_FLOW = "orders-to-dataverse"  # creates the Dynamics orders the other flows link to
BACKFILL_ENTITIES = ("order", "sales-credit")
SIM_CLIENT_ID = "sandbox-app"
STATE_WHERE = {
    "process": "in memory in a process of its own (benchmarks/store_process.py)",
    "azurite": "in Table Storage (Azurite)",
    "memory": "in this process's memory",
}


# ------------------------------------------------------------------------------ the simulators (child)
class Sims:
    """Both simulators, in the child process."""

    def __init__(self, rate_limit: int, rate_window: float, bp_latency_ms: float) -> None:
        from sandbox.brightpearl import SimulatorServer as BrightpearlServer
        from sandbox.customers_solution import install
        from sandbox.dataverse import SimulatorConfig as DataverseConfig
        from sandbox.dataverse import SimulatorServer as DataverseServer

        self.bp_server = BrightpearlServer(
            seed_contacts=0,
            seed_products=0,
            seed_orders=0,
            rate_limit=rate_limit,
            rate_window_seconds=rate_window,
            latency_ms=bp_latency_ms,
        ).start()
        self.dv_server = DataverseServer(DataverseConfig(fractional_retry_after=True)).start()
        install(self.dv_server.simulator)

    def stop(self) -> None:
        self.bp_server.stop()
        self.dv_server.stop()


def _child(conn: Any, options: dict[str, Any]) -> None:
    sims = Sims(**options)
    from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    conn.send(
        (
            "ok",
            {
                "bp_url": sims.bp_server.url,
                "bp_account": sims.bp_server.account,
                "dv_url": sims.dv_server.url,
                "dv_token_url": sims.dv_server.token_url,
                "dv_client": (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
            },
        )
    )
    while True:
        message = conn.recv()
        if message is None:
            break
        fn, args = message
        try:
            conn.send(("ok", fn(sims, *args)))
        except Exception:
            conn.send(("error", traceback.format_exc()))
    sims.stop()
    conn.send(("ok", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


class SimProcess:
    """The simulators in a child process (forked here, before any thread of this process
    starts), driven by calls of module-level functions `fn(sims, *args)`."""

    def __init__(self, **options: Any) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child, args=(child, options), daemon=True)
        self.process.start()
        self.urls: dict[str, Any] = self._answer(300)
        self.maxrss_kb = 0

    def _answer(self, timeout: float = 3600) -> Any:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the simulators' process did not answer within {timeout:.0f} s")
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"in the simulators' process:\n{value}")
        return value

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.conn.send((fn, args))
        return self._answer()

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(None)
            self.maxrss_kb = int(self._answer(120))
        self.process.join(30)


# ------------------------------------------------------------------------------ seeding (in the child)
@dataclass
class Plan:
    orders: int
    lines: int
    credits: int
    payments: int
    seed: int = 14

    @property
    def customers(self) -> int:
        return max(self.orders // 10, 1)


def seed(sims: Sims, plan: Plan) -> dict[str, Any]:
    """Both sides as the business and the earlier flows left them (see the module docstring).
    Returns the customer pairs (Brightpearl contact id, Dynamics contactid) and what was made."""
    from sandbox import catalogue_solution
    from sandbox.dataverse.inprocess import in_process_client
    from sandbox.demo import shop_address, shop_contact
    from shared.dataverse.provision import Provisioner
    from shared.dataverse.schema import schema_plan

    started = time.perf_counter()
    rng = random.Random(plan.seed)
    dv_sim, state = sims.dv_server.simulator, sims.bp_server.simulator.state
    catalogue_solution.provision_simulator(dv_sim)
    with in_process_client(dv_sim) as client:
        report = Provisioner(client, poll_interval=0.05, key_timeout=60).run(
            schema_plan(include_products=True)
        )
        if report.remaining or report.pending_keys:
            raise RuntimeError(f"provisioning failed: {report.remaining} {report.pending_keys}")
        refs = catalogue_solution.seed_simulator(dv_sim)
        lists = [refs.price_lists["Retail GBP"], refs.price_lists["Retail EUR"]]
        # products: Brightpearl's 50, Dynamics' 45 (productnumber = SKU) priced in both lists
        bp_products: list[int] = []
        for n in range(PRODUCTS):
            sku = f"HIST-{n:03d}"
            bp_products.append(
                state.create_product(
                    {
                        "brandId": 1,
                        "identity": {"sku": sku},
                        "salesChannels": [
                            {"salesChannelName": "Brightpearl", "productName": f"History mug {n}"}
                        ],
                        "stock": {"stockTracked": False},
                    },
                    quiet=True,
                )
            )
            if n >= PRODUCTS - WRITE_IN_PRODUCTS:
                continue
            product = client.create(
                "products",
                {
                    "name": f"History mug {n}",
                    "productnumber": sku,
                    "quantitydecimal": 0,
                    "producttypecode": 1,
                    "defaultuomscheduleid@odata.bind": f"/uomschedules({refs.unit_group})",
                    "defaultuomid@odata.bind": f"/uoms({refs.base_unit})",
                },
            )
            for level in lists:
                client.create(
                    "productpricelevels",
                    {
                        "pricelevelid@odata.bind": f"/pricelevels({level})",
                        "productid@odata.bind": f"/products({product})",
                        "uomid@odata.bind": f"/uoms({refs.base_unit})",
                        "pricingmethodcode": 1,
                        "amount": 12.5,
                    },
                )
        # customers on both sides
        pairs: list[tuple[str, str]] = []
        for i in range(plan.customers):
            first, last, email = "Hist", f"Customer{i:05d}", f"history.{i}@example.org"
            address = state.create_address(
                shop_address(f"{i} Mill Lane", "Leeds", f"LS{i % 30 + 1} {i % 9}AB")
            )
            bp_id = state.create_contact(
                shop_contact(first, last, email, f"0113 496 {i % 10000:04d}", address), quiet=True
            )
            dv_id = client.create("contacts", {"firstname": first, "lastname": last, "emailaddress1": email})
            pairs.append((str(bp_id), dv_id.lower()))
    customers = [int(bp) for bp, _ in pairs]
    # orders
    orders: list[tuple[int, str]] = []
    for n in range(plan.orders):
        currency = "EUR" if rng.random() < EUR_SHARE else "GBP"
        rows = []
        for j in range(plan.lines):
            quantity = 1 + (n + j) % 3
            net = Decimal("12.50") * quantity
            rows.append(
                {
                    "productId": bp_products[(n * plan.lines + j) % PRODUCTS],
                    "quantity": str(quantity),
                    "taxCode": "T20",
                    "net": f"{net:.2f}",
                    "tax": f"{net * Decimal('0.2'):.2f}",
                }
            )
        oid = state.create_sales_order(
            {
                "customer": {"id": customers[n % len(customers)]},
                "ref": f"WEB-{n + 1:06d}",
                "currency": {"code": currency},
                "channelId": 1,
                "rows": rows,
            },
            "SO",
            quiet=True,
        )
        orders.append((oid, currency))
    invoiced = [o for o in orders if rng.random() < INVOICED_SHARE]
    for oid, _ in invoiced:
        state.invoice_order(oid, {})
    # credits: one row (the parent's first) each, on invoiced orders
    credits: list[tuple[int, str]] = []
    for oid, currency in rng.sample(invoiced, min(plan.credits, len(invoiced))):
        parent = state.orders[oid]
        row = next(iter(parent["orderRows"].values()))
        net = Decimal(row["rowValue"]["rowNet"]["value"])
        quantity = Decimal(row["quantity"]["magnitude"])
        unit = (net / quantity).quantize(Decimal("0.01"))
        credit = state.create_sales_order(
            {
                "customer": {"id": parent["parties"]["customer"]["contactId"]},
                "ref": f"RMA-{oid}",
                "parentId": oid,
                "currency": {"code": currency},
                "channelId": 1,
                "rows": [
                    {
                        "productId": row.get("productId"),
                        "quantity": "1",
                        "taxCode": "T20",
                        "net": f"{unit:.2f}",
                        "tax": f"{unit * Decimal('0.2'):.2f}",
                    }
                ],
            },
            "SC",
            quiet=True,
        )
        credits.append((credit, currency))
    # payments: refunds for half the credits, receipts on invoiced orders for the rest
    refunds = credits[: min(len(credits) // 2, plan.payments)]
    receipts = rng.sample(invoiced, min(plan.payments - len(refunds), len(invoiced)))
    day = datetime.now(UTC).date().isoformat()
    made = Counter[str]()
    for oid, currency in refunds:
        total = state.orders[oid]["totalValue"]["total"]
        state.create_payment(
            {
                "paymentMethodCode": "CARD",
                "paymentType": "PAYMENT",
                "orderId": oid,
                "currencyIsoCode": currency,
                "amountPaid": total,
                "paymentDate": day,
            }
        )
        made["refunds"] += 1
    for k, (oid, currency) in enumerate(receipts):
        total = Decimal(state.orders[oid]["totalValue"]["total"])
        amount = total if k % 7 else (total / 2).quantize(Decimal("0.01"))  # one in seven in part
        state.create_payment(
            {
                "paymentMethodCode": "CARD",
                "paymentType": "RECEIPT",
                "orderId": oid,
                "currencyIsoCode": currency,
                "amountPaid": f"{amount:.2f}",
                "paymentDate": day,
            }
        )
        made["receipts_in_full" if k % 7 else "receipts_in_part"] += 1
    return {
        "pairs": pairs,
        "made": {
            "customers": len(pairs),
            "brightpearl_products": len(bp_products),
            "dynamics_products": PRODUCTS - WRITE_IN_PRODUCTS,
            "orders": len(orders),
            "eur_orders": sum(1 for _, c in orders if c == "EUR"),
            "invoiced_orders": len(invoiced),
            "credits": len(credits),
            "payments": sum(made.values()),
            **made,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def calls(sims: Sims) -> tuple[dict[str, int], dict[str, int], int]:
    """Requests each simulator answered so far (Brightpearl by route, Dataverse by kind) and
    Brightpearl's throttled answers."""
    sim = sims.bp_server.simulator
    with sim._faults_lock:
        bp = dict(sim.requests)
    dv = Counter(sims.dv_server.simulator.counters)
    return bp, {str(k): int(v) for k, v in dv.items()}, int(sim.throttle.rejected)


def throttle_peak(sims: Sims) -> int:
    return int(sims.bp_server.simulator.throttle.max_in_any_window())


def dynamics_counts(sims: Sims) -> dict[str, Any]:
    """What Dynamics holds at the end (in the child, not counted)."""
    sim = sims.dv_server.simulator
    with sim.lock:
        rows = sim.engine.db.rows
        orders = list(rows.get("salesorder", {}).values())
        contacts = list(rows.get("contact", {}).values())
        incidents = list(rows.get("incident", {}).values())
        invoices = list(rows.get("invoice", {}).values())
        return {
            "salesorders": len(orders),
            "salesorders_from_brightpearl": sum(1 for o in orders if o.get("bpi_brightpearlid")),
            "distinct_brightpearl_ids": len(
                {o.get("bpi_brightpearlid") for o in orders if o.get("bpi_brightpearlid")}
            ),
            "salesorderdetails": len(rows.get("salesorderdetail", {})),
            "write_in_lines": sum(
                1 for d in rows.get("salesorderdetail", {}).values() if d.get("isproductoverridden")
            ),
            "invoices": len(invoices),
            "invoices_paid": sum(1 for i in invoices if i.get("statecode") == 2),
            "invoicedetails": len(rows.get("invoicedetail", {})),
            "cases": len(incidents),
            "cases_resolved": sum(1 for i in incidents if i.get("statecode") == 1),
            "contacts_with_lifetime_value": sum(
                1 for c in contacts if c.get("bpi_lifetimevalue") not in (None, 0)
            ),
            "timeline_notes": len(rows.get("annotation", {})),
            "timeline_tasks": len(rows.get("task", {})),
        }


# ------------------------------------------------------------------------------ this process: the flows
class CountedAudit:
    """The audit table as the flows see it (they only write it): rows counted, and passed on to
    the real audit table in Table Storage (Azurite); with the in-memory store (`--state memory`),
    dropped, as in Azure they never stay in the host's memory."""

    def __init__(self, inner: Any = None) -> None:
        self.rows = 0
        self.inner = inner

    def record_many(self, entries: Any) -> list[Any]:
        written = list(entries)
        self.rows += len(written)
        return self.inner.record_many(written) if self.inner is not None else written


class Collected:
    """The bus publisher: what the flows and pollers publish, by topic, kept for routing."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []

    def publish(self, topic: str, messages: Any) -> None:
        self.messages.extend((topic, m) for m in messages)

    def publish_scheduled(self, topic: str, messages: Any, enqueue_at: datetime) -> None:
        self.publish(topic, messages)

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> list[Envelope]:
        """The envelopes published since the last take."""
        out = [Envelope.from_body(m.body) for _, m in self.messages]
        self.messages = []
        return out


def state_store(kind: str, stack: contextlib.ExitStack, held: StoreProcess | None) -> Any:
    """The state store the flows run on (`--state`). In Azure it is Table Storage, whose memory is
    not the host's: `process` (default) keeps the in-memory store in a child process
    (benchmarks/store_process.py); `azurite` uses Table Storage in Azurite (a node process; slow
    beyond some 100,000 rows); `memory` keeps the in-memory store in this process, so its links
    and claims (about 2.5 KB each as Python objects) count in this process's peak. Audit rows are
    counted, and written only to Azurite."""
    store: Any
    if kind == "process":
        assert held is not None
        store = held.store
        store.audit = CountedAudit()
        return store
    if kind == "memory":
        store = MemoryStateStore()
        store.audit = CountedAudit()
        return store
    azurite = stack.enter_context(AzuriteTable())
    store = StateStore.from_connection_string(azurite.connection_string, table_prefix="history")
    store.ensure_tables()
    store.audit = CountedAudit(store.audit)
    return store


def links_held(store: Any) -> int:
    if isinstance(store, MemoryStateStore):
        return len(store.links.rows)
    if isinstance(store, RemoteStateStore):
        return store.links.row_count
    table = store.service.get_table_client(store.table_names["links"])
    return sum(1 for _ in table.list_entities(select=["PartitionKey"]))


def app_settings(urls: dict[str, Any]) -> Any:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    values.update(
        BUS_BACKEND="local",
        BRIGHTPEARL_ACCOUNT=urls["bp_account"],
        BRIGHTPEARL_BASE_URL=urls["bp_url"],
        BRIGHTPEARL_APP_REF=SIM_CLIENT_ID,
        BRIGHTPEARL_ACCOUNT_TOKEN="sandbox-account-token",
        DATAVERSE_URL=urls["dv_url"],
    )
    return load_settings({k: str(v) for k, v in values.items() if v is not None})


@dataclass
class FlowCost:
    seconds: float = 0.0
    envelopes: int = 0
    bp: Counter[str] = field(default_factory=Counter)
    dv: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_json(self, orders: int) -> dict[str, Any]:
        bp, dv = sum(self.bp.values()), sum(self.dv.values())
        return {
            "seconds": round(self.seconds, 1),
            "envelopes": self.envelopes,
            "brightpearl_calls": bp,
            "dataverse_calls": dv,
            "calls_per_1000_orders": round((bp + dv) * 1000 / max(orders, 1), 1),
            "brightpearl_calls_by_route": dict(sorted(self.bp.items())),
            "dataverse_calls_by_kind": dict(sorted(self.dv.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def _delta(after: dict[str, int], before: dict[str, int]) -> Counter[str]:
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})


def outcome_name(outcome: Any) -> str:
    if isinstance(outcome, RetryLater | DeadLetter):
        return f"{type(outcome).__name__} {outcome.reason}"
    return type(outcome).__name__


class Run:
    """The flows on this run's adapters, fed notices batch by batch, each flow's calls counted."""

    def __init__(self, sims: SimProcess, store: Any, batch: int) -> None:
        self.sims = sims
        self.store = store
        self.batch = batch
        self.flows: dict[str, Any] = {}
        self.specs: dict[str, FlowSpec] = {}
        self.not_built: dict[str, str] = {}
        for spec in registry.flows():
            if spec.source != "brightpearl" or not set(spec.source_entities) & set(BACKFILL_ENTITIES):
                continue
            try:
                self.flows[spec.name] = load(spec.flow).from_runtime()
                self.specs[spec.name] = spec
            except Exception as exc:  # a flow that cannot be built is reported, not hidden
                self.not_built[spec.name] = f"{type(exc).__name__}: {exc}"
        self.costs: dict[str, FlowCost] = {name: FlowCost() for name in self.flows}
        retry = runtime.settings().retry
        self.policy = BackoffPolicy.from_settings(retry)
        self.max_attempts = retry.max_attempts
        self.retries: list[tuple[float, str, Envelope]] = []  # (due, flow, the retry copy)
        self.exhausted: Counter[str] = Counter()
        self.peak_raised: dict[str, float] = {}  # flow -> the peak RSS (MB) its batches last raised it to
        self.waited = 0.0

    def order(self) -> list[str]:
        return sorted(self.flows, key=lambda n: (n != FIRST_FLOW, n))

    def _measured(self, name: str, envelopes: list[Envelope]) -> None:
        bp0, dv0, _ = self.sims.call(calls)
        started = time.perf_counter()
        # built for every batch, as the host's FreshFlow does (nothing kept between batches)
        peak = rss_mb()
        outcomes = load(self.specs[name].flow).from_runtime().handle(envelopes)
        cost = self.costs[name]
        cost.seconds += time.perf_counter() - started
        if rss_mb() > peak:  # this batch of this flow raised the process's peak
            self.peak_raised[name] = rss_mb()
        bp1, dv1, _ = self.sims.call(calls)
        cost.bp.update(_delta(bp1, bp0))
        cost.dv.update(_delta(dv1, dv0))
        cost.envelopes += len(envelopes)
        for envelope, outcome in zip(envelopes, outcomes, strict=True):
            cost.outcomes[outcome_name(outcome)] += 1
            if isinstance(outcome, RetryLater):
                if envelope.attempt >= self.max_attempts:
                    self.exhausted[name] += 1  # the bus dead-letters it: RetriesExhausted
                    continue
                wait = self.policy.delay(envelope.attempt, outcome.delay, reason=outcome.reason)
                self.retries.append((time.monotonic() + wait, name, envelope.retry(name)))

    def deliver(self, envelopes: list[Envelope], progress: str) -> None:
        """Every envelope to every flow consuming its entity, a host batch at a time."""
        groups = list(chunked(envelopes, self.batch))
        for n, group in enumerate(groups, start=1):
            for name in self.order():
                wanted = [e for e in group if e.notice.entity in self.specs[name].source_entities]
                if wanted:
                    self._measured(name, wanted)
            if n % 10 == 0 or n == len(groups):
                print(f"  {progress}: batch {n}/{len(groups)}", flush=True)

    def redeliver(self, max_wait: float) -> dict[str, int]:
        """The retry copies, each to its flow when due (waiting for it), until none is left or
        `max_wait` seconds have been waited in all."""
        done: Counter[str] = Counter()
        while self.retries and self.waited < max_wait:
            first = min(due for due, _, _ in self.retries)
            pause = max(0.0, min(first - time.monotonic(), max_wait - self.waited))
            self.waited += pause
            time.sleep(pause)
            now = time.monotonic()
            due = [(name, e) for d, name, e in self.retries if d <= now]
            self.retries = [r for r in self.retries if r[0] > now]
            for name in self.order():
                for group in chunked([e for n, e in due if n == name], self.batch):
                    done[name] += len(group)
                    self._measured(name, list(group))
            print(f"  retries: {sum(done.values())} redelivered, {len(self.retries)} pending", flush=True)
        return dict(done)


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan(args.orders, args.lines, args.credits, args.payments)
    window = QUICK_WINDOW if args.quick else args.rate_window
    results: dict[str, Any] = {
        "benchmark": "order history backfill (benchmarks/history.py, issue 14)",
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    print(
        f"[seed] {plan.orders} orders x {plan.lines} lines, {plan.credits} credits, {plan.payments} payments",
        flush=True,
    )
    sims = SimProcess(rate_limit=RATE_LIMIT, rate_window=window, bp_latency_ms=0.0 if args.quick else 60.0)
    # the state store's own process (forked, like the simulators', before any thread starts)
    held = StoreProcess() if args.state == "process" else None
    stack = contextlib.ExitStack()  # Azurite, started after the children are forked
    if held is not None:
        stack.callback(held.close)
    try:
        seeded = sims.call(seed, plan)
        store = state_store(args.state, stack, held)
        for bp_id, dv_id in seeded.pop("pairs"):
            store.links.link("customer", "brightpearl", bp_id, "dataverse", dv_id)
        results["seeded"] = {**seeded["made"], "seconds": seeded["seconds"]}
        print(f"  seeded in {seeded['seconds']} s: {seeded['made']}", flush=True)
        urls = sims.urls
        bp = BrightpearlClient.from_settings(
            BrightpearlSettings.model_validate(
                {
                    "BRIGHTPEARL_ACCOUNT": urls["bp_account"],
                    "BRIGHTPEARL_BASE_URL": urls["bp_url"],
                    "BRIGHTPEARL_APP_REF": SIM_CLIENT_ID,
                    "BRIGHTPEARL_ACCOUNT_TOKEN": "sandbox-account-token",
                    "BRIGHTPEARL_MAX_THROTTLE_WAIT_SECONDS": "120",
                    "BRIGHTPEARL_READ_TIMEOUT_SECONDS": "60",
                }
            ),
            budget=RateBudget(RATE_LIMIT, window, reserve=2),
        )
        dv = DataverseClient(urls["dv_url"], SandboxCredential(urls["dv_token_url"], *urls["dv_client"]))
        bus = Collected()
        settings = app_settings(urls)
        batch = int(
            json.loads((ROOT / "host.json").read_text())["extensions"]["serviceBus"]["maxMessageBatchSize"]
        )
        with runtime.override(
            settings=settings, brightpearl=bp, dataverse=dv, state_store=store, publisher=bus
        ):
            results["backfill"] = backfill(sims, store, bus, bp, batch, plan, args)
        bp.close()
        dv.close()
        results["dynamics_holds"] = sims.call(dynamics_counts)
        results["busiest_brightpearl_window_requests"] = sims.call(throttle_peak)
    finally:
        sims.close()
        stack.close()
    section = results["backfill"]
    seconds = section["seconds"]
    bp_calls, dv_calls = section["brightpearl_calls"], section["dataverse_calls"]
    bound = bp_calls / RATE_LIMIT * window
    results["rate"] = {
        "mode": ("quick: SCALED" if args.quick else "real limit")
        + f": {RATE_LIMIT} Brightpearl requests per {window:g} s (simulator throttle and client rate "
        "budget)"
        + ("; zero latency" if args.quick else "; 60 ms per Brightpearl call")
        + f"; Dataverse service protection {DATAVERSE_LIMIT} requests per {DATAVERSE_WINDOW:g} s, "
        "zero latency",
        "rate_window_seconds": window,
        "orders": plan.orders,
        "seconds": seconds,
        "orders_per_second": round(plan.orders / seconds, 2) if seconds else None,
        "brightpearl_bound_seconds": round(bound, 1),
        "orders_per_second_at_the_brightpearl_bound": round(plan.orders / bound, 1) if bound else None,
        "orders_per_second_at_the_real_limit_bound": round(plan.orders / (bp_calls / RATE_LIMIT * 60), 1)
        if bp_calls
        else None,
        "throttled_answers": section["throttled_answers"],
        "dataverse_bound_seconds": round(dv_calls / DATAVERSE_LIMIT * DATAVERSE_WINDOW, 1),
        "orders_per_second_at_the_dataverse_bound": round(
            plan.orders / (dv_calls / DATAVERSE_LIMIT * DATAVERSE_WINDOW), 1
        )
        if dv_calls
        else None,
    }
    per_1000 = (bp_calls + dv_calls) * 1000 / max(plan.orders, 1)
    peak = section["memory"]["peak_rss_mb"]
    holds = results["dynamics_holds"]
    paid = results["seeded"]["receipts_in_full"] + results["seeded"]["receipts_in_part"]
    results["targets"] = {
        "calls_per_1000_orders": {
            "figure": round(per_1000, 1),
            "target": f"<= {TARGETS['calls_per_1000_orders']:g}",
            "pass": per_1000 <= TARGETS["calls_per_1000_orders"],
            "brightpearl": round(bp_calls * 1000 / max(plan.orders, 1), 1),
            "dataverse": round(dv_calls * 1000 / max(plan.orders, 1), 1),
        },
        "peak_memory_mb": {
            "figure": peak,
            "target": f"<= {TARGETS['peak_memory_mb']:g}",
            "pass": peak <= TARGETS["peak_memory_mb"],
        },
        "invoices_paid_by_the_backfill": {
            "figure": section["dynamics_holds"]["invoices_paid"],
            "target": f"{paid} (the invoiced orders with receipts: Paid, in full or in part)",
            "pass": section["dynamics_holds"]["invoices_paid"] == paid,
        },
        "payments_again_change_nothing": {
            "figure": "same"
            if section["payments_again"]["dynamics_holds_after"] == section["dynamics_holds"]
            else "changed",
            "target": "what Dynamics holds is the same before and after the payments pass",
            "pass": section["payments_again"]["dynamics_holds_after"] == section["dynamics_holds"],
        },
        "every_order_once_in_dynamics": {
            "figure": f"{holds['distinct_brightpearl_ids']}/{plan.orders} "
            f"({holds['salesorders_from_brightpearl']} rows)",
            "target": "each Brightpearl order exactly once",
            "pass": holds["distinct_brightpearl_ids"] == holds["salesorders_from_brightpearl"] == plan.orders,
        },
    }
    results["child_process_peak_rss_mb"] = round(sims.maxrss_kb / 1024, 1)
    return results


def backfill(
    sims: SimProcess,
    store: Any,
    bus: Collected,
    bp: BrightpearlClient,
    batch: int,
    plan: Plan,
    args: argparse.Namespace,
) -> dict[str, Any]:
    from shared.flows.invoices_poller import BrightpearlPaymentPoller
    from shared.flows.orders_spec import ORDERS
    from shared.flows.returns_poller import BrightpearlCreditPoller
    from shared.flows.returns_spec import RETURNS

    flows = Run(sims, store, batch)
    print(f"  flows: {', '.join(flows.order())}; not built: {flows.not_built or 'none'}", flush=True)
    rss_before = rss_mb()
    bp0, dv0, throttled0 = sims.call(calls)
    started = time.perf_counter()
    phases: dict[str, Any] = {}
    settings = runtime.settings()

    def listed(what: str, publish: Callable[[], Any]) -> list[Envelope]:
        a_bp, a_dv, _ = sims.call(calls)
        t = time.perf_counter()
        publish()
        envelopes = bus.take()
        z_bp, z_dv, _ = sims.call(calls)
        phases[what] = {
            "listing_seconds": round(time.perf_counter() - t, 1),
            "notices": len(envelopes),
            "ids": sum(len(e.notice.ids) for e in envelopes),
            "listing_brightpearl_calls_by_route": dict(_delta(z_bp, a_bp)),
            "listing_dataverse_calls_by_kind": dict(_delta(z_dv, a_dv)),
        }
        return envelopes

    poller_options: dict[str, Any] = {
        "client": bp,
        "cursors": store.cursors,
        "publish": runtime.publisher_to("BRIGHTPEARL_CHANGES_TOPIC"),
        "clock": runtime.clock,
        "source": f"/brightpearl/{settings.brightpearl.account}",
        "overlap": timedelta(seconds=settings.customers.poll_overlap_seconds),
        "initial_lookback": timedelta(days=3650),  # from the beginning: every credit / payment
        "per_notice": settings.customers.ids_per_notice,
        "budget": bp.transport.budget,
    }

    def backfill_of(spec: EntitySpec) -> Callable[[], Any]:
        """`syncctl backfill <entity> --from brightpearl` (shared/sync/backfill.py)."""
        return Backfill(
            spec,
            "brightpearl",
            client=bp,
            cursors=store.cursors,
            publish=runtime.publisher_to("BRIGHTPEARL_CHANGES_TOPIC"),
            clock=runtime.clock,
            source_name=f"/brightpearl/{settings.brightpearl.account}",
            per_notice=settings.customers.ids_per_notice,
        ).run

    # 1. orders: syncctl backfill orders --from brightpearl
    orders = listed("orders", backfill_of(ORDERS))
    flows.deliver(orders, "orders")
    # 2. credits: syncctl backfill returns (else the sales-credit poller from the beginning)
    has_backfill = any(b.system == "brightpearl" for b in RETURNS.backfill_sources)
    credits = listed(
        "credits",
        backfill_of(RETURNS) if has_backfill else BrightpearlCreditPoller(**poller_options).poll,
    )
    flows.deliver(credits, "credits")

    # 3. payments: the customer-payment poller from the beginning (a round the shared budget
    # skips runs again at its next firing, as its timer would)
    def poll_payments() -> None:
        for _ in range(60):
            if not BrightpearlPaymentPoller(**poller_options).poll().skipped:
                return
            time.sleep(PAYMENT_POLL_EVERY)
        raise RuntimeError("the payment poller was skipped for 5 minutes (rate budget never had room)")

    redelivered = flows.redeliver(args.max_retry_wait)
    published_by_flows = Counter(e.notice.entity for e in bus.take())
    # the customer value flush (its timer), until nothing is left dirty
    flusher, flush_cost = None, FlowCost()
    if "customer-value-to-dataverse" in flows.flows:
        from shared.flows.customer_value_flush import CustomerValueFlush
        from shared.flows.customer_value_store import store_for

        value_flow = flows.flows["customer-value-to-dataverse"]
        flusher = CustomerValueFlush(
            dataverse=runtime.dataverse(), store=store, mapping=value_flow.mapping, values=store_for(store)
        )
        f_bp, f_dv, _ = sims.call(calls)
        t = time.perf_counter()
        for _ in range(20):
            report = flusher.poll()
            if not getattr(report, "customers", 0):
                break
        z_bp, z_dv, _ = sims.call(calls)
        flush_cost = FlowCost(seconds=time.perf_counter() - t, bp=_delta(z_bp, f_bp), dv=_delta(z_dv, f_dv))
    seconds = time.perf_counter() - started
    bp1, dv1, throttled1 = sims.call(calls)
    bp_all, dv_all = _delta(bp1, bp0), _delta(dv1, dv0)
    per_flow = {name: cost.as_json(plan.orders) for name, cost in flows.costs.items()}
    if flusher is not None:
        per_flow["customer-value flush"] = flush_cost.as_json(plan.orders)
    section = {
        "mode": "real flows, clients and pollers in this process; both simulators in a child process "
        f"over loopback; {batch} notices a batch (host.json maxMessageBatchSize); state store "
        + STATE_WHERE[args.state],
        "orders": plan.orders,
        "seconds": round(seconds, 1),
        "brightpearl_calls": sum(bp_all.values()),
        "dataverse_calls": sum(dv_all.values()),
        "calls_per_1000_orders": {
            "brightpearl": round(sum(bp_all.values()) * 1000 / plan.orders, 1),
            "dataverse": round(sum(dv_all.values()) * 1000 / plan.orders, 1),
            "combined": round((sum(bp_all.values()) + sum(dv_all.values())) * 1000 / plan.orders, 1),
        },
        "brightpearl_calls_by_route": dict(sorted(bp_all.items())),
        "dataverse_calls_by_kind": dict(sorted(dv_all.items())),
        "throttled_answers": throttled1 - throttled0,
        "phases": dict(phases),  # the payments pass below lists apart
        "per_flow": per_flow,
        "flows_not_built": flows.not_built,
        "redelivered_envelopes": redelivered,
        "retries_pending_at_the_end": dict(Counter(name for _, name, _ in flows.retries)),
        "retries_exhausted": dict(flows.exhausted),
        "audit_rows_written": store.audit.rows,
        "links_held": links_held(store),
        "seconds_waiting_for_retries": round(flows.waited, 1),
        "published_by_flows": dict(published_by_flows),
        "dynamics_holds": sims.call(dynamics_counts),
    }
    # 3. payments again, apart: the customer-payment poller from the beginning of time (what
    # `syncctl backfill invoices` publishes), after the backfill has brought every order with its
    # payments; what re-announcing 15,000 payments costs when Dynamics already holds them
    flows.costs = {name: FlowCost() for name in flows.flows}
    bp2, dv2, _ = sims.call(calls)
    t = time.perf_counter()
    payments = listed("payments", poll_payments)
    flows.deliver(payments, "payments again")
    flows.redeliver(args.max_retry_wait)
    bp3, dv3, _ = sims.call(calls)
    bp_pay, dv_pay = _delta(bp3, bp2), _delta(dv3, dv2)
    per_payments = max(plan.payments, 1)
    section["payments_again"] = {
        "what": "the customer-payment poller from the beginning after the backfill (as `syncctl "
        "backfill invoices`): an `order` notice per paid order to every order consumer; not part of "
        "the backfill's calls, which already read each invoiced order's payments",
        "payments": plan.payments,
        "listing": phases["payments"],
        "seconds": round(time.perf_counter() - t, 1),
        "brightpearl_calls": sum(bp_pay.values()),
        "dataverse_calls": sum(dv_pay.values()),
        "calls_per_1000_payments": round(
            (sum(bp_pay.values()) + sum(dv_pay.values())) * 1000 / per_payments, 1
        ),
        "brightpearl_calls_by_route": dict(sorted(bp_pay.items())),
        "dataverse_calls_by_kind": dict(sorted(dv_pay.items())),
        "per_flow": {name: cost.as_json(plan.orders) for name, cost in flows.costs.items()},
        "dynamics_holds_after": sims.call(dynamics_counts),
    }
    section["memory"] = {
        "peak_rss_mb": rss_mb(),
        "rss_before_backfill_mb": rss_before,
        "peak_raised_to_by_flow_mb": flows.peak_raised,
        "what": "ru_maxrss of this process (flows, clients, notices) over the backfill and the payments "
        f"pass; the simulators are in a child process, the state store {STATE_WHERE[args.state]}",
    }
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, help="Brightpearl sales orders (default 20000; --quick 1000)")
    parser.add_argument("--lines", type=int, default=5, help="rows per order (default 5)")
    parser.add_argument("--credits", type=int, help="sales credits (default 2000; --quick 100)")
    parser.add_argument("--payments", type=int, help="customer payments (default 15000; --quick 750)")
    parser.add_argument(
        "--rate-window", type=float, default=60.0, help="seconds per 200 Brightpearl requests"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smaller, and 200 requests per {QUICK_WINDOW:g} s"
    )
    parser.add_argument(
        "--max-retry-wait", type=float, default=1800.0, help="seconds waited for retry copies in all"
    )
    parser.add_argument(
        "--state",
        choices=("process", "azurite", "memory"),
        default="process",
        help="the state store: in memory in a process of its own (default), Table Storage in Azurite, "
        "or in this process's memory (then it counts in the peak)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "history.json")
    args = parser.parse_args(argv)
    size = QUICK_SIZE if args.quick else FULL_SIZE
    for key, default in size.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    if args.orders < 1 or args.lines < 1 or args.credits < 0 or args.payments < 0 or args.rate_window <= 0:
        parser.error("--orders and --lines must be at least 1, --credits and --payments not negative")
    results = run(args)
    write(args.out, results)
    print(json.dumps(results, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
