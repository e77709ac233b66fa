"""The sandbox's catalogue: what `syncctl sandbox up` seeds, and the demo's catalogue scene.

`prepare_catalogue()` (run by `sandbox up` after the customers) seeds a realistic catalogue in
the Brightpearl simulator (`POST /_sandbox/catalogue/seed`: a few hundred products, prices in
the Cost list and three SELL lists in GBP and EUR, stock in warehouses 2 and 3, a handful of
services that are not stock-tracked, a handful archived, variation groups) and the reference
data Dynamics needs for it (sandbox/catalogue_solution.py `seed_catalogue`: the unit group and
default unit the product mapping names, GBP and EUR, the price lists). Then the products reach
Dynamics by the normal path: a products backfill from Brightpearl (`syncctl backfill products
--from brightpearl`) whose notices the host's products flow works off, and one round of the
stock sweep (the `sweep_brightpearl_stock` timer) fills in `bpi_availablestock`. It prints its
progress and returns when Dynamics shows the catalogue.

`catalogue_scene()` is the demo's catalogue scene: a warehouse user corrects a product's stock
in Brightpearl (the stock-correction POST, reference §8.4), the webhook reaches the host, the
stock flow writes the new figure to Dynamics; then a price change reaching the product's price
list item when the prices flow is wired (else the demo says it is not).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

Echo = Callable[[str], None]

DEFAULT_PRODUCTS = 300
PRODUCTS_SETTING = "SANDBOX_CATALOGUE_PRODUCTS"  # environment: products `sandbox up` seeds (0: none)
RETIRED = 1  # Dynamics product statecode (reference dataverse-api.md §10.7)
MIN_PRODUCTS = 40  # the seed's smallest catalogue (services, archived, variation groups fit in it)
TOPIC = "brightpearl-changes"
PRODUCTS_FLOW, STOCK_FLOW, PRICES_FLOW = "products-to-dataverse", "stock-to-dataverse", "prices-to-dataverse"
ROOT = Path(__file__).resolve().parents[1]


def catalogue_size(values: dict[str, str], requested: int | None = None) -> int:
    """Products to seed: `requested` (the `--catalogue-products` option), else the
    SANDBOX_CATALOGUE_PRODUCTS environment variable or setting, else 300; 0 seeds none."""
    raw: Any = requested
    if raw is None:
        raw = os.environ.get(PRODUCTS_SETTING, values.get(PRODUCTS_SETTING, DEFAULT_PRODUCTS))
    try:
        count = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{PRODUCTS_SETTING}: {raw!r} is not a whole number of products") from None
    if count != 0 and count < MIN_PRODUCTS:
        raise ValueError(
            f"{PRODUCTS_SETTING}: a catalogue needs at least {MIN_PRODUCTS} products (or 0 for none)"
        )
    return count


def mapping_path(values: dict[str, str]) -> Path:
    """The product mapping file PRODUCT_MAPPING_PATH names, relative to the app root (as the
    host resolves it)."""
    path = Path(values.get("PRODUCT_MAPPING_PATH") or "mappings/products.yaml")
    return path if path.is_absolute() else ROOT / path


@dataclass
class CatalogueReport:
    """What `prepare_catalogue` left: Brightpearl's products and what Dynamics shows of them."""

    seeded: dict[str, Any]  # the Brightpearl seed's summary (/_sandbox/catalogue/seed)
    published: int  # product ids the backfill published
    in_dynamics: int  # of them, products Dynamics has
    with_stock: int  # Dynamics products with a stock figure
    price_items: int | None  # price list items in Dynamics; None: the prices flow is not wired
    dead_lettered: int  # products-to-dataverse dead letters
    seconds: float


