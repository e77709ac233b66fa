"""Fulfilment: the declaration the engine, triggers and webhooks read (no flow code).

Brightpearl sales orders -> Brightpearl reservations and goods-out notes, and the reserved and
released quantities -> the Dynamics order lines (issue 18 item 1, flow fulfilment-to-brightpearl,
shared/flows/fulfilment.py). Configured by the `fulfilment:` section of mappings/orders.yaml
(shared/mapping/fulfilment_config.py; off by default).

Notices it consumes, through its own subscription:
- `order`: the order webhooks (`order.modified.order-status`: a status trigger) and the
  order-search poller (payments: the `paid` trigger), as orders-to-dataverse sees them;
- `sales-order`: `sales-order.created` (reference §10.3), which a sales-order POST raises (the
  orders flow creates orders so): the `immediately` trigger;
- `product-stock`: the stock flow's notices (`product.modified.on-hand-modified` webhooks routed
  by shared/routing.py, the goods-movement poller): stock arrived, so the orders waiting for those
  products (an index in the state store) are reserved again. Nothing polls in a loop.
"""

from __future__ import annotations

from shared.flows.stock_spec import STOCK_ENTITY
from shared.sync.spec import EntitySpec, FlowSpec

ORDER_CREATED_EVENT = "sales-order.created"
SALES_ORDER_ENTITY = "sales-order"  # the resource type of sales-order.created

FULFILMENT = EntitySpec(
    name="fulfilment",
    link_entity="order",  # audit rows sit beside the order's other flows
    flows=(
        FlowSpec.between(
            "fulfilment",
            "brightpearl",
            "brightpearl",
            "shared.flows.fulfilment:FulfilmentToBrightpearl",
            record="order",
            source_entities=("order", SALES_ORDER_ENTITY, STOCK_ENTITY),
        ),
    ),
    brightpearl_events=(ORDER_CREATED_EVENT,),
    mapping_loader="shared.mapping.orders_config:load_order_mapping",
    mapping_setting="ORDER_MAPPING_PATH",  # the fulfilment: section of the order mapping
)
(TO_BRIGHTPEARL,) = FULFILMENT.flows
