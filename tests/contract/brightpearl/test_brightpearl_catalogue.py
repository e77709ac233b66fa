"""Contract: the simulator's catalogue and stock (issue 12 item 6) against
/work/shared/reference/brightpearl-api.md: products (§7.1), price lists and product prices
(§7.3), availability (§8.1), warehouses (§8.2), stock corrections (§8.4), product-search by
updatedOn and goods-movement-search (§4), product webhooks with id sets (§10), the rate cap
(§3), and the admin routes and catalogue seed the product flow's tests build on. Checked
through the real client where it has a method, and with plain HTTP for the wire shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from sandbox.brightpearl import SimulatorServer
from sandbox.brightpearl.app import Simulator
from sandbox.brightpearl.catalogue_seed import CatalogueSeed, seed_catalogue
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlNotFound, BrightpearlValidationError
from shared.brightpearl.idset import format_id_set, parse_id_set
from shared.brightpearl.models import WebhookCreate
from shared.brightpearl.webhook_registration import body_template

from .conftest import Receiver, wait_until
from .test_conformance import PRIVATE, TIME, envelope
from .test_orders_products import order_body


@pytest.fixture
def api(bp_server: SimulatorServer, sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{bp_server.url}/public-api/sandbox", headers=PRIVATE, timeout=10) as http:
        yield http


@pytest.fixture
def catalogue(sim: Simulator) -> CatalogueSeed:
    return seed_catalogue(sim.state, products=300)


def subscribe(client: BrightpearlClient, receiver: Receiver, event: str) -> None:
    client.create_webhook(
        WebhookCreate(
            subscribeTo=event,
            uriTemplate=f"{receiver.url}/api/bp?code=key",
            bodyTemplate=body_template("s3cret-webhook-value-0123"),
            idSetAccepted=True,
            qualityOfService=1,
        )
    )


def events(receiver: Receiver) -> list[tuple[str, list[int]]]:
    """(full event, ids) of every delivery the receiver got."""
    out = []
    for request in receiver.received():
        body = json.loads(request["body"])
        out.append((body["fullEvent"], parse_id_set(body["id"], max_ids=100_000)))
    return out


def ids_of(receiver: Receiver, event: str) -> set[int]:
    return {i for name, ids in events(receiver) if name == event for i in ids}


def now_ms() -> datetime:
    """Now, at the millisecond resolution of Brightpearl's time stamps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def updated_on(sim: Simulator, pid: int) -> datetime:
    with sim.state.lock:
        return sim.state.products[pid]["updatedOn"]


def test_catalogue_seed_is_realistic(admin: httpx.Client, client: BrightpearlClient, sim: Simulator):
    seeded = admin.post("/catalogue/seed", json={"products": 300}).json()
    assert seeded["products"] == 300 and seeded["warehouses"] == [2, 3]
    assert len(seeded["notStockTracked"]) == 5 and len(seeded["archived"]) == 6
    assert len(seeded["variationGroups"]) >= 5

    lists = client.get_price_lists()
    sell = {p.id: p.currency_code for p in lists if p.price_list_type_code == "SELL"}
    assert sorted(sell) == seeded["sellPriceLists"] and set(sell.values()) == {"GBP", "EUR"}
    assert [p.id for p in lists if p.price_list_type_code == "BUY"] == [seeded["costPriceList"]]

    ids = list(range(seeded["first"], seeded["last"] + 1))
    products = {p.id: p for p in client.get_products(ids)}
    assert len(products) == 300 and len({p.sku for p in products.values()}) == 300
    assert {p.id for p in products.values() if not p.stock_tracked} == set(seeded["notStockTracked"])
    assert {p.id for p in products.values() if p.status == "ARCHIVED"} == set(seeded["archived"])
    for group, members in seeded["variationGroups"].items():
        variants = [products[m] for m in members]
        assert {p.product_group_id for p in variants} == {int(group)} and len({p.name for p in variants}) == 1
        raw = [p.model_extra or {} for p in variants]
        options = [tuple(v["optionValue"] for v in r.get("variations", [])) for r in raw]
        assert len(set(options)) == len(members)  # one variant per option value

    stock = client.get_product_availability(ids)
    assert set(stock) == {p for p in ids if products[p].stock_tracked}  # only stock-tracked (§8.1)
    assert {w for a in stock.values() for w in a.warehouses} == {2, 3}
    prices = {p.product_id: p for p in client.get_product_prices(ids[:50])}
    assert all(prices[p].price(seeded["costPriceList"]) is not None for p in ids[:50])
    assert all(prices[p].price(plid) for p in ids[:50] for plid in sell)


