"""Schema as code: the Dataverse columns, choices, alternate keys and change tracking the
mappings need, as a plan (`schema_plan()`), and the Web API metadata bodies and paths for them.

`schema_plan()` derives the plan from the mappings (mappings/*.yaml through shared.mapping):
every column the translators read or write, typed from the mapping (custom fields) or the
column catalogue (shared/mapping/columns.py); the alternate key on each `bpi_brightpearlid`
key column; change tracking on the tables the Dataverse poller reads. The product table
(mappings/products.yaml, issue 12) is part of the plan when the products entity is wired
(shared/sync/registry.py `ENTITIES`) or when asked for (`include_products=True`, the
`--products` option of `syncctl dataverse check|provision`). `syncctl dataverse check`
(environment_check.py) compares an environment with the plan; `syncctl dataverse provision`
(provision.py) applies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from shared.dataverse import odata
from shared.mapping import CustomerMapping, load_customer_mapping, required_columns
from shared.mapping.columns import dataverse_column
from shared.mapping.orders_config import OrderMapping, load_order_mapping
from shared.mapping.products_config import ProductMapping, load_product_mapping

ColumnKind = Literal["string", "memo", "boolean", "picklist", "integer", "decimal", "money", "datetime"]

# Column kind -> (AttributeMetadata type, AttributeType as the metadata API reports it).
METADATA_TYPES: dict[ColumnKind, tuple[str, str]] = {
    "string": ("StringAttributeMetadata", "String"),
    "memo": ("MemoAttributeMetadata", "Memo"),
    "boolean": ("BooleanAttributeMetadata", "Boolean"),
    "picklist": ("PicklistAttributeMetadata", "Picklist"),
    "integer": ("IntegerAttributeMetadata", "Integer"),
    "decimal": ("DecimalAttributeMetadata", "Decimal"),
    "money": ("MoneyAttributeMetadata", "Money"),
    "datetime": ("DateTimeAttributeMetadata", "DateTime"),
}
_CATALOGUE_KINDS: dict[str, ColumnKind] = {
    "string": "string",
    "memo": "memo",
    "boolean": "boolean",
    "picklist": "picklist",
    "integer": "integer",
    "date": "datetime",
    "datetime": "datetime",
}
_CUSTOM_FIELD_KINDS: dict[str, ColumnKind] = {
    "text": "string",
    "textarea": "memo",
    "yesno": "boolean",
    "integer": "integer",
    "date": "datetime",
    "select": "picklist",
}
STOCK_COLUMN = "bpi_availablestock"  # product: available stock (contracts, issue 12)
LABELS = {
    "bpi_brightpearlid": "Brightpearl ID",
    "bpi_customergroup": "Customer group",
    "bpi_tags": "Brightpearl tags",
    "bpi_newsletteroptin": "Newsletter opt-in",
    "bpi_availablestock": "Available stock",
}
# Decimal columns (DecimalAttributeMetadata): Precision 0-10 and MinValue/MaxValue within
# +-100 billion (reference dataverse-api.md §14.2, from the SDK constants [SDKLIM] and
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api
# [COLDEF], whose decimal example sends Precision, MinValue and MaxValue beside the common
# SchemaName, DisplayName, Description and RequiredLevel).
DECIMAL_PRECISION_RANGE = (0, 10)
DECIMAL_LIMIT = 100_000_000_000
MONEY_LIMIT = 922_337_203_685_477  # Money's range (reference dataverse-api.md)
DECIMAL_PRECISION = 2  # default: quantities and stock figures with two decimals
LANGUAGE_CODE = 1033  # labels are written in English (MSCRM.MergeLabels keeps other languages)
METADATA_HEADERS = {"Consistency": "Strong"}  # skip metadata caches right after a change (§14.1)


@dataclass(frozen=True)
class ColumnSpec:
    """One column a mapping reads or writes. `custom` columns are ours to create."""

    name: str  # logical name (lower case); also used as the SchemaName when created
    kind: ColumnKind
    label: str
    custom: bool
    max_length: int | None = None
    options: tuple[tuple[int, str], ...] = ()  # picklist: (value, label)
    precision: int | None = None  # decimal: digits after the point (default DECIMAL_PRECISION)

    @property
    def attribute_type(self) -> str:
        return METADATA_TYPES[self.kind][1]


@dataclass(frozen=True)
class KeySpec:
    """An alternate key (EntityKeyMetadata) on one or more columns."""

    name: str  # SchemaName, e.g. bpi_contact_brightpearlid
    columns: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class TableSpec:
    table: str
    columns: tuple[ColumnSpec, ...]
    keys: tuple[KeySpec, ...] = ()
    change_tracking: bool = False

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class SchemaPlan:
    tables: tuple[TableSpec, ...]


# --- the plan, from the mappings ------------------------------------------------------------


def _prefix_of(name: str, prefixes: Iterable[str]) -> str | None:
    return next((p for p in prefixes if name.startswith(p)), None)


def _column_spec(table: str, name: str, mapping: CustomerMapping) -> ColumnSpec:
    prefixes = mapping.dataverse.custom_column_prefixes
    custom = _prefix_of(name, prefixes) is not None
    for cf in mapping.custom_fields:
        if cf.dataverse == name and table == "contact":
            kind = _CUSTOM_FIELD_KINDS[cf.type]
            length = None
            if kind in ("string", "memo"):
                length = cf.max_length or (2000 if kind == "memo" else 100)
            options = tuple((int(o.dataverse), str(o.value)) for o in cf.options)
            return ColumnSpec(name, kind, cf.name.replace("_", " ").capitalize(), custom, length, options)
    known = dataverse_column(table, name)
    if known is not None:
        kind = _CATALOGUE_KINDS.get(known.type, "string")
        return ColumnSpec(name, kind, LABELS.get(name, name), custom, known.max_length)
    if name == mapping.dataverse.marketing_consent.column:
        return ColumnSpec(name, "boolean", LABELS.get(name, "Newsletter opt-in"), custom)
    return ColumnSpec(name, "string", LABELS.get(name, name), custom, 100)


def _key_spec(table: str, column: str, prefixes: Iterable[str]) -> KeySpec:
    prefix = _prefix_of(column, prefixes) or ""
    return KeySpec(
        f"{prefix}{table}_{column.removeprefix(prefix)}", (column,), f"{LABELS.get(column, column)} key"
    )


def plan_for_customers(mapping: CustomerMapping) -> list[TableSpec]:
    """The customer mapping's tables: contact (+ account when the parent account is synced)."""
    prefixes = mapping.dataverse.custom_column_prefixes
    keys = {"contact": mapping.dataverse.contact_key, "account": mapping.dataverse.account.key}
    tables = []
    for table, names in required_columns(mapping).items():
        columns = tuple(_column_spec(table, n, mapping) for n in names)
        tables.append(
            TableSpec(table, columns, (_key_spec(table, keys[table], prefixes),), change_tracking=True)
        )
    return tables


