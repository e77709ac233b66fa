"""`syncctl orders show <order>`: one sales order's life on both sides (issue 13 item 7).

The order is named by its Dynamics order number, its Dynamics salesorder id (a GUID) or its
Brightpearl order id (digits; a Dynamics order number that is all digits is tried after it).
Shown: the Dynamics salesorder with its lines, the Brightpearl order with its rows and status
(both read through the real clients), the order link, every audit row about the order and the
bus messages naming it (dead letters on either backend; active ones on the local bus). Ids,
amounts, statuses and reasons only: no addresses, e-mails or phone numbers, and the customer
by id only (as `syncctl dlq`). Not found on either side: exit 1 naming what was looked up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from shared.bus.port import BusError
from shared.events import Envelope, EnvelopeError
from syncctl.dlq import MaxOpt, SettingsOpt, TopologyOpt, _environment, _fail, resolve

app = typer.Typer(name="orders", help="Look at sales orders on both sides.", no_args_is_help=True)

LINK_ENTITY = "order"  # shared/flows/orders_to_brightpearl.py link_entity
ORDER_ENTITIES = frozenset({"salesorder", "order", "orders"})
ORDER_COLUMNS = [
    "salesorderid",
    "ordernumber",
    "name",
    "statecode",
    "statuscode",
    "_customerid_value",
    "totalamount",
    "freightamount",
    "bpi_brightpearlid",
    "modifiedon",
]
LINE_COLUMNS = [
    "salesorderdetailid",
    "_productid_value",
    "productdescription",
    "quantity",
    "priceperunit",
    "extendedamount",
    "quantityshipped",
    "sequencenumber",
]


def _text(value: Any) -> Any:
    """JSON-safe scalars (Decimals and dates as text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _dataverse_order(dv: Any, key: str) -> dict[str, Any] | None:
    from shared.dataverse import odata

    if odata.is_guid(key):
        record = dv.get_or_none("salesorders", odata.guid(key), select=ORDER_COLUMNS)
    else:
        found = list(
            dv.query("salesorders", select=ORDER_COLUMNS, filter=odata.eq("ordernumber", key), top=2)
        )
        record = found[0] if found else None
    if record is None:
        return None
    order = {name: _text(record.get(name)) for name in ORDER_COLUMNS}
    order["customerid"] = order.pop("_customerid_value")
    lines = dv.query(
        "salesorderdetails", select=LINE_COLUMNS, filter=odata.lookup_eq("salesorderid", str(record.id))
    )
    order["lines"] = sorted(
        (
            {
                **{n: _text(line.get(n)) for n in LINE_COLUMNS if n != "_productid_value"},
                "productid": _text(line.get("_productid_value")),
            }
            for line in lines
        ),
        key=lambda line: (line.get("sequencenumber") is None, line.get("sequencenumber") or 0),
    )
    return order


def _brightpearl_order(bp: Any, order_id: int) -> dict[str, Any] | None:
    from shared.brightpearl.errors import BrightpearlNotFound

    try:
        orders = bp.get_orders([order_id])
    except BrightpearlNotFound:
        return None
    if not orders:
        return None
    o = orders[0]
    rows = [
        {
            "rowId": row_id,
            "productId": row.product_id,
            "sku": row.product_sku,
            "name": row.product_name,
            "quantity": _text(row.quantity),
            "net": _text(row.row_net),
            "nominalCode": row.nominal_code,
        }
        for row_id, row in sorted(o.order_rows.items())
    ]
    return {
        "id": o.id,
        "orderTypeCode": o.order_type_code,
        "reference": o.reference,
        "externalRef": o.external_ref,
        "installedIntegrationInstanceId": o.installed_integration_instance_id,
        "status": {"id": o.order_status.order_status_id, "name": o.order_status.name},
        "paymentStatus": o.order_payment_status,
        "shippingStatus": o.shipping_status_code,
        "stockStatus": o.stock_status_code,
        "customerId": o.customer_id,
        "currency": o.currency.get("orderCurrencyCode") or o.currency.get("code"),
        "createdOn": _text(o.created_on),
        "updatedOn": _text(o.updated_on),
        "rows": rows,
    }


def _link(store: Any, dv_id: str | None, bp_id: int | None) -> Any:
    link = store.links.get(LINK_ENTITY, "dataverse", dv_id) if dv_id else None
    if link is None and bp_id is not None:
        link = store.links.get(LINK_ENTITY, "brightpearl", str(bp_id))
    return link


def _link_json(link: Any) -> dict[str, Any] | None:
    if link is None:
        return None
    return {
        "state": _text(getattr(link.state, "value", link.state)),
        "dataverse": link.id_in("dataverse"),
        "brightpearl": link.id_in("brightpearl"),
    }


def _audit(store: Any, dv_id: str | None, bp_id: int | None) -> list[dict[str, Any]]:
    seen: dict[Any, Any] = {}
    for system, record_id in (("dataverse", dv_id), ("brightpearl", bp_id)):
        if record_id is None:
            continue
        for entry in store.audit.for_record(LINK_ENTITY, system, str(record_id), limit=500):
            seen.setdefault(entry.id or entry, entry)  # an entry about both ids is shown once
    entries = sorted(seen.values(), key=lambda e: (e.at is None, e.at))
    return [
        {
            "at": _text(e.at),
            "flow": e.flow,
            "result": _text(e.result.value),
            "source": f"{e.source_system} {e.source_id}",
            "target": f"{e.target_system} {e.target_id}" if e.target_system else None,
            "reason": e.reason_code,
            "description": e.description,
            "attempt": e.attempt,
            "messageId": e.message_id,
        }
        for e in entries
    ]


def _about(body: bytes, ids: set[str]) -> tuple[str | None, tuple[str, ...]] | None:
    """(entity, ids) of a change notice naming one of `ids`; None otherwise."""
    try:
        envelope = Envelope.from_body(body)
    except EnvelopeError:
        return None
    named = tuple(envelope.notice.ids)
    if {i.lower() for i in named} & ids:
        return envelope.notice.entity, named
    return None


def _bus(
    settings_file: Path | None, topology_file: Path | None, ids: set[str], max_messages: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The bus messages naming the order, and notes on what could not be looked at."""
    from shared.bus.deadletters import Selection
    from shared.bus.factory import build_dead_letters

    settings, topology, targets = resolve(settings_file, topology_file, None, None)
    found: list[dict[str, Any]] = []
    notes: list[str] = []
    if settings.backend == "local" and not Path(settings.local_path).exists():
        return [], [f"no local bus at {settings.local_path}: bus messages not shown"]

    def add(queue: str, topic: str, subscription: str, message: Any, body: bytes, reason: Any) -> None:
        about = _about(body, ids)
        if about is not None:
            when = message.enqueued_time_utc
            found.append(
                {
                    "queue": queue,
                    "subscription": f"{topic}/{subscription}",
                    "messageId": message.message_id,
                    "entity": about[0],
                    "ids": list(about[1]),
                    "reason": reason,
                    "enqueued": when.isoformat() if when else None,
                }
            )

    try:
        ops = build_dead_letters(settings, topology=topology)
        try:
            for topic, subscription in targets:
                for item in ops.list(topic, subscription, Selection(all=True), max_messages=max_messages):
                    add("dead-lettered", topic, subscription, item, item.body, item.reason)
        finally:
            ops.close()
        if settings.backend == "local":
            from shared.bus.local import LocalBus

            with LocalBus(settings.local_path, topology) as bus:
                for topic, subscription in targets:
                    for m in bus.peek(topic, subscription, max_messages):
                        add("active", topic, subscription, m, m.body, None)
        else:
            notes.append(
                "Azure Service Bus: dead letters shown; active and scheduled messages are counted by "
                "`syncctl bus status`, not listed here"
            )
    except BusError as exc:
        notes.append(f"bus not read: {exc}")
    return found, notes


def gather(key: str, dv: Any, bp: Any, store: Any) -> dict[str, Any] | None:
    """Both sides and the link of the order named by `key`; None when neither side has it."""
    dv_order: dict[str, Any] | None = None
    bp_order: dict[str, Any] | None = None
    if key.isdigit():
        bp_order = _brightpearl_order(bp, int(key))
    if bp_order is None:
        dv_order = _dataverse_order(dv, key)
    dv_id = dv_order["salesorderid"] if dv_order else None
    bp_id = bp_order["id"] if bp_order else None
    link = _link(store, dv_id, bp_id)
    if dv_order is None and bp_order is not None:
        guid = (link.id_in("dataverse") if link else None) or bp_order.get("externalRef")
        if guid:
            dv_order = _dataverse_order(dv, str(guid))
            dv_id = dv_order["salesorderid"] if dv_order else None
    if bp_order is None and dv_order is not None:
        candidate = (link.id_in("brightpearl") if link else None) or dv_order.get("bpi_brightpearlid")
        if candidate and str(candidate).isdigit():
            bp_order = _brightpearl_order(bp, int(candidate))
        if bp_order is None and dv_id:
            existing = bp.find_order_ids_by_external_ref(str(dv_id))
            bp_order = _brightpearl_order(bp, min(existing)) if existing else None
        bp_id = bp_order["id"] if bp_order else None
    if dv_order is None and bp_order is None:
        return None
    link = link or _link(store, dv_id, bp_id)
    return {
        "query": key,
        "dynamics": dv_order,
        "brightpearl": bp_order,
        "link": _link_json(link),
        "audit": _audit(store, dv_id, bp_id),
    }


@app.command("show")
def show(
    order: str = typer.Argument(
        ..., help="Dynamics order number, Dynamics salesorder id or Brightpearl order id"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
    settings_file: Path | None = SettingsOpt,
    topology_file: Path | None = TopologyOpt,
    max_messages: int = MaxOpt,
) -> None:
    """Both sides of one order, its link, its audit rows and the bus messages about it."""
    from shared import runtime
    from shared.settings import SettingsError, load_settings

    key = order.strip()
    if not key:
        raise _fail("give the order: a Dynamics order number, salesorder id or Brightpearl order id")
    env, _ = _environment(settings_file)
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        raise _fail("settings are not valid: " + "; ".join(exc.problems)) from None
    with runtime.override(settings=settings):
        found = gather(key, runtime.dataverse(), runtime.brightpearl(), runtime.state_store())
    if found is None:
        Console(stderr=True, highlight=False).print(
            f"[red]error:[/red] no order {key!r}: looked up as "
            + ("a Brightpearl order id and " if key.isdigit() else "")
            + ("a Dynamics salesorder id" if _is_guid(key) else "a Dynamics order number")
            + " - found on neither side"
        )
        raise typer.Exit(1)
    ids = {
        str(i).lower()
        for i in ((found["dynamics"] or {}).get("salesorderid"), (found["brightpearl"] or {}).get("id"))
        if i is not None
    }
    found["messages"], found["notes"] = _bus(settings_file, topology_file, ids, max_messages)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    _print(found)


def _is_guid(key: str) -> bool:
    from shared.dataverse import odata

    return odata.is_guid(key)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def _print(found: dict[str, Any]) -> None:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # piped or captured: do not fold ids into 80 columns
        console = Console(highlight=False, soft_wrap=False, width=max(console.width, 140))
    dv, bp, link = found["dynamics"], found["brightpearl"], found["link"]
    if dv is None:
        console.print("Dynamics: no salesorder found")
    else:
        console.print(
            f"Dynamics order {dv['ordernumber']} ({dv['salesorderid']}): {dv['name']}; "
            f"state {dv['statecode']}, status {dv['statuscode']}; customer {dv['customerid']}; "
            f"total {dv['totalamount']}, freight {dv['freightamount']}; "
            f"bpi_brightpearlid {dv['bpi_brightpearlid'] or '(none)'}"
        )
        columns = ["line", "product", "description", "quantity", "price", "amount", "shipped"]
        rows = [
            [
                line["salesorderdetailid"],
                line["productid"],
                line["productdescription"],
                line["quantity"],
                line["priceperunit"],
                line["extendedamount"],
                line["quantityshipped"],
            ]
            for line in dv["lines"]
        ]
        console.print(_table("Dynamics lines", columns, rows))
    if bp is None:
        console.print("Brightpearl: no sales order found")
    else:
        status = bp["status"]
        console.print(
            f"Brightpearl order {bp['id']} (ref {bp['reference']}, externalRef {bp['externalRef']}): "
            f"status {status['name'] or ''} ({status['id']}); payment {bp['paymentStatus']}, "
            f"shipping {bp['shippingStatus']}, stock {bp['stockStatus']}; customer {bp['customerId']}"
        )
        columns = ["row", "product", "sku", "name", "quantity", "net", "nominal"]
        rows = [
            [r["rowId"], r["productId"], r["sku"], r["name"], r["quantity"], r["net"], r["nominalCode"]]
            for r in bp["rows"]
        ]
        console.print(_table("Brightpearl rows", columns, rows))
    if link is None:
        console.print("link: none")
    else:
        console.print(
            f"link: {link['state']}, Dynamics {link['dataverse']} <-> Brightpearl {link['brightpearl']}"
        )
    columns = ["at", "flow", "result", "source", "target", "reason", "attempt", "description"]
    rows = [
        [
            a["at"],
            a["flow"],
            a["result"],
            a["source"],
            a["target"],
            a["reason"],
            a["attempt"],
            a["description"],
        ]
        for a in found["audit"]
    ]
    console.print(_table(f"audit ({len(rows)} row(s))", columns, rows))
    console.print(f"bus messages ({len(found['messages'])}):")
    for m in found["messages"]:  # one line each: message ids stay whole for `syncctl dlq show`
        reason = f" reason {m['reason']}" if m["reason"] else ""
        console.print(
            f"  {m['queue']} {m['subscription']} message {m['messageId']} {m['entity']} "
            f"[{', '.join(m['ids'])}]{reason} enqueued {m['enqueued']}",
            overflow="ignore",
            crop=False,
        )
    for note in found["notes"]:
        console.print(f"  {note}")
