"""The fakes answer the calls the prices flow makes as the simulators do (the same checks
against FakeBrightpearl/FakeDataverse and the two simulators over loopback, through the real
clients), so the fast tests in tests/unit/flows/prices stay honest: Brightpearl price lists
(Cost is BUY, the others SELL, each with its currency) and product-price by id set with its
quantity breaks, only the lists asked for, missing products left out, a removed price gone; in
Dataverse, a price list bound to a currency found by isocurrencycode and read back with its
currency expanded, and price list items written in $batch (POST with our id, PATCH in place,
DELETE), read by product and list, inheriting the list's currency and refusing another, a
second POST of one id refused as a duplicate."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.dataverse import odata
from shared.dataverse.errors import DataverseDuplicateError
from shared.dataverse.models import BatchOperation
from shared.flows.prices_to_dataverse import ITEM_SELECT
from shared.mapping.prices import parse_price_settings
from shared.sync.fakes import FakeBrightpearl
from shared.sync.ports import BrightpearlPort, DataversePort
from tests.contract import test_product_fakes_agree as product_fakes_agree
from tests.contract.test_fakes_agree import bp_server, brightpearl, dataverse
from tests.contract.test_product_fakes_agree import dv_server

__all__ = ["bp_server", "brightpearl", "dataverse", "dv_server"]

KEY = "bpi_brightpearlid"
COST, RETAIL, TRADE, EURO = 1, 2, 3, 4


# ---------------------------------------------------------------------------------- Brightpearl
def lists_of(bp: BrightpearlPort) -> BrightpearlPort:
    """The fake gets the simulator's price lists (the simulator has them from its reset)."""
    if isinstance(bp, FakeBrightpearl) and not bp.price_lists:
        bp.add_price_list(COST, "Cost price", "GBP", "BUY")
        bp.add_price_list(RETAIL, "Retail GBP", "GBP")
        bp.add_price_list(TRADE, "Trade GBP", "GBP")
        bp.add_price_list(EURO, "Retail EUR", "EUR")
    return bp


def new_product(bp: BrightpearlPort) -> int:
    return product_fakes_agree.new_product(bp, f"SKU-{uuid.uuid4().hex[:8]}")


def set_price(bp: BrightpearlPort, product_id: int, list_id: int, breaks: dict[str, str]) -> None:
    """product-price PUT (reference §7.3), or the fake's helper."""
    if isinstance(bp, FakeBrightpearl):
        bp.set_prices(product_id, list_id, breaks)
        return
    body = {"priceLists": [{"priceListId": list_id, "quantityPrice": breaks}]}
    bp.request("PUT", f"/product-service/product-price/{product_id}/price-list", json=body)


def remove_price(bp: BrightpearlPort, request: pytest.FixtureRequest, product_id: int, list_id: int) -> None:
    """A user removes the product's prices from a list (no API is documented: the simulator's store)."""
    if isinstance(bp, FakeBrightpearl):
        bp.set_prices(product_id, list_id, None)
        return
    request.getfixturevalue("bp_server").simulator.state.remove_prices(product_id, list_id)


def test_price_lists_cost_is_buy_the_others_sell_each_with_its_currency(brightpearl: BrightpearlPort) -> None:
    found = {p.id: p for p in lists_of(brightpearl).get_price_lists()}

    assert {i: (p.display_name, p.currency_code, p.price_list_type_code) for i, p in found.items()} == {
        COST: ("Cost price", "GBP", "BUY"),
        RETAIL: ("Retail GBP", "GBP", "SELL"),
        TRADE: ("Trade GBP", "GBP", "SELL"),
        EURO: ("Retail EUR", "EUR", "SELL"),
    }
    chosen, _ = parse_price_settings(
        {"price_lists": {"lists": {"Retail GBP": True, "Cost price": True}}}
    ).select(list(found.values()))
    assert [s.id for s in chosen] == [RETAIL]  # Cost is never exported without export_cost


def test_product_prices_by_id_set_in_the_lists_asked_for(
    brightpearl: BrightpearlPort, request: pytest.FixtureRequest
) -> None:
    bp = lists_of(brightpearl)
    a, b = new_product(bp), new_product(bp)
    set_price(bp, a, RETAIL, {"1": "12.50", "5": "11"})
    set_price(bp, a, EURO, {"1": "14"})
    set_price(bp, a, COST, {"1": "4"})
    set_price(bp, b, RETAIL, {"1": "3"})

    found = {p.product_id: p for p in bp.get_product_prices([a, b, 987_654_321], [RETAIL, EURO])}

    assert set(found) == {a, b}  # a missing product is left out
    assert {e["priceListId"] for e in found[a].price_lists} == {RETAIL, EURO}  # not Cost
    retail = next(e for e in found[a].price_lists if e["priceListId"] == RETAIL)
    assert {k: float(v) for k, v in retail["quantityPrice"].items()} == {"1": 12.5, "5": 11.0}
    assert str(found[a].price(EURO)) in ("14", "14.00", "14.0000")

    remove_price(bp, request, a, EURO)
    [after] = bp.get_product_prices([a], [RETAIL, EURO])
    assert [e["priceListId"] for e in after.price_lists] == [RETAIL]


