"""The simulator's `*-search` resources: column catalogues, filters, sorting, paging, and the
response shape of reference §4.1 (`metaData` + `results` as arrays of arrays + top-level
`reference`).

Filter semantics (reference §4.1; assumptions where UNCONFIRMED): IDSET takes an id set;
INTEGER and STRING match exactly; SEARCH_STRING matches a case-insensitive substring;
BOOLEAN takes true/false; PERIOD takes `from/`, `from/to`, `/to` or one date (that day),
dates or ISO date-times with offsets, both ends inclusive; STRING_SET a comma list. Unknown
filter or column names are rejected (400) so a typo cannot silently return everything.
`pageSize` above the maximum is capped. An empty result is a 200 with no rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.state import SimState
from shared.brightpearl.idset import IdSetError, parse_id_set

RESERVED = {"columns", "sort", "pageSize", "firstResult", "countOnly"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    get: Callable[[dict[str, Any]], Any]
    filterable: bool = True
    sortable: bool = True
    reference: str | None = None

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "sortable": self.sortable,
            "filterable": self.filterable,
            "reportDataType": self.type,
            "required": False,
        }
        if self.reference:
            out["referenceData"] = [self.reference]
        return out


@dataclass(frozen=True)
class SearchSpec:
    columns: list[Column]
    records: Callable[[SimState], list[dict[str, Any]]]
    default_sort: list[tuple[str, str]]
    references: dict[str, Callable[[SimState], dict[str, Any]]] = field(default_factory=dict)
    # Filters that are not columns (sales-order-search `productIds`, `customerRefs`, reference
    # §4.1); a filter whose value is a list matches when any element does.
    filters: list[Column] = field(default_factory=list)


def _field(name: str, kind: str) -> Column:
    """A column that is the record's own field of the same name."""
    return Column(name, kind, lambda record: record[name])


def _email(code: str) -> Callable[[dict[str, Any]], Any]:
    return lambda c: (c["communication"]["emails"].get(code) or {}).get("email")


def _is_customer(c: dict[str, Any]) -> bool:
    rel = c["relationshipToAccount"]
    return not rel["isSupplier"] and not rel["isStaff"]


def _order_type_id(code: str) -> int:
    return {"SO": 1, "PO": 2, "SC": 3, "PC": 4}[code]


SHIPPING_IDS = {"NST": 1, "SNS": 2, "SPS": 3, "ASS": 4}
STOCK_IDS = {
    "SON": 1,
    "SOP": 2,
    "SOA": 3,
    "PON": 4,
    "POP": 5,
    "POA": 6,
    "SCN": 7,
    "SCP": 8,
    "SCA": 9,
    "PCN": 10,
    "PCP": 11,
    "PCA": 12,
    "NON": 13,
}
PAYMENT_IDS = {"UNPAID": 1, "PARTIALLY_PAID": 2, "PAID": 3, "NOT_APPLICABLE": 4}
# Order columns holding the id of a code the order record keeps: column -> (field, code -> id).
ORDER_CODES: dict[str, tuple[str, dict[str, int]]] = {
    "orderStockStatusId": ("stockStatusCode", STOCK_IDS),
    "orderPaymentStatusId": ("orderPaymentStatus", PAYMENT_IDS),
    "orderShippingStatusId": ("shippingStatusCode", SHIPPING_IDS),
}


def _names(column: str) -> str:
    """The reference table naming an id column's values: `orderStockStatusId` -> `orderStockStatusNames`."""
    return column.removesuffix("Id") + "Names"


def _coded(column: str) -> Column:
    """An ORDER_CODES column, with its reference table."""
    field, ids = ORDER_CODES[column]
    return Column(column, "INTEGER", lambda o: ids[o[field]], reference=_names(column))


ORDER_STATUS = Column(
    "orderStatusId", "INTEGER", lambda o: o["orderStatus"]["orderStatusId"], reference="orderStatusNames"
)


def _status_names(state: SimState) -> dict[str, Any]:
    return {str(k): v["name"] for k, v in state.order_statuses.items()}


