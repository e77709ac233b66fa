"""Canonical sales order: the system-neutral shape a Dynamics order takes on its way to Brightpearl.

Header (Dynamics salesorder: id, number, customer, currency, addresses, freight, shipping
method, order-level discount, state) and lines (salesorderdetail: an existing product named by
its SKU, or a write-in text; quantity, unit price, line discount, net, tax). Amounts are
`Decimal` so a net row total is exact (Brightpearl takes 4 decimal places, reference §6.2).

`order_issues(order, ...)` checks what makes an order impossible to create in Brightpearl and
reports each problem as a `QualityIssue` with the issue's reason code (OrderHasNoLines,
InvalidQuantity, UnknownSku, CurrencyMissing). Descriptions name fields, the order number and
SKUs (neither is personal data), never a name, address or other personal value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.model.customer import Address
from shared.quality.issues import IssueCode, QualityIssue, QualityPolicy
from shared.quality.normalise import clean_text

CleanStr = Annotated[str | None, BeforeValidator(clean_text)]
_FROZEN = ConfigDict(frozen=True, extra="forbid")
ZERO = Decimal(0)

# Dynamics salesorder statecode (reference dataverse-api.md §10.5)
OrderState = Literal["active", "submitted", "canceled", "fulfilled", "invoiced"]
STATECODES: dict[int, OrderState] = {
    0: "active",
    1: "submitted",
    2: "canceled",
    3: "fulfilled",
    4: "invoiced",
}


class OrderAddress(Address):
    """A billto_* / shipto_* address of the order with its contact name (personal data: never
    logged); the country as an ISO 3166 alpha-2 code, resolved by the translator."""

    name: CleanStr = None
    company: CleanStr = None
    telephone: CleanStr = None


class CustomerRef(BaseModel):
    """The order's customer: a Dynamics account or contact (customerid), by GUID."""

    model_config = _FROZEN

    kind: Literal["account", "contact"]
    id: str = Field(min_length=1, description="accountid or contactid (GUID)")

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class OrderLine(BaseModel):
    """One order product (salesorderdetail): an existing product by SKU, or a write-in text."""

    model_config = _FROZEN

    line_id: str | None = Field(None, description="salesorderdetailid")
    sequence: int = Field(0, description="the line's position (sequencenumber / lineitemnumber)")
    sku: CleanStr = Field(None, description="the product's productnumber (existing product)")
    product_id: str | None = Field(None, description="Dataverse productid (existing product)")
    write_in: CleanStr = Field(None, description="productdescription of a write-in line")
    quantity: Decimal
    unit_price: Decimal = ZERO
    discount: Decimal = Field(ZERO, description="manualdiscountamount: off the line's total")
    tax: Decimal = Field(ZERO, description="tax on the whole line")
    tax_code: CleanStr = Field(None, description="a tax code the mapping's tax table translates")

    @property
    def net(self) -> Decimal:
        """The row total before tax: quantity x unit price less the line discount."""
        return self.quantity * self.unit_price - self.discount

    @property
    def is_write_in(self) -> bool:
        return self.sku is None and self.product_id is None


class Order(BaseModel):
    """A Dynamics sales order with its lines."""

    model_config = _FROZEN

    order_id: str = Field(min_length=1, description="Dataverse salesorderid (GUID)")
    order_number: CleanStr = Field(None, description="ordernumber (Brightpearl ref)")
    name: CleanStr = None
    customer: CustomerRef | None = None
    currency: CleanStr = Field(None, description="ISO 4217 code of the order's transaction currency")
    billing: OrderAddress = OrderAddress()
    shipping: OrderAddress = OrderAddress()
    freight: Decimal = Field(ZERO, description="freightamount")
    shipping_method: int | None = Field(None, description="shippingmethodcode option value")
    discount: Decimal = Field(ZERO, description="order-level discountamount")
    discount_percentage: Decimal = Field(ZERO, ge=0, le=100, description="order-level discountpercentage")
    statecode: int = 0
    statuscode: int | None = None
    send_to_brightpearl: bool = Field(False, description="bpi_sendtobrightpearl")
    brightpearl_id: str | None = Field(None, description="bpi_brightpearlid once created there")
    lines: tuple[OrderLine, ...] = ()
    modified_at: dt.datetime | None = None

    @property
    def state(self) -> OrderState | None:
        return STATECODES.get(self.statecode)

    @property
    def reference(self) -> str:
        """How messages name the order: its number, else its id (neither is personal data)."""
        return f"order {self.order_number}" if self.order_number else f"order {self.order_id}"

    def skus(self) -> list[str]:
        """The distinct SKUs of the order's existing-product lines, in line order."""
        return list(dict.fromkeys(line.sku for line in self.lines if line.sku))


def order_issues(
    order: Order,
    *,
    known_sku: Callable[[str], bool] | None = None,
    currencies: Collection[str] | None = None,
    policy: QualityPolicy | None = None,
) -> list[QualityIssue]:
    """What stops `order` from becoming a Brightpearl sales order, one issue per problem.

    `known_sku(sku)` says whether Brightpearl has a product of that SKU (None: not checked);
    `currencies` are the ISO codes Brightpearl's account has (None: not checked).
    """
    policy = policy or QualityPolicy()
    issues: list[QualityIssue] = []

    def add(code: IssueCode, field: str, description: str) -> None:
        issues.append(
            QualityIssue(
                code=code,
                severity=policy.severity(code, field),
                system="dataverse",
                record_id=order.order_id,
                field=field,
                description=description,
            )
        )

    if not order.lines:
        add(
            IssueCode.ORDER_HAS_NO_LINES,
            "lines",
            f"{order.reference} has no order products (salesorderdetail); add them to the order in Dynamics "
            "(an edit of a line notifies the order again)",
        )
    for index, line in enumerate(order.lines):
        where = f"lines[{index}]"
        if line.quantity <= 0:
            add(
                IssueCode.INVALID_QUANTITY,
                f"{where}.quantity",
                f"{order.reference}, line {index + 1}{f' (SKU {line.sku!r})' if line.sku else ''}: "
                f"quantity must be more than 0, is {line.quantity}; "
                "correct the quantity in Dynamics, then resubmit",
            )
        if line.is_write_in and not line.write_in:
            add(
                IssueCode.UNMAPPABLE_VALUE,
                f"{where}.productdescription",
                f"{order.reference}, line {index + 1}: neither an existing product nor a write-in text",
            )
        if line.sku and known_sku is not None and not known_sku(line.sku):
            add(
                IssueCode.UNKNOWN_SKU,
                f"{where}.sku",
                f"{order.reference}, line {index + 1}: SKU {line.sku!r} is not a Brightpearl product; "
                "create it in Brightpearl (or correct the product number), then "
                "syncctl dlq resubmit --reason UnknownSku",
            )
    if not order.currency:
        add(
            IssueCode.CURRENCY_MISSING,
            "currency",
            f"{order.reference} has no currency (transactioncurrencyid); "
            "set the order's currency in Dynamics",
        )
    elif currencies is not None and order.currency.upper() not in {c.upper() for c in currencies}:
        add(
            IssueCode.CURRENCY_MISSING,
            "currency",
            f"{order.reference} is in {order.currency.upper()}, a currency Brightpearl lacks; add the "
            "currency in Brightpearl (Settings > Company > Currencies), then resubmit",
        )
    return issues
