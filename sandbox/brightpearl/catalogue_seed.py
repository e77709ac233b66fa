"""A realistic Brightpearl catalogue for the sandbox (issue 12): a few hundred products with
distinct names and SKUs, prices in the three SELL price lists (two in GBP, one in EUR) and
the COST list, stock in two warehouses, a handful of products that are not stock-tracked
(services), a handful archived, and variation groups (one product per colour or size,
sharing a name and so a product group, reference §7.2).

In process: `seed_catalogue(simulator.state, products=300)`. Over HTTP (the demo, other
processes): `POST /_sandbox/catalogue/seed {"products": 300, "seed": 12}`. Seeding raises no
webhooks, and its time stamps lie in the 60 days before (like the other seeds), so
`product-search?updatedOn=` after the seed finds only later changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.records.amounts import fmt
from sandbox.brightpearl.records.products import OPTIONS
from sandbox.brightpearl.state import SimState

ADJECTIVES = [
    "Classic", "Rustic", "Nordic", "Coastal", "Heritage", "Urban", "Studio", "Garden", "Vintage", "Modern",
    "Harbour", "Meadow", "Willow", "Granite", "Linen", "Oak", "Copper", "Slate", "Amber", "Ivory",
]  # fmt: skip
MATERIALS = ["Ceramic", "Glass", "Oak", "Stoneware", "Bamboo", "Walnut", "Brass", "Cotton", "Jute", "Marble"]
NOUNS = [
    "Mug", "Teapot", "Lamp", "Cushion", "Throw", "Vase", "Candle", "Rug", "Clock", "Mirror",
    "Planter", "Bowl", "Tray", "Basket", "Frame", "Stool", "Shelf", "Blanket", "Jug", "Towel",
]  # fmt: skip
VARIED = ["Linen Shirt", "Wool Jumper", "Canvas Apron", "Cotton Tote", "Rain Jacket", "Knitted Beanie"]
SERVICES = ["Gift Wrapping", "Engraving Service", "Assembly Service", "Extended Warranty", "Gift Card"]
SIZE_OPTION, COLOUR_OPTION = 2, 1
EUR_PER_GBP = Decimal("1.17")


@dataclass
class CatalogueSeed:
    """The ids a catalogue seed created, by kind."""

    products: list[int] = field(default_factory=list)
    stock_tracked: list[int] = field(default_factory=list)
    not_stock_tracked: list[int] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)
    variation_groups: dict[int, list[int]] = field(default_factory=dict)
    sell_price_lists: list[int] = field(default_factory=list)
    cost_price_list: int = 0
    warehouses: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "products": len(self.products),
            "first": self.products[0] if self.products else None,
            "last": self.products[-1] if self.products else None,
            "stockTracked": len(self.stock_tracked),
            "notStockTracked": self.not_stock_tracked,
            "archived": self.archived,
            "variationGroups": {str(k): v for k, v in self.variation_groups.items()},
            "sellPriceLists": self.sell_price_lists,
            "costPriceList": self.cost_price_list,
            "warehouses": self.warehouses,
        }


def seed_catalogue(
    state: SimState,
    products: int = 300,
    seed: int = 12,
    warehouses: tuple[int, int] = (2, 3),
    archived: int = 6,
    services: int = 5,
) -> CatalogueSeed:
    """Add `products` products (at least the services, archived ones and variation groups
    fit in 40); returns their ids by kind. Prices use the account's price lists: every SELL
    list (in its own currency) and the BUY (cost) list."""
    if products < 40:
        raise ValueError("a catalogue seed needs at least 40 products")
    rng = random.Random(seed)
    out = CatalogueSeed(warehouses=list(warehouses))
    with state.lock, state.seeding():
        for wid in warehouses:
            if wid not in state.warehouses:
                raise ValueError(f"warehouse {wid} does not exist")
        lists = state.price_lists
        out.sell_price_lists = sorted(i for i, p in lists.items() if p["priceListTypeCode"] == "SELL")
        out.cost_price_list = min(i for i, p in lists.items() if p["priceListTypeCode"] == "BUY")
        tag = f"{seed:02d}{state.next_id('catalogue-seed', 1):02d}"  # SKUs unique across seeds
        taken = {p["salesChannels"][0].get("productName") for p in state.products.values()}
        names = _names(rng, products, taken)
        for i, name in enumerate(names[:services]):
            pid = _product(state, rng, name, f"SVC-{tag}-{i:03d}", tracked=False)
            out.not_stock_tracked.append(pid)
        for name in VARIED:
            name = name if name not in taken else f"{name} {tag}"
            option = rng.choice([COLOUR_OPTION, SIZE_OPTION])
            values = rng.sample(sorted(OPTIONS[option][1]), k=rng.randint(2, 4))
            group = []
            for value in values:
                sku = f"VAR-{tag}-{name[:3].upper()}-{OPTIONS[option][1][value]}"
                group.append(_product(state, rng, name, sku, variation=(option, value)))
            out.variation_groups[state.products[group[0]]["productGroupId"]] = group
            out.stock_tracked.extend(group)
        while len(out.stock_tracked) + len(out.not_stock_tracked) < products:
            n = len(out.stock_tracked)
            pid = _product(state, rng, names[services + n], f"CAT-{tag}-{n:05d}")
            out.stock_tracked.append(pid)
        for pid in rng.sample(out.stock_tracked[len(VARIED) * 4 :], k=archived):
            state.stock[pid] = {}
            state.products[pid]["status"] = "ARCHIVED"
            state.touch_product(pid, event=None)
            out.archived.append(pid)
        out.archived.sort()
        for pid in out.stock_tracked:
            if pid not in out.archived:
                state.stock[pid] = {wid: _level(rng, main=j == 0) for j, wid in enumerate(warehouses)}
        out.products = sorted(out.not_stock_tracked + out.stock_tracked)
        for pid in out.products:
            state.prices[pid] = _prices(rng, lists, out.sell_price_lists, out.cost_price_list)
    return out


def _names(rng: random.Random, count: int, taken: set[Any]) -> list[str]:
    """Distinct product names, none `taken` (so that products do not group by accident), the
    services first."""
    names = [n if n not in taken else f"{n} {len(taken)}" for n in SERVICES]
    seen = set(names) | set(VARIED) | taken
    while len(names) < count:
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}"
        if name in seen:  # 4,000 combinations: large catalogues number the rest
            name = f"{name} No. {len(names)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _product(
    state: SimState,
    rng: random.Random,
    name: str,
    sku: str,
    tracked: bool = True,
    variation: tuple[int, int] | None = None,
) -> int:
    body: dict[str, Any] = {
        "brandId": rng.choice(sorted(state.brands)),
        "identity": {"sku": sku, "ean": f"50{rng.randrange(10**10, 10**11)}"},
        "stock": {"stockTracked": tracked, "weight": {"magnitude": round(rng.uniform(0.1, 5), 2)}},
        "financialDetails": {"taxable": True, "taxCode": {"id": 1, "code": "T20"}},
        "salesChannels": [
            {
                "salesChannelName": "Brightpearl",
                "productName": name,
                "productCondition": "new",
                "categories": [{"categoryCode": str(rng.choice([276, 277, 281, 290]))}],
                "description": {"languageCode": "EN", "text": f"{name}.", "format": "PLAINTEXT"},
            }
        ],
    }
    if variation is not None:
        body["variations"] = [{"optionId": variation[0], "optionValueId": variation[1]}]
    return state.create_product(body, quiet=True)


def _level(rng: random.Random, main: bool) -> int:
    if rng.random() < 0.1:
        return 0  # out of stock here
    return rng.randint(5, 250) if main else rng.randint(0, 30)


def _prices(
    rng: random.Random, lists: dict[int, dict[str, Any]], sell: list[int], cost: int
) -> dict[int, dict[str, str]]:
    """Net prices: cost ~45 % of retail; trade 80 %; quantity breaks on the first list; EUR
    lists at a fixed rate."""
    retail = Decimal(rng.randint(299, 14999)) / 100
    out = {cost: {"1": fmt(retail * Decimal("0.45"), 2)}}
    for n, plid in enumerate(sell):
        base = retail if n == 0 else retail * Decimal("0.8")
        if lists[plid]["currencyCode"] == "EUR":
            base = retail * EUR_PER_GBP
        prices = {"1": fmt(base, 2)}
        if n == 0:
            prices.update({"5": fmt(base * Decimal("0.95"), 2), "10": fmt(base * Decimal("0.9"), 2)})
        out[plid] = prices
    return out


@dataclass(frozen=True)
class SkuVariation:
    """A product whose Dynamics product number differs from its Brightpearl SKU the way real
    catalogues do (issue 18 item 2), and what SKU matching (shared/mapping/sku_match.py) does."""

    case: str
    brightpearl_sku: str | None  # None: no Brightpearl product (unknown)
    dynamics_sku: str
    name: str
    expect: str  # exact, normalised, channel, ean, review, unknown
    ean: str | None = None  # the Brightpearl product's EAN and the Dynamics product's bpi_ean
    dynamics_name: str | None = None  # None: the same name


# `channel` needs sku_matching.channels with strip_prefixes [WEB-] (docs/mapping.md, SKU matching).
SKU_VARIATIONS: tuple[SkuVariation, ...] = (
    SkuVariation("exact", "SKV-EXACT-1", "SKV-EXACT-1", "Heritage Oak Tray", "exact"),
    SkuVariation("mixed case", "SKV-Case-2", "skv-case-2", "Nordic Linen Cushion", "normalised"),
    SkuVariation("separators", "ABC-001", "ABC001", "Coastal Glass Vase", "normalised"),
    SkuVariation("leading zeros", "SKV-0042", "SKV-42", "Urban Slate Clock", "normalised"),
    SkuVariation("channel prefix", "SKV-PFX-5", "WEB-SKV-PFX-5", "Meadow Jute Basket", "channel"),
    SkuVariation("EAN only", "BP-EAN-6", "LEGACY-77", "Amber Cotton Throw", "ean", ean="4006381333931"),
    SkuVariation(
        "near miss",
        "SKV-LANTERN-7",
        "SKV-LANTRN-7",
        "Harbour Brass Lantern",
        "review",
        dynamics_name="Harbour Brass Lantern (old code)",
    ),
    SkuVariation("unknown", None, "NOPE-999", "Mystery Widget", "unknown"),
)


def seed_sku_variations(state: SimState, seed: int = 18) -> dict[str, int]:
    """The Brightpearl side of SKU_VARIATIONS (no webhooks, like the other seeds): product id by
    case. Each has the variation's EAN, or none."""
    rng = random.Random(seed)
    out: dict[str, int] = {}
    with state.lock, state.seeding():
        for v in SKU_VARIATIONS:
            if v.brightpearl_sku is None:
                continue
            pid = _product(state, rng, v.name, v.brightpearl_sku)
            identity = state.products[pid]["identity"]
            identity.pop("ean", None)
            if v.ean:
                identity["ean"] = v.ean
            out[v.case] = pid
    return out