def plan_for_products(mapping: ProductMapping) -> list[TableSpec]:
    """The product mapping's table (contracts of issue 12, as sandbox/catalogue_solution.py
    provisions it): the Brightpearl id column with alternate key `bpi_brightpearlid_key`, the
    available-stock column, the alternate key `bpi_productnumber_key` on `productnumber` (the
    two match keys) and change tracking."""
    key = mapping.dataverse.key
    columns = (
        ColumnSpec(key, "string", LABELS.get(key, key), True, 100),
        ColumnSpec(STOCK_COLUMN, "decimal", LABELS[STOCK_COLUMN], True, precision=DECIMAL_PRECISION),
    )
    keys = (
        KeySpec(f"{key}_key", (key,), f"{LABELS.get(key, key)} key"),
        KeySpec("bpi_productnumber_key", ("productnumber",), "Product ID key"),
    )
    return [TableSpec("product", columns, keys, change_tracking=True)]


# salesorder's integration columns (contracts of issue 13): the Brightpearl id (alternate key
# bpi_brightpearlid_key), the trigger flag (trigger.flag_column), and what the write-back fills.
ORDER_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bpi_shippedon", "datetime", "Shipped on", True),
    ColumnSpec("bpi_shippingmethod", "string", "Brightpearl shipping method", True, 200),
    ColumnSpec("bpi_trackingreference", "string", "Tracking reference", True, 200),
    ColumnSpec("bpi_invoicereference", "string", "Invoice reference", True, 100),
    ColumnSpec("bpi_paymentstatus", "string", "Payment status", True, 20),
    ColumnSpec("bpi_brightpearlstatus", "string", "Brightpearl order status", True, 100),
    # order history (issue 14): where the order started ("Brightpearl" | "Dynamics"), its channel,
    # when it was placed
    ColumnSpec("bpi_origin", "string", "Order origin", True, 20),
    ColumnSpec("bpi_channel", "string", "Sales channel", True, 100),
    ColumnSpec("bpi_placedon", "datetime", "Placed on", True),
)
# salesorderdetail: what Brightpearl has reserved for the line and released on goods-out notes
# (issue 18 item 1; written by fulfilment-to-brightpearl, shared/flows/fulfilment.py)
LINE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bpi_quantityreserved", "decimal", "Quantity reserved", True),
    ColumnSpec("bpi_quantityreleased", "decimal", "Quantity released", True),
)