def _code_names(ids: dict[str, int]) -> Callable[[SimState], dict[str, Any]]:
    return lambda s: {str(v): k for k, v in ids.items()}


# goods-movement-search: every column is the movement record's own field (name -> type).
GOODS_MOVEMENT_COLUMNS = {
    "goodsMovementId": "IDSET",
    "goodsNoteId": "IDSET",
    "goodsNoteTypeCode": "STRING",
    "productId": "IDSET",
    "warehouseId": "IDSET",
    "quantity": "INTEGER",
    "destinationLocationId": "INTEGER",
    "currencyCode": "STRING",
    "productValue": "STRING",
    "createdOn": "PERIOD",
    "updatedOn": "PERIOD",
}

SPECS: dict[str, SearchSpec] = {
    "/contact-service/contact-search": SearchSpec(
        columns=[
            _field("contactId", "IDSET"),
            Column("primaryEmail", "SEARCH_STRING", _email("PRI")),
            Column("secondaryEmail", "SEARCH_STRING", _email("SEC")),
            Column("tertiaryEmail", "SEARCH_STRING", _email("TER")),
            Column("firstName", "SEARCH_STRING", lambda c: c.get("firstName")),
            Column("lastName", "SEARCH_STRING", lambda c: c.get("lastName")),
            Column("isSupplier", "BOOLEAN", lambda c: c["relationshipToAccount"]["isSupplier"]),
            Column("companyName", "SEARCH_STRING", lambda c: (c.get("organisation") or {}).get("name")),
            Column("isStaff", "BOOLEAN", lambda c: c["relationshipToAccount"]["isStaff"]),
            Column("isCustomer", "BOOLEAN", _is_customer),
            _field("createdOn", "PERIOD"),
            _field("updatedOn", "PERIOD"),
            Column("isPrimary", "BOOLEAN", lambda c: c.get("isPrimaryContact", True)),
            Column("pri", "STRING", lambda c: c["communication"]["telephones"].get("PRI")),
            Column(
                "contactGroupId", "INTEGER", lambda c: c["assignment"]["current"].get("contactGroupId", 0)
            ),
        ],
        records=lambda s: list(s.contacts.values()),
        default_sort=[("lastName", "ASC"), ("firstName", "ASC")],
    ),
    "/order-service/order-search": SearchSpec(
        columns=[
            Column("orderId", "IDSET", lambda o: o["id"]),
            Column(
                "orderTypeId",
                "IDSET",
                lambda o: _order_type_id(o["orderTypeCode"]),
                reference="orderTypeNames",
            ),
            Column("contactId", "INTEGER", lambda o: o["parties"]["customer"]["contactId"]),
            ORDER_STATUS,
            _coded("orderStockStatusId"),
            _field("createdOn", "PERIOD"),
            _field("createdById", "INTEGER"),
            Column("customerRef", "STRING", lambda o: o["reference"]),
            _coded("orderPaymentStatusId"),
            _field("updatedOn", "PERIOD"),
            _field("parentOrderId", "IDSET"),
            _coded("orderShippingStatusId"),
            _field("externalRef", "STRING"),
            _field("installedIntegrationInstanceId", "INTEGER"),
            _field("warehouseId", "IDSET"),
            Column(
                "staffOwnerContactId", "INTEGER", lambda o: o["assignment"]["current"]["staffOwnerContactId"]
            ),
            Column("deliveryDate", "PERIOD", lambda o: o["delivery"]["deliveryDate"]),
        ],
        records=lambda s: list(s.orders.values()),
        default_sort=[("orderId", "ASC")],
        references={
            "orderTypeNames": lambda s: {
                "1": "SALES_ORDER",
                "2": "PURCHASE_ORDER",
                "3": "SALES_CREDIT",
                "4": "PURCHASE_CREDIT",
            },
            "orderStatusNames": _status_names,
            **{_names(column): _code_names(ids) for column, (_, ids) in ORDER_CODES.items()},
        },
    ),
    # reference §4.2 (sales-order-search): sales orders only, codes as strings, and the
    # non-column filters productIds (any row's product), isHistoricalOrder and customerRefs.
    "/order-service/sales-order-search": SearchSpec(
        columns=[
            Column("salesOrderId", "IDSET", lambda o: o["id"]),
            Column("customerId", "INTEGER", lambda o: o["parties"]["customer"]["contactId"]),
            ORDER_STATUS,
            Column("orderStockStatus", "STRING", lambda o: o["stockStatusCode"]),
            Column("orderPaymentStatus", "STRING", lambda o: o["orderPaymentStatus"]),
            Column("orderShippingStatus", "STRING", lambda o: o["shippingStatusCode"]),
            _field("createdOn", "PERIOD"),
            _field("createdById", "INTEGER"),
            Column("customerRef", "STRING", lambda o: o["reference"]),
            _field("updatedOn", "PERIOD"),
            _field("externalRef", "STRING"),
            _field("installedIntegrationInstanceId", "INTEGER"),
            _field("warehouseId", "IDSET"),
            Column("staffOwnerId", "INTEGER", lambda o: o["assignment"]["current"]["staffOwnerContactId"]),
            Column("taxDate", "PERIOD", lambda o: (o["invoices"] or [{}])[0].get("taxDate")),
            Column("channelId", "INTEGER", lambda o: o["assignment"]["current"]["channelId"]),
            Column("deliveryDate", "PERIOD", lambda o: o["delivery"]["deliveryDate"]),
        ],
        records=lambda s: [o for o in s.orders.values() if o["orderTypeCode"] == "SO"],
        default_sort=[("salesOrderId", "ASC")],
        references={
            "orderStatusNames": _status_names,
        },
        filters=[
            Column(
                "productIds",
                "IDSET",
                lambda o: [r["productId"] for r in o["orderRows"].values() if r["productId"]],
            ),
            Column("isHistoricalOrder", "BOOLEAN", lambda o: o["historicalOrder"]),
            Column("customerRefs", "STRING_SET", lambda o: o["reference"]),
        ],
    ),
    "/product-service/product-search": SearchSpec(
        columns=[
            Column("productId", "IDSET", lambda p: p["id"]),
            Column("productName", "SEARCH_STRING", lambda p: p["salesChannels"][0].get("productName")),
            Column("SKU", "STRING", lambda p: p["identity"].get("sku")),
            Column("EAN", "STRING", lambda p: p["identity"].get("ean")),
            Column("UPC", "STRING", lambda p: p["identity"].get("upc")),
            Column("ISBN", "STRING", lambda p: p["identity"].get("isbn")),
            Column("stockTracked", "BOOLEAN", lambda p: bool(p["stock"].get("stockTracked"))),
            Column("salesChannelName", "STRING", lambda p: "Brightpearl", filterable=False),
            _field("createdOn", "PERIOD"),
            _field("updatedOn", "PERIOD"),
            Column(
                "brightpearlCategoryCode", "INTEGER", lambda p: p["id"], reference="productCategoryMembership"
            ),
            _field("productGroupId", "INTEGER"),
        ],
        records=lambda s: list(s.products.values()),
        default_sort=[("productId", "ASC")],
        references={
            "productCategoryMembership": lambda s: {
                str(p["id"]): [int(c["categoryCode"]) for c in p["salesChannels"][0].get("categories", [])]
                for p in s.products.values()
            }
        },
    ),
    "/warehouse-service/goods-note/goods-out-search": SearchSpec(
        columns=[
            Column("goodsOutNoteId", "IDSET", lambda n: n["id"]),
            _field("orderId", "IDSET"),
            _field("warehouseId", "IDSET"),
            _field("transfer", "BOOLEAN"),
            Column("shipped", "BOOLEAN", lambda n: n["status"]["shipped"]),
            Column("shippedOn", "PERIOD", lambda n: n["status"].get("shippedOn")),
            _field("createdOn", "PERIOD"),
        ],
        records=lambda s: [dict(n, id=i) for i, n in s.goods_out.items()],
        default_sort=[("goodsOutNoteId", "ASC")],
    ),
    # Only the path is in the reference (§4.1); the columns follow third-party client code
    # (filters goodsNoteTypeCode=SC and updatedOn=from/): UNCONFIRMED.
    "/warehouse-service/goods-movement-search": SearchSpec(
        columns=[_field(name, kind) for name, kind in GOODS_MOVEMENT_COLUMNS.items()],
        records=lambda s: list(s.goods_movements.values()),
        default_sort=[("goodsMovementId", "ASC")],
    ),
    # reference §4.1 names the path; the columns are Brightpearl's Currency Search page
    "/accounting-service/currency-search": SearchSpec(
        columns=[
            _field("id", "IDSET"),
            _field("title", "STRING"),
            _field("code", "STRING"),
            _field("symbol", "STRING"),
            _field("exchangeRate", "STRING"),
            _field("isDefault", "BOOLEAN"),
            _field("exchangeRateVarianceNominalCode", "STRING"),
        ],
        records=lambda s: s.currency_rows(),
        default_sort=[("id", "ASC")],
    ),
    "/accounting-service/customer-payment-search": SearchSpec(
        columns=[
            _field("paymentId", "IDSET"),
            _field("transactionRef", "STRING"),
            _field("transactionCode", "STRING"),
            _field("paymentMethodCode", "STRING"),
            _field("paymentType", "STRING"),
            _field("orderId", "IDSET"),
            _field("currencyId", "INTEGER"),
            _field("currencyCode", "STRING"),
            _field("amountAuthorized", "STRING"),
            _field("amountPaid", "STRING"),
            _field("paymentDate", "PERIOD"),
            _field("createdOn", "PERIOD"),
            _field("journalId", "INTEGER"),
        ],
        records=lambda s: list(s.payments.values()),
        default_sort=[("paymentId", "ASC")],
    ),
}


