"""Orders: the declaration the engine, triggers, webhooks and backfill read (no flow code).

Dynamics sales orders -> Brightpearl sales orders (issue 13, flow orders-to-brightpearl).
Dataverse announces salesorder changes by webhook, and salesorderdetail changes, which the
flow expands to their order; a deleted line cannot be read, so its Delete step's pre-entity
image names the order, which the ingress announces as updated (DataverseTable.delete_image).
Brightpearl sends nothing for this direction.

Brightpearl order status -> Dynamics salesorder state (issue 13 item 4, flow
orders-to-dataverse): Brightpearl `order` notices (`order.modified.order-status` webhooks),
mapped through mappings/order_status.yaml. The same flow copies Brightpearl-born orders to
Dynamics first (issue 14 item 1, `sales-order.created`; shared/flows/orders_history.py).
Backstop of the Dataverse webhooks: change tracking on salesorder and salesorderdetail
(poll_dataverse_orders).
"""

from __future__ import annotations

from pathlib import Path

from shared.sync.spec import BackfillSource, DataverseTable, EntitySpec, FlowSpec, PollerSpec

ORDER_COLUMNS = "shared.flows.orders_spec:order_columns"
LINE_COLUMNS = "shared.flows.orders_spec:line_columns"
OPPORTUNITY_COLUMNS = "shared.flows.orders_spec:opportunity_columns"
STATUS_EVENT = "order.modified.order-status"
# Shipments: Brightpearl raises these with goods-out note ids (the flow maps them to their orders)
# and with the order id once everything has shipped (reference §8.3, §10.3). Invoicing and
# payments raise no documented event: the order-search poller below brings them.
GOODS_OUT_ENTITY = "goods-out-note"
SHIPMENT_EVENTS = (
    "goods-out-note.modified.shipped",
    "goods-out-note.modified",
    "order.modified.fully-shipped",
)
# A new order (POST /order-service/sales-order/, every channel's) raises sales-order.created with
# resource type `sales-order` (reference §10.3): its notices are orders too (order history,
# shared/flows/orders_history.py); the order-search poller is its backstop.
SALES_ORDER_ENTITY = "sales-order"
CREATED_EVENT = "sales-order.created"
BRIGHTPEARL_ORDER_CURSOR = "orders-brightpearl-order-updatedon"
DATAVERSE_ORDER_CURSORS = {
    "salesorders": "orders-dataverse-delta-salesorders",
    "salesorderdetails": "orders-dataverse-delta-salesorderdetails",
}

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
    "bpi_origin",  # Brightpearl: a Brightpearl-born order, never sent back (orders_history.py)
    "_opportunityid_value",  # the opportunity it was made from (one order per sale)
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


def order_mapping_path() -> Path:
    """The mapping file the ORDER_MAPPING_PATH setting names; a relative path is resolved against
    the app root (as CUSTOMER_MAPPING_PATH is), so one value works in Azure and locally."""
    from shared import runtime

    return runtime.app_file(runtime.settings().orders.mapping_path)


def order_columns(mapping: object = None) -> tuple[str, ...]:
    """The salesorder columns whose change can make an order sync (its Update step's filter):
    the state, the Yes/No column `trigger.flag_column` of the mapping, and the header amounts a
    linked order's rows follow (freight, order discount: changes after creation)."""
    trigger = getattr(mapping, "trigger", None)
    flag = getattr(trigger, "flag_column", None) or "bpi_sendtobrightpearl"
    return ("statecode", "statuscode", flag, "freightamount", "discountamount", "discountpercentage")


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


def opportunity_columns(mapping: object = None) -> tuple[str, ...]:
    """The opportunity columns whose change can make an order: its state (won), only while
    `trigger.opportunity_won` is on; off, none, so no webhook step is registered for it."""
    trigger = getattr(mapping, "trigger", None)
    return ("statecode", "statuscode") if getattr(trigger, "opportunity_won", False) else ()


ORDERS = EntitySpec(
    name="orders",
    link_entity="order",
    flows=(
        FlowSpec(
            name="orders-to-brightpearl",
            source="dataverse",
            target="brightpearl",
            source_entities=("salesorder", "salesorderdetail", "opportunity"),
            flow="shared.flows.orders_to_brightpearl:OrdersToBrightpearl",
            record="order",
            stamp_field="modifiedon",
            watch=("shared.anomaly.orders:OrderValueWatch",),
        ),
        FlowSpec.between(
            "orders",
            "brightpearl",
            "dataverse",
            "shared.flows.orders_to_dataverse:OrdersToDataverse",
            record="order",
            source_entities=("order", GOODS_OUT_ENTITY, SALES_ORDER_ENTITY),
        ),
    ),
    pollers=(
        PollerSpec(
            function_name="poll_dataverse_orders",
            system="dataverse",
            schedule_setting="ORDERS_DATAVERSE_POLL_SCHEDULE",
            what="Dataverse order change-tracking poll",
            poller="shared.flows.pollers:OrderChangePoller",
            cursors=tuple(DATAVERSE_ORDER_CURSORS.values()),
        ),
        # the backstop of the write-back: order-search by updatedOn (invoices and payments too)
        PollerSpec.brightpearl(
            "poll_brightpearl_orders",
            "BRIGHTPEARL_ORDER_POLL_SCHEDULE",
            "order poll",
            "shared.flows.orders_poller:BrightpearlOrderPoller",
            BRIGHTPEARL_ORDER_CURSOR,
        ),
    ),
    brightpearl_events=(STATUS_EVENT, *SHIPMENT_EVENTS, CREATED_EVENT),
    dataverse_tables=(
        DataverseTable("salesorder", "salesorders", ORDER_COLUMNS, messages=("Create", "Update")),
        # a line's Delete names only the line: its pre-image names the order, announced as changed
        DataverseTable("salesorderdetail", "salesorderdetails", LINE_COLUMNS, delete_image=("salesorderid",)),
        # a won opportunity makes the order (trigger.opportunity_won; shared/flows/orders_opportunity.py)
        DataverseTable("opportunity", "opportunities", OPPORTUNITY_COLUMNS, messages=("Update",)),
    ),
    # Dataverse is the master of the orders it raises: `syncctl backfill orders --since DATE` lists
    # its salesorders; `--from brightpearl` lists Brightpearl's sales orders (order history)
    backfill_sources=(
        BackfillSource("dataverse", "salesorder", "shared.flows.orders_backfill:list_dataverse_orders"),
        BackfillSource("brightpearl", "order", "shared.flows.orders_backfill:list_brightpearl_orders"),
    ),
    backfill_cursor_prefix="backfill-orders",
    mapping_loader="shared.mapping.orders_config:load_order_mapping",
    mapping_setting="ORDER_MAPPING_PATH",
)
TO_BRIGHTPEARL, TO_DATAVERSE = ORDERS.flows