def plan_for_orders(mapping: OrderMapping | None = None) -> list[TableSpec]:
    """salesorder's integration columns and key, and change tracking on salesorder and
    salesorderdetail (the backstop's reads); the flag column is the mapping's trigger.flag_column."""
    orders = mapping or load_order_mapping()
    flag = orders.trigger.flag_column
    columns = (
        ColumnSpec("bpi_brightpearlid", "string", LABELS["bpi_brightpearlid"], True, 100),
        ColumnSpec(flag, "boolean", "Send to Brightpearl", True),
        *ORDER_COLUMNS,
    )
    key = KeySpec("bpi_brightpearlid_key", ("bpi_brightpearlid",), "Brightpearl ID key")
    # product: our identifier columns SKU matching reads (sku_matching.identifiers; a GTIN is at
    # most 14 characters, reference brightpearl-api.md §7.2)
    identifiers = tuple(
        ColumnSpec(column, "string", f"{kind.upper()}", True, 14 if kind in ("ean", "upc", "isbn") else 100)
        for kind, column in orders.sku_matching.identifiers.items()
        if column.startswith("bpi_")
    )
    return [
        TableSpec("salesorder", columns, (key,), change_tracking=True),
        TableSpec("salesorderdetail", LINE_COLUMNS, change_tracking=True),
        *([TableSpec("product", identifiers)] if identifiers else []),
    ]


# invoice's integration columns (issue 14 item 3, flow invoices-to-dataverse): the Brightpearl
# invoice reference (alternate key bpi_invoice_brightpearlid) and the amount paid (to 4 places,
# the highest currency precision).
INVOICE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bpi_brightpearlid", "string", "Brightpearl invoice reference", True, 100),
    ColumnSpec("bpi_amountpaid", "decimal", "Amount paid", True, precision=4),
)


def plan_for_invoices() -> list[TableSpec]:
    """invoice's integration columns and key (invoicedetail needs none: its keys are primary)."""
    key = KeySpec("bpi_invoice_brightpearlid", ("bpi_brightpearlid",), "Brightpearl invoice key")
    return [TableSpec("invoice", INVOICE_COLUMNS, (key,))]


# incident (Case): the Brightpearl sales credit id, the alternate key returns-to-dataverse creates
# and finds each credit's one case by (issue 14 item 2, shared/flows/returns_to_dataverse.py).
# Dynamics' incident has no order lookup (reference dataverse-api.md §10.10): the case names
# its order in its title and description instead (docs/mapping.md "Returns and cases").
def plan_for_returns() -> list[TableSpec]:
    column = ColumnSpec("bpi_brightpearlid", "string", LABELS["bpi_brightpearlid"], True, 100)
    key = KeySpec("bpi_incident_brightpearlid", ("bpi_brightpearlid",), "Brightpearl ID key")
    return [TableSpec("incident", (column,), (key,))]


# contact and account: the customer value figures (issue 14 item 4, shared/flows/customer_value_*.py),
# money in the organization's base currency (precision from the currency)
CUSTOMER_VALUE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("bpi_lifetimevalue", "money", "Lifetime value", True),
    ColumnSpec("bpi_lastpurchasedate", "datetime", "Last purchase date", True),
    ColumnSpec("bpi_ordercount", "integer", "Order count", True),
    ColumnSpec("bpi_averageordervalue", "money", "Average order value", True),
    ColumnSpec("bpi_openreturns", "integer", "Open returns", True),
)


def plan_for_customer_value() -> list[TableSpec]:
    return [TableSpec("contact", CUSTOMER_VALUE_COLUMNS), TableSpec("account", CUSTOMER_VALUE_COLUMNS)]


def entity_wired(name: str) -> bool:
    """The entity runs (it is in shared/sync/registry.py ENTITIES, not only BUILDING)."""
    from shared.sync.registry import ENTITIES

    return any(spec.name == name for spec in ENTITIES)


def products_wired() -> bool:
    """The products entity runs (it is in shared/sync/registry.py ENTITIES, not only BUILDING)."""
    return entity_wired("products")