def _parse_when(text: str, end: bool) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end else moment
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad(f"{text!r} is not an ISO 8601 date or date-time", "CMNC-020") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _matcher(column: Column, raw: str) -> Callable[[Any], bool]:
    kind = column.type
    if kind == "IDSET":
        try:
            wanted = set(parse_id_set(raw, max_ids=100_000))
        except IdSetError as exc:
            raise bad(f"filter {column.name}: {exc}", "CMNC-021") from exc
        return lambda v: v in wanted
    if kind == "INTEGER":
        try:
            number = int(raw)
        except ValueError as exc:
            raise bad(f"filter {column.name}: {raw!r} is not an integer", "CMNC-021") from exc
        return lambda v: v == number
    if kind == "BOOLEAN":
        if raw.lower() not in ("true", "false"):
            raise bad(f"filter {column.name}: {raw!r} must be true or false", "CMNC-021")
        flag = raw.lower() == "true"
        return lambda v: bool(v) == flag
    if kind == "SEARCH_STRING":
        needle = raw.lower()
        return lambda v: v is not None and needle in str(v).lower()
    if kind == "STRING_SET":
        options = set(raw.split(","))
        return lambda v: v in options
    if kind == "PERIOD":
        if "/" in raw:
            start_text, end_text = raw.split("/", 1)
        else:
            start_text = end_text = raw
        if not start_text and not end_text:
            raise bad(f"filter {column.name}: a period needs a start or an end", "CMNC-021")
        start = _parse_when(start_text, end=False) if start_text else None
        end = _parse_when(end_text, end=True) if end_text else None

        def in_period(v: Any) -> bool:
            moment = _as_datetime(v)
            if moment is None:
                return False
            return (start is None or moment >= start) and (end is None or moment <= end)

        return in_period
    return lambda v: v is not None and str(v) == raw