def test_product_get_shape_limits_and_errors(api: httpx.Client, client: BrightpearlClient, catalogue):
    pid = catalogue.stock_tracked[10]
    [raw] = envelope(api.get(f"/product-service/product/{pid}"))["response"]
    assert raw["identity"]["sku"] and raw["salesChannels"][0]["productName"]
    assert raw["stock"]["stockTracked"] is True and raw["status"] == "LIVE"
    assert isinstance(raw["version"], int) and TIME.match(raw["updatedOn"])
    assert "productName" not in raw  # the name lives in the sales channel only (§7.1)

    over = api.get(f"/product-service/product/{catalogue.products[0]}-{catalogue.products[200]}")
    assert over.status_code == 400 and envelope(over)["errors"][0]["code"] == "CMNC-031"
    assert "at most 200" in over.json()["errors"][0]["message"]
    descending = api.get("/product-service/product/1300-1200")
    assert descending.status_code == 400 and envelope(descending)["errors"][0]["code"] == "CMNC-030"
    missing = api.get("/product-service/product/99999")
    assert missing.status_code == 404 and envelope(missing)["errors"][0]["code"] == "CMNC-404"
    assert api.get("/product-service/product/").status_code == 400  # the id set is required (§7.1)
    assert "brightpearl-requests-remaining" in over.headers

    # the client reads more than 200 ids in several calls; missing ids are left out
    got = client.get_products([*catalogue.products[:250], 99999])
    assert [p.id for p in got] == catalogue.products[:250]


def test_prices_in_each_lists_currency_with_quantity_breaks(
    api: httpx.Client, client: BrightpearlClient, sim: Simulator, catalogue
):
    pid = catalogue.stock_tracked[20]
    [entry] = envelope(api.get(f"/product-service/product-price/{pid}/price-list/4"))["response"]
    assert entry["productId"] == pid
    assert [(p["priceListId"], p["currencyCode"]) for p in entry["priceLists"]] == [(4, "EUR")]
    assert all(isinstance(v, str) for v in entry["priceLists"][0]["quantityPrice"].values())

    before, version = updated_on(sim, pid), client.get_products([pid])[0].version
    client.set_product_prices(pid, [{"priceListId": 2, "quantityPrice": {"1": "12.50", "10": "11.00"}}])
    [prices] = client.get_product_prices([pid], [2, 4])
    assert prices.price(2) == Decimal("12.50") and prices.price(2, 10) == Decimal("11.00")
    assert prices.price(2, 5) is None  # PUT replaces the list's breaks
    assert prices.price(4) is not None and prices.price(1) is None  # only the lists asked for
    after = client.get_products([pid])[0]
    assert after.updated_on and after.updated_on > before and (after.version or 0) > (version or 0)

    with pytest.raises(BrightpearlValidationError, match=r"priceLists\[0\].priceListId 77 does not exist"):
        client.set_product_prices(pid, [{"priceListId": 77, "quantityPrice": {"1": "1"}}])
    with pytest.raises(BrightpearlValidationError, match="quantity break '0'"):
        client.set_product_prices(pid, [{"priceListId": 2, "quantityPrice": {"0": "1"}}])
    with pytest.raises(BrightpearlNotFound):
        client.set_product_prices(99999, [{"priceListId": 2, "quantityPrice": {"1": "1"}}])
    over = api.get(f"/product-service/product-price/{catalogue.products[0]}-{catalogue.products[200]}")
    assert over.status_code == 400 and envelope(over)["errors"][0]["code"] == "CMNC-031"

    plan = envelope(api.request("OPTIONS", "/product-service/product-price/1000-1400/price-list/2-4"))
    assert plan["response"]["getUris"] == [
        "/product-price/1000-1199/price-list/2-4",
        f"/product-price/1200-{catalogue.products[-1]}/price-list/2-4",
    ]


