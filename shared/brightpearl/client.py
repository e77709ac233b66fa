"""The Brightpearl API client the flows use: typed resource methods over BrightpearlTransport.

Reads go by id set in chunks (<= BRIGHTPEARL_IDSET_CHUNK_SIZE ids and <=
BRIGHTPEARL_IDSET_MAX_CHARS characters per URI; a 414 halves the chunk); searches go
through `SearchPaginator`. Writes are typed with the models in `shared.brightpearl.models`.

Making creates safe (POST is never re-sent after it may have reached Brightpearl):
* sales orders / credits: set `externalRef` (+ `installedIntegrationInstanceId`), which
  Brightpearl treats as a unique compound key; `ensure_sales_order` searches
  `sales-order-search` (sales orders only) by that pair first and after an ambiguous failure;
* contacts: `ensure_contact` searches `contact-search?primaryEmail=` before creating and
  after an ambiguous failure;
* payments: `(transactionRef, paymentMethodCode)` is unique; `ensure_customer_payment`
  searches `customer-payment-search?transactionRef=` the same way;
* everything else raises `BrightpearlAmbiguousWrite`, and the flow's own creation claim
  (links table, DESIGN §7) decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shared.brightpearl.auth import (
    Authenticator,
    FileTokenStore,
    KeyVaultTokenStore,
    MemoryTokenStore,
    OAuthAuth,
    PrivateAppAuth,
    TokenStore,
)
from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlError,
    BrightpearlNotFound,
    BrightpearlUnavailable,
    BrightpearlUriTooLong,
    BrightpearlValidationError,
    error_from_answer,
)
from shared.brightpearl.idset import chunk_ids, format_id_set, parse_id_set
from shared.brightpearl.models import (
    Contact,
    ContactCreate,
    ContactGroup,
    ContactTag,
    CustomerPaymentCreate,
    GoodsOutNote,
    Journal,
    Order,
    OrderStatus,
    PatchOp,
    PostalAddress,
    PostalAddressCreate,
    PriceList,
    Product,
    ProductAvailability,
    ProductPrice,
    SalesOrderCreate,
    SalesOrderRowCreate,
    Warehouse,
    Webhook,
    WebhookCreate,
)
from shared.brightpearl.ratebudget import RateBudget
from shared.brightpearl.search import (
    FirstResultPaginator,
    SearchPaginator,
    envelope_next_first,
    period,
)
from shared.brightpearl.settings import BrightpearlSettings
from shared.brightpearl.transport import BrightpearlResponse, BrightpearlTransport
from shared.highwater import IdHighWater

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class MessageOutcome:
    """One multi-message item: its status and its decoded envelope."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class MultiMessageResult:
    processed: dict[str, MessageOutcome]
    unprocessed: list[str]

    @property
    def all_ok(self) -> bool:
        return not self.unprocessed and all(o.ok for o in self.processed.values())


MULTI_MESSAGE_MAX = 10  # messages per multi-message request (reference §3.1)
POSTAL_ADDRESS_POST = "/contact-service/postal-address/"
POSTAL_ADDRESS_GET = "/contact-service/postal-address/{ids}"  # the id set is mandatory (§5.5)
# The postal-address fields the integration sends; what a GET answers beyond them (addressId,
# contactId, countryIsoCode2, countryId) is Brightpearl's own.
POSTAL_ADDRESS_FIELDS = (
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "addressLine4",
    "postalCode",
    "countryIsoCode",
)
# includeOptional value that adds the postal address list to contact GET (§1.8: UNCONFIRMED).
CONTACT_ADDRESSES_OPTIONAL = "postalAddresses"


