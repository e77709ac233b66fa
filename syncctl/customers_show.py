"""`syncctl customers show <email | id>`: one customer's 360° view from both systems (issue 14 item 9).

The customer is named by e-mail (both systems are searched: Brightpearl contact-search by
primary e-mail, Dynamics contacts by `emailaddress1`), by Brightpearl contact id (digits) or
by Dynamics contactid (a GUID); the other side is found through the `customer` link, else the
contact's `bpi_brightpearlid`. Read-only; every read goes through the real clients.

Shown side by side: the contact on each side; Brightpearl's sales orders, sales credits and
customer payments (order-search by `contactId`, the orders and credits by id set,
customer-payment-search by their order ids; reference brightpearl-api.md §4.2, §6.4) next to
what Dynamics holds (salesorders, incidents and invoices of the contact or its parent account,
the notes and tasks on its timeline, and the enrichment columns `bpi_lifetimevalue` and its
siblings); figures computed from what Brightpearl holds now beside the enrichment Dynamics
holds; and the sync state: the customer link, each order's link and the customer's audit rows.
Addresses and phone numbers are not shown. Not found on either side: exit 1 naming what was
looked up; an e-mail shared by several customers: exit 1 listing their ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from syncctl.base import SettingsOpt, _fail
from syncctl.common import app_settings

app = typer.Typer(name="customers", help="Look at customers on both sides.", no_args_is_help=True)

LINK_ENTITY = "customer"  # shared/flows/customers_sync.py link_entity
ORDER_LINK = "order"
CONTACT_GET = "/contact-service/contact/{ids}"
ORDER_GET = "/order-service/order/{ids}"
PAYMENT_SEARCH = "/accounting-service/customer-payment-search"
ORDER_TYPES = {1: "SO", 3: "SC"}  # order-search orderTypeId: sales order, sales credit
IDS_PER_SEARCH = 100  # order ids per customer-payment-search filter (a short URL)
# The enrichment columns (issue 14 item 4) on contact and account, shown when the table has them
ENRICHMENT = (
    "bpi_lifetimevalue",
    "bpi_lastpurchasedate",
    "bpi_ordercount",
    "bpi_averageordervalue",
    "bpi_openreturns",
)
CONTACT_COLUMNS = (
    "contactid",
    "fullname",
    "emailaddress1",
    "bpi_brightpearlid",
    "bpi_customergroup",
    "modifiedon",
)
ACCOUNT_COLUMNS = ("accountid", "name", "customertypecode", "bpi_customergroup", "bpi_brightpearlid")
DYNAMICS_LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # entity set -> (the customer lookup, the columns shown)
    "salesorders": (
        "customerid",
        (
            "salesorderid",
            "ordernumber",
            "name",
            "statecode",
            "statuscode",
            "totalamount",
            "bpi_brightpearlid",
            "bpi_origin",
            "createdon",
        ),
    ),
    "incidents": (
        "customerid",
        ("incidentid", "ticketnumber", "title", "statecode", "statuscode", "bpi_brightpearlid"),
    ),
    "invoices": (
        "customerid",
        (
            "invoiceid",
            "invoicenumber",
            "name",
            "statecode",
            "statuscode",
            "totalamount",
            "bpi_amountpaid",
            "bpi_brightpearlid",
        ),
    ),
}
TIMELINE_LISTS = {"annotations": ("objectid", "annotationid"), "tasks": ("regardingobjectid", "activityid")}


class Ambiguous(ValueError):
    """An e-mail several customers share: the ids to choose from."""


def _text(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _pick(row: Any, columns: Iterable[str]) -> dict[str, Any]:
    """The named columns of a Dataverse row (lookups as their `_x_value`), those it has."""
    values = dict(getattr(row, "values", row) or {})
    out: dict[str, Any] = {}
    for column in columns:
        for name in (column, f"_{column}_value"):
            if name in values:
                out[column] = _text(values[name])
                break
    return out


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


# ------------------------------------------------------------------------------------- finding
def resolve(key: str, dv: Any, bp: Any, store: Any) -> tuple[int | None, str | None]:
    """(Brightpearl contact id, Dynamics contactid) of the customer `key` names, either may be None."""
    from shared.dataverse import odata

    bp_id: int | None = None
    dv_id: str | None = None
    if key.isdigit():
        bp_id = int(key)
    elif odata.is_guid(key):
        dv_id = key.lower()
    elif "@" in key:
        bp_ids = sorted(set(bp.find_contact_ids_by_email(key)))
        rows = list(
            dv.query(
                "contacts", select=["contactid", "bpi_brightpearlid"], filter=odata.eq("emailaddress1", key)
            )
        )
        if not rows and key != key.lower():
            rows = list(
                dv.query(
                    "contacts",
                    select=["contactid", "bpi_brightpearlid"],
                    filter=odata.eq("emailaddress1", key.lower()),
                )
            )
        dv_ids = sorted({str(r.get("contactid")).lower() for r in rows})
        merged: dict[str, tuple[int | None, str | None]] = {}
        for b in bp_ids:
            d = _linked(store, "brightpearl", str(b))
            merged[d or f"bp:{b}"] = (b, d)
        for d in dv_ids:
            merged.setdefault(d, (_linked_bp(store, d), d))
        if len(merged) > 1:
            shown = "; ".join(
                f"Brightpearl {b or '-'} / Dynamics {d or '-'}" for b, d in sorted(merged.values(), key=str)
            )
            raise Ambiguous(f"several customers have the e-mail {key!r}: {shown}; give one of their ids")
        if merged:
            bp_id, dv_id = next(iter(merged.values()))
    if bp_id is not None and dv_id is None:
        dv_id = _linked(store, "brightpearl", str(bp_id))
        if dv_id is None:
            rows = list(
                dv.query(
                    "contacts", select=["contactid"], filter=odata.eq("bpi_brightpearlid", str(bp_id)), top=1
                )
            )
            dv_id = str(rows[0].get("contactid")).lower() if rows else None
    if dv_id is not None and bp_id is None:
        bp_id = _linked_bp(store, dv_id)
        if bp_id is None:
            row = dv.get_or_none("contacts", dv_id, select=["contactid", "bpi_brightpearlid"])
            key_value = str((row.get("bpi_brightpearlid") if row is not None else None) or "")
            bp_id = int(key_value) if key_value.isdigit() else None
    return bp_id, dv_id


def _linked(store: Any, system: str, record_id: str) -> str | None:
    link = store.links.get(LINK_ENTITY, system, record_id)
    other = "dataverse" if system == "brightpearl" else "brightpearl"
    return (
        str(link.id_in(other)).lower() if link is not None and link.is_linked and link.id_in(other) else None
    )


def _linked_bp(store: Any, dv_id: str) -> int | None:
    found = _linked(store, "dataverse", dv_id)
    return int(found) if found and found.isdigit() else None


# ------------------------------------------------------------------------------------- Brightpearl
def brightpearl_side(bp: Any, contact_id: int, limit: int) -> dict[str, Any] | None:
    """The contact, its newest `limit` sales orders and credits, and their payments."""
    from shared.brightpearl.errors import BrightpearlNotFound

    try:
        found = bp.get_by_ids(CONTACT_GET, [contact_id])
    except BrightpearlNotFound:
        found = []
    contact = next((c for c in found if isinstance(c, dict) and c.get("contactId") == contact_id), None)
    if contact is None:
        return None
    emails = (contact.get("communication") or {}).get("emails") or {}
    rows = bp.search_orders(contactId=contact_id, columns=["orderId", "orderTypeId"], sort="orderId.DESC")
    ids: list[int] = []
    truncated = False
    for row in rows:  # newest first; stop reading pages once `limit` are found
        if ORDER_TYPES.get(int(row.get("orderTypeId") or 0)):
            if len(ids) == limit:
                truncated = True
                break
            ids.append(int(row["orderId"]))
    orders = [_order(o) for o in (bp.get_by_ids(ORDER_GET, ids, limit=200) if ids else [])]
    orders.sort(key=lambda o: o["id"], reverse=True)
    payments: list[dict[str, Any]] = []
    for start in range(0, len(ids), IDS_PER_SEARCH):
        chunk = ids[start : start + IDS_PER_SEARCH]
        for p in bp.search(PAYMENT_SEARCH, filters={"orderId": chunk}, sort="paymentId.ASC"):
            payments.append(
                {
                    "paymentId": p.get("paymentId"),
                    "orderId": p.get("orderId"),
                    "paymentType": p.get("paymentType"),
                    "amountPaid": _text(p.get("amountPaid")),
                    "currency": p.get("currencyCode"),
                    "paymentDate": _text(p.get("paymentDate")),
                    "method": p.get("paymentMethodCode"),
                }
            )
    return {
        "contactId": contact_id,
        "name": " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p),
        "email": (emails.get("PRI") or {}).get("email"),
        "organisation": (contact.get("organisation") or {}).get("name"),
        "priceListId": (contact.get("financialDetails") or {}).get("priceListId"),
        "updatedOn": _text(contact.get("updatedOn")),
        "orders": [o for o in orders if o["type"] == "SO"],
        "credits": [o for o in orders if o["type"] == "SC"],
        "payments": payments,
        "shown_limit": limit,
        "truncated": truncated,  # the customer has more orders and credits than shown
    }


def _order(o: dict[str, Any]) -> dict[str, Any]:
    total = o.get("totalValue") or {}
    return {
        "id": o.get("id"),
        "type": o.get("orderTypeCode"),
        "reference": o.get("reference"),
        "parentOrderId": o.get("parentOrderId") or None,
        "status": (o.get("orderStatus") or {}).get("name"),
        "placedOn": _text(o.get("placedOn")),
        "net": _text(total.get("net")),
        "total": _text(total.get("total")),
        "currency": (o.get("currency") or {}).get("orderCurrencyCode"),
        "paymentStatus": o.get("orderPaymentStatus"),
        "shippingStatus": o.get("shippingStatusCode"),
        "invoiceReference": next((i.get("invoiceReference") for i in o.get("invoices") or [] if i), None),
        "channelId": ((o.get("assignment") or {}).get("current") or {}).get("channelId"),
    }


def computed(bp_side: dict[str, Any] | None) -> dict[str, Any]:
    """Figures from what Brightpearl holds now (the orders and credits shown), per currency, counted
    as the customer value flow counts them (shared/flows/customer_value_to_dataverse.py): invoiced
    orders only (an invoice reference), so they compare with the Dynamics columns beside them:
    net of invoiced orders, net of credits, the one less the other, invoiced order count, average
    order, last purchase, open returns (credits not yet refunded)."""
    if bp_side is None:
        return {}
    by_currency: dict[str, dict[str, Decimal]] = {}
    orders = [o for o in bp_side["orders"] if o.get("invoiceReference")]
    for kind, rows in (("orders", orders), ("credits", bp_side["credits"])):
        for o in rows:
            figures = by_currency.setdefault(
                o["currency"] or "?", {"orders": Decimal(0), "credits": Decimal(0)}
            )
            figures[kind] += _decimal(o["net"])
    placed = [o["placedOn"] for o in orders if o["placedOn"]]
    return {
        "orderCount": len(orders),
        "netByCurrency": {
            c: {
                "orders": str(f["orders"]),
                "credits": str(f["credits"]),
                "ordersLessCredits": str(f["orders"] - f["credits"]),
            }
            for c, f in sorted(by_currency.items())
        },
        "averageOrder": {
            c: str((f["orders"] / n).quantize(Decimal("0.01")))
            for c, f in by_currency.items()
            if (n := sum(1 for o in orders if (o["currency"] or "?") == c))
        },
        "lastPurchase": max(placed) if placed else None,
        "openReturns": sum(1 for c in bp_side["credits"] if c["paymentStatus"] != "PAID"),
        "complete": not bp_side["truncated"],
    }


# ------------------------------------------------------------------------------------- Dynamics
def dynamics_side(dv: Any, contact_id: str, limit: int) -> dict[str, Any] | None:
    """The contact and its parent account (with the enrichment columns they have), the orders,
    cases and invoices of either, and the notes and tasks on the contact's timeline."""
    from shared.dataverse import odata

    row = dv.get_or_none("contacts", contact_id)
    if row is None:
        return None
    contact = _pick(row, (*CONTACT_COLUMNS, "parentcustomerid", *ENRICHMENT))
    account_id = contact.pop("parentcustomerid", None)
    account = None
    if account_id and odata.is_guid(str(account_id)):
        found = dv.get_or_none("accounts", str(account_id))
        account = _pick(found, (*ACCOUNT_COLUMNS, *ENRICHMENT)) if found is not None else None
    customers = [contact_id, *([str(account_id)] if account is not None else [])]
    out: dict[str, Any] = {"contact": contact, "account": account}
    for entity_set, (lookup, columns) in DYNAMICS_LISTS.items():
        flt = odata.any_of(*(odata.lookup_eq(lookup, c) for c in customers))
        rows = list(dv.query(entity_set, filter=flt, top=limit))
        out[entity_set] = [{**_pick(r, columns), "customer": _pick(r, (lookup,)).get(lookup)} for r in rows]
    timeline: list[dict[str, Any]] = []
    for entity_set, (lookup, key) in TIMELINE_LISTS.items():
        rows = dv.query(entity_set, filter=odata.lookup_eq(lookup, contact_id), top=limit)
        for r in rows:
            item = _pick(r, (key, "subject", "createdon", "statecode"))
            timeline.append(
                {"kind": "note" if entity_set == "annotations" else "task", "id": item.pop(key, None), **item}
            )
    out["timeline"] = sorted(timeline, key=lambda t: (str(t.get("createdon") or ""), str(t.get("subject"))))
    return out