def test_availability_per_warehouse_totals_and_limit(
    api: httpx.Client, client: BrightpearlClient, catalogue: CatalogueSeed
):
    ids = catalogue.products[:250]
    stock = client.get_product_availability(ids)  # two calls of at most 200 ids
    assert set(stock) == set(ids) - set(catalogue.not_stock_tracked)
    for level in stock.values():
        for measure in ("in_stock", "on_hand", "allocated", "in_transit"):
            assert getattr(level.total, measure) == sum(
                getattr(w, measure) for w in level.warehouses.values()
            )
        assert all(w.in_stock > 0 or w.allocated > 0 for w in level.warehouses.values())  # holders only

    tracked = [i for i in ids if i not in catalogue.not_stock_tracked][:3]
    body = envelope(api.get(f"/warehouse-service/product-availability/{format_id_set(tracked)}"))
    assert sorted(body["response"]) == [str(i) for i in tracked]  # keyed by product, then warehouse
    for level in body["response"].values():
        assert set(level) == {"total", "warehouses"} and set(level["warehouses"]) <= {"2", "3"}
        assert set(level["total"]) == {"inStock", "onHand", "allocated", "inTransit"}
    over = api.get(f"/warehouse-service/product-availability/{ids[0]}-{ids[0] + 200}")
    assert over.status_code == 400 and envelope(over)["errors"][0]["code"] == "CMNC-031"
    untracked = api.get(
        f"/warehouse-service/product-availability/{format_id_set(catalogue.not_stock_tracked)}"
    )
    assert untracked.status_code == 404 and envelope(untracked)["errors"][0]["code"] == "CMNC-404"
    bad = api.get("/warehouse-service/product-availability/9-3")
    assert bad.status_code == 400 and envelope(bad)["errors"][0]["code"] == "CMNC-030"

    warehouses = client.get_warehouses()
    assert {w.id for w in warehouses} >= set(catalogue.warehouses)
    assert [w.name for w in client.get_warehouses([2])] == ["Main Warehouse"]


def test_stock_correction_moves_availability_fires_on_hand_modified_and_leaves_updated_on(
    api: httpx.Client, client: BrightpearlClient, sim: Simulator, receiver: Receiver, catalogue
):
    subscribe(client, receiver, "product.modified.on-hand-modified")
    pid = catalogue.stock_tracked[30]
    before = client.get_product_availability([pid])[pid]
    stamp, since = updated_on(sim, pid), now_ms()
    notes = client.create_stock_correction(
        2,
        [
            {
                "productId": pid,
                "quantity": 7,
                "reason": "Stock take",
                "locationId": 2,
                "cost": {"currency": "GBP", "value": 3.5},
            },
            {"productId": pid, "quantity": -2, "reason": "Damaged", "locationId": 2},
        ],
    )
    assert len(notes) == 2 and notes[0] < notes[1]
    after = client.get_product_availability([pid])[pid]
    assert after.total.on_hand == before.total.on_hand + 5
    assert (
        after.warehouses[2].in_stock == (before.warehouses[2].in_stock if 2 in before.warehouses else 0) + 5
    )
    assert wait_until(lambda: pid in ids_of(receiver, "product.modified.on-hand-modified"))
    assert updated_on(sim, pid) == stamp  # stock has no updatedOn: product-search will not see it
    assert [r["productId"] for r in client.search_products(updated_since=since)] == []

    # the backstop: goods movements since a time name the product (reference §4.1)
    moved = envelope(
        api.get(
            "/warehouse-service/goods-movement-search",
            params={
                "updatedOn": f"{since.isoformat()}/",
                "goodsNoteTypeCode": "SC",
                "columns": "productId,quantity,warehouseId",
            },
        )
    )
    assert moved["response"]["results"] == [[pid, 7, 2], [pid, -2, 2]]
    assert [c["name"] for c in moved["response"]["metaData"]["columns"]] == [
        "productId",
        "quantity",
        "warehouseId",
    ]

    [note] = envelope(api.get(f"/warehouse-service/warehouse/2/stock-correction/{notes[0]}"))["response"]
    assert note["goodsNoteId"] == notes[0] and note["reason"] == "Stock take"
    assert note["goodsMoved"][0]["productId"] == pid and note["goodsMoved"][0]["quantity"] == 7
    assert note["goodsMoved"][0]["productValue"] == {"currency": "GBP", "value": "3.5"}
    assert api.get(f"/warehouse-service/warehouse/3/stock-correction/{notes[0]}").status_code == 404