def schema_plan(
    mapping: CustomerMapping | None = None,
    products: ProductMapping | None = None,
    *,
    include_products: bool | None = None,
) -> SchemaPlan:
    """What the integration needs in Dataverse, from the mappings (default: mappings/*.yaml).

    The product table is planned when `include_products` is true, for a given product mapping,
    or (`include_products` None) once the products entity is wired (`products_wired()`);
    `include_products=False` leaves it out. The orders tables (salesorder, salesorderdetail:
    `plan_for_orders`) come with the product table once the orders entity is wired."""
    tables = plan_for_customers(mapping or load_customer_mapping())
    if entity_wired("customer-value"):
        tables += plan_for_customer_value()
    if include_products is None:
        include_products = products is not None or products_wired()
    if include_products:
        tables += plan_for_products(products or load_product_mapping())
        if entity_wired("orders"):  # order lines name products: orders come with the catalogue
            tables += plan_for_orders()
            if entity_wired("invoices"):  # an invoice names its salesorder
                tables += plan_for_invoices()
            if entity_wired("returns"):  # a case names its order: returns come with the orders
                tables += plan_for_returns()
    return SchemaPlan(merged(tables))


def merged(tables: Iterable[TableSpec]) -> tuple[TableSpec, ...]:
    """One spec per table, in the order tables first appear: the parts several entities plan on
    one table (contact: customers and customer value; product: the catalogue and SKU matching)
    become one, columns and keys once each, change tracking when any part asks for it."""
    out: dict[str, TableSpec] = {}
    for spec in tables:
        held = out.get(spec.table)
        if held is None:
            out[spec.table] = spec
            continue
        names = {c.name for c in held.columns}
        keys = {k.name for k in held.keys}
        out[spec.table] = TableSpec(
            spec.table,
            held.columns + tuple(c for c in spec.columns if c.name not in names),
            held.keys + tuple(k for k in spec.keys if k.name not in keys),
            held.change_tracking or spec.change_tracking,
        )
    return tuple(out.values())


# --- request bodies (reference §14.2, §14.5, §14.6) --------------------------------------------


def label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                "Label": text,
                "LanguageCode": LANGUAGE_CODE,
            }
        ],
    }


def attribute_body(spec: ColumnSpec) -> dict[str, Any]:
    """The AttributeMetadata to POST to EntityDefinitions(LogicalName='t')/Attributes."""
    body: dict[str, Any] = {
        "@odata.type": f"Microsoft.Dynamics.CRM.{METADATA_TYPES[spec.kind][0]}",
        "SchemaName": spec.name,
        "DisplayName": label(spec.label),
        "Description": label(f"{spec.label} (Brightpearl integration)"),
        "RequiredLevel": {"Value": "None"},
    }
    if spec.kind == "string":
        body |= {"MaxLength": spec.max_length or 100, "FormatName": {"Value": "Text"}}
    elif spec.kind == "memo":
        body |= {"MaxLength": spec.max_length or 2000, "Format": "TextArea"}
    elif spec.kind == "boolean":
        body |= {
            "DefaultValue": False,
            "OptionSet": {
                "@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata",
                "OptionSetType": "Boolean",
                "TrueOption": {"Value": 1, "Label": label("Yes")},
                "FalseOption": {"Value": 0, "Label": label("No")},
            },
        }
    elif spec.kind == "picklist":
        body["OptionSet"] = {
            "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata",
            "IsGlobal": False,
            "OptionSetType": "Picklist",
            "Options": [{"Value": value, "Label": label(text)} for value, text in spec.options],
        }
    elif spec.kind == "integer":
        body |= {"MinValue": -2147483648, "MaxValue": 2147483647, "Format": "None"}
    elif spec.kind == "decimal":
        precision = DECIMAL_PRECISION if spec.precision is None else spec.precision
        low, high = DECIMAL_PRECISION_RANGE
        if not low <= precision <= high:
            raise ValueError(f"column {spec.name}: precision must be {low} to {high}, got {precision}")
        body |= {"Precision": precision, "MinValue": -DECIMAL_LIMIT, "MaxValue": DECIMAL_LIMIT}
    elif spec.kind == "money":  # PrecisionSource 2: the record currency's precision
        body |= {"Precision": 2, "PrecisionSource": 2, "MinValue": -MONEY_LIMIT, "MaxValue": MONEY_LIMIT}
    elif spec.kind == "datetime":
        body |= {"Format": "DateOnly", "DateTimeBehavior": {"Value": "DateOnly"}}
    return body


def key_body(spec: KeySpec) -> dict[str, Any]:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityKeyMetadata",
        "SchemaName": spec.name,
        "DisplayName": label(spec.label),
        "KeyAttributes": list(spec.columns),
    }


def entity_path(table: str) -> str:
    return f"EntityDefinitions(LogicalName={odata.literal(odata.prop(table))})"


def attribute_path(table: str, column: str) -> str:
    return f"{entity_path(table)}/Attributes(LogicalName={odata.literal(odata.prop(column))})"