# ---------------------------------------------------------------------------------- Dataverse
def currency(dv: DataversePort, iso: str) -> str:
    """The id of the currency `iso`, created when the organisation lacks it."""
    found = [
        str(r["transactioncurrencyid"])
        for r in dv.query(
            "transactioncurrencies",
            select=["transactioncurrencyid", "isocurrencycode"],
            filter=odata.in_("isocurrencycode", [iso]),
        )
    ]
    if found:
        return found[0].lower()
    body = {
        "isocurrencycode": iso,
        "currencyname": f"Test {iso}",
        "currencysymbol": "¤",
        "currencyprecision": 2,
        "exchangerate": 1.5,
    }
    return dv.create("transactioncurrencies", body).lower()


def product_and_unit(dv: DataversePort, key: str | None = None) -> tuple[str, str]:
    """A Dynamics product (Brightpearl id `key`, default: a new one) in a new unit group, and
    its default unit."""
    key = key or str(uuid.uuid4().int % 10**9)
    group = dv.create("uomschedules", {"name": f"Units {key}", "baseuomname": "Each"})
    units = [
        str(r["uomid"])
        for r in dv.query("uoms", select=["uomid"], filter=odata.lookup_eq("uomscheduleid", group))
    ]
    unit = (
        units[0]
        if units
        else dv.create(
            "uoms",
            {"name": "Each", "quantity": 1, "uomscheduleid@odata.bind": odata.bind("uomschedules", group)},
        )
    )
    row = {
        KEY: key,
        "productnumber": f"SKU-{key}",
        "name": "Mug",
        "quantitydecimal": 0,
        "producttypecode": 1,
        "defaultuomscheduleid@odata.bind": odata.bind("uomschedules", group),
        "defaultuomid@odata.bind": odata.bind("uoms", unit),
    }
    [created] = dv.upsert_multiple("products", [row], key_columns=[KEY]).outcomes
    assert created.ok
    [product] = [
        str(r["productid"]) for r in dv.query("products", select=["productid"], filter=odata.in_(KEY, [key]))
    ]
    # published, as the products flow leaves it (prices wait while a product is still Draft)
    assert product_fakes_agree.set_state(dv, product, 0, 1)
    return product.lower(), unit.lower()


def price_list(dv: DataversePort, name: str, currency_id: str) -> str:
    body = {
        "name": name,
        "transactioncurrencyid@odata.bind": odata.bind("transactioncurrencies", currency_id),
    }
    return dv.create("pricelevels", body).lower()


def test_a_price_list_is_bound_to_a_currency_and_read_back_with_it_expanded(dataverse: DataversePort) -> None:
    iso = "T" + uuid.uuid4().hex[:4].upper()
    currency_id = currency(dataverse, iso)
    name = f"List {uuid.uuid4().hex[:8]}"
    level = price_list(dataverse, name, currency_id)

    [row] = [
        dict(r.values)
        for r in dataverse.query(
            "pricelevels",
            select=["pricelevelid", "name", "_transactioncurrencyid_value"],
            filter=odata.in_("name", [name]),
            expand="transactioncurrencyid($select=isocurrencycode)",
            orderby=["createdon asc"],
        )
    ]
    assert str(row["pricelevelid"]).lower() == level
    assert str(row["_transactioncurrencyid_value"]).lower() == currency_id
    assert row["transactioncurrencyid"]["isocurrencycode"] == iso
    assert currency(dataverse, iso) == currency_id  # found by isocurrencycode, not created again


def items_of(dv: DataversePort, product: str, levels: list[str]) -> list[dict[str, Any]]:
    return [
        dict(r.values)
        for r in dv.query(
            "productpricelevels",
            select=[*ITEM_SELECT, "_transactioncurrencyid_value"],
            filter=odata.all_of(
                odata.in_("_productid_value", [product]), odata.in_("_pricelevelid_value", levels)
            ),
        )
    ]