# ------------------------------------------------------------------------------------- sync state
def sync_state(
    store: Any, bp_id: int | None, dv_id: str | None, bp_side: dict[str, Any] | None
) -> dict[str, Any]:
    link = store.links.get(LINK_ENTITY, "brightpearl", str(bp_id)) if bp_id is not None else None
    if link is None and dv_id is not None:
        link = store.links.get(LINK_ENTITY, "dataverse", dv_id)
    order_ids = [str(o["id"]) for o in (bp_side or {}).get("orders", [])]
    orders = store.links.get_many(ORDER_LINK, "brightpearl", order_ids) if order_ids else {}
    seen: dict[Any, Any] = {}
    for system, record_id in (("brightpearl", bp_id), ("dataverse", dv_id)):
        if record_id is not None:
            for entry in store.audit.for_record(LINK_ENTITY, system, str(record_id), limit=50):
                seen.setdefault(entry.id or entry, entry)
    entries = sorted(seen.values(), key=lambda e: (e.at is None, e.at), reverse=True)[:20]
    return {
        "link": None
        if link is None
        else {
            "state": _text(getattr(link.state, "value", link.state)),
            "brightpearl": link.id_in("brightpearl"),
            "dataverse": link.id_in("dataverse"),
        },
        "orderLinks": {i: o.id_in("dataverse") for i, o in orders.items() if o is not None and o.is_linked},
        "audit": [
            {
                "at": _text(e.at),
                "flow": e.flow,
                "result": _text(e.result.value),
                "source": f"{e.source_system} {e.source_id}",
                "reason": e.reason_code,
                "fields": e.fields,
                "description": e.description,
            }
            for e in entries
        ],
    }


