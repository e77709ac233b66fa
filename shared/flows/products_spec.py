"""Products: the declaration the engine, triggers, webhooks and backfill read (no flow code).

Brightpearl products -> Dynamics products (issue 12 item 1). Brightpearl announces product
changes by webhook (product.created / .modified / .destroyed, reference §10.3); the
product-search poller by `updatedOn` is the backstop for lost events. Dynamics -> Brightpearl
for Dynamics-owned fields (item 5, products-to-brightpearl) is off by default: the product
table's webhook step watches the columns `write_back_columns` gives, none (so no step is
registered) until mappings/products.yaml gives Dynamics a group it writes back (description).
"""

from __future__ import annotations

from shared.sync.spec import BackfillSource, DataverseTable, EntitySpec, FlowSpec, PollerSpec

BRIGHTPEARL_CURSOR = "products-brightpearl-product-updatedon"

PRODUCTS = EntitySpec(
    name="products",
    link_entity="product",
    flows=(
        FlowSpec.between(
            "products",
            "brightpearl",
            "dataverse",
            "shared.flows.products_to_dataverse:ProductsToDataverse",
            record="product",
        ),
        FlowSpec.between(
            "products",
            "dataverse",
            "brightpearl",
            "shared.flows.products_to_brightpearl:ProductsToBrightpearl",
            record="product",
        ),
    ),
    pollers=(
        PollerSpec.brightpearl(
            "poll_brightpearl_products",
            "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
            "product poll",
            "shared.flows.products_poller:BrightpearlProductPoller",
            BRIGHTPEARL_CURSOR,
        ),
    ),
    brightpearl_events=("product.created", "product.modified", "product.destroyed"),
    # watched only while Dynamics owns a group it writes back (none by default: no step); only
    # edits matter (a product made in Dynamics is never created in Brightpearl, nor one deleted)
    dataverse_tables=(
        DataverseTable(
            "product", "products", "shared.mapping.products:write_back_columns", messages=("Update",)
        ),
    ),
    mapping_loader="shared.mapping.products_config:load_product_mapping",
    mapping_setting="PRODUCT_MAPPING_PATH",
    backfill_sources=(
        BackfillSource("brightpearl", "product", "shared.flows.products_poller:list_brightpearl_products"),
    ),
)
TO_DATAVERSE, TO_BRIGHTPEARL = PRODUCTS.flows
