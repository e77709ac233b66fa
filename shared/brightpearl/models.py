"""Pydantic models of the Brightpearl resources the flows read and write.

Wire conventions handled here (reference §11.4, §5, §6.4):
* money and quantities come as strings with fixed decimals ("2.0000") -> Decimal;
* `0` means "none" for ids such as parentOrderId or staffOwnerContactId -> None;
* postal addresses carry ISO 3166 alpha-3 `countryIsoCode` (+ alpha-2 `countryIsoCode2`);
  order parties carry alpha-2 `countryIsoCode` (+ `countryIsoCode3`); `country_iso3`
  gives alpha-3 either way; requests always send alpha-3;
* time stamps carry the account's offset (never assume Z) -> aware datetimes; naive
  request datetimes are rejected;
* unknown fields are kept (extra="allow"), missing optional sections are None.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import pycountry
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)


def _zero_is_none(value: Any) -> Any:
    if value in (0, "0", "", None):
        return None
    return value


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, dict) and "magnitude" in value:
        value = value["magnitude"]
    return Decimal(str(value))


def _tags(value: Any) -> Any:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [int(v) for v in value.split(",") if v.strip() and v.strip() != "0"]
    return value


OptionalId = Annotated[int | None, BeforeValidator(_zero_is_none)]
Money = Annotated[
    Decimal | None,
    BeforeValidator(_decimal),
    PlainSerializer(lambda d: None if d is None else str(d), return_type=str | None),
]


def iso3(code: str | None) -> str | None:
    """ISO 3166 alpha-3 for an alpha-2 or alpha-3 code (None if unknown)."""
    if not code:
        return None
    code = code.strip().upper()
    country = (
        pycountry.countries.get(alpha_3=code)
        if len(code) == 3
        else (pycountry.countries.get(alpha_2=code) if len(code) == 2 else None)
    )
    return country.alpha_3 if country else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# ----------------------------------------------------------------------------- contacts
class Email(_Model):
    email: str | None = None


class Communication(_Model):
    emails: dict[str, Email] = Field(default_factory=dict)
    telephones: dict[str, str] = Field(default_factory=dict)
    messaging_voips: dict[str, str] = Field(default_factory=dict, alias="messagingVoips")
    websites: dict[str, str] = Field(default_factory=dict)


class RelationshipToAccount(_Model):
    is_supplier: bool = Field(False, alias="isSupplier")
    is_staff: bool = Field(False, alias="isStaff")


class FinancialDetails(_Model):
    price_list_id: OptionalId = Field(None, alias="priceListId")
    nominal_code: str | None = Field(None, alias="nominalCode")
    tax_code_id: OptionalId = Field(None, alias="taxCodeId")
    credit_limit: Money = Field(None, alias="creditLimit")
    credit_term_days: int | None = Field(None, alias="creditTermDays")
    currency_id: OptionalId = Field(None, alias="currencyId")
    discount_percentage: Money = Field(None, alias="discountPercentage")

    @field_validator("nominal_code", mode="before")
    @classmethod
    def _nominal_as_text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class Organisation(_Model):
    organisation_id: OptionalId = Field(None, alias="organisationId")
    name: str | None = None


class _Addressed(_Model):
    """The address fields a postal address and an order party share."""

    contact_id: OptionalId = Field(None, alias="contactId")
    address_line1: str | None = Field(None, alias="addressLine1")
    postal_code: str | None = Field(None, alias="postalCode")
    country_iso_code: str | None = Field(None, alias="countryIsoCode")


class PostalAddress(_Addressed):
    """postal-address GET item (countryIsoCode is alpha-3 here)."""

    address_id: int = Field(alias="addressId")
    address_line2: str | None = Field(None, alias="addressLine2")
    address_line3: str | None = Field(None, alias="addressLine3")
    address_line4: str | None = Field(None, alias="addressLine4")
    country_iso_code2: str | None = Field(None, alias="countryIsoCode2")
    country_id: OptionalId = Field(None, alias="countryId")

    @property
    def country_iso3(self) -> str | None:
        return iso3(self.country_iso_code) or iso3(self.country_iso_code2)


class Contact(_Model):
    """contact GET item (reference §5.1)."""

    contact_id: int = Field(alias="contactId")
    is_primary_contact: bool | None = Field(None, alias="isPrimaryContact")
    salutation: str | None = None
    first_name: str | None = Field(None, alias="firstName")
    last_name: str | None = Field(None, alias="lastName")
    post_address_ids: dict[str, int] = Field(default_factory=dict, alias="postAddressIds")
    postal_addresses: list[PostalAddress] | None = Field(None, alias="postalAddresses")
    communication: Communication = Field(default_factory=Communication)
    relationship_to_account: RelationshipToAccount = Field(
        default_factory=RelationshipToAccount, alias="relationshipToAccount"
    )
    financial_details: FinancialDetails = Field(default_factory=FinancialDetails, alias="financialDetails")
    organisation: Organisation | None = None
    company_id: OptionalId = Field(None, alias="companyId")
    created_by_id: OptionalId = Field(None, alias="createdByid")
    created_on: datetime | None = Field(None, alias="createdOn")
    updated_on: datetime | None = Field(None, alias="updatedOn")
    contact_tags: list[int] = Field(default_factory=list, alias="contactTags")
    custom_fields: dict[str, Any] | None = Field(None, alias="customFields")

    @field_validator("contact_tags", mode="before")
    @classmethod
    def _tags_from_text(cls, value: Any) -> Any:
        return _tags(value)

    @field_validator("postal_addresses", mode="before")
    @classmethod
    def _addresses_as_list(cls, value: Any) -> Any:
        # includeOptional=postalAddresses may come back keyed by address id
        if isinstance(value, dict):
            return [dict(v, addressId=v.get("addressId", int(k))) for k, v in value.items()]
        return value

    @property
    def primary_email(self) -> str | None:
        pri = self.communication.emails.get("PRI")
        return pri.email if pri else None

    @property
    def is_customer(self) -> bool:
        """Customer is implied when the contact is neither supplier nor staff (§5.1)."""
        rel = self.relationship_to_account
        return not rel.is_supplier and not rel.is_staff

    @property
    def price_list_id(self) -> int | None:
        return self.financial_details.price_list_id


class PostalAddressCreate(_Model):
    """postal-address POST/PUT body (reference §5.5); country as ISO alpha-3."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    address_line1: str = Field(alias="addressLine1", min_length=1, max_length=100)
    address_line2: str | None = Field(None, alias="addressLine2", max_length=100)
    address_line3: str | None = Field(None, alias="addressLine3", max_length=100)
    address_line4: str | None = Field(None, alias="addressLine4", max_length=100)
    postal_code: str | None = Field(None, alias="postalCode", max_length=20)
    country_iso_code: str | None = Field(None, alias="countryIsoCode")
    country_id: int | None = Field(None, alias="countryId", ge=1)

    @field_validator("country_iso_code")
    @classmethod
    def _alpha3(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = iso3(value)
        if code is None:
            raise ValueError(f"{value!r} is not an ISO 3166 country code")
        return code


class ContactCreate(_Model):
    """contact POST body in the nested shape that mirrors GET (reference §5.2)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    salutation: str | None = Field(None, max_length=32)
    first_name: str | None = Field(None, alias="firstName", max_length=32)
    last_name: str = Field(alias="lastName", min_length=1, max_length=32)
    post_address_ids: dict[Literal["DEF", "BIL", "DEL"], int] | None = Field(None, alias="postAddressIds")
    communication: dict[str, Any] | None = None
    relationship_to_account: dict[str, bool] | None = Field(None, alias="relationshipToAccount")
    organisation: dict[str, Any] | None = None
    marketing_details: dict[str, Any] | None = Field(None, alias="marketingDetails")
    financial_details: dict[str, Any] | None = Field(None, alias="financialDetails")
    assignment: dict[str, Any] | None = None
    contact_status_id: int | None = Field(None, alias="contactStatusId")

    @classmethod
    def build(
        cls,
        *,
        last_name: str,
        first_name: str | None = None,
        email: str | None = None,
        telephone: str | None = None,
        company: str | None = None,
        address_id: int | None = None,
        price_list_id: int | None = None,
        newsletter: bool | None = None,
    ) -> ContactCreate:
        """The usual customer: names, primary e-mail/phone, one address for DEF/BIL/DEL."""
        communication: dict[str, Any] = {}
        if email:
            communication["emails"] = {"PRI": {"email": email}}
        if telephone:
            communication["telephones"] = {"PRI": telephone}
        return cls(
            last_name=last_name,
            first_name=first_name,
            communication=communication or None,
            post_address_ids={"DEF": address_id, "BIL": address_id, "DEL": address_id}
            if address_id
            else None,
            organisation={"name": company} if company else None,
            financial_details={"priceListId": price_list_id} if price_list_id else None,
            marketing_details={"isReceiveEmailNewsletter": newsletter} if newsletter is not None else None,
            relationship_to_account={"isSupplier": False, "isStaff": False},
        )


class PatchOp(_Model):
    """One RFC 6902 JSON Patch operation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str = Field(pattern=r"^/")
    value: Any = None
    from_: str | None = Field(None, alias="from")

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op in ("add", "replace", "test"):
            out["value"] = self.value
        if self.from_ is not None:
            out["from"] = self.from_
        return out


class ContactGroup(_Model):
    id: int
    name: str | None = None
    description: str | None = None


class ContactTag(_Model):
    tag_id: int = Field(alias="tagId")
    tag_name: str = Field(alias="tagName")


class PriceList(_Model):
    id: int
    code: str | None = None
    name: Any = None
    currency_code: str | None = Field(None, alias="currencyCode")
    currency_id: int | None = Field(None, alias="currencyId")
    price_list_type_code: str | None = Field(None, alias="priceListTypeCode")
    gross: bool | None = None

    @property
    def display_name(self) -> str | None:
        if isinstance(self.name, dict):
            text = self.name.get("text")
            return None if text is None else str(text)
        return None if self.name is None else str(self.name)


# ----------------------------------------------------------------------------- orders
class OrderParty(_Addressed):
    address_full_name: str | None = Field(None, alias="addressFullName")
    company_name: str | None = Field(None, alias="companyName")
    country_iso_code3: str | None = Field(None, alias="countryIsoCode3")
    email: str | None = None

    @property
    def country_iso3(self) -> str | None:
        return iso3(self.country_iso_code3) or iso3(self.country_iso_code)


class OrderRow(_Model):
    order_row_sequence: str | None = Field(None, alias="orderRowSequence")
    product_id: OptionalId = Field(None, alias="productId")
    product_name: str | None = Field(None, alias="productName")
    product_sku: str | None = Field(None, alias="productSku")
    quantity: Money = None
    product_price: Money = Field(None, alias="productPrice")
    row_value: dict[str, Any] = Field(default_factory=dict, alias="rowValue")
    nominal_code: str | None = Field(None, alias="nominalCode")
    external_ref: str | None = Field(None, alias="externalRef")

    @property
    def row_net(self) -> Decimal | None:
        return _decimal(self.row_value.get("rowNet"))

    @property
    def row_tax(self) -> Decimal | None:
        return _decimal(self.row_value.get("rowTax"))


class OrderStatusRef(_Model):
    order_status_id: int = Field(alias="orderStatusId")
    name: str | None = None


class Order(_Model):
    """order GET item (reference §6.4); rows keyed by row id."""

    id: int
    parent_order_id: OptionalId = Field(None, alias="parentOrderId")
    order_type_code: str = Field(alias="orderTypeCode")
    reference: str | None = None
    external_ref: str | None = Field(None, alias="externalRef")
    order_status: OrderStatusRef = Field(alias="orderStatus")
    order_payment_status: str | None = Field(None, alias="orderPaymentStatus")
    stock_status_code: str | None = Field(None, alias="stockStatusCode")
    allocation_status_code: str | None = Field(None, alias="allocationStatusCode")
    shipping_status_code: str | None = Field(None, alias="shippingStatusCode")
    placed_on: datetime | None = Field(None, alias="placedOn")
    created_on: datetime | None = Field(None, alias="createdOn")
    updated_on: datetime | None = Field(None, alias="updatedOn")
    price_list_id: OptionalId = Field(None, alias="priceListId")
    currency: dict[str, Any] = Field(default_factory=dict)
    total_value: dict[str, Money] = Field(default_factory=dict, alias="totalValue")
    parties: dict[str, OrderParty] = Field(default_factory=dict)
    order_rows: dict[int, OrderRow] = Field(default_factory=dict, alias="orderRows")
    warehouse_id: OptionalId = Field(None, alias="warehouseId")
    installed_integration_instance_id: OptionalId = Field(None, alias="installedIntegrationInstanceId")

    @property
    def customer_id(self) -> int | None:
        party = self.parties.get("customer")
        return party.contact_id if party else None


class OrderStatus(_Model):
    status_id: int = Field(alias="statusId")
    name: str
    order_type_code: str = Field(alias="orderTypeCode")
    sort_order: int | None = Field(None, alias="sortOrder")
    disabled: bool | None = None
    visible: bool | None = None
    state: str | None = None


class SalesOrderRowCreate(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    product_id: int | None = Field(None, alias="productId", ge=1)
    name: str | None = None
    quantity: Decimal = Field(gt=0)
    tax_code: str = Field(alias="taxCode", min_length=1)
    net: Decimal
    tax: Decimal
    nominal_code: str | None = Field(None, alias="nominalCode")
    external_ref: str | None = Field(None, alias="externalRef")

    def wire(self) -> dict[str, Any]:
        out = self.model_dump(by_alias=True, exclude_none=True)
        for key in ("quantity", "net", "tax"):
            out[key] = format(Decimal(out[key]).quantize(Decimal("0.0001")), "f")
        return out


class SalesOrderCreate(_Model):
    """sales-order POST body (reference §6.2); atomic with rows."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    customer: dict[str, Any]
    ref: str | None = None
    external_ref: str | None = Field(None, alias="externalRef", max_length=64)
    installed_integration_instance_id: int | None = Field(None, alias="installedIntegrationInstanceId")
    placed_on: datetime | None = Field(None, alias="placedOn")
    status_id: int | None = Field(None, alias="statusId")
    warehouse_id: int | None = Field(None, alias="warehouseId")
    channel_id: int | None = Field(None, alias="channelId")
    price_list_id: int | None = Field(None, alias="priceListId")
    currency: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None
    rows: list[SalesOrderRowCreate] = Field(min_length=1)

    @field_validator("customer")
    @classmethod
    def _customer_id(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("id"), int) or value["id"] < 1:
            raise ValueError("customer.id must be a positive contact id")
        return value

    @field_validator("placed_on")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("placedOn needs a time zone offset")
        return value

    def wire(self) -> dict[str, Any]:
        out = self.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"rows"})
        out["rows"] = [row.wire() for row in self.rows]
        return out


# ----------------------------------------------------------------------------- products & stock
class Product(_Model):
    id: int
    brand_id: OptionalId = Field(None, alias="brandId")
    identity: dict[str, Any] = Field(default_factory=dict)
    product_group_id: OptionalId = Field(None, alias="productGroupId")
    stock: dict[str, Any] = Field(default_factory=dict)
    sales_channels: list[dict[str, Any]] = Field(default_factory=list, alias="salesChannels")
    status: str | None = None
    version: int | None = None
    created_on: datetime | None = Field(None, alias="createdOn")
    updated_on: datetime | None = Field(None, alias="updatedOn")

    @property
    def sku(self) -> str | None:
        return self.identity.get("sku")

    @property
    def name(self) -> str | None:
        return self.sales_channels[0].get("productName") if self.sales_channels else None

    @property
    def stock_tracked(self) -> bool:
        return bool(self.stock.get("stockTracked"))


class ProductPrice(_Model):
    product_id: int = Field(alias="productId")
    price_lists: list[dict[str, Any]] = Field(default_factory=list, alias="priceLists")

    def price(self, price_list_id: int, quantity: int = 1) -> Decimal | None:
        for entry in self.price_lists:
            if entry.get("priceListId") == price_list_id:
                value = entry.get("quantityPrice", {}).get(str(quantity))
                return Decimal(str(value)) if value is not None else None
        return None


class Warehouse(_Model):
    id: int
    name: str
    type_code: str | None = Field(None, alias="typeCode")


class StockLevel(_Model):
    in_stock: int = Field(0, alias="inStock")
    on_hand: int = Field(0, alias="onHand")
    allocated: int = 0
    in_transit: int = Field(0, alias="inTransit")


class ProductAvailability(_Model):
    total: StockLevel
    warehouses: dict[int, StockLevel] = Field(default_factory=dict)


class GoodsOutNote(_Model):
    order_id: OptionalId = Field(None, alias="orderId")
    warehouse_id: int = Field(alias="warehouseId")
    transfer: bool = False
    status: dict[str, Any] = Field(default_factory=dict)
    shipping: dict[str, Any] = Field(default_factory=dict)
    order_rows: dict[int, list[dict[str, Any]]] = Field(default_factory=dict, alias="orderRows")
    events: list[dict[str, Any]] = Field(default_factory=list)
    last_event_version: int | None = Field(None, alias="lastEventVersion")
    created_on: datetime | None = Field(None, alias="createdOn")

    @property
    def shipped(self) -> bool:
        return bool(self.status.get("shipped"))


# ----------------------------------------------------------------------------- accounting
class CustomerPaymentCreate(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    transaction_ref: str | None = Field(None, alias="transactionRef", max_length=64)
    transaction_code: str | None = Field(None, alias="transactionCode", max_length=64)
    payment_method_code: str = Field(alias="paymentMethodCode", min_length=1, max_length=36)
    payment_type: Literal["AUTH", "CAPTURE", "PAYMENT", "RECEIPT", "VOID"] = Field(alias="paymentType")
    order_id: int = Field(alias="orderId", ge=1)
    currency_iso_code: str = Field(alias="currencyIsoCode", min_length=3, max_length=3)
    exchange_rate: Decimal | None = Field(None, alias="exchangeRate", gt=0)
    amount_paid: Decimal | None = Field(None, alias="amountPaid")
    amount_authorized: Decimal | None = Field(None, alias="amountAuthorized")
    payment_date: datetime = Field(alias="paymentDate")
    journal_ref: str | None = Field(None, alias="journalRef", max_length=255)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Journal(_Model):
    id: int
    journal_type_code: str | None = Field(None, alias="journalTypeCode")
    tax_date: str | None = Field(None, alias="taxDate")
    credits: list[dict[str, Any]] = Field(default_factory=list)
    debits: list[dict[str, Any]] = Field(default_factory=list)


# ----------------------------------------------------------------------------- webhooks
class Webhook(_Model):
    id: int
    subscribe_to: str = Field(alias="subscribeTo")
    http_method: str = Field(alias="httpMethod")
    uri_template: str = Field(alias="uriTemplate")
    body_template: str | None = Field(None, alias="bodyTemplate")
    content_type: str | None = Field(None, alias="contentType")
    id_set_accepted: bool = Field(False, alias="idSetAccepted")
    quality_of_service: int = Field(0, alias="qualityOfService")


class WebhookCreate(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subscribe_to: str = Field(alias="subscribeTo", pattern=r"^[a-z][a-z0-9.-]*$")
    http_method: Literal["GET", "POST", "PUT", "DELETE"] = Field("POST", alias="httpMethod")
    uri_template: str = Field(alias="uriTemplate", pattern=r"^https?://\S+$")
    body_template: str | None = Field(None, alias="bodyTemplate")
    content_type: str | None = Field("application/json", alias="contentType")
    id_set_accepted: bool = Field(True, alias="idSetAccepted")
    quality_of_service: Literal[0, 1] = Field(1, alias="qualityOfService")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)