# ------------------------------------------------------------------------------- looking
class Catalogue:
    """The catalogue as each side shows it: Brightpearl's admin surface, Dynamics' product table,
    the local bus's counts, and the host's admin API for timers."""

    def __init__(self, values: dict[str, str], *, host: str, master_key: str, bus: Any = None) -> None:
        self.values = values
        self.bus = bus  # the host's LocalBus when the caller has it (tests, on their clock)
        self.brightpearl = values.get("BRIGHTPEARL_BASE_URL", "http://127.0.0.1:8101").rstrip("/")
        self.dataverse = values.get("DATAVERSE_URL", "http://127.0.0.1:8102").rstrip("/")
        self.host = host.rstrip("/")  # http://127.0.0.1:7071/api
        self.master_key = master_key
        self.http = httpx.Client(timeout=60)

    def close(self) -> None:
        self.http.close()

    def products(self) -> dict[str, dict[str, Any]]:
        """Dynamics products linked to Brightpearl, by Brightpearl id."""
        rows = self.http.get(f"{self.dataverse}/_sandbox/tables/product").json()["rows"]
        return {str(r["bpi_brightpearlid"]): r for r in rows if r.get("bpi_brightpearlid")}

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.http.get(f"{self.dataverse}/_sandbox/tables/{table}").json()["rows"]

    def run_timer(self, name: str) -> None:
        resp = self.http.post(
            f"{self.host.removesuffix('/api')}/admin/functions/{name}",
            headers={"x-functions-key": self.master_key},
            json={},
        )
        resp.raise_for_status()

    def bus_counts(self, subscription: str) -> tuple[int, int] | None:
        """(waiting: active + scheduled, dead-lettered) of a subscription on the local bus;
        None when the bus is not the local one or has no such subscription."""
        if self.values.get("BUS_BACKEND", "local") != "local":
            return None
        from shared.bus.local import LocalBus
        from shared.bus.topology import load_topology

        topology = load_topology()
        if subscription not in subscriptions(topology):
            return None
        if self.bus is not None:
            counts = self.bus.counts(TOPIC, subscription)
            return counts.active + counts.scheduled, counts.dead_letter
        path = Path(self.values.get("LOCAL_BUS_PATH", ".sandbox/bus.sqlite3"))
        bus = LocalBus(path if path.is_absolute() else ROOT / path, topology)
        try:
            counts = bus.counts(TOPIC, subscription)
            return counts.active + counts.scheduled, counts.dead_letter
        finally:
            bus.close()


def subscriptions(topology: Any = None) -> set[str]:
    """The Brightpearl topic's subscriptions (flow names) in infra/topology.json."""
    from shared.bus.topology import load_topology

    topology = topology or load_topology()
    return {s.name for t in topology.topics if t.name == TOPIC for s in t.subscriptions}


def _wait_until_settled(
    what: str,
    count: Callable[[], int],
    target: int,
    cat: Catalogue,
    flow: str,
    echo: Echo,
    *,
    timeout: float,
    quiet_seconds: float = 10.0,
) -> int:
    """Poll `count()` until it reaches `target`, printing progress; stop early once the flow's
    subscription has nothing waiting and the count has not moved for `quiet_seconds` (the rest
    is dead-lettered or skipped). Returns the last count."""
    deadline = time.monotonic() + timeout
    last, last_change, shown = -1, time.monotonic(), -1
    while True:
        now = count()
        if now != last:
            last, last_change = now, time.monotonic()
        if now != shown and (now >= target or time.monotonic() - last_change < 0.1):
            echo(f"   {what}: {now} of {target}")
            shown = now
        if now >= target:
            return now
        waiting = cat.bus_counts(flow)
        idle = waiting is not None and waiting[0] == 0
        if idle and time.monotonic() - last_change >= quiet_seconds:
            return now
        if time.monotonic() > deadline:
            return now
        time.sleep(1.0)


# ------------------------------------------------------------------------------- prepare
def seed_dataverse_reference(values: dict[str, str]) -> Any:
    """The unit group and default unit the product mapping names, GBP and EUR, and the price
    lists (Retail GBP, Retail EUR, and the mapping's default list) in Dynamics; re-runnable."""
    from sandbox.catalogue_solution import DEFAULT_PRICE_LISTS, seed_catalogue
    from shared.dataverse.client import DataverseClient
    from shared.mapping.products_config import load_product_mapping
    from shared.settings import load_settings

    settings = load_settings(values)
    mapping = load_product_mapping(mapping_path(values))
    lists = list(DEFAULT_PRICE_LISTS)
    if mapping.price_list.default and mapping.price_list.default not in dict(lists):
        lists.append((mapping.price_list.default, "GBP"))
    client = DataverseClient.from_settings(settings.dataverse)
    try:
        return seed_catalogue(
            client,
            unit_group=mapping.unit_group.name,
            base_unit=mapping.unit_group.default_unit,
            price_lists=lists,
        )
    finally:
        client.close()