def gather(key: str, dv: Any, bp: Any, store: Any, limit: int = 50) -> dict[str, Any] | None:
    """The 360° view of the customer `key` names; None when neither side has it."""
    bp_id, dv_id = resolve(key, dv, bp, store)
    bp_side = brightpearl_side(bp, bp_id, limit) if bp_id is not None else None
    dv_side = dynamics_side(dv, dv_id, limit) if dv_id is not None else None
    if bp_side is None and dv_side is None:
        return None
    return {
        "query": key,
        "brightpearl": bp_side,
        "dynamics": dv_side,
        "computed": computed(bp_side),
        "sync": sync_state(store, bp_id, dv_id, bp_side),
    }


# ------------------------------------------------------------------------------------- command
@app.command("show")
def show(
    customer: str = typer.Argument(..., help="e-mail, Brightpearl contact id or Dynamics contactid"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
    limit: int = typer.Option(
        50, "--limit", min=1, max=500, help="newest orders/credits/records shown per kind"
    ),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """One customer from both systems side by side: orders, returns, invoices, payments, the
    enrichment Dynamics holds beside what Brightpearl's records add up to, and the sync state."""
    from shared import runtime

    key = customer.strip()
    if not key:
        raise _fail("give the customer: an e-mail, a Brightpearl contact id or a Dynamics contactid")
    settings = app_settings(settings_file)
    with runtime.override(settings=settings):
        try:
            found = gather(key, runtime.dataverse(), runtime.brightpearl(), runtime.state_store(), limit)
        except Ambiguous as exc:
            Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    if found is None:
        looked = (
            "a Brightpearl contact id"
            if key.isdigit()
            else "an e-mail in both systems"
            if "@" in key
            else "a Dynamics contactid"
        )
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[red]error:[/red] no customer {key!r}: looked up as {looked} - found on neither side"
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=_json_default))
        return
    _print(found)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date, Decimal)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ------------------------------------------------------------------------------------- text
