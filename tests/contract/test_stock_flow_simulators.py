"""The stock flow and the stock poller with the real clients against both simulators over
loopback (the state in memory): what the fakes stand for in tests/unit/flows/stock holds for the
real adapters. A Brightpearl product gets stock by stock correction; the products flow creates
its Dynamics product; the stock flow then writes `bpi_availablestock` (a Decimal column) by
UpdateMultiple, and rewrites nothing when the figure has not changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.dataverse import odata
from shared.events import Envelope
from shared.flows.products_to_dataverse import ProductsToDataverse
from shared.flows.stock_poller import BrightpearlStockPoller
from shared.flows.stock_to_dataverse import StockToDataverse
from shared.mapping.products_config import load_product_mapping
from shared.mapping.stock import StockSettings
from shared.outcomes import Completed, RetryLater
from shared.sync.fakes import MemoryStateStore
from shared.sync.ports import BrightpearlPort, DataversePort
from tests.contract.test_fakes_agree import bp_server, brightpearl, dataverse
from tests.contract.test_product_fakes_agree import dv_server
from tests.contract.test_products_flow_simulators import new_product, notice
from tests.contract.test_stock_fakes_agree import correct

__all__ = ["bp_server", "brightpearl", "dataverse", "dv_server"]

SIMULATORS = pytest.mark.parametrize(
    ("brightpearl", "dataverse"), [("simulator", "simulator")], indirect=True
)


def flows(
    bp: BrightpearlPort, dv: DataversePort, settings: StockSettings
) -> tuple[ProductsToDataverse, StockToDataverse]:
    ports: dict[str, Any] = {
        "brightpearl": bp,
        "dataverse": dv,
        "store": MemoryStateStore(),
        "publish": lambda e: None,
    }
    return ProductsToDataverse(mapping=load_product_mapping(), **ports), StockToDataverse(
        settings=settings, **ports
    )


def stock(dv: DataversePort, product_id: int) -> Any:
    [row] = dv.query(
        "products", select=["bpi_availablestock"], filter=odata.eq("bpi_brightpearlid", str(product_id))
    )
    value = row.get("bpi_availablestock")
    return None if value is None else float(value)


@SIMULATORS
def test_stock_reaches_dynamics_after_the_products_flow_created_the_product(
    brightpearl: BrightpearlPort, dataverse: DataversePort
) -> None:
    products, stock_flow = flows(brightpearl, dataverse, StockSettings(warehouses=(2, 3)))
    product_id = new_product(brightpearl, f"SKU-{uuid.uuid4().hex[:8]}")
    correct(brightpearl, product_id, 2, 5)
    correct(brightpearl, product_id, 3, 2)
    correct(brightpearl, product_id, 4, 40)  # not a configured warehouse

    first = stock_flow.handle([notice(product_id)])[0]
    assert isinstance(first, RetryLater) and first.reason == "ProductNotInDynamics"

    assert isinstance(products.handle([notice(product_id)])[0], Completed)
    retry = notice(product_id).model_copy(update={"attempt": 2})
    assert isinstance(stock_flow.handle([retry])[0], Completed)
    assert stock(dataverse, product_id) == 7

    correct(brightpearl, product_id, 2, -1)
    assert isinstance(stock_flow.handle([notice(product_id), notice(product_id)])[0], Completed)
    assert stock(dataverse, product_id) == 6


@SIMULATORS
def test_an_untracked_product_keeps_its_figure_and_the_poller_finds_moved_products(
    brightpearl: BrightpearlPort, dataverse: DataversePort
) -> None:
    products, stock_flow = flows(brightpearl, dataverse, StockSettings())
    untracked = int(
        brightpearl.request(
            "POST",
            "/product-service/product/",
            json={
                "brandId": 1,
                "identity": {"sku": f"SVC-{uuid.uuid4().hex[:8]}"},
                "salesChannels": [{"salesChannelName": "Brightpearl", "productName": "Fitting service"}],
                "stock": {"stockTracked": False},
            },
        ).response
    )
    moved = new_product(brightpearl, f"SKU-{uuid.uuid4().hex[:8]}")
    products.handle([notice(untracked, moved)])
    since = datetime.now(UTC)
    correct(brightpearl, moved, 2, 3)

    published: list[Envelope] = []
    BrightpearlStockPoller(
        client=brightpearl,
        cursors=MemoryStateStore().cursors,
        publish=published.extend,
        clock=lambda: datetime.now(UTC),
        source="/brightpearl/contract",
        overlap=timedelta(seconds=1),
        initial_lookback=datetime.now(UTC) - since + timedelta(seconds=1),
    ).poll()
    named = [i for e in published for i in e.notice.ids]
    assert str(moved) in named and str(untracked) not in named

    assert all(isinstance(o, Completed) for o in stock_flow.handle([*published, notice(untracked)]))
    assert stock(dataverse, moved) == 3
    assert stock(dataverse, untracked) is None  # never zeroed
