"""The Dataverse tables the integration addresses: entity set -> primary id column and logical name."""

from __future__ import annotations

# Entity set -> primary id column for the tables the integration uses (ids in results).
PRIMARY_IDS: dict[str, str] = {
    "contacts": "contactid",
    "accounts": "accountid",
    "leads": "leadid",
    "opportunities": "opportunityid",
    "opportunityproducts": "opportunityproductid",
    "salesorders": "salesorderid",
    "salesorderdetails": "salesorderdetailid",
    "products": "productid",
    "uoms": "uomid",
    "uomschedules": "uomscheduleid",
    "pricelevels": "pricelevelid",
    "productpricelevels": "productpricelevelid",
    "incidents": "incidentid",
    "invoices": "invoiceid",
    "invoicedetails": "invoicedetailid",
    "transactioncurrencies": "transactioncurrencyid",
    "annotations": "annotationid",
    "tasks": "activityid",
    "serviceendpoints": "serviceendpointid",
    "sdkmessages": "sdkmessageid",
    "sdkmessagefilters": "sdkmessagefilterid",
    "sdkmessageprocessingsteps": "sdkmessageprocessingstepid",
    "sdkmessageprocessingstepimages": "sdkmessageprocessingstepimageid",
    "systemusers": "systemuserid",
    "organizations": "organizationid",  # the one organization row (createproductswithoutparent…)
}
# Entity set -> logical name (for @odata.type in bulk targets).
LOGICAL_NAMES: dict[str, str] = {s: pk.removesuffix("id") for s, pk in PRIMARY_IDS.items()}
LOGICAL_NAMES.update(
    {"tasks": "task", "opportunities": "opportunity", "transactioncurrencies": "transactioncurrency"}
)
