"""The catalogue seed (sandbox/brightpearl/catalogue_seed.py) in process: reproducible, safe to
run twice on one account, and within the store's own rules."""

from __future__ import annotations

from sandbox.brightpearl.catalogue_seed import seed_catalogue
from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.state import SimState


def fresh() -> SimState:
    return SimState(SimulatorConfig(seed_contacts=0, seed_products=0, seed_orders=0))


def catalogue_of(state: SimState) -> list[tuple[str, str, bool, str]]:
    return [
        (p["identity"]["sku"], p["salesChannels"][0]["productName"], p["stock"]["stockTracked"], p["status"])
        for p in state.products.values()
    ]


def test_the_same_seed_gives_the_same_catalogue_prices_and_stock():
    one, two = fresh(), fresh()
    seed_catalogue(one, products=120, seed=5)
    seed_catalogue(two, products=120, seed=5)
    assert catalogue_of(one) == catalogue_of(two)
    assert one.prices == two.prices and one.stock == two.stock


def test_seeding_twice_adds_products_without_grouping_them_by_accident():
    state = fresh()
    first = seed_catalogue(state, products=100, seed=5)
    second = seed_catalogue(state, products=100, seed=5)
    assert len(state.products) == 200 and not set(first.products) & set(second.products)
    skus = [p["identity"]["sku"] for p in state.products.values()]
    assert len(set(skus)) == 200 and all(len(s) <= 32 for s in skus)
    groups = {p["productGroupId"] for p in state.products.values() if p["productGroupId"]}
    assert groups == set(first.variation_groups) | set(second.variation_groups)


def test_archived_and_untracked_products_hold_no_stock_and_every_product_is_priced():
    state = fresh()
    seeded = seed_catalogue(state, products=60, seed=9)
    assert all(state.availability(p) is None for p in seeded.not_stock_tracked)
    assert all(
        state.availability(p)
        == {"total": dict.fromkeys(("inStock", "onHand", "allocated", "inTransit"), 0), "warehouses": {}}
        for p in seeded.archived
    )
    lists = {seeded.cost_price_list, *seeded.sell_price_lists}
    assert all(set(state.prices[p]) == lists for p in seeded.products)
    assert all(state.products[p]["status"] == "ARCHIVED" for p in seeded.archived)