def test_stock_correction_refusals_apply_nothing(client: BrightpearlClient, sim: Simulator, catalogue):
    pid = catalogue.stock_tracked[40]
    held = client.get_product_availability([pid]).get(pid)
    in_main = held.warehouses[2].in_stock if held and 2 in held.warehouses else 0
    ok = {"productId": pid, "quantity": 3, "reason": "Count", "locationId": 2}

    def line(**changes: object) -> dict:
        return {**ok, "reason": "x", **changes}

    no_reason = line()
    del no_reason["reason"]
    cases = [
        (line(quantity=-(in_main + 4)), "WHSC-070", "cannot remove"),  # the first line's 3 count
        (line(productId=catalogue.not_stock_tracked[0]), "WHSC-006", "not stock-tracked"),
        (line(productId=99999), "WHSC-005", "not a product"),
        (line(quantity=-1, cost={"currency": "GBP", "value": 1}), "WHSC-007", "only allowed when adding"),
        (line(batchId=4), "WHSC-009", "only allowed when removing"),
        (no_reason, "WHSC-003", "reason is required"),
    ]
    for bad, code, text in cases:
        with pytest.raises(BrightpearlValidationError, match=rf"corrections\[1\].*{text}") as refused:
            client.create_stock_correction(2, [ok, bad])
        assert [e["code"] for e in refused.value.errors] == [code]
    with pytest.raises(BrightpearlNotFound):
        client.create_stock_correction(99, [ok])
    after = client.get_product_availability([pid]).get(pid)
    assert (
        after.warehouses[2].in_stock if after and 2 in after.warehouses else 0
    ) == in_main  # all or nothing


def test_archived_product_comes_back_live_when_stock_is_added(
    client: BrightpearlClient, sim: Simulator, catalogue, admin: httpx.Client
):
    pid = catalogue.archived[0]
    since = now_ms()
    client.create_stock_correction(3, [{"productId": pid, "quantity": 4, "reason": "Found", "locationId": 2}])
    product = client.get_products([pid])[0]
    assert product.status == "LIVE"  # §8.4
    assert [r["productId"] for r in client.search_products(updated_since=since)] == [pid]


def test_product_webhooks_created_modified_destroyed_with_id_sets(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client, catalogue
):
    subscribe(client, receiver, "product")  # a prefix covers every product event (§10.3)
    pid = client.create_product(
        {
            "brandId": 1,
            "identity": {"sku": "LAMP-ARC-1"},
            "salesChannels": [{"salesChannelName": "Brightpearl", "productName": "Arc Lamp"}],
        }
    )
    product = client.get_products([pid])[0]
    client.update_product(pid, {"identity": {"ean": "5012345678900"}}, version=product.version)
    admin.post("/catalogue/status", json={"productIds": [pid], "status": "ARCHIVED"}).raise_for_status()
    assert client.get_products([pid])[0].status == "ARCHIVED"
    several = catalogue.stock_tracked[50:53]
    admin.post("/catalogue/destroy", json={"productIds": several}).raise_for_status()

    assert wait_until(lambda: ids_of(receiver, "product.destroyed") == set(several))
    assert ids_of(receiver, "product.created") == {pid}
    assert wait_until(lambda: ids_of(receiver, "product.modified") == {pid})
    assert any(len(ids) > 1 for name, ids in events(receiver) if name == "product.destroyed")  # one id set
    assert client.get_products(several) == []
    assert sim.dispatcher.log.snapshot() and all(
        d["outcome"] == "delivered" for d in sim.dispatcher.log.snapshot()
    )


def test_product_search_by_updated_on_pages_and_sorts(
    api: httpx.Client, client: BrightpearlClient, admin: httpx.Client, catalogue
):
    since = now_ms()
    changed = catalogue.stock_tracked[60:65]
    admin.post(
        "/catalogue/prices", json={"productIds": changed, "priceListId": 2, "factor": "1.10"}
    ).raise_for_status()
    assert [r["productId"] for r in client.search_products(updated_since=since)] == changed

    params = {
        "updatedOn": f"{since.isoformat()}/",
        "columns": "productId,updatedOn",
        "sort": "updatedOn.DESC",
        "pageSize": "2",
    }
    page = envelope(api.get("/product-service/product-search", params={**params, "firstResult": "3"}))
    meta = page["response"]["metaData"]
    assert (meta["resultsAvailable"], meta["resultsReturned"], meta["firstResult"], meta["lastResult"]) == (
        5,
        2,
        3,
        4,
    )
    assert meta["morePagesAvailable"] is True and meta["sorting"][0]["direction"] == "DESC"
    assert [row[0] for row in page["response"]["results"]] == [changed[2], changed[1]]
    assert all(TIME.match(row[1]) for row in page["response"]["results"])
    assert "reference" in page


