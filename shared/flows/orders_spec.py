"""Orders: the declaration the engine, triggers, webhooks and backfill read (no flow code).

Dynamics sales orders -> Brightpearl sales orders (issue 13, flow orders-to-brightpearl).
Dataverse announces salesorder changes by webhook, and salesorderdetail changes, which the
flow expands to their order; Brightpearl sends nothing for this direction.

Brightpearl order status -> Dynamics salesorder state (issue 13 item 4, flow
orders-to-dataverse): Brightpearl `order` notices (`order.modified.order-status` webhooks),
mapped through mappings/order_status.yaml. Both built and unit-tested on fakes, not wired: the
spec sits in registry.BUILDING.
"""

from __future__ import annotations

from shared.sync.spec import DataverseTable, EntitySpec, FlowSpec

ORDER_COLUMNS = "shared.flows.orders_spec:order_columns"
LINE_COLUMNS = "shared.flows.orders_spec:line_columns"
STATUS_EVENT = "order.modified.order-status"

SALESORDER_COLUMNS = (
    "salesorderid",
    "ordernumber",
    "name",
    "_customerid_value",
    "_transactioncurrencyid_value",
    "freightamount",
    "discountamount",
    "discountpercentage",
    "shippingmethodcode",
    "statecode",
    "statuscode",
    "bpi_sendtobrightpearl",
    "bpi_brightpearlid",
    "modifiedon",
)
SALESORDERDETAIL_COLUMNS = (
    "salesorderdetailid",
    "_salesorderid_value",
    "_productid_value",
    "productdescription",
    "isproductoverridden",
    "quantity",
    "priceperunit",
    "manualdiscountamount",
    "tax",
    "sequencenumber",
)


def order_columns(mapping: object = None) -> tuple[str, ...]:
    """The salesorder columns whose change can make an order sync (its Update step's filter):
    the state, and the Yes/No column `trigger.flag_column` of the mapping."""
    trigger = getattr(mapping, "trigger", None)
    flag = getattr(trigger, "flag_column", None) or "bpi_sendtobrightpearl"
    return ("statecode", "statuscode", flag)


def line_columns(mapping: object = None) -> tuple[str, ...]:
    """The salesorderdetail attributes the flow reads (an edit of a line notifies its order)."""
    return (
        "productid",
        "productdescription",
        "quantity",
        "priceperunit",
        "manualdiscountamount",
        "tax",
        "sequencenumber",
    )


ORDERS = EntitySpec(
    name="orders",
    link_entity="order",
    flows=(
        FlowSpec(
            name="orders-to-brightpearl",
            source="dataverse",
            target="brightpearl",
            source_entities=("salesorder", "salesorderdetail"),
            flow="shared.flows.orders_to_brightpearl:OrdersToBrightpearl",
            record="order",
            stamp_field="modifiedon",
        ),
        FlowSpec.between(
            "orders",
            "brightpearl",
            "dataverse",
            "shared.flows.orders_to_dataverse:OrdersToDataverse",
            record="order",
        ),
    ),
    pollers=(),
    brightpearl_events=(STATUS_EVENT,),
    dataverse_tables=(
        DataverseTable("salesorder", "salesorders", ORDER_COLUMNS, messages=("Create", "Update")),
        DataverseTable("salesorderdetail", "salesorderdetails", LINE_COLUMNS),
    ),
    backfill_cursor_prefix="backfill-orders",
    mapping_loader="shared.mapping.orders_config:load_order_mapping",
    mapping_setting="ORDER_MAPPING_PATH",
)
TO_BRIGHTPEARL, TO_DATAVERSE = ORDERS.flows