def test_price_list_items_in_batch_created_updated_in_place_and_deleted(dataverse: DataversePort) -> None:
    dv = dataverse
    gbp, other = currency(dv, "GBP"), currency(dv, "T" + uuid.uuid4().hex[:4].upper())
    level = price_list(dv, f"List {uuid.uuid4().hex[:8]}", gbp)
    product, unit = product_and_unit(dv)
    item_id = str(uuid.uuid4())
    body = {
        "productpricelevelid": item_id,
        "pricelevelid@odata.bind": odata.bind("pricelevels", level),
        "productid@odata.bind": odata.bind("products", product),
        "uomid@odata.bind": odata.bind("uoms", unit),
        "amount": 12.5,
        "pricingmethodcode": 1,
    }

    [created] = dv.execute_batch([BatchOperation("POST", "productpricelevels", body)], continue_on_error=True)
    assert created.ok and (created.entity_id or "").lower() == item_id
    [item] = items_of(dv, product, [level])
    assert (item["amount"], item["pricingmethodcode"]) == (12.5, 1)
    assert str(item["_uomid_value"]).lower() == unit
    assert str(item["_transactioncurrencyid_value"]).lower() == gbp  # the list's currency, inherited

    [again] = dv.execute_batch([BatchOperation("POST", "productpricelevels", body)], continue_on_error=True)
    assert not again.ok and isinstance(again.error, DataverseDuplicateError)

    wrong = {**body, "productpricelevelid": str(uuid.uuid4())}
    wrong["transactioncurrencyid@odata.bind"] = odata.bind("transactioncurrencies", other)
    [refused] = dv.execute_batch(
        [BatchOperation("POST", "productpricelevels", wrong)], continue_on_error=True
    )
    assert not refused.ok and "pricing error 34" in str(refused.error)

    path = odata.record_path("productpricelevels", item_id)
    [patched] = dv.execute_batch([BatchOperation("PATCH", path, {"amount": 13.75})], continue_on_error=True)
    assert patched.ok
    assert [(i["productpricelevelid"].lower(), i["amount"]) for i in items_of(dv, product, [level])] == [
        (item_id, 13.75)
    ]

    [deleted] = dv.execute_batch([BatchOperation("DELETE", path)], continue_on_error=True)
    assert deleted.ok
    assert items_of(dv, product, [level]) == []


# ---------------------------------------------------------------------------------- the flow
def test_the_prices_flow_creates_updates_and_removes_items_alike_on_fakes_and_simulators(
    brightpearl: BrightpearlPort, dataverse: DataversePort, request: pytest.FixtureRequest
) -> None:
    from shared.flows.prices_to_dataverse import PricesToDataverse
    from shared.outcomes import Completed
    from shared.sync.fakes import MemoryStateStore
    from tests.unit.flows.products.test_products_to_dataverse import notice

    bp, dv = lists_of(brightpearl), dataverse
    tag = uuid.uuid4().hex[:8]
    gbp, eur = currency(dv, "GBP"), currency(dv, "EUR")
    product_id = new_product(bp)
    set_price(bp, product_id, RETAIL, {"1": "12.50", "10": "11"})
    set_price(bp, product_id, EURO, {"1": "14"})
    set_price(bp, product_id, COST, {"1": "4"})
    product, unit = product_and_unit(dv, str(product_id))
    settings = parse_price_settings(
        {
            "price_lists": {
                "lists": {
                    "Retail GBP": {"dynamics_name": f"GBP {tag}"},
                    EURO: {"dynamics_name": f"EUR {tag}"},
                }
            }
        }
    )
    flow = PricesToDataverse(
        brightpearl=bp, dataverse=dv, store=MemoryStateStore(), publish=lambda e: None, settings=settings
    )

    def items() -> dict[str, tuple[str, float, str, str]]:
        levels = {
            str(r["pricelevelid"]).lower(): (str(r["name"]), str(r["_transactioncurrencyid_value"]).lower())
            for r in dv.query(
                "pricelevels",
                select=["pricelevelid", "name", "_transactioncurrencyid_value"],
                filter=odata.in_("name", [f"GBP {tag}", f"EUR {tag}"]),
            )
        }
        out = {}
        for item in items_of(dv, product, sorted(levels)) if levels else []:
            name, level_currency = levels[str(item["_pricelevelid_value"]).lower()]
            assert str(item["_transactioncurrencyid_value"]).lower() == level_currency
            out[name] = (
                str(item["productpricelevelid"]).lower(),
                item["amount"],
                str(item["_uomid_value"]).lower(),
                level_currency,
            )
        return out

    assert flow.handle([notice(str(product_id))]) == [Completed()]
    first = items()
    assert {n: v[1:] for n, v in first.items()} == {
        f"GBP {tag}": (12.5, unit.lower(), gbp),
        f"EUR {tag}": (14, unit.lower(), eur),
    }

    set_price(bp, product_id, RETAIL, {"1": "13.75"})
    remove_price(bp, request, product_id, EURO)
    assert flow.handle([notice(str(product_id))]) == [Completed()]
    after = items()
    assert set(after) == {f"GBP {tag}"}  # the removed price's item is deleted
    assert after[f"GBP {tag}"][:2] == (first[f"GBP {tag}"][0], 13.75)  # updated in place
