"""The sandbox's catalogue (issue 12 item 7) through the whole sandbox: what `syncctl sandbox up`
seeds (sandbox/catalogue_demo.py `prepare_catalogue`: a Brightpearl catalogue, Dynamics' unit
group, currencies and price lists, then a products backfill and a stock sweep) leaves Dynamics
showing the catalogue; the demo's catalogue scene shows a Brightpearl stock correction arriving in
Dynamics. A small catalogue (40 products, the seed's smallest) keeps them quick.

The host runs on a fake clock: while `prepare_catalogue` waits, the test moves the clock past
the retry copies the flows schedule (a price of a product the products flow has not created
yet is retried), as time would pass in the running sandbox."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sandbox.catalogue_demo import CatalogueReport, catalogue_scene, prepare_catalogue, subscriptions
from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.stock.conftest import PRODUCTS_FLOW, STOCK_FLOW, StockSandbox

PRODUCTS = 40
ACTIVE, RETIRED = 0, 1  # statecode


def _while_time_passes(st: StockSandbox, work: Callable[[], Any]) -> Any:
    """Run `work` in a thread; meanwhile move the host's fake clock past scheduled retry copies
    whenever the host is idle."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    flows = sorted(subscriptions())
    while thread.is_alive():
        thread.join(0.3)
        st.sb.host.wait_idle(timeout=60)
        if any(st.sb.bus.counts(BP_TOPIC, f).scheduled for f in flows):
            st.sb.clock.advance(61)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _prepare(st: StockSandbox, lines: list[str]) -> CatalogueReport:
    values = st.sb.values
    return _while_time_passes(
        st,
        lambda: prepare_catalogue(
            values,
            lines.append,
            host=st.sb.host.api_url,
            master_key=values["LOCAL_MASTER_KEY"],
            products=PRODUCTS,
            timeout=60,
            own_runtime=False,  # the fixture's runtime (bus, store, clients on the fake clock)
            bus=st.sb.bus,
        ),
    )


def test_sandbox_up_seeding_leaves_dynamics_showing_the_catalogue(stock_sandbox: StockSandbox) -> None:
    st = stock_sandbox
    lines: list[str] = []

    report = _prepare(st, lines)

    state = st.sb.bp_sim.state
    seeded = report.seeded
    assert seeded["products"] == PRODUCTS == len(state.products)
    assert seeded["warehouses"] == [2, 3] and len(seeded["sellPriceLists"]) == 3
    assert seeded["notStockTracked"] and seeded["archived"]
    # Dynamics shows every product, live ones Active and archived ones Retired
    rows = st.sb.products()
    assert sorted(int(k) for k in rows) == sorted(state.products)
    assert report.published == report.in_dynamics == PRODUCTS
    for pid in seeded["archived"]:
        assert rows[str(pid)]["statecode"] == RETIRED
    live = [pid for pid, p in state.products.items() if p["status"] == "LIVE"]
    assert all(rows[str(pid)]["statecode"] == ACTIVE for pid in live)
    # the stock sweep filled in each stock-tracked product's figure, Brightpearl's on-hand total
    for pid in live:
        figure = st.stock(pid)
        if pid in seeded["notStockTracked"]:
            assert figure is None, pid  # a service: never given stock
        else:
            assert figure == sum(state.stock[pid].values()), pid
    assert report.with_stock == len(live) - len(seeded["notStockTracked"])  # archived: left alone
    # every live product's quantity-1 price in the three sell lists is a price list item
    if report.price_items is not None:
        assert report.price_items == len(live) * 3 == len(st.sb.dv.rows("productpricelevel"))
    # the reference data the mapping names, both currencies, both seeded price lists
    currencies = {r["isocurrencycode"] for r in st.sb.dv.rows("transactioncurrency")}
    assert {"GBP", "EUR"} <= currencies
    price_lists = {r["name"] for r in st.sb.dv.rows("pricelevel")}
    assert {"Retail GBP", "Retail EUR"} <= price_lists
    assert st.sb.dead_letters(BP_TOPIC, PRODUCTS_FLOW) == []
    assert st.sb.dead_letters(BP_TOPIC, STOCK_FLOW) == []
    # progress as the user sees it
    text = "\n".join(lines)
    assert f"seeded a Brightpearl catalogue of {PRODUCTS} products" in text
    assert f"products in Dynamics: {PRODUCTS} of {PRODUCTS}" in text
    assert f"Dynamics shows {PRODUCTS} products" in text


def test_the_demo_catalogue_scene_shows_a_stock_correction_arriving_in_dynamics(
    stock_sandbox: StockSandbox,
) -> None:
    st = stock_sandbox
    _prepare(st, [])
    lines: list[str] = []

    _while_time_passes(
        st,
        lambda: catalogue_scene(
            st.sb.values,
            st.sb.bp,
            lines.append,
            host=st.sb.host.api_url,
            master_key=st.sb.values["LOCAL_MASTER_KEY"],
        ),
    )

    text = "\n".join(lines)
    assert "7. A warehouse user corrects stock in Brightpearl" in text
    [arrived] = [line for line in lines if "bpi_availablestock" in line]
    before, after = arrived.split("bpi_availablestock ")[1].split(" in ")[0].split(" -> ")
    assert float(after) == float(before) + 12  # the corrected figure, +12 in warehouse 2
    assert "via the on-hand webhook" in arrived
    pid = int(next(line for line in lines if "stock correction: +12 of product" in line).split()[5])
    assert st.stock(pid) == float(after) == sum(st.sb.bp_sim.state.stock[pid].values())
    assert "8. The retail price changes in Brightpearl" in text
    if "prices-to-dataverse" in subscriptions():
        assert "Dynamics price list Retail GBP" in text
    else:
        assert "prices are not wired yet" in text


def test_the_demo_catalogue_scene_says_so_when_the_sandbox_has_no_catalogue(
    stock_sandbox: StockSandbox,
) -> None:
    """`sandbox up --no-catalogue`: the scene names what to do instead of failing."""
    lines: list[str] = []
    values = stock_sandbox.sb.values
    catalogue_scene(
        values, stock_sandbox.sb.bp, lines.append, host=stock_sandbox.sb.host.api_url, master_key=""
    )
    assert "Dynamics has no catalogue product to show" in lines[-1]
    assert "without --no-catalogue" in lines[-1]
