"""Dynamics sales order rows -> canonical `Order` -> Brightpearl sales-order POST body.

`order_from_dataverse(row, lines)` reads a salesorder row (with its currency expanded and the
customer lookup's logical-name annotation) and its salesorderdetail rows (with the product's
`productnumber` expanded). `sales_order_body(order, mapping, ...)` builds the one atomic POST
(reference brightpearl-api.md §6.2): a row per line (product id or free-text name, quantity,
net row total, tax and the tax code of its rate), the order-level discount spread over the
lines or as one row, the freight as a shipping row, the addresses as billing and delivery
parties, `ref` = the order number, `externalRef` = the salesorder id. Problems come back as
issues naming the field, never a personal value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.mapping.dataverse import ADDRESS_PARTS
from shared.mapping.orders_config import OrderMapping
from shared.mapping.translation import Translation
from shared.model.order import ZERO, CustomerRef, Order, OrderAddress, OrderLine
from shared.quality.issues import IssueCode, QualityIssue, QualityPolicy, Severity
from shared.quality.normalise import country_to_iso2, iso2_to_iso3

FOUR_PLACES = Decimal("0.0001")
CUSTOMER_KIND = "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
ADDRESS_COLUMNS = {**ADDRESS_PARTS, "name": "name", "telephone": "telephone"}  # canonical -> suffix


def address_columns() -> list[str]:
    """The billto_* and shipto_* columns `order_from_dataverse` reads."""
    return [f"{side}_{c}" for side in ("billto", "shipto") for c in ADDRESS_COLUMNS.values()]


def _money(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def _address(row: Mapping[str, Any], side: str, order_id: str, issues: list[QualityIssue]) -> OrderAddress:
    values = {k: row.get(f"{side}_{c}") for k, c in ADDRESS_COLUMNS.items()}
    country = country_to_iso2(values.pop("country"))
    if country.code is not None:
        issues.append(
            QualityIssue(
                code=country.code,
                severity=Severity.WARNING,
                system="dataverse",
                record_id=order_id,
                field=f"{side}_country",
                description=f"{side}_country {country.reason}; the address is sent without a country",
            )
        )
    return OrderAddress.model_validate({**values, "country": country.value})


def order_from_dataverse(row: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> Translation[Order]:
    """A salesorder row and its salesorderdetail rows as the canonical order."""
    order_id = str(row["salesorderid"]).lower()
    issues: list[QualityIssue] = []
    customer_id = row.get("_customerid_value")
    kind = row.get(CUSTOMER_KIND)
    customer = (
        CustomerRef(kind=kind, id=str(customer_id).lower())
        if customer_id and kind in ("account", "contact")
        else None
    )
    currency = row.get("transactioncurrencyid") or {}
    order_lines = []
    for line in sorted(lines, key=lambda r: (r.get("sequencenumber") or 0, str(r.get("salesorderdetailid")))):
        product = line.get("productid") or {}
        write_in = bool(line.get("isproductoverridden")) or not line.get("_productid_value")
        order_lines.append(
            OrderLine(
                line_id=str(line.get("salesorderdetailid") or "") or None,
                sequence=int(line.get("sequencenumber") or 0),
                sku=None if write_in else product.get("productnumber"),
                product_id=None if write_in else str(line["_productid_value"]).lower(),
                write_in=line.get("productdescription") if write_in else None,
                quantity=_money(line.get("quantity")),
                unit_price=_money(line.get("priceperunit")),
                discount=_money(line.get("manualdiscountamount")),
                tax=_money(line.get("tax")),
            )
        )
    order = Order(
        order_id=order_id,
        order_number=row.get("ordernumber"),
        name=row.get("name"),
        customer=customer,
        currency=currency.get("isocurrencycode") if isinstance(currency, Mapping) else None,
        billing=_address(row, "billto", order_id, issues),
        shipping=_address(row, "shipto", order_id, issues),
        freight=_money(row.get("freightamount")),
        shipping_method=row.get("shippingmethodcode"),
        discount=_money(row.get("discountamount")),
        discount_percentage=_money(row.get("discountpercentage")),
        statecode=int(row.get("statecode") or 0),
        statuscode=row.get("statuscode"),
        send_to_brightpearl=bool(row.get("bpi_sendtobrightpearl")),
        brightpearl_id=row.get("bpi_brightpearlid"),
        lines=tuple(order_lines),
    )
    return Translation(order, issues)


def order_hash(order: Order) -> str:
    """Stable hash of what the order sends to Brightpearl (header and lines, not its state)."""
    data = order.model_dump(mode="json", exclude={"statecode", "statuscode", "modified_at", "brightpearl_id"})
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "o1:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _q(value: Decimal) -> Decimal:
    return value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


def _party(address: OrderAddress) -> dict[str, Any] | None:
    if address.is_empty():
        return None
    out = {
        "addressFullName": address.name,
        "companyName": address.company,
        "addressLine1": address.line1,
        # line3 has no slot of its own (line 3 is the town): it joins line 2, as for customers
        "addressLine2": ", ".join(part for part in (address.line2, address.line3) if part),
        "addressLine3": address.city,
        "addressLine4": address.region,
        "postalCode": address.postcode,
        "countryIsoCode": iso2_to_iso3(address.country) if address.country else None,
        "telephone": address.telephone,
    }
    return {k: v for k, v in out.items() if v}


def order_discount(order: Order) -> Decimal:
    """The order-level discount: discountpercentage of the lines' nets, plus discountamount."""
    nets = sum((line.net for line in order.lines), ZERO)
    return _q(nets * order.discount_percentage / 100 + order.discount)