def _matches(match: Callable[[Any], bool], value: Any) -> bool:
    """A filter on a list-valued column (`productIds`) matches when any element does."""
    if isinstance(value, list):
        return any(match(v) for v in value)
    return match(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, datetime):
        return (1, value.timestamp())
    return (2, str(value).lower())


def run_search(state: SimState, path: str, params: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(response, reference) of one search request."""
    spec = SPECS[path]
    config = state.config
    by_name = {c.name: c for c in spec.columns}
    if params.get("columns"):
        names = [n.strip() for n in params["columns"].split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise bad(f"unknown column(s) {', '.join(unknown)}", "CMNC-022")
        columns = [by_name[n] for n in names]
    else:
        columns = list(spec.columns)
    sorting: list[tuple[str, str]] = []
    if params.get("sort"):
        for term in params["sort"].split(","):
            name, _, direction = term.strip().partition(".")
            direction = (direction or "ASC").upper()
            if name not in by_name or not by_name[name].sortable:
                raise bad(f"sort column {name!r} is unknown or not sortable", "CMNC-023")
            if direction not in ("ASC", "DESC"):
                raise bad(f"sort direction {direction!r} must be ASC or DESC", "CMNC-023")
            sorting.append((name, direction))
    else:
        sorting = list(spec.default_sort)
    try:
        page_size = min(int(params.get("pageSize", config.default_page_size)), config.max_page_size)
        first = int(params.get("firstResult", 1))
    except ValueError as exc:
        raise bad("pageSize and firstResult must be integers", "CMNC-024") from exc
    if page_size < 1 or first < 1:
        raise bad("pageSize and firstResult must be at least 1", "CMNC-024")

    matchers = []
    for key, raw in params.items():
        if key in RESERVED:
            continue
        column = by_name.get(key) or next((f for f in spec.filters if f.name == key), None)
        if column is None or not column.filterable:
            raise bad(f"{key!r} is not a filterable column of this search", "CMNC-025")
        matchers.append((column, _matcher(column, raw)))

    with state.lock:
        rows = []
        for record in spec.records(state):
            if all(_matches(match, col.get(record)) for col, match in matchers):
                rows.append({c.name: c.get(record) for c in spec.columns})
        meta_columns = [c.meta() for c in columns]
        references = {name: build(state) for name, build in spec.references.items()}
    for name, direction in reversed(sorting):
        rows.sort(key=lambda r, n=name: _sort_key(r[n]), reverse=direction == "DESC")
    available = len(rows)
    meta: dict[str, Any] = {"resultsAvailable": available}
    if params.get("countOnly", "").lower() == "true":
        return {"metaData": meta}, {}
    page = rows[first - 1 : first - 1 + page_size]
    meta.update(
        resultsReturned=len(page),
        firstResult=first if page else 0,
        lastResult=first + len(page) - 1 if page else 0,
        morePagesAvailable=first - 1 + len(page) < available,
        columns=meta_columns,
        sorting=[{"filterable": by_name[n].meta(), "direction": d} for n, d in sorting],
    )
    stringify = config.search_cells_as_strings
    results = []
    for row in page:
        cells = []
        for c in columns:
            value = row[c.name]
            if stringify and c.type in ("IDSET", "INTEGER") and value is not None:
                value = str(value)
            cells.append(value)
        results.append(cells)
    reference: dict[str, Any] = {}
    for c in columns:
        if c.reference and c.reference in references:
            values = {str(row[c.name]) for row in page}
            ref = {k: v for k, v in references[c.reference].items() if k in values}
            if ref:
                reference[c.reference] = ref
    return {"metaData": meta, "results": results}, reference


def search_meta(path: str) -> dict[str, Any]:
    spec = SPECS.get(path)
    if spec is None:
        raise ApiError(404, "CMNC-404", f"Cannot find the resource {path}")
    meta: dict[str, Any] = {
        "columns": [c.meta() for c in spec.columns],
        "sorting": [{"filterable": {"name": n}, "direction": d} for n, d in spec.default_sort],
    }
    if spec.filters:  # filters that are not columns (sales-order-search customerRefs, ...)
        meta["filters"] = [dict(f.meta(), sortable=False) for f in spec.filters]
    return meta
