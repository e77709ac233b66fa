"""Invoices and payments: the declaration the engine, triggers and tests read (no flow code).

Brightpearl invoices -> Dynamics invoices (issue 14 item 3, flow invoices-to-dataverse): every
Brightpearl `order` notice (order webhooks, the order-search poller, and the customer-payment
poller below) brings the order; an invoiced sales order (`invoices[].invoiceReference`,
reference brightpearl-api.md §6.4) becomes one Dynamics invoice with its lines, linked to the
order's salesorder through the `order` link, and its payments set it Paid or Partial with the
amount paid. Customer payments raise no webhook (reference §10.3): `poll_brightpearl_payments`
searches `customer-payment-search` by `createdOn` and publishes `order` notices for the orders
paid or refunded, which every `order` consumer sees.
"""

from __future__ import annotations

from shared.sync.spec import BackfillSource, EntitySpec, FlowSpec, PollerSpec

PAYMENT_CURSOR = "invoices-brightpearl-payment-createdon"

INVOICES = EntitySpec(
    name="invoices",
    link_entity="invoice",
    flows=(
        FlowSpec.between(
            "invoices",
            "brightpearl",
            "dataverse",
            "shared.flows.invoices_to_dataverse:InvoicesToDataverse",
            record="order",
            source_entities=("order",),
        ),
    ),
    pollers=(
        PollerSpec.brightpearl(
            "poll_brightpearl_payments",
            "BRIGHTPEARL_PAYMENT_POLL_SCHEDULE",
            "customer payment poll",
            "shared.flows.invoices_poller:BrightpearlPaymentPoller",
            PAYMENT_CURSOR,
        ),
    ),
    # `syncctl backfill invoices [--since DATE]`: the orders of Brightpearl's customer payments
    backfill_sources=(
        BackfillSource("brightpearl", "order", "shared.flows.invoices_backfill:list_brightpearl_paid_orders"),
    ),
    mapping_loader="shared.mapping.orders_config:load_order_mapping",
    mapping_setting="ORDER_MAPPING_PATH",
)
(TO_DATAVERSE,) = INVOICES.flows
