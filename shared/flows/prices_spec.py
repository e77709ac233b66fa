"""Prices: the declaration the engine, triggers, webhooks and backfill read (no flow code).

Brightpearl price lists and product prices -> Dynamics price lists (`pricelevel`) and price
list items (`productpricelevel`) (issue 12 item 2). Brightpearl has no price webhook: a price
change is announced as `product.modified` (the simulator fires it on a product-price PUT;
reference §10.3 does not say so, an assumption marked UNCONFIRMED), so this flow consumes the
Brightpearl `product` notices the products flow consumes, on a subscription of its own. A
product's prices are one record: all its items in the exported lists are written together.
The products poller (product-search by `updatedOn`, which a price change moves) is the
backstop for lost events; this entity needs no poller of its own. Dynamics never writes
prices back, so no Dataverse table is watched.
"""

from __future__ import annotations

from shared.sync.spec import BackfillSource, EntitySpec, FlowSpec

PRICES = EntitySpec(
    name="prices",
    link_entity="product",  # audit rows per Brightpearl product, as the products and stock flows'
    flows=(
        FlowSpec.between(
            "prices",
            "brightpearl",
            "dataverse",
            "shared.flows.prices_to_dataverse:PricesToDataverse",
            record="product",
            # product-price carries no stamp: the flow stamps each product with a hash of its
            # prices, so a dead letter is kept once per price version (shared/sync/outcomes.py)
            stamp_field="pricesHash",
        ),
    ),
    # no poller: the products poller's notices (product-search by updatedOn) reach this flow too;
    # no Dataverse table: Dynamics never writes prices back
    brightpearl_events=("product.created", "product.modified"),
    mapping_loader="shared.mapping.prices:load_price_settings",
    mapping_setting="PRODUCT_MAPPING_PATH",  # the `price_lists:` section of the product mapping file
    # a backfill publishes product notices, as `syncctl backfill products` does: every flow
    # consuming them (products, stock, prices) re-reads those products; unchanged ones write nothing
    backfill_sources=(
        BackfillSource("brightpearl", "product", "shared.flows.products_poller:list_brightpearl_products"),
    ),
)
(TO_DATAVERSE,) = PRICES.flows