def backfill_products(values: dict[str, str], echo: Echo, *, own_runtime: bool = True) -> int:
    """`syncctl backfill products --from brightpearl`: publish every Brightpearl product id
    (the host's flows do the work); returns the ids published. With `own_runtime` (sandbox up)
    the adapters it builds (publisher, clients) are closed afterwards; a test that installed its
    own through `runtime.override` passes False."""
    from shared import runtime
    from shared.flows.products_spec import PRODUCTS
    from shared.settings import load_settings
    from shared.sync import backfill

    with runtime.override(settings=load_settings(values)):
        job = backfill.from_runtime(PRODUCTS, "brightpearl")
        try:
            report = job.run(restart=True)
        finally:
            if own_runtime:
                runtime.reset()
    echo(f"   backfill from brightpearl: {report.published_ids} product ids in {report.notices} notices")
    return report.published_ids


def prepare_catalogue(
    values: dict[str, str],
    echo: Echo,
    *,
    host: str,
    master_key: str,
    products: int = DEFAULT_PRODUCTS,
    timeout: float = 300.0,
    own_runtime: bool = True,
    bus: Any = None,
) -> CatalogueReport:
    """Seed both sides, backfill the products into Dynamics and fill in their stock figures.

    A test whose host runs on a fake clock passes `own_runtime=False` (the backfill publishes
    through the runtime the test installed) and its `bus` (counts read on the host's clock)."""
    started = time.monotonic()
    cat = Catalogue(values, host=host, master_key=master_key, bus=bus)
    try:
        answer = cat.http.post(f"{cat.brightpearl}/_sandbox/catalogue/seed", json={"products": products})
        if answer.status_code != 200:
            raise RuntimeError(f"the Brightpearl simulator refused the catalogue seed: {answer.text}")
        seeded = answer.json()
        echo(
            f"seeded a Brightpearl catalogue of {seeded['products']} products "
            f"({len(seeded['notStockTracked'])} not stock-tracked, {len(seeded['archived'])} archived, "
            f"{len(seeded['variationGroups'])} variation groups), prices in the Cost list and "
            f"{len(seeded['sellPriceLists'])} sell price lists (GBP and EUR), "
            f"stock in warehouses {' and '.join(str(w) for w in seeded['warehouses'])}"
        )
        refs = seed_dataverse_reference(values)
        echo(
            f"Dynamics: unit group and default unit, currencies {', '.join(refs.currencies)}, "
            f"price lists {', '.join(refs.price_lists)}"
        )
        echo("bringing the catalogue into Dynamics (products backfill, then a stock sweep) …")
        published = backfill_products(values, echo, own_runtime=own_runtime)
        in_dynamics = _wait_until_settled(
            "products in Dynamics",
            lambda: len(cat.products()),
            published,
            cat,
            PRODUCTS_FLOW,
            echo,
            timeout=timeout,
        )
        with_stock = fill_stock(cat, in_dynamics, echo, values, timeout=timeout)
        items = wait_for_prices(cat, seeded, echo, timeout=timeout)
        waiting = cat.bus_counts(PRODUCTS_FLOW)
        dead = waiting[1] if waiting else 0
        report = CatalogueReport(
            seeded, published, in_dynamics, with_stock, items, dead, round(time.monotonic() - started, 1)
        )
        missing = published - in_dynamics
        prices = "prices not wired yet" if items is None else f"{items} price list items"
        echo(
            f"catalogue ready in {report.seconds:.0f}s: Dynamics shows {in_dynamics} products, "
            f"{with_stock} with stock figures, {prices}"
            + (f"; {missing} not (yet) there, {dead} dead-lettered: syncctl dlq list" if missing else "")
        )
        return report
    finally:
        cat.close()


