"""Won opportunities -> Brightpearl sales orders: the opportunity part of orders-to-brightpearl.

Issue 13 item 1, optional and off by default (`trigger.opportunity_won` in mappings/orders.yaml).
An opportunity marked Won (`WinOpportunity`: statecode 1 Won, reference dataverse-api.md §10.4)
becomes a Brightpearl sales order made from its opportunity products, through the same flow and
the same exactly-once creation as a Dynamics order (shared/flows/orders_to_brightpearl.py): a
creation claim, the look-up by `externalRef` (= the opportunityid), one atomic POST, the `order`
link keyed by the opportunity id.

This module holds what differs from a sales order, so the flow's seams stay one line each:

- `read_opportunities`: the opportunities a batch names and all their opportunityproduct lines,
  in two `In` queries per ~500 (currency and product number expanded, the customer lookup's
  logical name annotated). When the setting is off nothing is read: each is `skipped` naming
  the setting.
- `skip_opportunity`: only a Won opportunity makes an order; an Open or Lost one is `skipped`.
- `order_from_opportunity`: the opportunity and its products as the canonical `Order` (the
  header columns an opportunity shares with salesorder and the line columns opportunityproduct
  shares with salesorderdetail, read by the same translator). An opportunity has no order
  number, addresses or shipping method: Brightpearl takes the customer's own addresses.
- `with_opportunity_ref`: the sales order's `ref` (`trigger.opportunity_ref`: the opportunity's
  name, its first 64 characters, or none). The order number a Dynamics order sends does not
  exist here, and the name is kept out of messages (it may name a person): they name the
  opportunity by its id.

An opportunity has no `bpi_brightpearlid` column: its link alone holds the Brightpearl id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.dataverse import odata
from shared.flows.orders_spec import SALESORDER_COLUMNS, SALESORDERDETAIL_COLUMNS
from shared.mapping.orders_config import OrderMapping
from shared.mapping.orders_translate import CUSTOMER_KIND, address_columns, order_from_dataverse
from shared.mapping.translation import Translation
from shared.model.order import Order
from shared.sync.engine import SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult
from shared.sync.ports import DataversePort, LinksPort

NOTICE_ENTITY = "opportunity"
REF_LENGTH = 64  # Brightpearl documents no limit for `ref`; externalRef's 64 is the safe one
WON, LOST = 1, 2  # opportunity statecode: 0 Open, 1 Won, 2 Lost (reference §10.4)
SUBMITTED = 1  # the salesorder state a won opportunity stands for

# the header columns an opportunity shares with salesorder (all but these), and the line columns
# opportunityproduct shares with salesorderdetail: the translator reads them by these names
SALESORDER_ONLY = (
    "salesorderid",
    "ordernumber",
    "shippingmethodcode",
    "bpi_sendtobrightpearl",
    "bpi_brightpearlid",
    "bpi_origin",
    "_opportunityid_value",
)
HEADER_COLUMNS = tuple(c for c in SALESORDER_COLUMNS if c not in SALESORDER_ONLY)
LINE_COLUMNS = tuple(
    c for c in SALESORDERDETAIL_COLUMNS if c not in ("salesorderdetailid", "_salesorderid_value")
)


@dataclass(frozen=True)
class HeaderTable:
    """A Dataverse table of order-like headers and the table of their lines."""

    entity_set: str
    key: str  # its primary id column
    select: tuple[str, ...]
    line_set: str
    line_key: str  # a line's lookup column to its header (`_salesorderid_value`)
    line_select: tuple[str, ...]


SALESORDERS = HeaderTable(
    "salesorders",
    "salesorderid",
    (*SALESORDER_COLUMNS, *address_columns()),
    "salesorderdetails",
    "_salesorderid_value",
    SALESORDERDETAIL_COLUMNS,
)
OPPORTUNITIES = HeaderTable(
    "opportunities",
    "opportunityid",
    ("opportunityid", *HEADER_COLUMNS),
    "opportunityproducts",
    "_opportunityid_value",
    ("opportunityproductid", "_opportunityid_value", *LINE_COLUMNS),
)


def read_with_lines(dv: DataversePort, table: HeaderTable, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The headers `ids` names, each with its `lines`, keyed by the lower-case id: an `In`
    query of as many ids as the URL takes for the headers and one for their lines (currency
    and product number expanded; with the annotations, so the customer lookup's logical name
    says account or contact). A header's `modifiedon` becomes
    the latest of it and its lines (the dead-letter key: a line edit is a new version)."""
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, list[dict[str, Any]]] = {}
    for headers in odata.in_chunks(table.key, ids):
        for record in dv.query(
            table.entity_set,
            select=list(table.select),
            filter=headers,
            expand="transactioncurrencyid($select=isocurrencycode)",
            annotations=True,
        ):
            rows[str(record.id).lower()] = {**record.values, **record.annotations}
    for lines_of in odata.in_chunks(table.line_key, ids):
        for record in dv.query(
            table.line_set,
            select=[*table.line_select, "modifiedon"],
            filter=lines_of,
            expand="productid($select=productnumber)",
        ):
            lines.setdefault(str(record.values[table.line_key]).lower(), []).append(dict(record.values))
    for header_id, row in rows.items():
        row["lines"] = lines.get(header_id, [])
        row["modifiedon"] = max(str(r.get("modifiedon") or "") for r in (row, *row["lines"]))
    return rows


