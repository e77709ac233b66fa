"""The simulator's in-memory Brightpearl account: records, reference data, seeding, and the
business rules of every write (validation, derived statuses, time stamps, webhook events).

All access goes through one re-entrant lock. Times are kept in UTC and rendered with the
configured account offset by the HTTP layer. Errors are raised as `ApiError` with a
Brightpearl-style code; the codes of the real service are used where the reference names
them (CMNC-404, CMNC-010, ORDC-024, ...), otherwise codes are invented in the same form.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry
from faker import Faker

from sandbox.brightpearl.config import SimulatorConfig


class ApiError(Exception):
    """An answer other than success: status + Brightpearl error list (or string response)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad(message: str, code: str = "CMNC-400") -> ApiError:
    return ApiError(400, code, message)


EventSink = Callable[[str, list[int], datetime], None]

PRODUCT_NOUNS = [
    "Mug",
    "Teapot",
    "Lamp",
    "Cushion",
    "Throw",
    "Vase",
    "Candle",
    "Rug",
    "Clock",
    "Mirror",
    "Planter",
    "Bowl",
    "Tray",
    "Basket",
    "Frame",
    "Stool",
    "Shelf",
    "Blanket",
    "Jug",
    "Towel",
]
COUNTRIES = sorted(pycountry.countries, key=lambda c: c.alpha_3)
COUNTRY_IDS = {c.alpha_3: i + 1 for i, c in enumerate(COUNTRIES)}
COUNTRY_BY_ID = {i + 1: c for i, c in enumerate(COUNTRIES)}

PATCHABLE_CONTACT_PATHS: list[tuple[str, set[str]]] = [
    (r"/salutation", {"test", "add", "replace", "remove"}),
    (r"/firstName", {"test", "add", "replace"}),
    (r"/lastName", {"test", "add", "replace"}),
    (r"/communication/telephones/(PRI|SEC|MOB|FAX)", {"test", "add", "replace", "remove", "move", "copy"}),
    (r"/communication/emails/(PRI|SEC|TER)/email", {"test", "add", "replace", "remove", "move", "copy"}),
    (r"/marketingDetails/isReceiveEmailNewsletter", {"test", "replace"}),
    (r"/leadTime", {"replace"}),
    (r"/companyId", {"replace"}),
]


def money(value: Any, field: str, places: int = 4) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise bad(f"{field} must be a decimal number, got {value!r}") from exc
    if not number.is_finite():
        raise bad(f"{field} must be a finite number")
    if -number.as_tuple().exponent > places:  # type: ignore[operator]
        raise bad(f"{field} allows at most {places} decimal places, got {value!r}")
    return number


def fmt(value: Decimal, places: int = 4) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