def fill_stock(cat: Catalogue, products: int, echo: Echo, values: dict[str, str], *, timeout: float) -> int:
    """Run the stock sweep (each run names `sweep_ids_per_run` products Dynamics has) until every
    product has been named once; returns the products with a stock figure."""
    from shared.mapping.stock import load_stock_settings

    per_run = load_stock_settings(mapping_path(values)).sweep_ids_per_run
    if per_run <= 0 or products == 0:
        return 0

    def stocked() -> int:
        return sum(1 for r in cat.products().values() if r.get("bpi_availablestock") is not None)

    catalogue = cat.http.get(f"{cat.brightpearl}/_sandbox/state/products").json()
    tracked = {k for k, p in catalogue.items() if (p.get("stock") or {}).get("stockTracked")}
    target = len(tracked & _not_retired(cat))  # the stock flow leaves retired products alone
    for _ in range(math.ceil(products / per_run)):
        cat.run_timer("sweep_brightpearl_stock")
        time.sleep(1.0)
    return _wait_until_settled(
        "stock figures in Dynamics", stocked, target, cat, STOCK_FLOW, echo, timeout=timeout, quiet_seconds=5
    )


def _not_retired(cat: Catalogue) -> set[str]:
    """Brightpearl ids of the Dynamics products that are not Retired (archived in Brightpearl)."""
    return {k for k, r in cat.products().items() if r.get("statecode") != RETIRED}


def wait_for_prices(cat: Catalogue, seeded: dict[str, Any], echo: Echo, *, timeout: float) -> int | None:
    """When the prices flow is wired: wait for the products' quantity-1 prices in the sell
    lists to become price list items (the flow retries a product until the products flow has
    created it); returns the items in Dynamics, None when prices are not wired."""
    if PRICES_FLOW not in subscriptions():
        echo(f"   prices are not wired yet ({PRICES_FLOW} is not in infra/topology.json)")
        return None
    prices = cat.http.get(f"{cat.brightpearl}/_sandbox/state/prices").json()
    in_dynamics = _not_retired(cat)  # the prices flow leaves retired products alone
    sell = {str(i) for i in seeded.get("sellPriceLists", [])}
    target = sum(
        1
        for pid, lists in prices.items()
        if pid in in_dynamics
        for plid, b in lists.items()
        if plid in sell and "1" in b
    )
    return _wait_until_settled(
        "price list items in Dynamics",
        lambda: len(cat.rows("productpricelevel")),
        target,
        cat,
        PRICES_FLOW,
        echo,
        timeout=timeout,
    )


# ------------------------------------------------------------------------------- the demo scene
STOCK_ADDED = 12  # units the demo's warehouse user finds in warehouse 2
DEMO_WAREHOUSE, DEMO_LOCATION = 2, 2
RETAIL_GBP = 2  # the Brightpearl simulator's "Retail GBP" price list (SELL, GBP)
PRICE_RISE = 1.1


def _as_number(value: Any) -> float | None:
    return None if value is None else float(value)


def _shown(value: float | None) -> str:
    return "(none)" if value is None else f"{value:g}"


def _pick_product(cat: Catalogue) -> tuple[int, dict[str, Any]] | None:
    """A live, stock-tracked catalogue product Dynamics has Active, one with a stock figure first."""
    catalogue = cat.http.get(f"{cat.brightpearl}/_sandbox/state/products").json()
    rows = cat.products()
    live = [
        (int(pid), rows[pid])
        for pid, p in catalogue.items()
        if pid in rows
        and p.get("status") == "LIVE"
        and (p.get("stock") or {}).get("stockTracked")
        and rows[pid].get("statecode") == 0
    ]
    live.sort(key=lambda item: (item[1].get("bpi_availablestock") is None, item[0]))
    return live[0] if live else None


def _wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    return None


