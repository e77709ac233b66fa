"""Stock: the declaration the engine, triggers, webhooks and pollers read (no flow code).

Brightpearl stock -> Dynamics `bpi_availablestock` (issue 12 items 3 and 4). The stock flow
consumes `product-stock` notices, which only it needs (so the products flow is not woken by
them): the ingress routes `product.modified.on-hand-modified` webhooks (stock corrections and
goods-in raise it, reference §8.4) as `product-stock` (shared/routing.py EVENT_ENTITIES), and
so do the stock poller's (goods-movement-search by
`updatedOn`, the backstop for lost stock webhooks) and the stock sweep's (a rolling re-read of
the products Dynamics has, a few hundred a minute, for what no goods movement shows:
allocation); see docs/architecture.md "Stock backstop". It does not take `product` notices
(created, modified): a new product has no stock until a goods-in or correction raises
on-hand-modified (retried while the products flow creates it), and the sweep fills in the
figure of any product Dynamics has, including after a products backfill.

Goods-in and goods-out note events (§10.3) name notes, not products, so they are not consumed:
goods-in raises on-hand-modified itself, and a shipped goods-out note leaves a goods movement
the poller sees.
"""

from __future__ import annotations

from shared.sync.spec import EntitySpec, FlowSpec, PollerSpec

STOCK_CURSOR = "stock-brightpearl-goods-movement-updatedon"
SWEEP_CURSOR = "stock-sweep-dataverse-brightpearlid"  # the last product id the rolling re-read named
STOCK_EVENT = "product.modified.on-hand-modified"
SWEEP = "sweep"  # detail flag of the sweep's notices
STOCK_ENTITY = "product-stock"  # "these products' stock may have changed": only the stock flow wants it

STOCK = EntitySpec(
    name="stock",
    link_entity="product",
    flows=(
        # stamp: updatedOn, though availability has none; a stock record is never fatal
        FlowSpec.between(
            "stock",
            "brightpearl",
            "dataverse",
            "shared.flows.stock_to_dataverse:StockToDataverse",
            record="product",
            source_entities=(STOCK_ENTITY,),
            watch=("shared.anomaly.stock:StockWatch",),
        ),
    ),
    pollers=(
        PollerSpec.brightpearl(
            "poll_brightpearl_stock",
            "BRIGHTPEARL_STOCK_POLL_SCHEDULE",
            "stock poll",
            "shared.flows.stock_poller:BrightpearlStockPoller",
            STOCK_CURSOR,
        ),
        PollerSpec.brightpearl(
            "sweep_brightpearl_stock",
            "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE",
            "stock sweep",
            "shared.flows.stock_poller:BrightpearlStockSweep",
            SWEEP_CURSOR,
        ),
    ),
    brightpearl_events=(STOCK_EVENT,),
    # no Dataverse table: Dynamics never writes stock back
    mapping_loader="shared.mapping.stock:load_stock_settings",
    mapping_setting="PRODUCT_MAPPING_PATH",  # the `stock:` section of the product mapping file
)
(TO_DATAVERSE,) = STOCK.flows