@dataclass(eq=False)
class BrightpearlClient:
    """Typed access to one Brightpearl account."""

    transport: BrightpearlTransport
    _: KW_ONLY
    chunk_size: int = 200
    max_idset_chars: int = 1500
    page_size: int = 500
    # the highest id each create answered, by resource: a lower bound of the ids Brightpearl
    # allocates next (they ascend and are never reused, reference §1.3); see shared/sync/lost_creates
    created_ids: IdHighWater = field(default_factory=IdHighWater)

    # --- construction ------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: BrightpearlSettings,
        *,
        token_store: TokenStore | None = None,
        http: httpx.Client | None = None,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] | None = None,
        budget_table: Any = None,
    ) -> BrightpearlClient:
        """Build the client the settings describe; one rate budget per account per process, or,
        with `budget_table` (the state store's cursors table) and BRIGHTPEARL_SHARED_BUDGET,
        one shared by every instance (shared/brightpearl/shared_budget.py)."""
        auth: Authenticator
        if settings.auth_mode == "private":
            if not settings.app_ref or not settings.account_token:
                raise BrightpearlError(
                    "BRIGHTPEARL_AUTH_MODE=private needs BRIGHTPEARL_APP_REF and BRIGHTPEARL_ACCOUNT_TOKEN"
                )
            auth = PrivateAppAuth(settings.app_ref, settings.account_token)
            budget_key = f"{settings.api_root}|{settings.account}|private"
        else:
            if not settings.app_ref or not settings.dev_ref or not settings.client_id:
                raise BrightpearlError(
                    "BRIGHTPEARL_AUTH_MODE=oauth needs BRIGHTPEARL_APP_REF and BRIGHTPEARL_DEV_REF"
                )
            store = token_store or _store_from_settings(settings)
            auth = OAuthAuth(
                token_url=settings.token_url,
                client_id=settings.client_id,
                client_secret=settings.oauth_client_secret,
                app_ref=settings.app_ref,
                dev_ref=settings.dev_ref,
                account=settings.account,
                store=store,
                initial_refresh_token=settings.oauth_refresh_token,
                refresh_skew_seconds=settings.token_refresh_skew_seconds,
                timeout=settings.read_timeout_seconds,
            )
            # Public/OAuth apps get a pool per account x developer (reference §3).
            budget_key = f"{settings.api_root}|{settings.account}|dev:{settings.dev_ref}"
        if budget is None and budget_table is not None and settings.shared_budget:
            from shared.brightpearl.shared_budget import budget_in_table

            budget = budget_in_table(budget_table, budget_key, settings)
        budget = budget or RateBudget.shared(
            budget_key,
            settings.rate_limit,
            settings.rate_window_seconds,
            reserve=settings.rate_reserve,
        )
        extra: dict[str, Any] = {}
        if sleep is not None:
            extra["sleep"] = sleep
        transport = BrightpearlTransport(
            root=settings.api_root,
            account=settings.account,
            auth=auth,
            budget=budget,
            http=http,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            max_retries=settings.max_retries,
            retry_base_delay=settings.retry_base_delay_seconds,
            retry_max_delay=settings.retry_max_delay_seconds,
            max_throttle_wait=settings.max_throttle_wait_seconds,
            **extra,
        )
        return cls(
            transport,
            chunk_size=settings.idset_chunk_size,
            max_idset_chars=settings.idset_max_chars,
            page_size=settings.search_page_size,
        )

    def close(self) -> None:
        self.transport.close()
        close_auth = getattr(self.transport.auth, "close", None)
        if close_auth is not None:
            close_auth()

    def __enter__(self) -> BrightpearlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> Any:
        return self.transport.stats

    def installed_integration_instance_id(self) -> int | None:
        """The OAuth installation's `installation_instance_id` (None for private/public apps, or
        before the first token): with externalRef, Brightpearl's unique key of an order."""
        read = getattr(self.transport.auth, "installation_instance_id", None)
        value = read() if callable(read) else None
        try:
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    # --- generic helpers -----------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> BrightpearlResponse:
        return self.transport.request(method, path, **kwargs)

    def highest_created_id(self, uri: str) -> int | None:
        """The highest id a create POSTed to `uri` answered in this process (None before any)."""
        return self.created_ids.highest(uri.strip("/"))

    def id_set_chunks(self, ids: Iterable[int], limit: int | None = None) -> Iterator[str]:
        """Id-set texts of at most `limit` ids and `max_idset_chars` characters each."""
        size = min(limit or self.chunk_size, self.chunk_size)
        for chunk in chunk_ids(ids, size):
            yield from self._fit(chunk)

    def _fit(self, chunk: list[int]) -> Iterator[str]:
        text = format_id_set(chunk)
        if len(text) <= self.max_idset_chars or len(chunk) == 1:
            yield text
            return
        half = len(chunk) // 2
        yield from self._fit(chunk[:half])
        yield from self._fit(chunk[half:])

    def _get_id_set(self, path: str, id_set: str, params: dict[str, Any] | None) -> list[Any]:
        # A 404 means the request returned nothing (reference §1.6); a GET above its limit
        # pages (reference §5.1), so every page is read and no id of the set is dropped.
        pages = FirstResultPaginator(
            self.transport, path.format(ids=id_set), params, next_first=envelope_next_first
        )
        try:
            return [item for answer in pages for item in _as_items(answer.response)]
        except BrightpearlUriTooLong:
            ids = parse_id_set(id_set, max_ids=10_000)
            if len(ids) == 1:
                raise
            half = len(ids) // 2
            return self._get_id_set(path, format_id_set(ids[:half]), params) + self._get_id_set(
                path, format_id_set(ids[half:]), params
            )

    def get_by_ids(
        self,
        path: str,
        ids: Iterable[int],
        *,
        limit: int | None = 200,
        params: dict[str, Any] | None = None,
    ) -> list[Any]:
        """GET `path` (with `{ids}`) for every id, chunked (<= `limit`, the resource's
        per-request maximum, and <= the configured chunk size); raw `response` items merged."""
        items: list[Any] = []
        for id_set in self.id_set_chunks(ids, limit):
            items.extend(self._get_id_set(path, id_set, params))
        return items

    def get_all(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """GET a collection that means "all" without an id set (404 -> [])."""
        try:
            response = self.request("GET", path, params=params).response
        except BrightpearlNotFound:
            return []
        return list(response or []) if not isinstance(response, dict) else [response]

    def search(
        self,
        path: str,
        *,
        filters: dict[str, Any] | None = None,
        columns: list[str] | None = None,
        sort: str | None = None,
        page_size: int | None = None,
    ) -> SearchPaginator:
        """Rows of a `*-search` resource as dicts keyed by column name (iterate it)."""
        return SearchPaginator(
            self.transport,
            path,
            filters=filters,
            columns=columns,
            sort=sort,
            page_size=page_size or self.page_size,
        )

    @staticmethod
    def _parse(model: type[M], items: Iterable[Any]) -> list[M]:
        out: list[M] = []
        for item in items:
            try:
                out.append(model.model_validate(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise BrightpearlError(
                    f"Brightpearl {model.__name__} does not match the expected shape: "
                    f"field '{where}': {err['msg']}"
                ) from exc
        return out

    @staticmethod
    def _new_id(answer: BrightpearlResponse, what: str) -> int:
        return new_id(answer.response, what)

    # --- contacts ------------------------------------------------------------------------
    def get_contacts(self, ids: Iterable[int], *, with_addresses: bool = False) -> list[Contact]:
        """Contacts by id (any type); missing ids are left out."""
        params = {"includeOptional": CONTACT_ADDRESSES_OPTIONAL} if with_addresses else None
        return self._parse(
            Contact, self.get_by_ids("/contact-service/contact/{ids}", ids, limit=200, params=params)
        )

    def get_contact(self, contact_id: int, *, with_addresses: bool = False) -> Contact:
        return _only(self.get_contacts([contact_id], with_addresses=with_addresses), "contact", contact_id)

    def search_contacts(
        self,
        *,
        updated_since: datetime | date | None = None,
        updated_until: datetime | date | None = None,
        primary_email: str | None = None,
        is_customer: bool | None = None,
        columns: list[str] | None = None,
        sort: str | None = "contactId.ASC",
        page_size: int | None = None,
        **filters: Any,
    ) -> SearchPaginator:
        """contact-search by updatedOn range and/or primaryEmail (and any other column)."""
        if updated_since is not None or updated_until is not None:
            filters["updatedOn"] = period(updated_since, updated_until)
        if primary_email is not None:
            filters["primaryEmail"] = primary_email
        if is_customer is not None:
            filters["isCustomer"] = is_customer
        return self.search(
            "/contact-service/contact-search",
            filters=filters,
            columns=columns,
            sort=sort,
            page_size=page_size,
        )

    def find_contact_ids_by_email(self, email: str) -> list[int]:
        """Contacts whose primary e-mail is exactly `email` (case-insensitive)."""
        wanted = email.strip().lower()
        return [
            int(row["contactId"])
            for row in self.search_contacts(
                primary_email=email.strip(), columns=["contactId", "primaryEmail"]
            )
            if str(row.get("primaryEmail") or "").lower() == wanted
        ]

    def create_contact(self, contact: ContactCreate | dict[str, Any]) -> int:
        body = _body(contact)
        return self._new_id(self.request("POST", "/contact-service/contact/", json=body), "contact")

    def ensure_contact(self, contact: ContactCreate, *, email: str) -> tuple[int, bool]:
        """(contact id, created?) — the contact with primary e-mail `email`, created if absent.

        Safe against a create that timed out: the e-mail is looked up before creating and
        again after an ambiguous failure, so a retry never makes a second contact.
        """
        existing = self.find_contact_ids_by_email(email)
        if existing:
            return min(existing), False
        try:
            return self.create_contact(contact), True
        except BrightpearlAmbiguousWrite:
            existing = self.find_contact_ids_by_email(email)
            if existing:
                return min(existing), True
            raise

    def patch_contact(self, contact_id: int, ops: Iterable[PatchOp | dict[str, Any]]) -> Contact:
        """JSON Patch a contact (names, phones, e-mails, newsletter...); returns it updated."""
        body = [_patch(op) for op in ops]
        answer = self.request("PATCH", f"/contact-service/contact/{int(contact_id)}", json=body)
        items = answer.response if isinstance(answer.response, list) else [answer.response]
        return self._parse(Contact, items)[0]

    def patch_contact_custom_fields(
        self, contact_id: int, ops: Iterable[PatchOp | dict[str, Any]]
    ) -> dict[str, Any]:
        body = [_patch(op) for op in ops]
        answer = self.request("PATCH", f"/contact-service/contact/{int(contact_id)}/custom-field", json=body)
        return dict(answer.response or {})

    def create_postal_address(self, address: PostalAddressCreate | dict[str, Any]) -> int:
        body = _body(
            address if isinstance(address, BaseModel) else PostalAddressCreate.model_validate(address)
        )
        new = self._new_id(self.request("POST", POSTAL_ADDRESS_POST, json=body), "postal-address")
        self.created_ids.observe(POSTAL_ADDRESS_POST.strip("/"), [new])
        return new

    def get_postal_addresses(self, ids: Iterable[int]) -> list[PostalAddress]:
        return self._parse(PostalAddress, self.get_by_ids(POSTAL_ADDRESS_GET, ids))

    def update_postal_address(self, address_id: int, address: PostalAddressCreate | dict[str, Any]) -> None:
        body = _body(
            address if isinstance(address, BaseModel) else PostalAddressCreate.model_validate(address)
        )
        self.request("PUT", f"/contact-service/postal-address/{int(address_id)}", json=body)

    def link_contact_addresses(self, contact_id: int, links: list[dict[str, Any]]) -> None:
        """PUT contact/{id}/postal-address: [{"postalAddressId": n, "type": "DEL"}, ...]."""
        self.request("PUT", f"/contact-service/contact/{int(contact_id)}/postal-address", json=links)

    def get_contact_groups(self, ids: Iterable[int] | None = None) -> list[ContactGroup]:
        if ids is None:
            return self._parse(ContactGroup, self.get_all("/contact-service/contact-group"))
        return self._parse(ContactGroup, self.get_by_ids("/contact-service/contact-group/{ids}", ids))

    def add_contacts_to_group(self, group_id: int, contact_ids: Iterable[int]) -> None:
        """POST contact-group/{id}/member {"contactIds": [...]} (path UNCONFIRMED, see docs)."""
        self.request(
            "POST",
            f"/contact-service/contact-group/{int(group_id)}/member",
            json={"contactIds": sorted({int(c) for c in contact_ids})},
        )

    def get_tags(self, ids: Iterable[int] | None = None) -> list[ContactTag]:
        if ids is None:
            return self._parse(ContactTag, self.get_all("/contact-service/tag"))
        return self._parse(ContactTag, self.get_by_ids("/contact-service/tag/{ids}", ids))

    def create_tag(self, name: str, description: str | None = None) -> int:
        body: dict[str, Any] = {"tagName": name}
        if description:
            body["tagDescription"] = description
        return self._new_id(self.request("POST", "/contact-service/tag/", json=body), "tag")

    def tag_contacts(self, contact_ids: Iterable[int], tag_id: int) -> None:
        """Add tag `tag_id` to the contacts (POST contact/{ids}/tag/{tag}); repeat-safe."""
        for id_set in self.id_set_chunks(contact_ids):
            self.request("POST", f"/contact-service/contact/{id_set}/tag/{int(tag_id)}", idempotent=True)

    def untag_contact(self, contact_id: int, tag_id: int) -> None:
        self.request("DELETE", f"/contact-service/contact/{int(contact_id)}/tag/{int(tag_id)}")

    def get_price_lists(self, ids: Iterable[int] | None = None) -> list[PriceList]:
        if ids is None:
            return self._parse(PriceList, self.get_all("/product-service/price-list"))
        return self._parse(PriceList, self.get_by_ids("/product-service/price-list/{ids}", ids))

    # --- orders ----------------------------------------------------------------------------
    def create_sales_order(self, order: SalesOrderCreate | dict[str, Any]) -> int:
        """Atomic sales-order POST (rows inline). Prefer `ensure_sales_order`."""
        model = order if isinstance(order, SalesOrderCreate) else SalesOrderCreate.model_validate(order)
        return self._new_id(
            self.request("POST", "/order-service/sales-order/", json=model.wire()), "sales-order"
        )

    def find_order_ids_by_external_ref(
        self, external_ref: str, integration_instance_id: int | None = None
    ) -> list[int]:
        """Ids of the SALES ORDERS (never credits) whose externalRef is exactly `external_ref`
        and, when `integration_instance_id` is given, whose installedIntegrationInstanceId is
        that one: the pair is Brightpearl's unique key (reference §6.2). sales-order-search
        (§4.2) holds sales orders only and answers both columns."""
        filters: dict[str, Any] = {"externalRef": external_ref}
        if integration_instance_id is not None:
            filters["installedIntegrationInstanceId"] = int(integration_instance_id)
        return [
            int(row["salesOrderId"])
            for row in self.search(
                "/order-service/sales-order-search",
                filters=filters,
                columns=["salesOrderId", "externalRef", "installedIntegrationInstanceId"],
            )
            if row.get("externalRef") == external_ref
            and (
                integration_instance_id is None
                or row.get("installedIntegrationInstanceId") == integration_instance_id
            )
        ]

    def ensure_sales_order(self, order: SalesOrderCreate) -> tuple[int, bool]:
        """(order id, created?) keyed by externalRef + installedIntegrationInstanceId (when the
        order carries one); never creates a duplicate."""
        if not order.external_ref:
            raise BrightpearlValidationError("ensure_sales_order needs externalRef")
        key = (order.external_ref, order.installed_integration_instance_id)
        existing = self.find_order_ids_by_external_ref(*key)
        if existing:
            return min(existing), False
        try:
            return self.create_sales_order(order), True
        except BrightpearlAmbiguousWrite:
            existing = self.find_order_ids_by_external_ref(*key)
            if existing:
                return min(existing), True
            raise

    def get_orders(self, ids: Iterable[int], *, custom_fields: bool = False) -> list[Order]:
        params = {"includeOptional": "customFields"} if custom_fields else None
        return self._parse(
            Order, self.get_by_ids("/order-service/order/{ids}", ids, limit=200, params=params)
        )

    def get_order(self, order_id: int) -> Order:
        return _only(self.get_orders([order_id]), "order", order_id)

    def search_orders(
        self,
        *,
        updated_since: datetime | date | None = None,
        updated_until: datetime | date | None = None,
        columns: list[str] | None = None,
        sort: str | None = "orderId.ASC",
        **filters: Any,
    ) -> SearchPaginator:
        if updated_since is not None or updated_until is not None:
            filters["updatedOn"] = period(updated_since, updated_until)
        return self.search("/order-service/order-search", filters=filters, columns=columns, sort=sort)

    def patch_order_row(
        self, order_id: int, row_id: int, ops: Iterable[PatchOp | dict[str, Any]]
    ) -> dict[str, Any]:
        """JSON Patch one row (quantity, net, tax, nominal code...); refused once invoiced."""
        answer = self.request(
            "PATCH",
            f"/order-service/order/{int(order_id)}/row/{int(row_id)}",
            json=[_patch(op) for op in ops],
        )
        return dict(answer.response or {})

    def put_sales_order_rows(self, order_id: int, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Sales order row PUT (reference §6.2): each `{id, productId|name, quantity, taxCode,
        net, tax}` (plus nominalCode / externalRef when given) replaces its row, all in one
        call, amounts to 4 d.p. Brightpearl judges rows one by one: the answer is the rows it
        refused, by row id, with its messages (empty: every row was replaced). The whole call is
        refused (BrightpearlValidationError) once the order is invoiced."""
        body = [
            {"id": int(row["id"]), **_row_wire({k: v for k, v in row.items() if k != "id"})} for row in rows
        ]
        path = f"/order-service/sales-order/{int(order_id)}/row/{format_id_set(r['id'] for r in body)}"
        answer = self.request("PUT", path, json=body)
        errors = (answer.response or {}).get("resourceErrors") or {}
        return {
            str(key): "; ".join(str(e.get("message") or e.get("code") or e) for e in found)
            for key, found in errors.items()
            if found
        }

    def add_order_row(self, order_id: int, row: Mapping[str, Any]) -> int:
        """Order row POST (reference §6.5) from a sales-order row (`productId` or `name`,
        `quantity`, `taxCode`, `net`, `tax`, `nominalCode`): productId / productName,
        quantity.magnitude, taxCode, rowNet / rowTax (rounded to the 2 d.p. this call takes) and
        nominalCode. The nesting is UNCONFIRMED; this sends the order GET's. The new row id."""
        wire = _row_wire(row)
        body: dict[str, Any] = {
            "quantity": {"magnitude": wire["quantity"]},
            "taxCode": wire["taxCode"],
            "rowNet": {"value": _two_places(wire["net"])},
            "rowTax": {"value": _two_places(wire["tax"])},
        }
        if "productId" in wire:
            body["productId"] = wire["productId"]
        if wire.get("name"):
            body["productName"] = wire["name"]
        if wire.get("nominalCode"):
            body["nominalCode"] = wire["nominalCode"]
        answer = self.request("POST", f"/order-service/order/{int(order_id)}/row", json=body)
        return self._new_id(answer, "order row")

    def delete_order_row(self, order_id: int, row_id: int) -> None:
        """Order row DELETE (reference §6.5 names it; refused once invoiced or on goods-out notes)."""
        self.request("DELETE", f"/order-service/order/{int(order_id)}/row/{int(row_id)}")

    def get_order_statuses(self) -> list[OrderStatus]:
        return self._parse(OrderStatus, self.get_all("/order-service/order-status"))

    def set_order_status(
        self, order_id: int, status_id: int, *, note: str | None = None, public: bool = False
    ) -> None:
        body: dict[str, Any] = {"orderStatusId": int(status_id)}
        if note:
            body["orderNote"] = {"text": note, "isPublic": public}
        self.request("PUT", f"/order-service/order/{int(order_id)}/status", json=body)

    def add_order_note(self, order_id: int, text: str, *, public: bool = False) -> int:
        answer = self.request(
            "POST", f"/order-service/order/{int(order_id)}/note", json={"text": text, "isPublic": public}
        )
        return self._new_id(answer, "order note")

    def get_order_notes(self, order_id: int) -> list[dict[str, Any]]:
        return self.get_all(f"/order-service/order/{int(order_id)}/note")

    def get_order_custom_fields(self, order_id: int) -> dict[str, Any]:
        answer = self.request("GET", f"/order-service/order/{int(order_id)}/custom-field")
        return dict(answer.response or {})

    def patch_order_custom_fields(
        self, order_id: int, ops: Iterable[PatchOp | dict[str, Any]]
    ) -> dict[str, Any]:
        answer = self.request(
            "PATCH", f"/order-service/order/{int(order_id)}/custom-field", json=[_patch(op) for op in ops]
        )
        return dict(answer.response or {})

    def create_sales_credit(self, credit: SalesOrderCreate | dict[str, Any]) -> int:
        """Sales credit (return) POST; same body as a sales order, `parentId` = the order."""
        body = (
            credit.wire()
            if isinstance(credit, SalesOrderCreate)
            else (SalesOrderCreate.model_validate(credit).wire())
        )
        return self._new_id(self.request("POST", "/order-service/sales-credit/", json=body), "sales-credit")

    def get_sales_credits(self, ids: Iterable[int]) -> list[Order]:
        return self._parse(Order, self.get_by_ids("/order-service/sales-credit/{ids}", ids))

    # --- products --------------------------------------------------------------------------
    def get_products(self, ids: Iterable[int]) -> list[Product]:
        return self._parse(Product, self.get_by_ids("/product-service/product/{ids}", ids, limit=200))

    def create_product(self, body: dict[str, Any]) -> int:
        return self._new_id(self.request("POST", "/product-service/product/", json=body), "product")

    def update_product(self, product_id: int, body: dict[str, Any], *, version: int | None) -> None:
        """PUT with `If-Match: version`; a stale version raises BrightpearlPreconditionFailed."""
        headers = {"If-Match": str(version)} if version is not None else None
        self.request("PUT", f"/product-service/product/{int(product_id)}", json=body, headers=headers)

    def search_products(
        self,
        *,
        sku: str | None = None,
        updated_since: datetime | None = None,
        columns: list[str] | None = None,
        **filters: Any,
    ) -> SearchPaginator:
        if sku is not None:
            filters["SKU"] = sku
        if updated_since is not None:
            filters["updatedOn"] = period(updated_since, None)
        return self.search(
            "/product-service/product-search", filters=filters, columns=columns, sort="productId.ASC"
        )

    def get_product_prices(
        self, product_ids: Iterable[int], price_list_ids: Iterable[int] | None = None
    ) -> list[ProductPrice]:
        suffix = f"/price-list/{format_id_set(price_list_ids)}" if price_list_ids else ""
        return self._parse(
            ProductPrice,
            self.get_by_ids("/product-service/product-price/{ids}" + suffix, product_ids, limit=200),
        )

    def set_product_prices(self, product_id: int, price_lists: list[dict[str, Any]]) -> None:
        """PUT net prices: [{"priceListId": 1, "quantityPrice": {"1": "9.99"}}]."""
        self.request(
            "PUT",
            f"/product-service/product-price/{int(product_id)}/price-list",
            json={"priceLists": price_lists},
        )

    # --- warehouse -------------------------------------------------------------------------
    def get_warehouses(self, ids: Iterable[int] | None = None) -> list[Warehouse]:
        if ids is None:
            return self._parse(Warehouse, self.get_all("/warehouse-service/warehouse"))
        return self._parse(Warehouse, self.get_by_ids("/warehouse-service/warehouse/{ids}", ids))

    def get_product_availability(self, product_ids: Iterable[int]) -> dict[int, ProductAvailability]:
        """Stock by product then warehouse; products that are not stock-tracked are absent."""
        out: dict[int, ProductAvailability] = {}
        for item in self.get_by_ids("/warehouse-service/product-availability/{ids}", product_ids):
            for key, value in item.items():
                out[int(key)] = ProductAvailability.model_validate(value)
        return out

    def search_goods_movements(
        self,
        *,
        updated_since: datetime | None = None,
        columns: list[str] | None = None,
        **filters: Any,
    ) -> SearchPaginator:
        """goods-movement-search (one row per product and goods note that moved stock) by
        `updatedOn` from `updated_since`; the columns are UNCONFIRMED (reference §8.2)."""
        if updated_since is not None:
            filters["updatedOn"] = period(updated_since, None)
        return self.search(
            "/warehouse-service/goods-movement-search",
            filters=filters,
            columns=columns,
            sort="goodsMovementId.ASC",
        )

    def create_goods_out_note(
        self,
        order_id: int,
        warehouses: list[dict[str, Any]],
        *,
        priority: bool = False,
        shipping_method_id: int | None = None,
    ) -> int:
        body: dict[str, Any] = {"warehouses": warehouses, "priority": priority}
        if shipping_method_id is not None:
            body["shippingMethodId"] = shipping_method_id
        answer = self.request(
            "POST", f"/warehouse-service/order/{int(order_id)}/goods-note/goods-out", json=body
        )
        return self._new_id(answer, "goods-out note")

    def get_goods_out_notes(
        self, note_ids: Iterable[int] | None = None, *, order_ids: Iterable[int] | None = None
    ) -> dict[int, GoodsOutNote]:
        orders = format_id_set(order_ids) if order_ids else "*"
        out: dict[int, GoodsOutNote] = {}
        if note_ids is None:
            items = self.get_all(f"/warehouse-service/order/{orders}/goods-note/goods-out")
        else:
            items = self.get_by_ids(
                f"/warehouse-service/order/{orders}/goods-note/goods-out/{{ids}}", note_ids, limit=500
            )
        for item in items:
            for key, value in item.items():
                out[int(key)] = GoodsOutNote.model_validate(value)
        return out

    def add_goods_out_events(
        self, note_id: int, events: list[dict[str, Any]], *, last_event_version: int | None = None
    ) -> None:
        """Events such as SHW; `last_event_version` (If-Match) stops duplicate events."""
        headers = {"If-Match": str(last_event_version)} if last_event_version is not None else None
        self.request(
            "POST",
            f"/warehouse-service/goods-note/goods-out/{int(note_id)}/event",
            json={"events": events},
            headers=headers,
            idempotent=last_event_version is not None,
        )

    def update_goods_out_note(
        self, note_id: int, *, priority: bool | None = None, shipping: dict[str, Any] | None = None
    ) -> None:
        """PUT a note's priority / shipping (e.g. {"reference": "TRACK123", "boxes": 2})."""
        body: dict[str, Any] = {}
        if priority is not None:
            body["priority"] = priority
        if shipping:
            body["shipping"] = shipping
        if not body:
            raise ValueError("update_goods_out_note needs priority or shipping")
        self.request("PUT", f"/warehouse-service/goods-note/goods-out/{int(note_id)}", json=body)

    def search_goods_out_notes(self, **filters: Any) -> SearchPaginator:
        """goods-out-search (no updatedOn column: poll createdOn / shippedOn, reference §4.1)."""
        return self.search(
            "/warehouse-service/goods-note/goods-out-search", filters=filters, sort="goodsOutNoteId.ASC"
        )

    def create_stock_correction(self, warehouse_id: int, corrections: list[dict[str, Any]]) -> list[int]:
        """[{"productId", "quantity" (+/-), "reason", "locationId", "cost"?}] -> correction ids."""
        answer = self.request(
            "POST",
            f"/warehouse-service/warehouse/{int(warehouse_id)}/stock-correction",
            json={"corrections": corrections},
        )
        return [int(i) for i in (answer.response or [])]

    # --- accounting ------------------------------------------------------------------------
    def create_customer_payment(self, payment: CustomerPaymentCreate | dict[str, Any]) -> int:
        model = (
            payment
            if isinstance(payment, CustomerPaymentCreate)
            else (CustomerPaymentCreate.model_validate(payment))
        )
        return self._new_id(
            self.request("POST", "/accounting-service/customer-payment", json=model.wire()),
            "customer-payment",
        )

    def ensure_customer_payment(self, payment: CustomerPaymentCreate) -> tuple[int, bool]:
        """(payment id, created?) keyed by (transactionRef, paymentMethodCode)."""
        if not payment.transaction_ref:
            raise BrightpearlValidationError("ensure_customer_payment needs transactionRef")

        def lookup() -> list[int]:
            return [
                int(r["paymentId"])
                for r in self.search(
                    "/accounting-service/customer-payment-search",
                    filters={"transactionRef": payment.transaction_ref},
                    columns=["paymentId", "transactionRef", "paymentMethodCode"],
                )
                if r.get("paymentMethodCode") == payment.payment_method_code
            ]

        existing = lookup()
        if existing:
            return min(existing), False
        try:
            return self.create_customer_payment(payment), True
        except BrightpearlAmbiguousWrite:
            existing = lookup()
            if existing:
                return min(existing), True
            raise

    def search_customer_payments(self, **filters: Any) -> SearchPaginator:
        return self.search(
            "/accounting-service/customer-payment-search", filters=filters, sort="paymentId.ASC"
        )

    def create_journal(self, body: dict[str, Any]) -> int:
        """Journal POST (base currency; reference §9)."""
        return self._new_id(self.request("POST", "/accounting-service/journal/", json=body), "journal")

    def get_journals(self, ids: Iterable[int]) -> list[Journal]:
        items: list[Any] = []
        for item in self.get_by_ids("/accounting-service/journal/{ids}", ids):
            items.extend(
                item.get("journals", []) if isinstance(item, dict) and "journals" in item else [item]
            )
        return self._parse(Journal, items)

    # --- batching --------------------------------------------------------------------------
    def multi_message(
        self,
        messages: list[dict[str, Any]],
        *,
        processing_mode: str = "SEQUENTIAL",
        on_fail: str = "CONTINUE",
    ) -> MultiMessageResult:
        """2-10 writes in one request (reference §3.1): [{"label","uri","httpMethod","body"}].

        Never re-sent after it may have been processed (it is a POST); each message's
        outcome is in the result. Brightpearl treats it as one request for throttling
        (UNCONFIRMED). A single message should be sent on its own instead.
        """
        if not 2 <= len(messages) <= 10:
            raise ValueError(f"messages: multi-message takes 2 to 10 messages, got {len(messages)}")
        body = {"processingMode": processing_mode, "onFail": on_fail, "messages": messages}
        answer = self.request("POST", "/multi-message", json=body)
        response = answer.response if isinstance(answer.response, dict) else {}
        outcomes = {}
        for item in response.get("processedMessages", []):
            content = (item.get("body") or {}).get("content") or ""
            try:
                parsed = json.loads(content) if content else {}
            except ValueError:
                parsed = {"raw": content}
            outcomes[str(item.get("label"))] = MessageOutcome(int(item.get("statusCode", 0)), parsed)
        return MultiMessageResult(outcomes, [str(x) for x in response.get("unprocessedMessages", [])])

    def create_many(self, uri: str, bodies: Sequence[dict[str, Any]]) -> list[int | BrightpearlError]:
        """POST each body to `uri`; one new id or one error per body, in input order.

        Groups of 2-10 go as one multi-message (SEQUENTIAL, CONTINUE), a lone body as a plain
        POST. Nothing is re-sent: a message left unprocessed fails with BrightpearlUnavailable,
        a failed message with the class `error_from_answer` gives its status, and a request
        that failed as a whole fails every body of its group with that error.
        """
        out: list[int | BrightpearlError] = []
        for start in range(0, len(bodies), MULTI_MESSAGE_MAX):
            group = bodies[start : start + MULTI_MESSAGE_MAX]
            if len(group) == 1:
                try:
                    out.append(self._new_id(self.request("POST", uri, json=group[0]), uri))
                except BrightpearlError as exc:
                    out.append(exc)
                continue
            messages = [
                {"label": str(i), "uri": uri, "httpMethod": "POST", "body": body}
                for i, body in enumerate(group)
            ]
            try:
                result = self.multi_message(messages)
            except BrightpearlError as exc:
                out.extend(exc for _ in group)
                continue
            out.extend(_created(result.processed.get(str(i)), uri, i) for i in range(len(group)))
        self.created_ids.observe(uri.strip("/"), out)
        return out

    # --- webhooks --------------------------------------------------------------------------
    def list_webhooks(self) -> list[Webhook]:
        return self._parse(Webhook, self.get_all("/integration-service/webhook"))

    def create_webhook(self, webhook: WebhookCreate) -> int:
        return self._new_id(
            self.request("POST", "/integration-service/webhook", json=webhook.wire()), "webhook"
        )

    def delete_webhook(self, webhook_id: int) -> None:
        self.request("DELETE", f"/integration-service/webhook/{int(webhook_id)}")


def _only(found: list[M], what: str, record_id: int) -> M:
    if not found:
        raise BrightpearlNotFound(f"{what} {record_id} not found", status=404)
    return found[0]


def _created(item: MessageOutcome | None, uri: str, index: int) -> int | BrightpearlError:
    """The new id of one multi-message POST, or its error."""
    where = f"POST {uri} (message {index} of a multi-message)"
    if item is None:
        return BrightpearlUnavailable(f"{where} was left unprocessed; nothing was created")
    if not item.ok:
        return error_from_answer(item.status, item.body, where)
    try:
        return new_id(item.body.get("response"), where)
    except BrightpearlError as exc:
        return exc


def postal_address_fingerprint(address: Mapping[str, Any]) -> str:
    """A postal address's content as the integration sent it, comparable with what a GET
    answers: the fields of POSTAL_ADDRESS_FIELDS with text, stripped (the country code upper
    case); Brightpearl's extras and lines it left out do not count."""
    content = {}
    for key in POSTAL_ADDRESS_FIELDS:
        value = str(address.get(key) or "").strip()
        if value:
            content[key] = value.upper() if key == "countryIsoCode" else value
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]


def new_id(value: Any, what: str) -> int:
    """The id a create answered (`123` or `[123]`)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BrightpearlError(f"{what} POST answered {value!r}, not a new id") from exc


def _as_items(response: Any) -> list[Any]:
    if response is None:
        return []
    if isinstance(response, dict):
        return [response]
    return list(response)


def _body(value: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dict(value)


def _patch(op: PatchOp | dict[str, Any]) -> dict[str, Any]:
    model = op if isinstance(op, PatchOp) else PatchOp.model_validate(op)
    return model.wire()


def _store_from_settings(settings: BrightpearlSettings) -> TokenStore:
    if settings.token_store == "file":  # noqa: S105
        return FileTokenStore(settings.token_store_path)
    if settings.token_store == "keyvault":  # noqa: S105
        if not settings.key_vault_url:
            raise BrightpearlError("BRIGHTPEARL_TOKEN_STORE=keyvault needs BRIGHTPEARL_KEY_VAULT_URL")
        return KeyVaultTokenStore.from_vault_url(settings.key_vault_url, settings.token_secret_name)
    return MemoryTokenStore()


def _row_wire(row: Mapping[str, Any]) -> dict[str, Any]:
    """A sales-order row as the order service takes it (validated, amounts to 4 d.p.)."""
    return SalesOrderRowCreate.model_validate(dict(row)).wire()


def _two_places(amount: str) -> str:
    return format(Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")
