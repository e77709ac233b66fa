"""Order history (issue 14 item 1): Brightpearl sales orders as Dynamics salesorders, the
`history:` section of mappings/orders.yaml and the translation of one Brightpearl order.

Pure functions (no I/O): which channels are copied (`HistorySettings.includes`), whether an
order's rows add up to its total (`totals_gap`), and the salesorder body with its lines
(`salesorder_body`): lines whose SKU Dynamics knows (and whose product is in the order's price
list) link to that product, the others are write-in lines named by SKU and name. Each line's
amounts are Brightpearl's: `priceperunit` x `quantity` - `manualdiscountamount` is the row's
net, `tax` its tax, so Dynamics' totals are Brightpearl's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.brightpearl import parse_bp_time

ORIGIN_BRIGHTPEARL = "Brightpearl"  # salesorder.bpi_origin of a Brightpearl-born order
ORIGIN_DYNAMICS = "Dynamics"
# the namespace of the salesorderdetail ids made for Brightpearl order rows (uuid5 of order:row),
# so a goods-out note's row finds its Dynamics line without a look-up
LINE_NAMESPACE = uuid.UUID("3f1d8a52-3c1e-4d0b-9a55-6f0b1a7e2c41")
CENT = Decimal("0.01")


class HistorySettings(BaseModel):
    """`history:` in mappings/orders.yaml: which Brightpearl sales orders are copied to Dynamics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="copy Brightpearl-born sales orders to Dynamics")
    channels: tuple[int, ...] = Field(
        (),
        description="Brightpearl channel ids whose orders are copied (empty: every channel; 0: no channel)",
    )
    channel_names: dict[int, str] = Field(
        default_factory=dict, description="Brightpearl channelId -> the name bpi_channel receives"
    )
    price_lists: dict[str, str] = Field(
        default_factory=dict,
        description="currency ISO code -> Dynamics price list name (default: the first in that currency)",
    )
    rounding_tolerance: Decimal = Field(
        CENT,
        ge=0,
        le=1,
        description="how far rows may be off the order total (rounding) before it is refused",
    )

    def includes(self, channel_id: int) -> bool:
        return not self.channels or channel_id in self.channels

    def channel_name(self, channel_id: int) -> str | None:
        if not channel_id:
            return None
        return (self.channel_names.get(channel_id) or f"Brightpearl channel {channel_id}")[:100]


@dataclass(frozen=True)
class KnownProduct:
    """A Dynamics product found by SKU (productnumber), and whether the order's price list has it."""

    product_id: str
    unit_id: str | None
    in_price_list: bool


def amount(value: Any) -> Decimal:
    """A Brightpearl amount ("12.5000", {"value": "1.00"}, {"magnitude": "2"}) as a Decimal (0 if absent)."""
    if isinstance(value, Mapping):
        value = value.get("value", value.get("magnitude"))
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def channel_of(order: Mapping[str, Any]) -> int:
    current = ((order.get("assignment") or {}).get("current")) or {}
    try:
        return int(current.get("channelId") or 0)
    except (TypeError, ValueError):
        return 0


def currency_of(order: Mapping[str, Any]) -> str:
    return str((order.get("currency") or {}).get("orderCurrencyCode") or "").upper()


def customer_of(order: Mapping[str, Any]) -> int:
    try:
        return int(((order.get("parties") or {}).get("customer") or {}).get("contactId") or 0)
    except (TypeError, ValueError):
        return 0


