"""Products, their prices per price list, and stock levels per warehouse (product-service
writes, availability, and product.* events; stock corrections are in `warehouse.py`).

Reference §7 and §8.1. Every change of a product record (create, PUT, identity, prices,
status) moves its `updatedOn` (strictly increasing) and its `version` (epoch ms, §14), so
`product-search?updatedOn=` finds it. A stock movement does not: stock has no `updatedOn`
(issue 12; the reference is silent), it raises `product.modified.on-hand-modified` and a
goods movement instead. A product can be archived (status `ARCHIVED`) and destroyed (gone,
`product.destroyed`) only through the admin surface: the reference documents no API for
either.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.amounts import fmt, money
from sandbox.brightpearl.records.core import StateCore, existing

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


# Variation options (§7.2: option and value must exist, the value must belong to the option).
OPTIONS: dict[int, tuple[str, dict[int, str]]] = {
    1: ("Colour", {1: "Red", 2: "Blue", 3: "Green", 4: "Black", 5: "Natural"}),
    2: ("Size", {6: "S", 7: "M", 8: "L", 9: "XL"}),
    3: ("Material", {10: "Cotton", 11: "Linen", 12: "Wool"}),
}
MAX_GROUP_OPTIONS = 4  # at most 4 options per product group (§7.2)
STATUSES = ("LIVE", "ARCHIVED")
CURRENCIES = {"GBP": ("£", 1), "EUR": ("€", 2)}  # the account's currencies: symbol, currencyId


def _price_list(
    list_id: int, code: str, name: str, currency: str, type_code: str, *, gross: bool
) -> dict[str, Any]:
    """A price list as price-list GET answers it (a BUY list is the cost price)."""
    symbol, currency_id = CURRENCIES[currency]
    return {
        "id": list_id,
        "code": code,
        "name": {"languageCode": "EN", "text": name, "format": "PLAINTEXT"},
        "currencyCode": currency,
        "currencySymbol": symbol,
        "currencyId": currency_id,
        "priceListTypeCode": type_code,
        "gross": gross,
    }


class ProductStore(StateCore):
    products: dict[int, dict[str, Any]]
    prices: dict[int, dict[int, dict[str, str]]]
    stock: dict[int, dict[int, int]]
    price_lists: dict[int, dict[str, Any]]
    brands: dict[int, str]
    product_custom_field_meta: dict[str, dict[str, Any]]  # custom-field-meta-data by code (§7.2)
    product_custom_fields: dict[int, dict[str, Any]]  # product id -> {PCF code: value as read}
    warehouses: dict[int, dict[str, Any]]  # read: stock is kept per warehouse
    goods_out: dict[int, dict[str, Any]]  # read: unshipped notes allocate stock
    reserved_units: Callable[[int], dict[int, int]]  # read: reservations allocate stock too
    # provided by WarehouseStore: a stock correction (validated, recorded as a goods movement)
    correct_stock: Callable[..., list[int]]

    def _reset_products(self) -> None:
        self.products = {}
        self.prices = {}
        self.stock = {}
        self.price_lists = {
            1: _price_list(1, "COST", "Cost price", "GBP", "BUY", gross=False),
            2: _price_list(2, "RETAIL", "Retail GBP", "GBP", "SELL", gross=True),
            3: _price_list(3, "TRADE", "Trade GBP", "GBP", "SELL", gross=False),
            4: _price_list(4, "RETAIL-EUR", "Retail EUR", "EUR", "SELL", gross=True),
        }
        self.brands = {1: "House Brand", 2: "Acme"}
        self.product_custom_field_meta = {}
        self.product_custom_fields = {}

    def _seed_products(self, count: int) -> list[int]:
        fake, rng = self.faker, self.rng
        created: list[int] = []
        for _ in range(count):
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
            created.append(pid)
        return created

    def create_product(self, body: Any, quiet: bool = False) -> int:
        with self.lock:
            self._validate_product(body, partial=False)
            channels = body.get("salesChannels") or [
                {"salesChannelName": "Brightpearl", "productName": body.get("productName")}
            ]
            name = channels[0].get("productName")
            group = self._group_of(name)
            variations = self._variations(body.get("variations"), group)
            pid = self.next_id("product", 1000)
            now = self.now()
            if name is None:
                channels[0]["productName"] = name = f"Product {pid}"
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
                "variations": variations,
                "status": "LIVE",
                "nominalCodeSales": "4000",
                "createdOn": now,
                "updatedOn": now,
                "version": int(now.timestamp() * 1000),
            }
            for other in group:  # same name joins a product group (§7.2)
                other["productGroupId"] = other["productGroupId"] or group[0]["id"]
                record["productGroupId"] = other["productGroupId"]
            self.products[pid] = record
            if record["stock"].get("stockTracked"):
                self.stock.setdefault(pid, {})
            if not quiet:
                self.emit("product.created", [pid])
            return pid

    def _group_of(self, name: Any) -> list[dict[str, Any]]:
        """The products a new product named `name` groups with (same name, §7.2)."""
        return [p for p in self.products.values() if p["salesChannels"][0].get("productName") == name]

    def _variations(self, raw: Any, group: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validated `variations` of a new product in `group` (rules of §7.2)."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad("variations must be a list of {optionId, optionValueId}", "PRDC-050")
        out: list[dict[str, Any]] = []
        for i, item in enumerate(raw):
            option = OPTIONS.get(item.get("optionId")) if isinstance(item, dict) else None
            if option is None:
                raise bad(f"variations[{i}].optionId does not name an option", "PRDC-051")
            value = option[1].get(item.get("optionValueId"))
            if value is None:
                raise bad(
                    f"variations[{i}].optionValueId {item.get('optionValueId')!r} is not a value of "
                    f"option {item['optionId']} ({option[0]})",
                    "PRDC-052",
                )
            out.append(
                {
                    "optionId": item["optionId"],
                    "optionName": option[0],
                    "optionValueId": item["optionValueId"],
                    "optionValue": value,
                }
            )
        if len({v["optionId"] for v in out}) != len(out):
            raise bad("variations name an option more than once", "PRDC-053")
        used = {v["optionId"] for p in group for v in p["variations"]} | {v["optionId"] for v in out}
        if len(used) > MAX_GROUP_OPTIONS:
            raise bad(f"a product group allows at most {MAX_GROUP_OPTIONS} options", "PRDC-054")
        combination = {(v["optionId"], v["optionValueId"]) for v in out}
        if out and any(
            {(v["optionId"], v["optionValueId"]) for v in p["variations"]} == combination for p in group
        ):
            raise bad("this option/value combination already exists in the product group", "PRDC-055")
        return out

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

    def product(self, pid: int) -> dict[str, Any]:
        return existing(self.products, pid, f"Product {pid} not found")

    def touch_product(self, pid: int, event: str | None = "product.modified") -> None:
        """A change of product `pid`: new `updatedOn` and `version`, and its event."""
        record = self.products[pid]
        record["updatedOn"] = self.now()
        record["version"] = max(record["version"] + 1, int(record["updatedOn"].timestamp() * 1000))
        if event:
            self.emit(event, [pid])

    def update_product(self, pid: int, body: Any, if_match: str | None) -> None:
        with self.lock:
            record = self.product(pid)
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
                if record["stock"].get("stockTracked"):
                    self.stock.setdefault(pid, {})
            self.touch_product(pid)

    def set_product_status(self, pid: int, status: str) -> None:
        """Archive (`ARCHIVED`) or bring back (`LIVE`) a product, as a Brightpearl user does."""
        if status not in STATUSES:
            raise bad(f"status {status!r} must be one of {', '.join(STATUSES)}", "PRDC-060")
        with self.lock:
            if self.product(pid)["status"] != status:
                self.products[pid]["status"] = status
                self.touch_product(pid)

    def destroy_product(self, pid: int) -> None:
        """Delete a product (a user action; no API is documented): GETs 404, `product.destroyed`."""
        with self.lock:
            self.product(pid)
            del self.products[pid]
            self.prices.pop(pid, None)
            self.stock.pop(pid, None)
            self.emit("product.destroyed", [pid])

    def set_prices(self, pid: int, body: Any) -> None:
        """product-price PUT (§7.3): each named list's quantity breaks are replaced."""
        with self.lock:
            self.product(pid)
            lists = body.get("priceLists") if isinstance(body, dict) else None
            if not isinstance(lists, list) or not lists:
                raise bad("priceLists is required", "PRDC-040")
            for i, entry in enumerate(lists):
                plid = entry.get("priceListId") if isinstance(entry, dict) else None
                if plid not in self.price_lists:
                    raise bad(f"priceLists[{i}].priceListId {plid!r} does not exist", "PRDC-041")
                qp = entry.get("quantityPrice")
                if not isinstance(qp, dict) or not qp:
                    raise bad(f"priceLists[{i}].quantityPrice must map quantities to prices", "PRDC-042")
                for qty, price in qp.items():
                    if not str(qty).isdigit() or int(qty) < 1:
                        raise bad(
                            f"priceLists[{i}]: quantity break {qty!r} must be a whole number", "PRDC-043"
                        )
                    money(price, f"priceLists[{i}].quantityPrice.{qty}")
            for entry in lists:
                self.prices.setdefault(pid, {})[entry["priceListId"]] = {
                    str(k): str(v) for k, v in entry["quantityPrice"].items()
                }
            self.touch_product(pid)

    def remove_prices(self, pid: int, price_list_id: int) -> None:
        """A user removes the product's prices from one list (no API is documented)."""
        with self.lock:
            self.product(pid)
            if self.prices.get(pid, {}).pop(price_list_id, None) is not None:
                self.touch_product(pid)

    def adjust_stock(self, pid: int, warehouse_id: int, delta: int) -> None:
        """A stock movement of `delta` units, made as a stock correction (§8.4)."""
        reason = "Stock count" if delta > 0 else "Stock written off"
        self.correct_stock(
            warehouse_id,
            {"corrections": [{"productId": pid, "quantity": delta, "reason": reason, "locationId": 2}]},
        )

    def availability(self, pid: int) -> dict[str, Any] | None:
        product = self.products.get(pid)
        if product is None or not product["stock"].get("stockTracked"):
            return None
        allocated = self.allocated(pid)
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

    def allocated(self, pid: int) -> dict[int, int]:
        """Units of `pid` reserved (records/reservations.py) or on unshipped goods-out notes, by warehouse."""
        out: dict[int, int] = dict(self.reserved_units(pid))
        for note in self.goods_out.values():
            if not note["status"]["shipped"]:
                for lines in note["orderRows"].values():
                    for line in lines:
                        if line["productId"] == pid:
                            out[note["warehouseId"]] = out.get(note["warehouseId"], 0) + line["quantity"]
        return out
