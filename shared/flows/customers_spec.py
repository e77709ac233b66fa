"""Customers: the declaration the engine, triggers, webhooks and backfill read (no flow code).

Brightpearl contacts <-> Dataverse contacts (+ parent accounts). Brightpearl accounts cannot
subscribe to contact.* events (reference §10.3), so Brightpearl changes arrive by the
contact-search poller; Dataverse changes by webhook steps on contact and account, with change
tracking as the backstop.
"""

from __future__ import annotations

from shared.sync.spec import BackfillSource, DataverseTable, EntitySpec, FlowSpec, PollerSpec

BRIGHTPEARL_CURSOR = "customers-brightpearl-contact-updatedon"
DATAVERSE_CURSORS = {
    "contacts": "customers-dataverse-delta-contacts",
    "accounts": "customers-dataverse-delta-accounts",
}
EMAIL_CHURN = "shared.anomaly.customers:EmailChurnWatch"  # anomaly: e-mail changed too often a day

CUSTOMERS = EntitySpec(
    name="customers",
    link_entity="customer",
    flows=(
        FlowSpec.between(
            "customers",
            "brightpearl",
            "dataverse",
            "shared.flows.customers_to_dataverse:CustomersToDataverse",
            record="contact",
            watch=(EMAIL_CHURN,),
        ),
        FlowSpec.between(
            "customers",
            "dataverse",
            "brightpearl",
            "shared.flows.customers_to_brightpearl:CustomersToBrightpearl",
            record="contact",
            source_entities=("contact", "account"),  # an account notice stands for its contacts
            watch=(EMAIL_CHURN,),
        ),
    ),
    pollers=(
        PollerSpec.brightpearl(
            "poll_brightpearl_contacts",
            "CUSTOMERS_BRIGHTPEARL_POLL_SCHEDULE",
            "contact poll",
            "shared.flows.pollers:BrightpearlContactPoller",
            BRIGHTPEARL_CURSOR,
        ),
        PollerSpec(
            function_name="poll_dataverse_customers",
            system="dataverse",
            schedule_setting="CUSTOMERS_DATAVERSE_POLL_SCHEDULE",
            what="Dataverse change-tracking poll",
            poller="shared.flows.pollers:DataverseChangePoller",
            cursors=tuple(DATAVERSE_CURSORS.values()),
        ),
    ),
    brightpearl_events=(),  # contact.* is not subscribable: the poller above covers Brightpearl
    dataverse_tables=(
        DataverseTable("contact", "contacts", "shared.mapping.dataverse:contact_select"),
        DataverseTable("account", "accounts", "shared.mapping.dataverse:account_select"),
    ),
    mapping_loader="shared.mapping:load_customer_mapping",
    mapping_setting="CUSTOMER_MAPPING_PATH",
    backfill_sources=(
        BackfillSource(
            "brightpearl", "contact", "shared.flows.customers_backfill:list_brightpearl_customers"
        ),
        BackfillSource("dataverse", "contact", "shared.flows.customers_backfill:list_dataverse_contacts"),
    ),
    reconciler="shared.reconcile.customers:CustomerReconcile",
)
TO_DATAVERSE, TO_BRIGHTPEARL = CUSTOMERS.flows