def sales_order_body(
    order: Order,
    mapping: OrderMapping,
    *,
    customer_id: int,
    product_ids: Mapping[str, int],
    installed_integration_instance_id: int | None = None,
) -> tuple[dict[str, Any] | None, list[QualityIssue]]:
    """The sales-order POST body (reference §6.2), or the issues that stop it. `product_ids`:
    Brightpearl product id by SKU for every existing-product line."""
    issues: list[QualityIssue] = []

    def problem(field: str, description: str) -> None:
        issues.append(
            QualityIssue(
                code=IssueCode.UNMAPPABLE_VALUE,
                severity=QualityPolicy().severity(IssueCode.UNMAPPABLE_VALUE),
                system="dataverse",
                record_id=order.order_id,
                field=field,
                description=f"{order.reference}: {description}",
            )
        )

    nets = [_q(line.net) for line in order.lines]
    discount = order_discount(order)
    if discount and mapping.discount.order_level == "spread":
        nets = _spread(nets, discount)
    rows: list[dict[str, Any]] = []
    for index, (line, net) in enumerate(zip(order.lines, nets, strict=True)):
        tax_code = mapping.tax.code_for(_q(line.net), line.tax)
        if tax_code is None:
            rate = (line.tax * 100 / _q(line.net)).quantize(Decimal("0.01")) if _q(line.net) else ZERO
            problem(
                f"lines[{index}].tax",
                f"line {index + 1}: its tax rate {rate}% has no code in tax.codes; add the rate "
                f"(or tax.default) to {mapping.source}, then resubmit",
            )
            continue
        row: dict[str, Any] = {
            "quantity": line.quantity,
            "net": net,
            "tax": _q(line.tax),
            "taxCode": tax_code,
        }
        if line.sku:
            row["productId"] = product_ids[line.sku]
        else:
            row["name"] = line.write_in
        if line.line_id:
            row["externalRef"] = line.line_id
        rows.append(row)
    if discount and mapping.discount.order_level == "row":
        rows.append(
            _extra_row(
                mapping.discount.row_name,
                -discount,
                mapping.discount.tax_code or mapping.tax.code_for(Decimal(1), ZERO),
                mapping.discount.nominal_code,
            )
        )
    if order.freight:
        freight_code = mapping.tax.freight or mapping.tax.code_for(Decimal(1), ZERO)
        rows.append(
            _extra_row(mapping.freight.row_name, order.freight, freight_code, mapping.freight.nominal_code)
        )
    if any(row["taxCode"] is None for row in rows):
        problem(
            "tax",
            "the discount or shipping row has no tax code (tax.freight, discount.tax_code, tax.codes 0)",
        )
    if issues:
        return None, issues
    body: dict[str, Any] = {
        "customer": {"id": customer_id},
        "ref": order.order_number,
        "externalRef": order.order_id,
        "installedIntegrationInstanceId": installed_integration_instance_id,
        "statusId": mapping.brightpearl.status_id,
        "warehouseId": mapping.brightpearl.warehouse_id,
        "channelId": mapping.brightpearl.channel_id,
        "priceListId": mapping.brightpearl.price_list_id,
        "priceModeCode": mapping.brightpearl.price_mode,
        "currency": {"code": (order.currency or "").upper()},
        "rows": rows,
    }
    billing = _party(order.billing)
    if billing:
        body["billing"] = {"address": billing}
    delivery: dict[str, Any] = {}
    shipping = _party(order.shipping)
    if shipping:
        delivery["address"] = shipping
    method = mapping.shipping_methods.get(order.shipping_method) if order.shipping_method else None
    if method is not None:
        delivery["shippingMethodId"] = method
    if delivery:
        body["delivery"] = delivery
    return {k: v for k, v in body.items() if v is not None}, []


def _extra_row(name: str, net: Decimal, tax_code: str | None, nominal: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "quantity": Decimal(1),
        "net": _q(net),
        "tax": ZERO,
        "taxCode": tax_code,
    }
    if nominal:
        row["nominalCode"] = nominal
    return row


def _spread(nets: list[Decimal], discount: Decimal) -> list[Decimal]:
    """`discount` taken off `nets` in proportion to each; the last line takes the rounding."""
    total = sum(nets, ZERO)
    if total <= 0:
        return nets
    out, left = [], discount
    for index, net in enumerate(nets):
        share = left if index == len(nets) - 1 else _q(discount * net / total)
        out.append(net - share)
        left -= share
    return out