class SimState:
    """One simulated Brightpearl installation (all accounts share the data set)."""

    def __init__(self, config: SimulatorConfig, emit: EventSink | None = None) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._emit = emit or (lambda event, ids, at: None)
        self.reset()

    # --- infrastructure ------------------------------------------------------------------
    def set_event_sink(self, emit: EventSink) -> None:
        self._emit = emit

    def emit(self, event: str, ids: list[int]) -> None:
        if event.startswith("contact.") and not self.config.contact_webhooks:
            return
        if event == "order.created" and not self.config.order_created_webhooks:
            return
        self._emit(event, ids, self.now())

    def now(self) -> datetime:
        """Strictly increasing UTC time (ms resolution), so every change moves updatedOn."""
        if self._seed_clock is not None:
            return self._seed_time()
        real = datetime.now(UTC)
        now = real.replace(microsecond=(real.microsecond // 1000) * 1000)
        if now <= self._last_time:
            now = self._last_time + timedelta(milliseconds=1)
        self._last_time = now
        return now

    def _seed_time(self) -> datetime:
        """Seeded records get history: time stamps spread over the 60 days before seeding."""
        assert self._seed_clock is not None
        step = timedelta(seconds=self.rng.randint(1, 30))
        limit = datetime.now(UTC) - timedelta(minutes=1)
        if self._seed_clock + step > limit:
            step = timedelta(milliseconds=1)
        self._seed_clock += step
        return self._seed_clock

    def next_id(self, kind: str, start: int = 1) -> int:
        value = self._counters.get(kind, start)
        self._counters[kind] = value + 1
        return value

    def reset(self, seed: int | None = None) -> None:
        with self.lock:
            self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
            self._seed_clock: datetime | None = None
            self._seed_clock_next = datetime(2000, 1, 1, tzinfo=UTC)
            self._counters: dict[str, int] = {}
            self.contacts: dict[int, dict[str, Any]] = {}
            self.addresses: dict[int, dict[str, Any]] = {}
            self.contact_custom_fields: dict[int, dict[str, Any]] = {}
            self.groups: dict[int, dict[str, Any]] = {}
            self.tags: dict[int, dict[str, Any]] = {}
            self.orders: dict[int, dict[str, Any]] = {}
            self.order_notes: dict[int, list[dict[str, Any]]] = {}
            self.order_custom_fields: dict[int, dict[str, Any]] = {}
            self.products: dict[int, dict[str, Any]] = {}
            self.prices: dict[int, dict[int, dict[str, str]]] = {}
            self.stock: dict[int, dict[int, int]] = {}
            self.goods_out: dict[int, dict[str, Any]] = {}
            self.payments: dict[int, dict[str, Any]] = {}
            self.journals: dict[int, dict[str, Any]] = {}
            self.webhooks: dict[int, dict[str, Any]] = {}
            self._reference_data()
            self.faker = Faker("en_GB")
            self.rng = random.Random(self.config.seed if seed is None else seed)
            self.faker.seed_instance(self.config.seed if seed is None else seed)
            self.seed(self.config.seed_contacts, self.config.seed_products, self.config.seed_orders)

    def _reference_data(self) -> None:
        self.currencies = {
            1: {"id": 1, "code": "GBP", "symbol": "£"},
            2: {"id": 2, "code": "EUR", "symbol": "€"},
            3: {"id": 3, "code": "USD", "symbol": "$"},
        }
        self.tax_codes = {
            1: {"id": 1, "code": "T20", "description": "Standard rate", "rate": "20.00"},
            2: {"id": 2, "code": "T5", "description": "Reduced rate", "rate": "5.00"},
            3: {"id": 3, "code": "T0", "description": "Zero rated", "rate": "0.00"},
            7: {"id": 7, "code": "N", "description": "Not applicable", "rate": "0.00"},
        }
        self.price_lists = {
            1: {
                "id": 1,
                "code": "COST",
                "name": {"languageCode": "EN", "text": "Cost price", "format": "PLAINTEXT"},
                "currencyCode": "GBP",
                "currencySymbol": "£",
                "currencyId": 1,
                "priceListTypeCode": "BUY",
                "gross": False,
            },
            2: {
                "id": 2,
                "code": "RETAIL",
                "name": {"languageCode": "EN", "text": "Retail GBP", "format": "PLAINTEXT"},
                "currencyCode": "GBP",
                "currencySymbol": "£",
                "currencyId": 1,
                "priceListTypeCode": "SELL",
                "gross": True,
            },
            3: {
                "id": 3,
                "code": "TRADE",
                "name": {"languageCode": "EN", "text": "Trade GBP", "format": "PLAINTEXT"},
                "currencyCode": "GBP",
                "currencySymbol": "£",
                "currencyId": 1,
                "priceListTypeCode": "SELL",
                "gross": False,
            },
            4: {
                "id": 4,
                "code": "RETAIL-EUR",
                "name": {"languageCode": "EN", "text": "Retail EUR", "format": "PLAINTEXT"},
                "currencyCode": "EUR",
                "currencySymbol": "€",
                "currencyId": 2,
                "priceListTypeCode": "SELL",
                "gross": True,
            },
        }
        self.warehouses = {
            2: {
                "id": 2,
                "name": "Main Warehouse",
                "typeCode": "WAREHOUSE",
                "typeDescription": "Warehouse",
                "address": {"addressId": 1},
                "clickAndCollectEnabled": False,
            },
            3: {
                "id": 3,
                "name": "London Store",
                "typeCode": "STORE",
                "typeDescription": "Store",
                "address": {"addressId": 2},
                "clickAndCollectEnabled": True,
            },
            4: {
                "id": 4,
                "name": "3PL North",
                "typeCode": "3PL",
                "typeDescription": "3PL",
                "address": {"addressId": 3},
                "clickAndCollectEnabled": False,
            },
        }
        statuses = [
            (1, "Draft / Quote", "SO", "draft"),
            (2, "New web order", "SO", "open"),
            (3, "Awaiting payment", "SO", "open"),
            (4, "Invoiced", "SO", "invoiced"),
            (5, "Cancelled", "SO", "cancelled"),
            (6, "Completed", "SO", "closed"),
            (7, "Pending PO", "PO", "open"),
            (8, "New sales credit", "SC", "open"),
            (9, "Credit complete", "SC", "closed"),
            (10, "Hidden legacy", "SO", "open"),
        ]
        self.order_statuses = {
            sid: {
                "statusId": sid,
                "name": name,
                "orderTypeCode": otc,
                "sortOrder": sid * 10,
                "disabled": False,
                "visible": sid != 10,
                "color": "#3366FF",
                "remindAfterDays": 0,
                "alertEmails": [],
                "emailContent": "",
                "batchProcess": False,
                "state": state,
            }
            for sid, name, otc, state in statuses
        }
        self.cancelled_status = 5
        self.invoiced_status = 4
        self.default_status = {"SO": 2, "SC": 8, "PO": 7}
        self.order_custom_field_meta = {
            "PCF_GIFTMSG": {
                "id": 1,
                "code": "PCF_GIFTMSG",
                "name": "Gift message",
                "customFieldType": "TEXT",
                "required": False,
            },
            "PCF_RUSH": {
                "id": 2,
                "code": "PCF_RUSH",
                "name": "Rush order",
                "customFieldType": "YES_NO",
                "required": False,
            },
            "PCF_SOURCE": {
                "id": 3,
                "code": "PCF_SOURCE",
                "name": "Source",
                "customFieldType": "SELECT",
                "required": False,
                "options": {"9": {"id": 9, "value": "Web"}, "10": {"id": 10, "value": "Phone"}},
            },
        }
        self.contact_custom_field_codes = {"PCF_LOYALTY", "PCF_NOTES"}
        self.brands = {1: "House Brand", 2: "Acme"}
        self.payment_methods = {"CARD", "PAYPAL", "BANK"}
        self.open_period_start = datetime(2000, 1, 1, tzinfo=UTC).date()
        self.groups = {
            1: {"id": 1, "name": "VIP customers", "description": "Priority service", "contactIds": set()},
            2: {"id": 2, "name": "Trade", "description": "Trade accounts", "contactIds": set()},
        }
        self.tags = {
            1: {"tagId": 1, "tagName": "newsletter", "tagDescription": ""},
            2: {"tagId": 2, "tagName": "wholesale", "tagDescription": ""},
        }
        self._counters.update({"group": 3, "tag": 3})

    # --- seeding ---------------------------------------------------------------------------
    def seed(self, contacts: int = 0, products: int = 0, orders: int = 0) -> dict[str, list[int]]:
        """Add realistic records (Faker, seeded); returns the new ids by kind."""
        created: dict[str, list[int]] = {"contacts": [], "products": [], "orders": []}
        with self.lock:
            self._seed_clock = max(self._seed_clock_next, datetime.now(UTC) - timedelta(days=60))
            try:
                self._seed(created, contacts, products, orders)
            finally:
                self._seed_clock_next = self._seed_clock
                self._seed_clock = None
        return created

    def _seed(self, created: dict[str, list[int]], contacts: int, products: int, orders: int) -> None:
        fake, rng = self.faker, self.rng
        for _ in range(contacts):
            first, last = fake.first_name(), fake.last_name()
            n = self._counters.get("contact", 1)
            address_id = self._add_address(
                {
                    "addressLine1": fake.street_address().replace("\n", ", ")[:100],
                    "addressLine3": fake.city(),
                    "addressLine4": fake.county(),
                    "postalCode": fake.postcode(),
                    "countryIsoCode": rng.choice(["GBR"] * 6 + ["IRL", "FRA", "USA"]),
                }
            )
            body = {
                "firstName": first[:32],
                "lastName": last[:32],
                "salutation": rng.choice(["Mr", "Ms", "Dr", ""]) or None,
                "postAddressIds": {"DEF": address_id, "BIL": address_id, "DEL": address_id},
                "communication": {
                    "emails": {"PRI": {"email": f"{first}.{last}.{n}@example.com".lower()}},
                    "telephones": {"PRI": fake.phone_number()},
                },
                "organisation": {"name": fake.company()} if rng.random() < 0.4 else None,
                "financialDetails": {
                    "priceListId": rng.choice([2, 2, 2, 3]),
                    "currencyId": 1,
                    "taxCodeId": 1,
                },
                "relationshipToAccount": {"isSupplier": rng.random() < 0.05, "isStaff": False},
            }
            created["contacts"].append(
                self.create_contact({k: v for k, v in body.items() if v is not None}, quiet=True)
            )
        for _ in range(products):
            word = rng.choice(PRODUCT_NOUNS)
            sku = f"SKU-{self._counters.get('product', 1000):05d}"
            pid = self.create_product(
                {
                    "brandId": rng.choice([1, 2]),
                    "identity": {"sku": sku, "ean": fake.ean13()},
                    "stock": {
                        "stockTracked": rng.random() < 0.85,
                        "weight": {"magnitude": round(rng.uniform(0.1, 5), 2)},
                    },
                    "financialDetails": {"taxable": True, "taxCode": {"id": 1, "code": "T20"}},
                    "salesChannels": [
                        {
                            "salesChannelName": "Brightpearl",
                            "productName": f"{fake.color_name()} {word}",
                            "productCondition": "new",
                            "categories": [{"categoryCode": "276"}],
                        }
                    ],
                },
                quiet=True,
            )
            price = Decimal(rng.randint(199, 9999)) / 100
            self.prices[pid] = {
                1: {"1": fmt(price * Decimal("0.5"), 2)},
                2: {"1": fmt(price, 2), "5": fmt(price * Decimal("0.9"), 2)},
                3: {"1": fmt(price * Decimal("0.75"), 2)},
                4: {"1": fmt(price * Decimal("1.15"), 2)},
            }
            if self.products[pid]["stock"]["stockTracked"]:
                self.stock[pid] = {2: rng.randint(0, 200), 3: rng.randint(0, 20)}
            created["products"].append(pid)
        customer_ids = [c for c, v in self.contacts.items() if not v["relationshipToAccount"]["isSupplier"]]
        product_ids = list(self.products)
        for _ in range(orders):
            if not customer_ids or not product_ids:
                break
            rows = []
            for pid in rng.sample(product_ids, k=min(len(product_ids), rng.randint(1, 3))):
                qty = rng.randint(1, 3)
                net = Decimal(self.prices.get(pid, {}).get(2, {}).get("1", "10.00")) * qty
                rows.append(
                    {
                        "productId": pid,
                        "quantity": str(qty),
                        "taxCode": "T20",
                        "net": fmt(net, 2),
                        "tax": fmt(net * Decimal("0.2"), 2),
                    }
                )
            created["orders"].append(
                self.create_sales_order(
                    {
                        "customer": {"id": rng.choice(customer_ids)},
                        "ref": f"WEB-{rng.randint(10000, 99999)}",
                        "currency": {"code": "GBP"},
                        "warehouseId": 2,
                        "channelId": 1,
                        "rows": rows,
                    },
                    "SO",
                    quiet=True,
                )
            )

    # --- contacts --------------------------------------------------------------------------
    def _add_address(self, body: dict[str, Any], contact_id: int = 0) -> int:
        if not isinstance(body, dict):
            raise bad("postal address must be a JSON object", "CMNC-010")
        line1 = body.get("addressLine1")
        if not isinstance(line1, str) or not line1.strip():
            raise bad("addressLine1 is required", "CNTC-201")
        record: dict[str, Any] = {"contactId": contact_id}
        for key in ("addressLine1", "addressLine2", "addressLine3", "addressLine4", "postalCode"):
            value = body.get(key)
            if value is not None:
                if not isinstance(value, str) or len(value) > 100:
                    raise bad(f"{key} must be text of at most 100 characters", "CNTC-202")
                record[key] = value
        iso = body.get("countryIsoCode")
        cid = body.get("countryId")
        if iso is not None:
            country = pycountry.countries.get(alpha_3=str(iso).upper()) if len(str(iso)) == 3 else None
            if country is None:
                raise bad(f"countryIsoCode {iso!r} is not an ISO 3166 alpha-3 code", "CNTC-203")
        elif cid is not None:
            country = COUNTRY_BY_ID.get(cid) if isinstance(cid, int) else None
            if country is None:
                raise bad(f"countryId {cid!r} is not a known country", "CNTC-204")
        else:
            raise bad("either countryIsoCode or countryId is required", "CNTC-205")
        record.update(
            countryIsoCode=country.alpha_3,
            countryIsoCode2=country.alpha_2,
            countryId=COUNTRY_IDS[country.alpha_3],
        )
        address_id = self.next_id("address")
        record["addressId"] = address_id
        self.addresses[address_id] = record
        return address_id

    def create_address(self, body: dict[str, Any]) -> int:
        with self.lock:
            return self._add_address(body)

    def update_address(self, address_id: int, body: dict[str, Any]) -> None:
        with self.lock:
            old = self.addresses.get(address_id)
            if old is None:
                raise ApiError(404, "CMNC-404", f"Postal address {address_id} not found")
            new_id = self._add_address(body, old["contactId"])
            new = self.addresses.pop(new_id)
            self._counters["address"] -= 1
            new["addressId"] = address_id
            self.addresses[address_id] = new
            if old["contactId"] in self.contacts:
                self._touch_contact(old["contactId"])

    def create_contact(self, body: dict[str, Any], quiet: bool = False) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            for key in ("salutation", "firstName", "lastName"):
                value = body.get(key)
                if value is not None and (not isinstance(value, str) or len(value) > 32):
                    raise bad(f"{key} must be text of at most 32 characters", "CNTC-101")
            org = body.get("organisation") or {}
            org_name = org.get("name") if isinstance(org, dict) else body.get("organisation")
            if not (body.get("firstName") or body.get("lastName") or org_name):
                raise bad("A contact needs a firstName, lastName or organisation name", "CNTC-102")
            comm = body.get("communication") or {}
            emails = _emails(comm.get("emails", body.get("emails", {})))
            for code, email in emails.items():
                if "@" not in email["email"] or len(email["email"]) > 255:
                    raise bad(f"emails.{code} {email['email']!r} is not an e-mail address", "CNTC-103")
            phones = comm.get("telephones", body.get("telephones", {})) or {}
            if not isinstance(phones, dict) or any(k not in ("PRI", "SEC", "MOB", "FAX") for k in phones):
                raise bad("telephones keys must be PRI, SEC, MOB or FAX", "CNTC-104")
            addresses = body.get("postAddressIds") or {}
            if not isinstance(addresses, dict) or any(k not in ("DEF", "BIL", "DEL") for k in addresses):
                raise bad("postAddressIds keys must be DEF, BIL or DEL", "CNTC-105")
            for kind, aid in addresses.items():
                if aid not in self.addresses:
                    raise bad(f"postAddressIds.{kind}: postal address {aid!r} does not exist", "CNTC-106")
            fin = dict(body.get("financialDetails") or {})
            if "priceListId" in body:
                fin["priceListId"] = body["priceListId"]
            if fin.get("priceListId") is not None and fin["priceListId"] not in self.price_lists:
                raise bad(f"priceListId {fin['priceListId']!r} does not exist", "CNTC-107")
            rel = body.get("relationshipToAccount") or {}
            contact_id = self.next_id("contact", 200)
            now = self.now()
            record = {
                "contactId": contact_id,
                "isPrimaryContact": True,
                "postAddressIds": dict(addresses),
                "communication": {
                    "emails": emails,
                    "telephones": dict(phones),
                    "messagingVoips": dict(comm.get("messagingVoips", body.get("messagingVoips", {})) or {}),
                    "websites": dict(comm.get("websites", body.get("websites", {})) or {}),
                },
                "contactStatus": {
                    "current": {
                        "contactStatusName": "Customer",
                        "contactStatusId": body.get("contactStatusId", 1),
                    },
                    "history": [
                        {
                            "contactStatusName": "Customer",
                            "contactStatusId": 1,
                            "occuredOn": now,
                            "staffContactId": 4,
                        }
                    ],
                },
                "relationshipToAccount": {
                    "isSupplier": bool(rel.get("isSupplier", body.get("isSupplier", False))),
                    "isStaff": bool(rel.get("isStaff", body.get("isStaff", False))),
                },
                "marketingDetails": {
                    "isReceiveEmailNewsletter": bool(
                        (body.get("marketingDetails") or {}).get(
                            "isReceiveEmailNewsletter", body.get("isReceiveEmailNewsletter", False)
                        )
                    )
                },
                "financialDetails": {
                    "priceListId": fin.get("priceListId") or 2,
                    "nominalCode": str(fin.get("nominalCode", "4000")),
                    "taxCodeId": fin.get("taxCodeId", 1),
                    "creditLimit": fin.get("creditLimit", 0),
                    "creditTermDays": fin.get("creditTermDays", 30),
                    "currencyId": fin.get("currencyId", 1),
                    "discountPercentage": "0.00",
                },
                "assignment": {
                    "current": {"staffOwnerContactId": 0, "leadSourceId": 0, "accountReference": ""}
                },
                "companyId": 0,
                "createdByid": 4,
                "createdOn": now,
                "updatedOn": now,
                "_tags": set(),
            }
            for key in ("salutation", "firstName", "lastName"):
                if body.get(key):
                    record[key] = body[key]
            if org_name:
                record["organisation"] = {"organisationId": contact_id, "name": org_name}
            self.contacts[contact_id] = record
            for aid in addresses.values():
                self.addresses[aid]["contactId"] = contact_id
            if not quiet:
                self.emit("contact.created", [contact_id])
            return contact_id

    def _touch_contact(self, contact_id: int) -> None:
        self.contacts[contact_id]["updatedOn"] = self.now()
        self.emit("contact.modified", [contact_id])

    def contact(self, contact_id: int) -> dict[str, Any]:
        record = self.contacts.get(contact_id)
        if record is None:
            raise ApiError(404, "CMNC-404", "No Contact Found")
        return record

    def patch_contact(self, contact_id: int, ops: Any) -> dict[str, Any]:
        import re

        with self.lock:
            record = self.contact(contact_id)
            if not isinstance(ops, list) or not ops:
                raise bad("PATCH body must be a non-empty JSON Patch array", "CMNC-010")
            work = _deep_copy(record)
            for index, op in enumerate(ops):
                if not isinstance(op, dict) or "op" not in op or "path" not in op:
                    raise bad(f"patch operation {index} needs op and path", "CMNC-011")
                for path in [op["path"]] + ([op["from"]] if "from" in op else []):
                    allowed = next(
                        (ops_ for pat, ops_ in PATCHABLE_CONTACT_PATHS if re.fullmatch(pat, path)), None
                    )
                    if allowed is None:
                        raise bad(f"path {path} cannot be patched on a contact", "CNTC-110")
                    if op["op"] not in allowed:
                        raise bad(f"operation {op['op']} is not allowed on {path}", "CNTC-111")
                if op["path"] in ("/firstName", "/lastName", "/salutation") and op["op"] in (
                    "add",
                    "replace",
                ):
                    value = op.get("value")
                    if not isinstance(value, str) or len(value) > 32:
                        raise bad(f"{op['path'][1:]} must be text of at most 32 characters", "CNTC-101")
                if (
                    op["path"].endswith("/email")
                    and op["op"] in ("add", "replace")
                    and "@" not in str(op.get("value"))
                ):
                    raise bad(f"{op['path']} {op.get('value')!r} is not an e-mail address", "CNTC-103")
                _apply_patch(work, op, index)
            work["updatedOn"] = self.now()
            self.contacts[contact_id] = work
            self.emit("contact.modified", [contact_id])
            return work

    def link_addresses(self, contact_id: int, links: Any) -> None:
        with self.lock:
            record = self.contact(contact_id)
            if not isinstance(links, list):
                raise bad("body must be a list of {postalAddressId, type}", "CMNC-010")
            for link in links:
                aid = link.get("postalAddressId") if isinstance(link, dict) else None
                address = self.addresses.get(aid)
                if address is None:
                    raise bad(f"postal address {aid!r} does not exist", "CNTC-106")
                if address["contactId"] not in (0, contact_id):
                    raise bad(f"postal address {aid} belongs to another contact", "CNTC-108")
                if link.get("type") not in (None, "DEF", "BIL", "DEL"):
                    raise bad(f"type {link.get('type')!r} must be DEF, BIL or DEL", "CNTC-105")
            for link in links:
                self.addresses[link["postalAddressId"]]["contactId"] = contact_id
                if link.get("type"):
                    record["postAddressIds"][link["type"]] = link["postalAddressId"]
            self._touch_contact(contact_id)

    def patch_contact_custom_fields(self, contact_id: int, ops: Any) -> dict[str, Any]:
        with self.lock:
            self.contact(contact_id)
            fields = _deep_copy(self.contact_custom_fields.get(contact_id, {}))
            if not isinstance(ops, list):
                raise bad("PATCH body must be a JSON Patch array", "CMNC-010")
            for index, op in enumerate(ops):
                code = str(op.get("path", "")).strip("/").split("/")[0]
                if code not in self.contact_custom_field_codes:
                    raise bad(f"custom field {code!r} does not exist", "CNTC-120")
                _apply_patch(fields, op, index)
            self.contact_custom_fields[contact_id] = fields
            self._touch_contact(contact_id)
            return fields

    def tag_contacts(self, contact_ids: list[int], tag_id: int) -> None:
        with self.lock:
            if tag_id not in self.tags:
                raise ApiError(404, "CMNC-404", f"Tag {tag_id} not found")
            found = [c for c in contact_ids if c in self.contacts]
            if not found:
                raise ApiError(404, "CMNC-404", "No Contact Found")
            for cid in found:
                if tag_id not in self.contacts[cid]["_tags"]:
                    self.contacts[cid]["_tags"].add(tag_id)
                    self._touch_contact(cid)

    def untag_contact(self, contact_id: int, tag_id: int) -> None:
        with self.lock:
            record = self.contact(contact_id)
            if tag_id in record["_tags"]:
                record["_tags"].discard(tag_id)
                self._touch_contact(contact_id)

    def create_tag(self, body: Any) -> int:
        with self.lock:
            name = body.get("tagName") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name.strip() or len(name) > 64:
                raise bad("tagName is required (at most 64 characters)", "CNTC-130")
            if any(t["tagName"].lower() == name.lower() for t in self.tags.values()):
                raise bad(f"tag {name!r} already exists", "CNTC-131")
            tag_id = self.next_id("tag")
            self.tags[tag_id] = {
                "tagId": tag_id,
                "tagName": name,
                "tagDescription": body.get("tagDescription", ""),
            }
            return tag_id

    def add_group_members(self, group_id: int, body: Any) -> None:
        with self.lock:
            group = self.groups.get(group_id)
            if group is None:
                raise ApiError(404, "CMNC-404", f"Contact group {group_id} not found")
            ids = body.get("contactIds") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
                raise bad("contactIds must be a non-empty list of contact ids", "CNTC-140")
            missing = [i for i in ids if i not in self.contacts]
            if missing:
                raise bad(f"contacts {missing} do not exist", "CNTC-141")
            for cid in ids:
                if cid not in group["contactIds"]:
                    group["contactIds"].add(cid)
                    self.contacts[cid]["assignment"]["current"]["contactGroupId"] = group_id
                    self._touch_contact(cid)

    def create_group(self, body: Any) -> int:
        with self.lock:
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise bad("name is required", "CNTC-142")
            gid = self.next_id("group")
            self.groups[gid] = {
                "id": gid,
                "name": name,
                "description": body.get("description", ""),
                "contactIds": set(),
            }
            return gid

    # --- products --------------------------------------------------------------------------
    def create_product(self, body: Any, quiet: bool = False) -> int:
        with self.lock:
            self._validate_product(body, partial=False)
            pid = self.next_id("product", 1000)
            now = self.now()
            channels = body.get("salesChannels") or [
                {"salesChannelName": "Brightpearl", "productName": body.get("productName", f"Product {pid}")}
            ]
            record = {
                "id": pid,
                "brandId": body["brandId"],
                "collectionId": body.get("collectionId", 0),
                "productTypeId": body.get("productTypeId", 1),
                "productGroupId": 0,
                "featured": False,
                "identity": {k: v for k, v in (body.get("identity") or {}).items() if v is not None},
                "stock": dict(body.get("stock") or {"stockTracked": True}),
                "financialDetails": body.get("financialDetails")
                or {"taxable": True, "taxCode": {"id": 1, "code": "T20"}},
                "salesChannels": channels,
                "composition": {"bundle": False},
                "variations": [],
                "status": "LIVE",
                "nominalCodeSales": "4000",
                "createdOn": now,
                "updatedOn": now,
                "version": int(now.timestamp() * 1000),
            }
            name = channels[0].get("productName")
            for other in self.products.values():  # same name joins a product group (§7.2)
                if other["salesChannels"][0].get("productName") == name:
                    group = other["productGroupId"] or other["id"]
                    other["productGroupId"] = group
                    record["productGroupId"] = group
            self.products[pid] = record
            if record["stock"].get("stockTracked"):
                self.stock.setdefault(pid, {})
            if not quiet:
                self.emit("product.created", [pid])
            return pid

    def _validate_product(self, body: Any, partial: bool) -> None:
        if not isinstance(body, dict) or (not body and not partial):
            raise bad("A JSON body is required", "CMNC-010")
        if (not partial or "brandId" in body) and body.get("brandId") not in self.brands:
            raise bad(f"brandId {body.get('brandId')!r} is required and must exist", "PRDC-024")
        identity = body.get("identity") or {}
        sku = identity.get("sku")
        if sku is not None and (not isinstance(sku, str) or len(sku) > 32):
            raise bad("identity.sku must be text of at most 32 characters", "PRDC-030")
        for key in ("ean", "upc", "isbn"):
            value = identity.get(key)
            if value is not None and len(str(value)) > 14:
                raise bad(f"identity.{key} must be at most 14 characters", "PRDC-031")
        channels = body.get("salesChannels")
        if channels is not None and (
            not isinstance(channels, list)
            or not channels
            or any(c.get("salesChannelName", "Brightpearl") != "Brightpearl" for c in channels)
        ):
            raise bad("salesChannels supports only the Brightpearl channel", "PRDC-032")

    def update_product(self, pid: int, body: Any, if_match: str | None) -> None:
        with self.lock:
            record = self.products.get(pid)
            if record is None:
                raise ApiError(404, "CMNC-404", f"Product {pid} not found")
            if if_match is not None and if_match.strip('"') != str(record["version"]):
                raise ApiError(412, "PRDC-412", f"Product {pid} was changed since version {if_match}")
            self._validate_product(body, partial=True)
            for key in ("brandId", "collectionId", "productTypeId", "financialDetails", "salesChannels"):
                if key in body:
                    record[key] = body[key]
            if "identity" in body:
                record["identity"].update(body["identity"])
            if "stock" in body:
                record["stock"].update(body["stock"])
            record["updatedOn"] = self.now()
            record["version"] = max(record["version"] + 1, int(record["updatedOn"].timestamp() * 1000))
            self.emit("product.modified", [pid])

    def set_prices(self, pid: int, body: Any) -> None:
        with self.lock:
            if pid not in self.products:
                raise ApiError(404, "CMNC-404", f"Product {pid} not found")
            lists = body.get("priceLists") if isinstance(body, dict) else None
            if not isinstance(lists, list) or not lists:
                raise bad("priceLists is required", "PRDC-040")
            for entry in lists:
                plid = entry.get("priceListId")
                if plid not in self.price_lists:
                    raise bad(f"priceListId {plid!r} does not exist", "PRDC-041")
                qp = entry.get("quantityPrice")
                if not isinstance(qp, dict) or not qp:
                    raise bad("quantityPrice must map quantities to prices", "PRDC-042")
                for qty, price in qp.items():
                    if not str(qty).isdigit():
                        raise bad(f"quantity break {qty!r} must be a whole number", "PRDC-043")
                    money(price, f"quantityPrice.{qty}")
            for entry in lists:
                self.prices.setdefault(pid, {})[entry["priceListId"]] = {
                    str(k): str(v) for k, v in entry["quantityPrice"].items()
                }
            self.products[pid]["updatedOn"] = self.now()
            self.emit("product.modified", [pid])

    def adjust_stock(self, pid: int, warehouse_id: int, delta: int) -> None:
        with self.lock:
            if pid not in self.products:
                raise ApiError(404, "CMNC-404", f"Product {pid} not found")
            if warehouse_id not in self.warehouses:
                raise bad(f"warehouse {warehouse_id} does not exist", "WHSC-070")
            level = self.stock.setdefault(pid, {})
            level[warehouse_id] = level.get(warehouse_id, 0) + delta
            if self.products[pid]["status"] == "ARCHIVED" and delta > 0:
                self.products[pid]["status"] = "LIVE"
            self.products[pid]["updatedOn"] = self.now()
            self.emit("product.modified.on-hand-modified", [pid])

    def availability(self, pid: int) -> dict[str, Any] | None:
        product = self.products.get(pid)
        if product is None or not product["stock"].get("stockTracked"):
            return None
        allocated: dict[int, int] = {}
        for note in self.goods_out.values():
            if not note["status"]["shipped"]:
                for lines in note["orderRows"].values():
                    for line in lines:
                        if line["productId"] == pid:
                            allocated[note["warehouseId"]] = (
                                allocated.get(note["warehouseId"], 0) + line["quantity"]
                            )
        warehouses: dict[str, Any] = {}
        total = {"inStock": 0, "onHand": 0, "allocated": 0, "inTransit": 0}
        for wid in sorted(set(self.stock.get(pid, {})) | set(allocated)):
            in_stock = self.stock.get(pid, {}).get(wid, 0)
            alloc = allocated.get(wid, 0)
            if in_stock == 0 and alloc == 0:
                continue
            level = {"inStock": in_stock, "onHand": in_stock - alloc, "allocated": alloc, "inTransit": 0}
            warehouses[str(wid)] = level
            for key in total:
                total[key] += level[key]
        return {"total": total, "warehouses": warehouses}

    # --- orders ----------------------------------------------------------------------------
    def _parse_rows(self, rows: Any, sign: int = 1) -> list[dict[str, Any]]:
        if not isinstance(rows, list) or not rows:
            raise bad("rows must be a non-empty list", "ORDC-020")
        parsed = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise bad(f"rows[{index}] must be an object", "ORDC-021")
            pid = row.get("productId")
            if pid is not None and pid not in self.products:
                raise bad(f"rows[{index}].productId {pid!r} does not exist", "ORDC-022")
            if pid is None and not row.get("name"):
                raise bad(f"rows[{index}] needs productId or name", "ORDC-023")
            quantity = money(row.get("quantity", "x"), f"rows[{index}].quantity")
            if quantity <= 0:
                raise bad(f"rows[{index}].quantity must be positive, got {row.get('quantity')!r}", "ORDC-024")
            product = self.products.get(pid) if pid else None
            if product and product["stock"].get("stockTracked") and quantity != quantity.to_integral_value():
                raise bad(f"rows[{index}].quantity must be whole for a stock-tracked product", "ORDC-024")
            tax_code = row.get("taxCode")
            tax = next((t for t in self.tax_codes.values() if t["code"] == tax_code), None)
            if tax is None:
                raise bad(f"rows[{index}].taxCode {tax_code!r} is not a tax code of this account", "ORDC-025")
            net = money(row.get("net", 0), f"rows[{index}].net")
            row_tax = money(row.get("tax", 0), f"rows[{index}].tax")
            parsed.append(
                {
                    "product": product,
                    "productId": pid,
                    "name": row.get("name"),
                    "quantity": quantity,
                    "tax": tax,
                    "net": net * sign,
                    "rowTax": row_tax * sign,
                    "nominalCode": str(row.get("nominalCode", "4000")),
                    "externalRef": row.get("externalRef"),
                }
            )
        return parsed

    def create_sales_order(self, body: Any, order_type: str = "SO", quiet: bool = False) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            customer = body.get("customer") or {}
            cid = customer.get("id", body.get("customerId")) if isinstance(customer, dict) else None
            if cid not in self.contacts:
                raise bad(f"customer.id {cid!r} is not an existing contact", "ORDC-010")
            ext, inst = body.get("externalRef"), body.get("installedIntegrationInstanceId")
            if ext:
                for existing in self.orders.values():
                    if (
                        existing["orderTypeCode"] == order_type
                        and existing.get("externalRef") == ext
                        and existing.get("installedIntegrationInstanceId", 0) == (inst or 0)
                    ):
                        if self.config.duplicate_external_ref == "return-existing":
                            return existing["id"]
                        raise bad(
                            f"externalRef {ext!r} is already used by order {existing['id']}", "ORDC-011"
                        )
            status_id = body.get("statusId", self.default_status[order_type])
            status = self.order_statuses.get(status_id)
            if status is None or status["orderTypeCode"] != order_type:
                raise bad(f"statusId {status_id!r} is not a {order_type} order status", "ORDC-012")
            warehouse = body.get("warehouseId", 2)
            if warehouse not in self.warehouses:
                raise bad(f"warehouseId {warehouse!r} does not exist", "ORDC-013")
            parent = body.get("parentId", 0) or 0
            if order_type == "SC" and parent and parent not in self.orders:
                raise bad(f"parentId {parent!r} is not an existing order", "ORDC-014")
            currency_code = (body.get("currency") or {}).get("code", "GBP")
            if currency_code not in {c["code"] for c in self.currencies.values()}:
                raise bad(f"currency.code {currency_code!r} is not a currency of this account", "ORDC-015")
            placed = body.get("placedOn")
            if placed is not None:
                try:
                    placed_on = datetime.fromisoformat(str(placed).replace("Z", "+00:00"))
                except ValueError as exc:
                    raise bad(f"placedOn {placed!r} is not an ISO 8601 date-time", "ORDC-016") from exc
                if placed_on.tzinfo is None:
                    raise bad("placedOn needs a time zone offset", "ORDC-016")
            else:
                placed_on = None
            rows = self._parse_rows(body.get("rows"))
            oid = self.next_id("order", 100000)
            now = self.now()
            contact = self.contacts[cid]
            address = self.addresses.get(contact["postAddressIds"].get("DEL", 0), {})
            party = {
                "contactId": cid,
                "addressFullName": " ".join(
                    filter(None, [contact.get("firstName"), contact.get("lastName")])
                ),
                "companyName": (contact.get("organisation") or {}).get("name", ""),
                "addressLine1": address.get("addressLine1", ""),
                "addressLine3": address.get("addressLine3", ""),
                "postalCode": address.get("postalCode", ""),
                "countryIsoCode": address.get("countryIsoCode2", "GB"),
                "countryIsoCode3": address.get("countryIsoCode", "GBR"),
                "countryId": address.get("countryId", 0),
                "email": ((contact["communication"]["emails"].get("PRI") or {}).get("email", "")),
                "telephone": contact["communication"]["telephones"].get("PRI", ""),
            }
            delivery_party = dict(party)
            override = (body.get("delivery") or {}).get("address")
            if isinstance(override, dict):
                delivery_party.update({k: v for k, v in override.items() if isinstance(v, str)})
                if "countryIsoCode" in override:
                    country = pycountry.countries.get(
                        alpha_3=str(override["countryIsoCode"]).upper()
                    ) or pycountry.countries.get(alpha_2=str(override["countryIsoCode"]).upper())
                    if country is None:
                        raise bad(
                            f"delivery.address.countryIsoCode {override['countryIsoCode']!r} is unknown",
                            "ORDC-017",
                        )
                    delivery_party.update(countryIsoCode=country.alpha_2, countryIsoCode3=country.alpha_3)
            order_rows: dict[str, Any] = {}
            for seq, row in enumerate(rows, start=1):
                rid = self.next_id("row", 1)
                product = row["product"]
                price = (row["net"] / row["quantity"]) if row["quantity"] else Decimal(0)
                order_rows[str(rid)] = {
                    "orderRowSequence": str(seq * 10),
                    "productId": row["productId"] or 0,
                    "productName": row["name"]
                    or (product["salesChannels"][0].get("productName") if product else ""),
                    "productSku": (product or {}).get("identity", {}).get("sku", ""),
                    "quantity": {"magnitude": fmt(row["quantity"])},
                    "itemCost": {"currencyCode": currency_code, "value": "0.0000"},
                    "productPrice": {"currencyCode": currency_code, "value": fmt(price)},
                    "discountPercentage": "0.00",
                    "rowValue": {
                        "taxRate": fmt(Decimal(row["tax"]["rate"])),
                        "taxCode": row["tax"]["code"],
                        "taxClassId": row["tax"]["id"],
                        "taxCalculator": "brightpearl",
                        "rowNet": {"value": fmt(row["net"])},
                        "rowTax": {"value": fmt(row["rowTax"], 2)},
                    },
                    "nominalCode": row["nominalCode"],
                    "composition": {"bundleParent": False, "bundleChild": False, "parentOrderRowId": 0},
                    "_stockTracked": bool(product and product["stock"].get("stockTracked")),
                }
                if row["externalRef"]:
                    order_rows[str(rid)]["externalRef"] = row["externalRef"]
            record = {
                "id": oid,
                "parentOrderId": parent,
                "orderTypeCode": order_type,
                "reference": body.get("ref", ""),
                "externalRef": ext or "",
                "installedIntegrationInstanceId": inst or 0,
                "orderStatus": {"orderStatusId": status_id, "name": status["name"]},
                "placedOn": placed_on or now,
                "createdOn": now,
                "updatedOn": now,
                "createdById": 4,
                "priceListId": body.get("priceListId", contact["financialDetails"]["priceListId"]),
                "priceModeCode": body.get("priceModeCode", "EXC"),
                "currency": {
                    "orderCurrencyCode": currency_code,
                    "exchangeRate": "1.000000",
                    "fixedExchangeRate": True,
                },
                "assignment": {
                    "current": {
                        "channelId": body.get("channelId", 1),
                        "leadSourceId": 0,
                        "staffOwnerContactId": body.get("staffOwnerId", 0),
                        "projectId": 0,
                        "teamId": 0,
                    }
                },
                "parties": {"customer": party, "delivery": delivery_party, "billing": dict(party)},
                "delivery": {
                    "deliveryDate": now,
                    "shippingMethodId": (body.get("delivery") or {}).get("shippingMethodId", 0),
                },
                "invoices": [],
                "orderRows": order_rows,
                "warehouseId": warehouse,
                "historicalOrder": False,
                "isDropship": False,
            }
            self.orders[oid] = record
            self.order_notes[oid] = []
            self._derive_order(record)
            if not quiet:
                self.emit("sales-order.created" if order_type == "SO" else "sales-credit.created", [oid])
                self.emit("order.created", [oid])
                self.emit("order.modified", [oid])
            return oid

    def _derive_order(self, order: dict[str, Any]) -> None:
        net = sum(
            (Decimal(r["rowValue"]["rowNet"]["value"]) for r in order["orderRows"].values()), Decimal(0)
        )
        tax = sum(
            (Decimal(r["rowValue"]["rowTax"]["value"]) for r in order["orderRows"].values()), Decimal(0)
        )
        order["totalValue"] = {
            "net": fmt(net, 2),
            "taxAmount": fmt(tax, 2),
            "baseNet": fmt(net, 2),
            "baseTaxAmount": fmt(tax, 2),
            "baseTotal": fmt(net + tax, 2),
            "total": fmt(net + tax, 2),
        }
        tracked = {
            rid: Decimal(r["quantity"]["magnitude"])
            for rid, r in order["orderRows"].items()
            if r["_stockTracked"]
        }
        noted: dict[str, Decimal] = {}
        shipped: dict[str, Decimal] = {}
        for note in self.goods_out.values():
            if note["orderId"] != order["id"]:
                continue
            for rid, lines in note["orderRows"].items():
                qty = sum((Decimal(line["quantity"]) for line in lines), Decimal(0))
                noted[rid] = noted.get(rid, Decimal(0)) + qty
                if note["status"]["shipped"]:
                    shipped[rid] = shipped.get(rid, Decimal(0)) + qty
        prefix = order["orderTypeCode"]
        if not tracked:
            order["stockStatusCode"], order["allocationStatusCode"], order["shippingStatusCode"] = (
                "NON",
                "ANR",
                "NST",
            )
        else:

            def level(done: dict[str, Decimal]) -> str:
                if all(done.get(r, 0) >= q for r, q in tracked.items()):
                    return "A"
                return "P" if any(done.get(r, 0) > 0 for r in tracked) else "N"

            noted_level, shipped_level = level(noted), level(shipped)
            order["stockStatusCode"] = f"{prefix}{noted_level}"
            order["allocationStatusCode"] = {"A": "AAA", "P": "APA", "N": "ANA"}[noted_level]
            order["shippingStatusCode"] = {"A": "ASS", "P": "SPS", "N": "SNS"}[shipped_level]
        paid = sum(
            (
                Decimal(p["amountPaid"])
                for p in self.payments.values()
                if p["orderId"] == order["id"] and p["paymentType"] in ("RECEIPT", "CAPTURE", "PAYMENT")
            ),
            Decimal(0),
        )
        total = net + tax
        order["orderPaymentStatus"] = (
            "NOT_APPLICABLE"
            if total == 0
            else "PAID"
            if paid >= total
            else "PARTIALLY_PAID"
            if paid > 0
            else "UNPAID"
        )

    def order(self, oid: int) -> dict[str, Any]:
        record = self.orders.get(oid)
        if record is None:
            raise ApiError(404, "CMNC-404", f"Order {oid} not found")
        return record

    def _touch_order(self, order: dict[str, Any], *events: str) -> None:
        order["updatedOn"] = self.now()
        self._derive_order(order)
        for event in events or ("order.modified",):
            self.emit(event, [order["id"]])

    def add_row(self, oid: int, body: Any) -> int:
        with self.lock:
            order = self.order(oid)
            if order["invoices"]:
                raise bad("rows cannot be added once the order is invoiced", "ORDC-030")
            if not isinstance(body, dict):
                raise bad("A JSON body is required", "CMNC-010")
            flat = {
                "productId": body.get("productId"),
                "name": body.get("productName"),
                "quantity": body.get(
                    "magnitude",
                    (body.get("quantity") or {}).get("magnitude")
                    if isinstance(body.get("quantity"), dict)
                    else body.get("quantity"),
                ),
                "taxCode": body.get("taxCode"),
                "net": body.get("rowNet", 0)
                if not isinstance(body.get("rowNet"), dict)
                else body["rowNet"].get("value"),
                "tax": body.get("rowTax", 0)
                if not isinstance(body.get("rowTax"), dict)
                else body["rowTax"].get("value"),
            }
            before = set(order["orderRows"])
            row = self._parse_rows([flat])[0]
            rid = self.next_id("row", 1)
            product = row["product"]
            order["orderRows"][str(rid)] = {
                "orderRowSequence": str((len(before) + 1) * 10),
                "productId": row["productId"] or 0,
                "productName": row["name"]
                or (product["salesChannels"][0].get("productName") if product else ""),
                "productSku": (product or {}).get("identity", {}).get("sku", ""),
                "quantity": {"magnitude": fmt(row["quantity"])},
                "productPrice": {
                    "currencyCode": order["currency"]["orderCurrencyCode"],
                    "value": fmt(row["net"] / row["quantity"]),
                },
                "discountPercentage": "0.00",
                "rowValue": {
                    "taxRate": fmt(Decimal(row["tax"]["rate"])),
                    "taxCode": row["tax"]["code"],
                    "taxClassId": row["tax"]["id"],
                    "taxCalculator": "brightpearl",
                    "rowNet": {"value": fmt(row["net"])},
                    "rowTax": {"value": fmt(row["rowTax"], 2)},
                },
                "nominalCode": row["nominalCode"],
                "composition": {"bundleParent": False, "bundleChild": False, "parentOrderRowId": 0},
                "_stockTracked": bool(product and product["stock"].get("stockTracked")),
            }
            self._touch_order(order)
            return rid

    def patch_row(self, oid: int, row_id: int, ops: Any) -> dict[str, Any]:
        """Row PATCH (reference §6.5): a few paths, never once the order is invoiced."""
        allowed = {
            "/quantity/magnitude",
            "/rowValue/rowNet/value",
            "/rowValue/rowTax/value",
            "/nominalCode",
            "/rowValue/taxCalculator",
            "/orderRowSequence",
        }
        with self.lock:
            order = self.order(oid)
            row = order["orderRows"].get(str(row_id))
            if row is None:
                raise ApiError(404, "CMNC-404", f"Order row {row_id} not found on order {oid}")
            if order["invoices"]:
                raise bad("rows cannot be changed once the order is invoiced", "ORDC-031")
            if not isinstance(ops, list) or not ops:
                raise bad("PATCH body must be a non-empty JSON Patch array", "CMNC-010")
            work = _deep_copy(row)
            for index, op in enumerate(ops):
                path = op.get("path") if isinstance(op, dict) else None
                if path not in allowed:
                    raise bad(f"path {path!r} cannot be patched on an order row", "ORDC-032")
                if op.get("op") not in ("replace", "test") or (
                    path == "/rowValue/taxCalculator" and op.get("op") != "replace"
                ):
                    raise bad(f"operation {op.get('op')!r} is not allowed on {path}", "ORDC-033")
                value = op.get("value")
                if path == "/quantity/magnitude":
                    quantity = money(value, "quantity.magnitude")
                    if quantity <= 0 or (row["_stockTracked"] and quantity != quantity.to_integral_value()):
                        raise bad(f"quantity {value!r} is not a valid quantity for this row", "ORDC-024")
                    noted = sum(
                        (
                            Decimal(line["quantity"])
                            for n in self.goods_out.values()
                            if n["orderId"] == oid
                            for line in n["orderRows"].get(str(row_id), [])
                        ),
                        Decimal(0),
                    )
                    if quantity < noted:
                        raise bad(
                            f"quantity cannot drop below the {noted} already on goods-out notes", "ORDC-034"
                        )
                    value = fmt(quantity)
                elif path in ("/rowValue/rowNet/value", "/rowValue/rowTax/value"):
                    value = fmt(money(value, path[1:].replace("/", ".")))
                elif path == "/rowValue/taxCalculator" and value not in ("brightpearl", "manual", "avalara"):
                    raise bad("taxCalculator must be brightpearl, manual or avalara", "ORDC-035")
                _apply_patch(work, dict(op, value=value), index)
            order["orderRows"][str(row_id)] = work
            self._touch_order(order)
            return {k: v for k, v in work.items() if not k.startswith("_")}

    def set_order_status(self, oid: int, body: Any) -> None:
        with self.lock:
            order = self.order(oid)
            sid = body.get("orderStatusId") if isinstance(body, dict) else None
            status = self.order_statuses.get(sid)
            if status is None:
                raise bad(f"orderStatusId {sid!r} does not exist", "ORDC-040")
            if status["orderTypeCode"] != order["orderTypeCode"]:
                raise bad(
                    f"status {sid} belongs to {status['orderTypeCode']} orders, not {order['orderTypeCode']}",
                    "ORDC-041",
                )
            if not status["visible"]:
                raise bad(f"status {sid} is hidden", "ORDC-042")
            if sid == self.cancelled_status:
                if any(n["orderId"] == oid for n in self.goods_out.values()):
                    raise bad("an order with goods-out notes cannot be cancelled", "ORDC-043")
                if order["orderStatus"]["orderStatusId"] == self.invoiced_status or order["invoices"]:
                    raise bad("an invoiced order cannot be cancelled", "ORDC-044")
                if any(p["orderId"] == oid and Decimal(p["amountPaid"]) != 0 for p in self.payments.values()):
                    raise bad("an order with payments cannot be cancelled", "ORDC-045")
            note = body.get("orderNote") or {}
            order["orderStatus"] = {"orderStatusId": sid, "name": status["name"]}
            if sid == self.invoiced_status and not order["invoices"]:
                order["invoices"] = [
                    {"invoiceReference": f"SI-{oid}", "taxDate": self.now(), "dueDate": self.now()}
                ]
            self._add_note(
                oid,
                {
                    "text": note.get("text") or f"Order status changed to {status['name']}",
                    "isPublic": bool(note.get("isPublic", False)),
                },
            )
            self._touch_order(order, "order.modified.order-status", "order.modified")

    def _add_note(self, oid: int, body: dict[str, Any]) -> int:
        nid = self.next_id("note")
        self.order_notes.setdefault(oid, []).append(
            {
                "id": nid,
                "orderId": oid,
                "text": body["text"],
                "isPublic": bool(body.get("isPublic", False)),
                "fileId": body.get("fileId", 0),
                "addedOn": self.now(),
                "addedBy": 4,
            }
        )
        return nid

    def add_note(self, oid: int, body: Any) -> int:
        with self.lock:
            order = self.order(oid)
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("text"), str)
                or not body["text"].strip()
            ):
                raise bad("text is required", "ORDC-050")
            nid = self._add_note(oid, body)
            self._touch_order(order)
            return nid

    def render_custom_fields(self, oid: int) -> dict[str, Any]:
        out = {}
        for code, value in self.order_custom_fields.get(oid, {}).items():
            meta = self.order_custom_field_meta[code]
            if meta["customFieldType"] == "SELECT":
                out[code] = dict(meta["options"][str(value)])
            else:
                out[code] = value
        return out

    def patch_order_custom_fields(self, oid: int, ops: Any) -> dict[str, Any]:
        with self.lock:
            order = self.order(oid)
            if not isinstance(ops, list) or not ops:
                raise bad("PATCH body must be a non-empty JSON Patch array", "CMNC-010")
            fields = dict(self.order_custom_fields.get(oid, {}))
            for op in ops:
                parts = str(op.get("path", "")).strip("/").split("/")
                code = parts[0]
                meta = self.order_custom_field_meta.get(code)
                if meta is None:
                    raise bad(f"custom field {code!r} does not exist", "ORDC-060")
                if op.get("op") == "remove":
                    fields.pop(code, None)
                    continue
                if op.get("op") not in ("add", "replace"):
                    raise bad(f"operation {op.get('op')!r} is not supported on custom fields", "ORDC-061")
                value = op.get("value")
                kind = meta["customFieldType"]
                if kind == "SELECT":
                    option = (
                        value
                        if len(parts) > 1 and parts[1] == "id"
                        else (value.get("id") if isinstance(value, dict) else None)
                    )
                    if str(option) not in meta["options"]:
                        raise bad(f"{code}: option {option!r} does not exist", "ORDC-062")
                    fields[code] = int(option)  # type: ignore[arg-type]
                elif kind == "YES_NO":
                    if not isinstance(value, bool):
                        raise bad(f"{code} must be true or false", "ORDC-063")
                    fields[code] = value
                else:
                    if not isinstance(value, str):
                        raise bad(f"{code} must be text", "ORDC-064")
                    fields[code] = value
            self.order_custom_fields[oid] = fields
            self._touch_order(order)
            return self.render_custom_fields(oid)

    # --- goods-out notes -------------------------------------------------------------------
    def create_goods_out(self, oid: int, body: Any) -> list[int]:
        with self.lock:
            order = self.order(oid)
            if order["orderTypeCode"] != "SO":
                raise bad("goods-out notes are for sales orders", "WHSB-030")
            whs = body.get("warehouses") if isinstance(body, dict) else None
            if not isinstance(whs, list) or not whs:
                raise bad("warehouses must be a non-empty list", "WHSB-031")
            already: dict[str, Decimal] = {}
            for note in self.goods_out.values():
                if note["orderId"] == oid:
                    for rid, lines in note["orderRows"].items():
                        already[rid] = already.get(rid, Decimal(0)) + sum(
                            Decimal(x["quantity"]) for x in lines
                        )
            planned = dict(already)
            for wi, wh in enumerate(whs):
                if wh.get("warehouseId") not in self.warehouses:
                    raise bad(
                        f"warehouses[{wi}].warehouseId {wh.get('warehouseId')!r} does not exist", "WHSB-032"
                    )
                products = wh.get("products")
                if not isinstance(products, list) or not products:
                    raise bad(f"warehouses[{wi}].products must be a non-empty list", "WHSB-033")
                for pi, line in enumerate(products):
                    rid = str(line.get("salesOrderRowId"))
                    row = order["orderRows"].get(rid)
                    if row is None or row["productId"] != line.get("productId"):
                        raise bad(
                            f"warehouses[{wi}].products[{pi}]: row {rid} of product "
                            f"{line.get('productId')!r} is not on order {oid}",
                            "WHSB-034",
                        )
                    qty = line.get("quantity")
                    if not isinstance(qty, int) or qty <= 0:
                        raise bad(
                            f"warehouses[{wi}].products[{pi}].quantity must be a positive integer", "WHSB-035"
                        )
                    planned[rid] = planned.get(rid, Decimal(0)) + qty
                    if planned[rid] > Decimal(row["quantity"]["magnitude"]):
                        raise bad(
                            f"row {rid} would be over-fulfilled ({planned[rid]} > "
                            f"{Decimal(row['quantity']['magnitude'])})",
                            "WHSB-038",
                        )
            ids = []
            for wh in whs:
                nid = self.next_id("gon", 1)
                now = self.now()
                rows: dict[str, list[dict[str, Any]]] = {}
                for line in wh["products"]:
                    rows.setdefault(str(line["salesOrderRowId"]), []).append(
                        {
                            "productId": line["productId"],
                            "quantity": line["quantity"],
                            "locationId": 2,
                            "externalRef": line.get("externalRef", ""),
                        }
                    )
                self.goods_out[nid] = {
                    "orderId": oid,
                    "warehouseId": wh["warehouseId"],
                    "targetWarehouseId": 0,
                    "transfer": bool(wh.get("transfer", False)),
                    "priority": bool(body.get("priority", False)),
                    "externalRef": wh.get("externalRef", ""),
                    "sequence": len(ids) + 1,
                    "createdOn": now,
                    "createdBy": 4,
                    "releaseDate": wh.get("releaseDate") or now,
                    "labelUri": "",
                    "lastEventVersion": 0,
                    "status": {"printed": False, "picked": False, "packed": False, "shipped": False},
                    "shipping": {
                        "shippingMethodId": body.get("shippingMethodId", 0),
                        "reference": "",
                        "boxes": 0,
                        "weight": "0.000",
                    },
                    "orderRows": rows,
                    "events": [],
                    "updatedOn": now,
                }
                ids.append(nid)
                self.emit("goods-out-note.created", [nid])
            self._touch_order(order)
            for pid in {line["productId"] for wh in whs for line in wh["products"]}:
                self.emit("product.modified.on-hand-modified", [pid])
            return ids

    def update_goods_out(self, nid: int, body: Any) -> None:
        with self.lock:
            note = self.goods_out.get(nid)
            if note is None:
                raise ApiError(404, "CMNC-404", f"Goods-out note {nid} not found")
            if not isinstance(body, dict):
                raise bad("A JSON body is required", "CMNC-010")
            if "priority" in body:
                note["priority"] = bool(body["priority"])
            shipping = body.get("shipping") or {}
            for key in ("shippingMethodId", "reference", "boxes", "weight"):
                if key in shipping:
                    note["shipping"][key] = shipping[key]
            if "labelUri" in body:
                note["labelUri"] = body["labelUri"]
            note["updatedOn"] = self.now()
            self.emit("goods-out-note.modified", [nid])

    def goods_out_events(self, nid: int, body: Any, if_match: str | None) -> None:
        codes = {
            "PRI": ("printed", True),
            "UPR": ("printed", False),
            "PIC": ("picked", True),
            "UPI": ("picked", False),
            "PAC": ("packed", True),
            "UPA": ("packed", False),
            "SHW": ("shipped", True),
        }
        names = {
            "PRI": "printed",
            "UPR": "un-printed",
            "PIC": "picked",
            "UPI": "un-picked",
            "PAC": "packed",
            "UPA": "un-packed",
            "SHW": "shipped",
        }
        with self.lock:
            note = self.goods_out.get(nid)
            if note is None:
                raise ApiError(404, "CMNC-404", f"Goods-out note {nid} not found")
            if if_match is not None and if_match.strip('"') != str(note["lastEventVersion"]):
                raise ApiError(
                    412, "WHSB-412", f"lastEventVersion is {note['lastEventVersion']}, not {if_match}"
                )
            events = body.get("events") if isinstance(body, dict) else None
            if not isinstance(events, list) or not events:
                raise bad("events must be a non-empty list", "WHSB-040")
            for i, event in enumerate(events):
                if event.get("eventCode") not in codes:
                    raise bad(
                        f"events[{i}].eventCode {event.get('eventCode')!r} is not one of {sorted(codes)}",
                        "WHSB-041",
                    )
                if not event.get("occured"):
                    raise bad(f"events[{i}].occured is required", "WHSB-042")
                if not isinstance(event.get("eventOwnerId"), int):
                    raise bad(f"events[{i}].eventOwnerId must be a contact id", "WHSB-043")
            if note["status"]["shipped"]:
                raise bad("the note is shipped; no more events can be added", "WHSB-044")
            fired = []
            for event in events:
                code = event["eventCode"]
                if code == "SHW":
                    for earlier in ("PRI", "PIC", "PAC"):
                        field = codes[earlier][0]
                        if not note["status"][field]:
                            note["status"][field] = True
                            note["status"][f"{field}On"] = self.now()
                            note["events"].append(
                                {
                                    "eventCode": earlier,
                                    "occured": event["occured"],
                                    "eventOwnerId": event["eventOwnerId"],
                                }
                            )
                field, value = codes[code]
                note["status"][field] = value
                if value:
                    note["status"][f"{field}On"] = self.now()
                    note["status"][f"{field}ById"] = event["eventOwnerId"]
                note["events"].append(
                    {"eventCode": code, "occured": event["occured"], "eventOwnerId": event["eventOwnerId"]}
                )
                note["lastEventVersion"] += 1
                fired.append(names[code])
            note["updatedOn"] = self.now()
            for name in fired:
                self.emit(f"goods-out-note.modified.{name}", [nid])
            if note["status"]["shipped"]:
                for lines in note["orderRows"].values():
                    for line in lines:
                        level = self.stock.setdefault(line["productId"], {})
                        level[note["warehouseId"]] = level.get(note["warehouseId"], 0) - line["quantity"]
                        self.emit("product.modified.on-hand-modified", [line["productId"]])
                order = self.orders.get(note["orderId"])
                if order is not None:
                    before = order.get("shippingStatusCode")
                    self._touch_order(order)
                    if order["shippingStatusCode"] == "ASS" and before != "ASS":
                        self.emit("order.modified.fully-shipped", [order["id"]])

    # --- accounting ------------------------------------------------------------------------
    def create_payment(self, body: Any) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            for key in ("paymentMethodCode", "paymentType", "orderId", "currencyIsoCode", "paymentDate"):
                if body.get(key) in (None, ""):
                    raise bad(f"{key} is required", "ACCC-001")
            if body["paymentType"] not in ("AUTH", "CAPTURE", "PAYMENT", "RECEIPT", "VOID"):
                raise bad(
                    f"paymentType {body['paymentType']!r} must be AUTH, CAPTURE, PAYMENT, RECEIPT or VOID",
                    "ACCC-002",
                )
            if body["paymentMethodCode"] not in self.payment_methods:
                raise bad(
                    f"paymentMethodCode {body['paymentMethodCode']!r} is not a payment method", "ACCC-003"
                )
            order = self.orders.get(body["orderId"])
            if order is None:
                raise bad(f"orderId {body['orderId']!r} does not exist", "ACCC-004")
            if body["currencyIsoCode"] != order["currency"]["orderCurrencyCode"]:
                raise bad(
                    f"currencyIsoCode {body['currencyIsoCode']!r} differs from the order's currency",
                    "ACCC-005",
                )
            ref = body.get("transactionRef")
            if ref and any(
                p.get("transactionRef") == ref and p["paymentMethodCode"] == body["paymentMethodCode"]
                for p in self.payments.values()
            ):
                raise bad(
                    f"transactionRef {ref!r} is already used with {body['paymentMethodCode']}", "ACCC-006"
                )
            paid = money(body.get("amountPaid", 0), "amountPaid", 2)
            pid = self.next_id("payment")
            self.payments[pid] = {
                "paymentId": pid,
                "transactionRef": ref or "",
                "transactionCode": body.get("transactionCode", ""),
                "paymentMethodCode": body["paymentMethodCode"],
                "paymentType": body["paymentType"],
                "orderId": order["id"],
                "currencyId": next(
                    c["id"] for c in self.currencies.values() if c["code"] == body["currencyIsoCode"]
                ),
                "currencyCode": body["currencyIsoCode"],
                "amountAuthorized": fmt(money(body.get("amountAuthorized", 0), "amountAuthorized", 2), 2),
                "amountPaid": fmt(paid, 2),
                "paymentDate": body["paymentDate"],
                "createdOn": self.now(),
                "journalId": body.get("journalId", 0),
                "expires": body.get("authorizationExpiry", ""),
            }
            self._touch_order(order)
            return pid

    def create_journal(self, body: Any) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            if not body.get("journalTypeCode"):
                raise bad("journalTypeCode is required", "ACCJ-001")
            tax_date = body.get("taxDate") or body.get("journalDate")
            try:
                day = datetime.strptime(str(tax_date), "%Y-%m-%d").date()
            except ValueError as exc:
                raise bad(f"taxDate {tax_date!r} must be yyyy-mm-dd", "ACCJ-002") from exc
            if day < self.open_period_start:
                raise bad(f"taxDate {tax_date} is in a closed accounting period", "ACCJ-003")
            totals = []
            for side in ("credits", "debits"):
                lines = body.get(side)
                if not isinstance(lines, list) or not lines:
                    raise bad(f"{side} must be a non-empty list", "ACCJ-004")
                total = Decimal(0)
                for i, line in enumerate(lines):
                    if not str(line.get("nominalCode", "")).isdigit():
                        raise bad(f"{side}[{i}].nominalCode must be an existing nominal code", "ACCJ-005")
                    total += money(
                        (line.get("change") or {}).get("value", "x"), f"{side}[{i}].change.value", 2
                    )
                totals.append(total)
            if totals[0] != totals[1]:
                raise bad(f"credits ({totals[0]}) and debits ({totals[1]}) do not balance", "ACCJ-006")
            jid = self.next_id("journal")
            self.journals[jid] = {
                "id": jid,
                "contactId": body.get("contactId", 0),
                "journalTypeCode": body["journalTypeCode"],
                "taxDate": str(day),
                "description": body.get("description", ""),
                "createdOn": self.now(),
                "createdByContactId": 4,
                "credits": body["credits"],
                "debits": body["debits"],
                "currencyId": body.get("currencyId", 1),
                "exchangeRate": body.get("exchangeRate", "1.000000"),
            }
            return jid

    # --- webhooks ----------------------------------------------------------------------------
    def create_webhook(self, body: Any) -> int:
        import re

        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            event = body.get("subscribeTo")
            if not isinstance(event, str) or not re.fullmatch(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+){0,2}", event):
                raise bad(f"subscribeTo {event!r} is not an event name", "INTW-001")
            if event.startswith("contact") and not self.config.contact_webhooks:
                raise bad(f"subscribeTo {event!r}: contact events cannot be subscribed to", "INTW-002")
            if event == "order.created" and not self.config.order_created_webhooks:
                raise bad("subscribeTo 'order.created' cannot be subscribed to", "INTW-002")
            method = body.get("httpMethod")
            if method not in ("GET", "POST", "PUT", "DELETE"):
                raise bad(f"httpMethod {method!r} must be GET, POST, PUT or DELETE", "INTW-003")
            uri = body.get("uriTemplate")
            if not isinstance(uri, str) or not re.match(r"https?://", uri):
                raise bad("uriTemplate must be an http(s) URL", "INTW-004")
            if method in ("POST", "PUT") and (not body.get("bodyTemplate") or not body.get("contentType")):
                raise bad("bodyTemplate and contentType are required for POST and PUT", "INTW-005")
            qos = body.get("qualityOfService", 0)
            if qos not in (0, 1):
                raise bad("qualityOfService must be 0 or 1", "INTW-006")
            wid = self.next_id("webhook")
            record = {
                "id": wid,
                "subscribeTo": event,
                "httpMethod": method,
                "uriTemplate": uri,
                "idSetAccepted": bool(body.get("idSetAccepted", False)),
                "qualityOfService": qos,
            }
            if method in ("POST", "PUT"):
                record.update(bodyTemplate=body["bodyTemplate"], contentType=body["contentType"])
            self.webhooks[wid] = record
            return wid