def _table(title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def _money(figures: dict[str, dict[str, str]], key: str) -> str:
    return ", ".join(f"{v[key]} {c}" for c, v in figures.items()) or "-"


def _print(found: dict[str, Any]) -> None:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # piped or captured: do not fold ids into 80 columns
        console = Console(highlight=False, soft_wrap=False, width=max(console.width, 160))
    bp, dv, calc, sync = found["brightpearl"], found["dynamics"], found["computed"], found["sync"]
    contact, account = (dv or {}).get("contact") or {}, (dv or {}).get("account") or {}
    held = {
        **{k: v for k, v in account.items() if k in ENRICHMENT},
        **{k: v for k, v in contact.items() if k in ENRICHMENT},
    }
    net = calc.get("netByCurrency", {})
    side = [
        [
            "customer",
            f"contact {bp['contactId']}" if bp else "(none)",
            f"contact {contact.get('contactid')}" if dv else "(none)",
        ],
        ["name", (bp or {}).get("name"), contact.get("fullname")],
        ["e-mail", (bp or {}).get("email"), contact.get("emailaddress1")],
        [
            "company / group",
            f"{(bp or {}).get('organisation') or '-'}; price list {(bp or {}).get('priceListId')}",
            f"{account.get('name') or '-'}; type {account.get('customertypecode') or '-'}; "
            f"group {contact.get('bpi_customergroup') or account.get('bpi_customergroup') or '-'}",
        ],
        [
            "orders",
            len((bp or {}).get("orders", [])),
            f"{len((dv or {}).get('salesorders', []))} salesorder(s)",
        ],
        [
            "returns",
            f"{len((bp or {}).get('credits', []))} sales credit(s)",
            f"{len((dv or {}).get('incidents', []))} case(s)",
        ],
        [
            "payments / invoices",
            f"{len((bp or {}).get('payments', []))} payment(s)",
            f"{len((dv or {}).get('invoices', []))} invoice(s)",
        ],
        [
            "lifetime value",
            f"{_money(net, 'ordersLessCredits')} (invoiced orders less credits, net)",
            held.get("bpi_lifetimevalue"),
        ],
        ["order count", calc.get("orderCount"), held.get("bpi_ordercount")],
        [
            "average order",
            ", ".join(f"{v} {c}" for c, v in calc.get("averageOrder", {}).items()) or "-",
            held.get("bpi_averageordervalue"),
        ],
        ["last purchase", calc.get("lastPurchase"), held.get("bpi_lastpurchasedate")],
        ["open returns", calc.get("openReturns"), held.get("bpi_openreturns")],
        ["timeline", "", f"{len((dv or {}).get('timeline', []))} note(s)/task(s)"],
    ]
    console.print(_table(f"customer {found['query']}", ["", "Brightpearl", "Dynamics"], side))
    if calc and not calc.get("complete"):
        console.print(
            f"(Brightpearl figures from the newest {bp['shown_limit']} orders and credits only: --limit)"
        )
    links = sync["orderLinks"]
    so_by_id = {str(s.get("salesorderid")).lower(): s for s in (dv or {}).get("salesorders", [])}
    so_by_bp = {
        str(s.get("bpi_brightpearlid")): s
        for s in (dv or {}).get("salesorders", [])
        if s.get("bpi_brightpearlid")
    }
    rows = []
    for o in (bp or {}).get("orders", []):
        linked = links.get(str(o["id"]))
        so = so_by_id.get(str(linked).lower()) if linked else so_by_bp.get(str(o["id"]))
        rows.append(
            [
                o["id"],
                o["reference"],
                o["placedOn"],
                o["status"],
                f"{o['total']} {o['currency']}",
                o["paymentStatus"],
                o["shippingStatus"],
                o["invoiceReference"],
                f"{so.get('ordernumber')} (state {so.get('statecode')})" if so else (linked or "-"),
            ]
        )
    shown_links = {str(v).lower() for v in links.values()}
    for so in (dv or {}).get("salesorders", []):
        if str(so.get("salesorderid")).lower() not in shown_links and str(
            so.get("bpi_brightpearlid") or ""
        ) not in {str(o["id"]) for o in (bp or {}).get("orders", [])}:
            rows.append(
                [
                    "-",
                    "-",
                    so.get("createdon"),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    f"{so.get('ordernumber')} (state {so.get('statecode')}, Dynamics only)",
                ]
            )
    console.print(
        _table(
            "orders",
            [
                "Brightpearl order",
                "ref",
                "placed",
                "status",
                "total",
                "payment",
                "shipping",
                "invoice",
                "Dynamics order",
            ],
            rows,
        )
    )
    cases = {
        str(c.get("bpi_brightpearlid")): c
        for c in (dv or {}).get("incidents", [])
        if c.get("bpi_brightpearlid")
    }
    rows = [
        [
            c["id"],
            c["reference"],
            c["parentOrderId"],
            c["status"],
            f"{c['total']} {c['currency']}",
            c["paymentStatus"],
            (
                lambda k: (
                    f"{k.get('ticketnumber')} {k.get('title')} (state {k.get('statecode')})" if k else "-"
                )
            )(cases.get(str(c["id"]))),
        ]
        for c in (bp or {}).get("credits", [])
    ]
    rows += [
        [
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            f"{k.get('ticketnumber')} {k.get('title')} (state {k.get('statecode')})",
        ]
        for k in (dv or {}).get("incidents", [])
        if str(k.get("bpi_brightpearlid") or "") not in {str(c["id"]) for c in (bp or {}).get("credits", [])}
    ]
    console.print(
        _table(
            "returns", ["sales credit", "ref", "order", "status", "total", "payment", "Dynamics case"], rows
        )
    )
    rows = [
        [
            p["paymentId"],
            p["orderId"],
            p["paymentType"],
            f"{p['amountPaid']} {p['currency']}",
            p["paymentDate"],
            p["method"],
        ]
        for p in (bp or {}).get("payments", [])
    ]
    console.print(
        _table("Brightpearl payments", ["payment", "order", "type", "amount", "date", "method"], rows)
    )
    rows = [
        [
            i.get("invoicenumber"),
            i.get("name"),
            i.get("statecode"),
            i.get("statuscode"),
            i.get("totalamount"),
            i.get("bpi_amountpaid"),
        ]
        for i in (dv or {}).get("invoices", [])
    ]
    console.print(_table("Dynamics invoices", ["number", "name", "state", "status", "total", "paid"], rows))
    rows = [
        [t["kind"], t.get("createdon"), t.get("subject"), t.get("id")] for t in (dv or {}).get("timeline", [])
    ]
    console.print(_table("Dynamics timeline", ["kind", "created", "subject", "id"], rows))
    link = sync["link"]
    console.print(
        "customer link: "
        + (
            f"{link['state']}, Brightpearl {link['brightpearl']} <-> Dynamics {link['dataverse']}"
            if link
            else "none"
        )
    )
    rows = [
        [a["at"], a["flow"], a["result"], a["source"], a["reason"], a["fields"], a["description"]]
        for a in sync["audit"]
    ]
    console.print(
        _table(
            f"audit of the customer (newest {len(rows)})",
            ["at", "flow", "result", "source", "reason", "fields", "description"],
            rows,
        )
    )