def is_opportunity(row: Mapping[str, Any]) -> bool:
    """Is this source row an opportunity (read by `read_opportunities`), not a salesorder?"""
    return "opportunityid" in row


def read_opportunities(
    dv: DataversePort, mapping: OrderMapping, named: Sequence[str], results: BatchResults
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The opportunity ids of a batch to sync and their rows (each with its `lines`), keyed by
    the lower-case id. With `trigger.opportunity_won` off nothing is read and each is skipped."""
    ids = list({i.lower(): i for i in named}.values())
    if ids and not mapping.trigger.opportunity_won:
        off = "orders from won opportunities are off (trigger.opportunity_won: false in mappings/orders.yaml)"
        for record_id in ids:
            results.set(record_id, RecordResult("skipped", None, f"Dataverse opportunity {record_id}: {off}"))
        return [], {}
    return ids, read_with_lines(dv, OPPORTUNITIES, ids)


def one_order_per_sale(
    dv: DataversePort,
    links: LinksPort,
    mapping: OrderMapping,
    records: list[SyncRecord[Order]],
    results: BatchResults,
) -> list[SyncRecord[Order]]:
    """The records still to create. With `trigger.opportunity_won` on, a sale makes one
    Brightpearl order: a Dynamics order made from an opportunity (its `opportunityid`) whose win
    already made one is skipped, and so is a won opportunity one of whose Dynamics orders already
    has one. Off: every record (and no call)."""
    if not mapping.trigger.opportunity_won or not records:
        return records
    made_from = {  # salesorder id -> the opportunity it was made from
        r.source_id: str(r.source["_opportunityid_value"]).lower()
        for r in records
        if not is_opportunity(r.source) and r.source.get("_opportunityid_value")
    }
    orders_of: dict[str, list[str]] = {}  # won opportunity id -> its Dynamics orders
    won = [r.source_id.lower() for r in records if is_opportunity(r.source)]
    for made_from_won in odata.in_chunks("_opportunityid_value", won):
        for row in dv.query(
            "salesorders", select=["salesorderid", "_opportunityid_value"], filter=made_from_won
        ):
            orders_of.setdefault(str(row.values["_opportunityid_value"]).lower(), []).append(
                str(row.id).lower()
            )
    others = sorted({*made_from.values(), *(o for found in orders_of.values() for o in found)})
    linked = links.get_many("order", "dataverse", others) if others else {}

    def brightpearl_id(dataverse_id: str) -> str | None:
        link = linked.get(dataverse_id)
        return link.id_in("brightpearl") if link is not None and link.is_linked else None

    keep: list[SyncRecord[Order]] = []
    for r in records:
        if is_opportunity(r.source):
            pairs = [(o, brightpearl_id(o)) for o in orders_of.get(r.source_id.lower(), [])]
            other, bp = next(((o, bp) for o, bp in pairs if bp), (None, None))
            why = f"Dataverse opportunity {r.source_id}: its Dynamics order {other}"
        else:
            other = made_from.get(r.source_id)
            bp = brightpearl_id(other) if other else None
            why = f"Dataverse order {r.source_id}: the opportunity {other} it was made from"
        if bp is None:
            keep.append(r)
            continue
        results.set(
            r.source_id,
            RecordResult(
                "skipped",
                None,
                f"{why} already made Brightpearl order {bp} (one order per sale, trigger.opportunity_won)",
                target_id=bp,
            ),
        )
    return keep


def skip_opportunity(record_id: str, row: Mapping[str, Any], results: BatchResults) -> bool:
    """Leave an opportunity that is not Won alone (after setting its result)."""
    state = int(row.get("statecode") or 0)
    if state == WON:
        return False
    why = "was lost" if state == LOST else "is open, not won"
    results.set(
        record_id,
        RecordResult("skipped", None, f"Dataverse opportunity {record_id} {why}: no order is made"),
    )
    return True


def order_from_opportunity(row: Mapping[str, Any]) -> Translation[Order]:
    """A won opportunity and its opportunityproduct lines as the canonical order: the same
    translator as a salesorder's, on the columns both tables share (lines keep their own ids)."""
    header = {column: row.get(column) for column in (*HEADER_COLUMNS, CUSTOMER_KIND, "transactioncurrencyid")}
    header.update(salesorderid=row["opportunityid"], statecode=SUBMITTED)
    lines = [
        {**line, "salesorderdetailid": line.get("opportunityproductid")} for line in row.get("lines") or []
    ]
    return order_from_dataverse(header, lines)


def with_opportunity_ref(
    body: dict[str, Any], source: Mapping[str, Any], mapping: OrderMapping
) -> dict[str, Any]:
    """The sales-order POST body with a won opportunity's `ref` (`trigger.opportunity_ref`);
    a salesorder's body is returned as it is (its ref is the order number)."""
    if not is_opportunity(source):
        return body
    name = str(source.get("name") or "").strip()
    if mapping.trigger.opportunity_ref == "name" and name:
        return {**body, "ref": name[:REF_LENGTH].rstrip()}
    return {k: v for k, v in body.items() if k != "ref"}
