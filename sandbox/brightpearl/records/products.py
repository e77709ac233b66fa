"""Products, their prices per price list, and stock levels per warehouse (product-service
writes, stock corrections, availability, and product.* events)."""

from __future__ import annotations

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


class ProductStore(StateCore):
    products: dict[int, dict[str, Any]]
    prices: dict[int, dict[int, dict[str, str]]]
    stock: dict[int, dict[int, int]]
    price_lists: dict[int, dict[str, Any]]
    brands: dict[int, str]
    warehouses: dict[int, dict[str, Any]]  # read: stock is kept per warehouse
    goods_out: dict[int, dict[str, Any]]  # read: unshipped notes allocate stock

    def _reset_products(self) -> None:
        self.products = {}
        self.prices = {}
        self.stock = {}
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
        self.brands = {1: "House Brand", 2: "Acme"}

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
            record = existing(self.products, pid, f"Product {pid} not found")
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
