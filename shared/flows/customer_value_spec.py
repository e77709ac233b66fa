"""Customer value: the declaration the engine, triggers and timers read (no flow code).

Brightpearl sales orders and sales credits -> the customer's figures on the Dynamics contact
and its parent account (issue 14 items 4-5): flow customer-value-to-dataverse records each
transaction's contribution (`order` notices: order webhooks, the order-search and
customer-payment pollers; `sales-credit` notices: the sales-credit poller); the flush timer
writes customers whose figures changed, once each; the nightly recompute re-reads a share of the
customers from Brightpearl, reports drift and fixes it.
"""

from __future__ import annotations

from shared.sync.spec import EntitySpec, FlowSpec, PollerSpec

CREDIT_ENTITY = "sales-credit"
RECOMPUTE_CURSOR = "customer-value-recompute"

CUSTOMER_VALUE = EntitySpec(
    name="customer-value",
    link_entity="order",  # audit rows sit with the Brightpearl order or credit they are about
    flows=(
        FlowSpec.between(
            "customer-value",
            "brightpearl",
            "dataverse",
            "shared.flows.customer_value_to_dataverse:CustomerValueToDataverse",
            record="order",
            source_entities=("order", CREDIT_ENTITY),
        ),
    ),
    pollers=(
        PollerSpec(
            function_name="flush_customer_value",
            system="dataverse",
            schedule_setting="CUSTOMER_VALUE_FLUSH_SCHEDULE",
            what="customer value flush",
            poller="shared.flows.customer_value_flush:CustomerValueFlush",
            cursors=(),  # keeps no cursor: the customers to write are marked in the store
        ),
        PollerSpec.brightpearl(
            "recompute_customer_value",
            "CUSTOMER_VALUE_RECOMPUTE_SCHEDULE",
            "customer value recompute",
            "shared.flows.customer_value_recompute:CustomerValueRecompute",
            RECOMPUTE_CURSOR,
        ),
    ),
    mapping_loader="shared.flows.customer_value_config:load_customer_value_mapping",
    mapping_setting="CUSTOMER_VALUE_MAPPING_PATH",
)
(TO_DATAVERSE,) = CUSTOMER_VALUE.flows