def test_stock_storm_fires_one_event_per_correction_and_ends_exact(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client, catalogue
):
    subscribe(client, receiver, "product.modified.on-hand-modified")
    products = catalogue.stock_tracked[100:300][:200]
    before = client.get_product_availability(products)
    answer = admin.post(
        "/catalogue/stock", json={"storm": {"productIds": products, "events": 5000, "warehouseId": 2}}
    ).json()
    assert answer["applied"] == 5000
    with sim.state.lock:
        moves = [m for m in sim.state.goods_movements.values() if m["goodsNoteTypeCode"] == "SC"]
    assert len(moves) == 5000
    net = {p: sum(m["quantity"] for m in moves if m["productId"] == p) for p in products}
    after = client.get_product_availability(products)
    for p in products:
        was = before[p].total.on_hand if p in before else 0
        assert after[p].total.on_hand == was + net[p] == answer["totals"][str(p)]["onHand"]
    assert wait_until(lambda: ids_of(receiver, "product.modified.on-hand-modified") == set(net), timeout=30)


def test_new_routes_answer_in_envelopes_and_count_against_the_rate_cap(
    api: httpx.Client, sim: Simulator, catalogue
):
    sim.configure(rate_limit=3, rate_window_seconds=30)
    pid = catalogue.stock_tracked[0]
    answers = [
        api.get("/warehouse-service/goods-movement-search"),
        api.get(f"/warehouse-service/warehouse/2/stock-correction/{pid}"),
        api.request("OPTIONS", f"/product-service/product-price/{pid}"),
        api.get(f"/warehouse-service/product-availability/{pid}"),
    ]
    assert [a.status_code for a in answers] == [200, 404, 200, 503]
    assert [a.headers["brightpearl-requests-remaining"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        envelope(answer)


def test_variations_follow_the_product_group_rules(client: BrightpearlClient):
    body = {
        "brandId": 1,
        "salesChannels": [{"salesChannelName": "Brightpearl", "productName": "Field Jacket"}],
        "variations": [{"optionId": 2, "optionValueId": 7}],
    }
    first = client.create_product({**body, "identity": {"sku": "FJ-M"}})
    second = client.create_product(
        {**body, "identity": {"sku": "FJ-L"}, "variations": [{"optionId": 2, "optionValueId": 8}]}
    )
    a, b = client.get_products([first, second])
    assert a.product_group_id == b.product_group_id == first
    with pytest.raises(BrightpearlValidationError, match="combination already exists"):
        client.create_product({**body, "identity": {"sku": "FJ-M2"}})
    with pytest.raises(BrightpearlValidationError, match="is not a value of option 2"):
        client.create_product({**body, "variations": [{"optionId": 2, "optionValueId": 1}]})


def test_a_shipped_goods_out_note_is_a_goods_movement(
    api: httpx.Client, client: BrightpearlClient, sim: Simulator
):
    since = now_ms()
    order_id = client.create_sales_order(order_body(sim, "shop-9001", qty=2))
    row_id, row = next((k, r) for k, r in client.get_order(order_id).order_rows.items() if r.product_id)
    line = {"productId": row.product_id, "salesOrderRowId": row_id, "quantity": 2}
    note_id = client.create_goods_out_note(order_id, [{"warehouseId": 2, "products": [line]}])
    params = {
        "updatedOn": f"{since.isoformat()}/",
        "columns": "goodsNoteId,goodsNoteTypeCode,productId,quantity",
    }
    assert (
        envelope(api.get("/warehouse-service/goods-movement-search", params=params))["response"]["results"]
        == []
    )
    client.add_goods_out_events(
        note_id, [{"eventCode": "SHW", "occured": "2026-07-01T12:00:00Z", "eventOwnerId": 4}]
    )
    moved = envelope(api.get("/warehouse-service/goods-movement-search", params=params))["response"][
        "results"
    ]
    assert moved == [[note_id, "GO", row.product_id, -2]]