def rows_of(order: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The order's rows (row id, row) in row sequence order."""
    rows = [(str(k), dict(v)) for k, v in (order.get("orderRows") or {}).items() if isinstance(v, Mapping)]
    return sorted(rows, key=lambda kv: (int(amount(kv[1].get("orderRowSequence"))), int(kv[0] or 0)))


def totals_gap(order: Mapping[str, Any], tolerance: Decimal) -> str | None:
    """Why the order's rows do not add up to its total (beyond `tolerance`), naming each
    difference; None when they do."""
    rows = [row for _, row in rows_of(order)]
    net = sum((amount((r.get("rowValue") or {}).get("rowNet")) for r in rows), Decimal(0))
    tax = sum((amount((r.get("rowValue") or {}).get("rowTax")) for r in rows), Decimal(0))
    total = order.get("totalValue") or {}
    currency = currency_of(order)
    wanted = {
        "net": (net, amount(total.get("net"))),
        "tax": (tax, amount(total.get("taxAmount"))),
        "total": (net + tax, amount(total.get("total"))),
    }
    gaps = [
        f"{name}: rows {rows_sum.quantize(CENT)}, order {said.quantize(CENT)}, "
        f"difference {(said - rows_sum).quantize(CENT)} {currency}".rstrip()
        for name, (rows_sum, said) in wanted.items()
        if abs(said - rows_sum) > tolerance
    ]
    if not gaps:
        return None
    return (
        "has rows that do not add up to its total beyond rounding (tolerance "
        f"{tolerance} {currency}): " + "; ".join(gaps)
    )


def line_id(order_id: str | int, row_id: str | int) -> str:
    """The salesorderdetailid of a Brightpearl order row (deterministic: uuid5 of order and row)."""
    return str(uuid.uuid5(LINE_NAMESPACE, f"brightpearl-order-row:{order_id}:{row_id}"))


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.0001")))


def line_body(
    order_id: str, row_id: str, row: Mapping[str, Any], product: KnownProduct | None
) -> tuple[dict[str, Any], bool]:
    """One salesorderdetail for a Brightpearl row, and whether it is a write-in line. The unit
    price is Brightpearl's (else the row's net / quantity, rounded up to the cent) and any
    difference to the row's net is the line's manual discount, so the line's amount is the net."""
    quantity = amount(row.get("quantity")) or Decimal(1)
    value = row.get("rowValue") or {}
    net, tax = amount(value.get("rowNet")), amount(value.get("rowTax"))
    price = amount(row.get("productPrice"))
    if price * quantity < net or price <= 0:
        price = (net / quantity).quantize(CENT, rounding=ROUND_CEILING) if quantity else net
    discount = price * quantity - net
    body: dict[str, Any] = {
        "salesorderdetailid": line_id(order_id, row_id),
        "quantity": float(quantity),
        "priceperunit": _money(price),
        "ispriceoverridden": True,
        "tax": _money(tax),
    }
    if discount:
        body["manualdiscountamount"] = _money(discount)
    if product is not None and product.in_price_list and product.unit_id:
        body["productid@odata.bind"] = f"/products({product.product_id})"
        body["uomid@odata.bind"] = f"/uoms({product.unit_id})"
        return body, False
    sku = str(row.get("productSku") or "").strip()
    name = str(row.get("productName") or "").strip()
    body["isproductoverridden"] = True
    body["productdescription"] = (" - ".join(p for p in (sku, name) if p) or f"Brightpearl row {row_id}")[
        :500
    ]
    return body, True


def salesorder_body(
    order: Mapping[str, Any],
    settings: HistorySettings,
    *,
    customer: str,
    currency: str,
    price_list: str | None,
    products: Mapping[str, KnownProduct],
    columns: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The salesorder (deep insert with its lines, `order_details`) for a Brightpearl order, and
    the rows that became write-in lines. `customer` is the Dynamics contactid, `currency` the
    transactioncurrencyid, `price_list` the pricelevelid, `products` SKU -> KnownProduct;
    `columns` are more salesorder columns (the write-back's, so the order is born complete)."""
    order_id = str(order["id"])
    reference = str(order.get("reference") or "").strip()
    lines: list[dict[str, Any]] = []
    write_ins: list[str] = []
    for row_id, row in rows_of(order):
        sku = str(row.get("productSku") or "").strip()
        body, write_in = line_body(order_id, row_id, row, products.get(sku.casefold()) if sku else None)
        if write_in:
            write_ins.append(sku or f"row {row_id}")
        lines.append(body)
    header: dict[str, Any] = {
        "name": (
            f"{reference} (Brightpearl order {order_id})" if reference else f"Brightpearl order {order_id}"
        )[:300],
        "bpi_brightpearlid": order_id,
        "bpi_origin": ORIGIN_BRIGHTPEARL,
        "customerid_contact@odata.bind": f"/contacts({customer})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({currency})",
        **(columns or {}),
        "order_details": lines,
    }
    if channel := settings.channel_name(channel_of(order)):
        header["bpi_channel"] = channel
    if placed := utc_text(order.get("placedOn")):
        header["bpi_placedon"] = placed
    if price_list:
        header["pricelevelid@odata.bind"] = f"/pricelevels({price_list})"
    return header, write_ins


def utc_text(value: Any) -> str | None:
    """A date-time as Dataverse holds it: UTC, whole seconds, `Z` (None if it is not one)."""
    parsed = (
        parse_bp_time(value) if isinstance(value, str) else value if isinstance(value, datetime) else None
    )
    if parsed is None:
        return None
    return str(parsed.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ"))
