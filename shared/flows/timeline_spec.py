"""Timeline: the declaration the engine, triggers and mapping checks read (no flow code).

Brightpearl key moments -> notes or tasks on the Dynamics customer's timeline (issue 14 item 7,
flow timeline-to-dataverse): `order` notices (order webhooks, the order-search poller, the
payment poller's notices of orders whose payments changed), `sales-order` notices (the
`sales-order.created` webhook of a new order), `goods-out-note` notices (shipped
notes) and `sales-credit` notices (returns, the credit poller). Brightpearl is the only source;
nothing travels back, so there are no webhook steps, pollers or backfill of its own: the orders
and credits pollers already announce every change this flow reads.
"""

from __future__ import annotations

from pathlib import Path

from shared.sync.spec import EntitySpec, FlowSpec

ORDER_ENTITY = "order"
SALES_ORDER_ENTITY = "sales-order"  # sales-order.created (reference §10.3): a new order, any channel
GOODS_OUT_ENTITY = "goods-out-note"
SALES_CREDIT_ENTITY = "sales-credit"


def timeline_mapping_path() -> Path:
    """The mapping file TIMELINE_MAPPING_PATH names (relative: against the app root)."""
    from shared import runtime

    return runtime.app_file(runtime.settings().orders.timeline_mapping_path)


TIMELINE = EntitySpec(
    name="timeline",
    link_entity="timeline",  # Brightpearl moment key (order_placed:<id>) <-> Dynamics activity id
    flows=(
        FlowSpec.between(
            "timeline",
            "brightpearl",
            "dataverse",
            "shared.flows.timeline_to_dataverse:TimelineToDataverse",
            record="moment",
            source_entities=(ORDER_ENTITY, SALES_ORDER_ENTITY, GOODS_OUT_ENTITY, SALES_CREDIT_ENTITY),
        ),
    ),
    mapping_loader="shared.mapping.timeline_config:load_timeline_mapping",
    mapping_setting="TIMELINE_MAPPING_PATH",
)
(TO_DATAVERSE,) = TIMELINE.flows
