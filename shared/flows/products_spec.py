"""Products: the declaration the engine, triggers, webhooks and backfill read (no flow code).

Brightpearl products -> Dynamics products (issue 12 item 1). Brightpearl announces product
changes by webhook (product.created / .modified / .destroyed, reference §10.3); the
product-search poller by `updatedOn` is the backstop for lost events. Dynamics -> Brightpearl
for Dynamics-owned fields (item 5) is off, so no Dataverse table is watched.
"""

from __future__ import annotations

from shared.sync.spec import BackfillSource, EntitySpec, FlowSpec, PollerSpec

BRIGHTPEARL_CURSOR = "products-brightpearl-product-updatedon"

PRODUCTS = EntitySpec(
    name="products",
    link_entity="product",
    flows=(
        FlowSpec(
            name="products-to-dataverse",
            source="brightpearl",
            target="dataverse",
            source_entities=("product",),
            flow="shared.flows.products_to_dataverse:ProductsToDataverse",
            record="product",
            stamp_field="updatedOn",
        ),
    ),
    pollers=(
        PollerSpec(
            function_name="poll_brightpearl_products",
            system="brightpearl",
            schedule_setting="BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
            what="Brightpearl product poll",
            poller="shared.flows.products_poller:BrightpearlProductPoller",
            cursors=(BRIGHTPEARL_CURSOR,),
        ),
    ),
    brightpearl_events=("product.created", "product.modified", "product.destroyed"),
    dataverse_tables=(),  # Dynamics -> Brightpearl (item 5) is not built: nothing to watch
    backfill_cursor_prefix="backfill-products",
    mapping_loader="shared.mapping.products_config:load_product_mapping",
    mapping_setting="PRODUCT_MAPPING_PATH",
    backfill_sources=(
        BackfillSource("brightpearl", "product", "shared.flows.products_poller:list_brightpearl_products"),
    ),
)
(TO_DATAVERSE,) = PRODUCTS.flows