def _emails(value: Any) -> dict[str, dict[str, str]]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise bad("emails must map PRI/SEC/TER to addresses", "CNTC-103")
    out = {}
    for code, item in value.items():
        if code not in ("PRI", "SEC", "TER"):
            raise bad(f"emails key {code!r} must be PRI, SEC or TER", "CNTC-103")
        email = item.get("email") if isinstance(item, dict) else item
        if not isinstance(email, str):
            raise bad(f"emails.{code} must be an e-mail address", "CNTC-103")
        out[code] = {"email": email}
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    if isinstance(value, set):
        return set(value)
    return value


def _pointer(doc: dict[str, Any], path: str, create: bool) -> tuple[dict[str, Any], str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.strip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            if not create:
                raise bad(f"path {path} does not exist", "CMNC-012")
            node[part] = {}
        node = node[part]
    return node, parts[-1]


def _apply_patch(doc: dict[str, Any], op: dict[str, Any], index: int) -> None:
    kind = op["op"]
    if kind in ("add", "replace"):
        if "value" not in op:
            raise bad(f"patch operation {index} ({kind}) needs a value", "CMNC-011")
        node, key = _pointer(doc, op["path"], create=True)
        if kind == "replace" and key not in node:
            raise bad(f"patch operation {index}: {op['path']} does not exist, use add", "CMNC-012")
        node[key] = op["value"]
    elif kind == "remove":
        node, key = _pointer(doc, op["path"], create=False)
        if key not in node:
            raise bad(f"patch operation {index}: {op['path']} does not exist", "CMNC-012")
        del node[key]
    elif kind == "test":
        node, key = _pointer(doc, op["path"], create=False)
        if node.get(key) != op.get("value"):
            raise bad(f"patch test failed: {op['path']} is not {op.get('value')!r}", "CMNC-013")
    elif kind in ("move", "copy"):
        src, skey = _pointer(doc, op.get("from", ""), create=False)
        if skey not in src:
            raise bad(f"patch operation {index}: {op.get('from')} does not exist", "CMNC-012")
        value = src[skey] if kind == "copy" else src.pop(skey)
        node, key = _pointer(doc, op["path"], create=True)
        node[key] = _deep_copy(value)
    else:
        raise bad(f"patch operation {index}: unknown op {kind!r}", "CMNC-011")