def catalogue_scene(
    values: dict[str, str], client: Any, echo: Echo, *, host: str, master_key: str, number: int = 7
) -> None:
    """A stock correction in Brightpearl shows up in Dynamics (the figure before and after, and
    the seconds it took); then a price change reaching the price list item, or a line saying the
    prices flow is not wired yet. `client` is a BrightpearlClient."""
    from shared.flows.stock_to_dataverse import stock_figure
    from shared.mapping.stock import load_stock_settings

    cat = Catalogue(values, host=host, master_key=master_key)
    try:
        echo(f"[bold]{number}. A warehouse user corrects stock in Brightpearl[/bold]")
        picked = _pick_product(cat)
        if picked is None:
            echo(
                "   -> Dynamics has no catalogue product to show: start the sandbox with its catalogue "
                "(`syncctl sandbox up` without --no-catalogue) and run the demo again"
            )
            return
        pid, row = picked
        before = _as_number(row.get("bpi_availablestock"))
        settings = load_stock_settings(mapping_path(values))
        started = time.monotonic()
        line = {
            "productId": pid,
            "quantity": STOCK_ADDED,
            "reason": "Found in stock take",
            "locationId": DEMO_LOCATION,
            "cost": {"currency": "GBP", "value": 1},
        }
        client.request(
            "POST",
            f"/warehouse-service/warehouse/{DEMO_WAREHOUSE}/stock-correction",
            json={"corrections": [line]},
        )
        expected = float(stock_figure(client.get_product_availability([pid])[pid], settings))
        echo(
            f"   (stock correction: +{STOCK_ADDED} of product {pid} '{row.get('name')}' "
            f"in warehouse {DEMO_WAREHOUSE})"
        )

        def arrived() -> float | None:
            value = _as_number(cat.products()[str(pid)].get("bpi_availablestock"))
            return value if value == expected else None

        after, how = _wait_for(arrived, 30.0), "the on-hand webhook"
        if after is None:  # no webhook (not registered, or lost): the goods-movement poller
            cat.run_timer("poll_brightpearl_stock")
            after, how = _wait_for(arrived, 30.0), "the goods-movement poller (no webhook arrived)"
        if after is None:
            raise RuntimeError(f"timed out waiting for: the stock figure {expected:g} in Dynamics")
        echo(
            f"   -> Dynamics product {row.get('productnumber')}: bpi_availablestock "
            f"{_shown(before)} -> {_shown(after)} in {time.monotonic() - started:.1f}s (via {how})"
        )
        price_scene(cat, client, echo, pid, row, number + 1)
    finally:
        cat.close()


def price_scene(cat: Catalogue, client: Any, echo: Echo, pid: int, row: dict[str, Any], number: int) -> None:
    """A retail price change in Brightpearl reaching the product's item in the Retail GBP price
    list, when the prices flow is wired."""
    echo(f"[bold]{number}. The retail price changes in Brightpearl[/bold]")
    if PRICES_FLOW not in subscriptions():
        echo(
            f"   -> prices are not wired yet ({PRICES_FLOW} is not in infra/topology.json): "
            "Dynamics price lists are not updated by this sandbox"
        )
        return
    prices = cat.http.get(f"{cat.brightpearl}/_sandbox/state/prices").json().get(str(pid)) or {}
    breaks = dict(prices.get(str(RETAIL_GBP)) or {"1": "10.00"})
    old = breaks.get("1", "10.00")
    new = f"{float(old) * PRICE_RISE:.2f}"
    breaks["1"] = new

    def item() -> dict[str, Any] | None:
        levels = {r["pricelevelid"] for r in cat.rows("pricelevel") if r.get("name") == "Retail GBP"}
        for r in cat.rows("productpricelevel"):
            if _ref(r.get("productid")) == row["productid"] and _ref(r.get("pricelevelid")) in levels:
                return r
        return None

    found = item()
    before = _as_number(found.get("amount")) if found else None
    started = time.monotonic()
    client.request(
        "PUT",
        f"/product-service/product-price/{pid}/price-list",
        json={"priceLists": [{"priceListId": RETAIL_GBP, "quantityPrice": breaks}]},
    )
    after = _wait_for(
        lambda: (r := item()) is not None and _as_number(r.get("amount")) == float(new) and r, 60.0
    )
    if not after:
        raise RuntimeError(f"timed out waiting for: the Retail GBP price {new} in Dynamics")
    echo(
        f"   -> Dynamics price list Retail GBP, product {row.get('productnumber')}: amount "
        f"{_shown(before)} -> {_shown(_as_number(after.get('amount')))} in "
        f"{time.monotonic() - started:.1f}s (Brightpearl {old} -> {new})"
    )


def _ref(value: Any) -> Any:
    """A lookup as the simulator's admin tables show it ({"id": ...}) or a bare id."""
    return value.get("id") if isinstance(value, dict) else value
