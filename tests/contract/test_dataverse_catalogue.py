"""Contract: the Dataverse simulator's catalogue against reference dataverse-api.md, over HTTP
through the real client (shared/dataverse/client.py).

§10.7 product lifecycle and the organisation flag, §10.8 unit groups and their base unit,
§10.9 price lists and items (currency rule), §10.13 currencies, the integration columns and
alternate keys on product (contracts, issue 12), UpsertMultiple/UpdateMultiple (§5), $batch
change sets (§4), change tracking (§6) and webhooks (§7) on product.
"""

# ruff: noqa: F811 - pytest fixtures imported from simfixtures are parameters here
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.catalogue_solution import CatalogueRefs, seed_catalogue
from sandbox.dataverse.config import DEFAULT_ORGANIZATION_ID
from shared.dataverse import odata
from shared.dataverse.change_tracking import ChangeTrackingReader
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import DataverseDuplicateError, DataverseError, DataverseValidationError
from shared.dataverse.models import BatchOperation
from tests.contract.dataverse.simfixtures import (  # noqa: F401 - client, dataverse_server, sim: fixtures
    MemoryCursorStore,
    ServeApp,
    client,
    dataverse_server,
    sim,
)

DRAFT, ACTIVE, RETIRED, UNDER_REVISION = (2, 0), (0, 1), (1, 2), (3, 3)


@pytest.fixture
def refs(client: DataverseClient) -> CatalogueRefs:
    return seed_catalogue(client)


def product_body(refs: CatalogueRefs, number: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Product {number}",
        "productnumber": number,
        "quantitydecimal": 0,
        "producttypecode": 1,
        "defaultuomscheduleid@odata.bind": f"/uomschedules({refs.unit_group})",
        "defaultuomid@odata.bind": f"/uoms({refs.base_unit})",
        **extra,
    }


def state_of(client: DataverseClient, key: Any) -> tuple[int, int]:
    record = client.get("products", key, select=["statecode", "statuscode"])
    return record["statecode"], record["statuscode"]


def refused(call: Any, status: int = 400) -> DataverseError:
    with pytest.raises(DataverseError) as caught:
        call()
    assert caught.value.status == status, caught.value
    assert caught.value.code, "the error body carries a code"  # {"error": {"code", "message"}}
    return caught.value


# --- §10.7 lifecycle -----------------------------------------------------------------------------


def test_product_lifecycle_draft_publish_retire_and_refused_pairs(client, refs):
    pid = client.create("products", product_body(refs, "LIFE-1"))
    assert state_of(client, pid) == DRAFT  # organisation flag off: new products are Draft

    client.update("products", pid, {"statecode": 0, "statuscode": 1})  # publish (SetState via PATCH)
    assert state_of(client, pid) == ACTIVE
    client.update("products", pid, {"statecode": 1, "statuscode": 2})  # retire
    assert state_of(client, pid) == RETIRED
    client.update("products", pid, {"statecode": 3, "statuscode": 3})
    assert state_of(client, pid) == UNDER_REVISION
    client.update("products", pid, {"statecode": 0})  # only statecode: the state's default status
    assert state_of(client, pid) == ACTIVE

    error = refused(lambda: client.update("products", pid, {"statecode": 0, "statuscode": 2}))
    assert "status code" in error.server_message and "2" in error.server_message
    refused(lambda: client.update("products", pid, {"statecode": 7, "statuscode": 1}))
    refused(lambda: client.create("products", product_body(refs, "LIFE-2", statecode=1, statuscode=0)))
    assert state_of(client, pid) == ACTIVE  # refused changes left it as it was


def test_organisation_flag_makes_new_products_active(client, refs):
    orgs = list(client.query("organizations", select=["createproductswithoutparentinactivestate"]))
    assert len(orgs) == 1 and orgs[0]["createproductswithoutparentinactivestate"] is False
    org_id = orgs[0]["organizationid"]
    assert org_id == DEFAULT_ORGANIZATION_ID == client.who_am_i().organization_id

    client.update("organizations", org_id, {"createproductswithoutparentinactivestate": True})
    active = client.create("products", product_body(refs, "ORG-1"))
    assert state_of(client, active) == ACTIVE
    family = client.create("products", product_body(refs, "ORG-FAM", productstructure=2))
    child = client.create(
        "products", product_body(refs, "ORG-CHILD", **{"parentproductid@odata.bind": f"/products({family})"})
    )
    assert state_of(client, family) == ACTIVE
    assert state_of(client, child) == DRAFT  # the flag covers products without a parent family only

    client.update("organizations", org_id, {"createproductswithoutparentinactivestate": False})
    assert state_of(client, client.create("products", product_body(refs, "ORG-2"))) == DRAFT


def test_the_organisation_row_is_only_updated(client):
    org_id = next(iter(client.query("organizations", select=["name"])))["organizationid"]
    refused(lambda: client.create("organizations", {"name": "second"}))
    refused(lambda: client.delete("organizations", org_id))
    assert [r["organizationid"] for r in client.query("organizations", select=["name"])] == [org_id]


def test_organisation_flag_is_seeded_from_the_simulator_setting(sim, client, refs):
    sim.admin.call("POST", "reset", {"config": {"products_active_on_create": True}})
    refs = seed_catalogue(client)
    org = next(iter(client.query("organizations", select=["createproductswithoutparentinactivestate"])))
    assert org["createproductswithoutparentinactivestate"] is True
    assert state_of(client, client.create("products", product_body(refs, "SEED-1"))) == ACTIVE


# --- §10.8 unit groups and units ----------------------------------------------------------------


def test_unit_group_creates_its_base_unit(client):
    group = client.create("uomschedules", {"name": "Drinks", "baseuomname": "bottle"})
    units = list(
        client.query(
            "uoms",
            select=["name", "isschedulebaseuom", "quantity"],
            filter=odata.lookup_eq("uomscheduleid", group),
        )
    )
    assert [(u["name"], u["isschedulebaseuom"], u["quantity"]) for u in units] == [("bottle", True, 1.0)]
    base = units[0]["uomid"]

    case = client.create(
        "uoms", {"name": "case of 12", "quantity": 12, "uomscheduleid@odata.bind": f"/uomschedules({group})"}
    )
    unit = client.get("uoms", case, select=["isschedulebaseuom", "_baseuom_value", "quantity"])
    assert unit["isschedulebaseuom"] is False and unit.lookup("baseuom") == base and unit["quantity"] == 12

    other = client.create("uomschedules", {"name": "Other", "baseuomname": "piece"})
    error = refused(
        lambda: client.create(
            "uoms",
            {
                "name": "mixed",
                "uomscheduleid@odata.bind": f"/uomschedules({other})",
                "baseuom@odata.bind": f"/uoms({base})",
            },
        )
    )
    assert "baseuom" in error.server_message


def test_product_default_unit_must_belong_to_its_unit_group(sim, client, refs):
    other = client.create("uomschedules", {"name": "Weights", "baseuomname": "kg"})
    kg = next(iter(client.query("uoms", select=["name"], filter=odata.lookup_eq("uomscheduleid", other))))
    foreign = {"defaultuomid@odata.bind": f"/uoms({kg.id})"}
    error = refused(lambda: client.create("products", product_body(refs, "UNIT-1", **foreign)))
    assert "defaultuomid" in error.server_message and "defaultuomscheduleid" in error.server_message

    pid = client.create("products", product_body(refs, "UNIT-2"))
    refused(lambda: client.update("products", pid, foreign))  # an update is checked as well
    client.update("products", pid, {**foreign, "defaultuomscheduleid@odata.bind": f"/uomschedules({other})"})
    assert client.get("products", pid, select=["_defaultuomid_value"]).lookup("defaultuomid") == kg.id

    sim.admin.config(check_product_unit_group=False)  # the platform check is UNCONFIRMED: a switch
    client.create("products", product_body(refs, "UNIT-3", **foreign))


# --- §10.9 price lists, §10.13 currencies -------------------------------------------------------


def test_currencies_by_iso_code_with_exchange_rates(client, refs):
    eur = next(
        iter(
            client.query(
                "transactioncurrencies",
                select=["exchangerate", "currencyname"],
                filter=odata.eq("isocurrencycode", "EUR"),
            )
        )
    )
    assert eur.id == refs.currencies["EUR"] and eur["exchangerate"] == 1.17
    gbp = client.get("transactioncurrencies", refs.currencies["GBP"], select=["exchangerate"])
    assert gbp["exchangerate"] == 1.0  # the organisation's base currency
    org = next(iter(client.query("organizations", select=["_basecurrencyid_value"])))
    assert org.lookup("basecurrencyid") == refs.currencies["GBP"]
    error = refused(
        lambda: client.create(
            "transactioncurrencies",
            {"isocurrencycode": "XTS", "currencyname": "Test", "currencysymbol": "T", "exchangerate": 0},
        )
    )
    assert "exchangerate" in error.server_message


def test_price_list_items_follow_the_list_currency(client, refs):
    eur_list = refs.price_lists["Retail EUR"]
    listed = client.get("pricelevels", eur_list, select=["_transactioncurrencyid_value"])
    assert listed.lookup("transactioncurrencyid") == refs.currencies["EUR"]
    pid = client.create("products", product_body(refs, "PRICE-1"))
    item = {
        "pricelevelid@odata.bind": f"/pricelevels({eur_list})",
        "productid@odata.bind": f"/products({pid})",
        "uomid@odata.bind": f"/uoms({refs.base_unit})",
        "pricingmethodcode": 1,  # Currency Amount
        "amount": 12.5,
    }
    item_id = client.create("productpricelevels", item)
    stored = client.get(
        "productpricelevels",
        item_id,
        select=["amount", "pricingmethodcode", "_uomid_value", "_transactioncurrencyid_value"],
    )
    assert stored["amount"] == 12.5 and stored["pricingmethodcode"] == 1
    assert stored.lookup("uomid") == refs.base_unit
    assert stored.lookup("transactioncurrencyid") == refs.currencies["EUR"]  # inherited from the list

    client.update("productpricelevels", item_id, {"amount": 13.75})  # a changed price, in place
    assert client.get("productpricelevels", item_id, select=["amount"])["amount"] == 13.75

    gbp = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies['GBP']})"}
    error = refused(lambda: client.create("productpricelevels", {**item, **gbp}))
    assert "transactioncurrencyid" in error.server_message and "price list" in error.server_message
    refused(lambda: client.update("productpricelevels", item_id, gbp))
    same = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies['EUR']})"}
    client.create("productpricelevels", {**item, **same})  # the list's own currency is fine

    client.delete("productpricelevels", item_id)  # a removed price removes the item
    assert client.get_or_none("productpricelevels", item_id) is None


def test_seed_catalogue_is_rerunnable(client, refs):
    again = seed_catalogue(client)
    assert again == refs
    base = client.get("uoms", refs.base_unit, select=["name", "isschedulebaseuom"])
    assert base["name"] == "each" and base["isschedulebaseuom"] is True
    for name, iso in (("Retail GBP", "GBP"), ("Retail EUR", "EUR")):
        listed = client.get("pricelevels", refs.price_lists[name], select=["_transactioncurrencyid_value"])
        assert listed.lookup("transactioncurrencyid") == refs.currencies[iso]


# --- integration columns, alternate keys, bulk, batch ---------------------------------------------


def test_products_by_alternate_keys(client, refs):
    created = client.upsert(
        "products", {"bpi_brightpearlid": "123"}, product_body(refs, "SKU-123", bpi_availablestock=4.5)
    )
    assert created.created is True and created.id
    by_bp = client.get(
        "products", {"bpi_brightpearlid": "123"}, select=["productnumber", "bpi_availablestock"]
    )
    assert (
        by_bp.id == created.id and by_bp["productnumber"] == "SKU-123" and by_bp["bpi_availablestock"] == 4.5
    )
    assert client.get("products", {"productnumber": "SKU-123"}, select=["name"]).id == created.id

    updated = client.upsert("products", {"productnumber": "SKU-123"}, {"bpi_availablestock": 7})
    assert updated.created is False and updated.id == created.id
    assert client.get("products", created.id, select=["bpi_availablestock"])["bpi_availablestock"] == 7

    with pytest.raises(DataverseDuplicateError) as dup:
        client.create("products", product_body(refs, "SKU-OTHER", bpi_brightpearlid="123"))
    assert dup.value.status == 412 and dup.value.code == "0x80040237"
    with pytest.raises(DataverseDuplicateError):
        client.create("products", product_body(refs, "SKU-123"))
    with pytest.raises(DataverseValidationError) as bad_key:
        client.get("products", {"name": "Product SKU-123"})
    assert "key in the request URI is not valid" in bad_key.value.server_message


def test_upsert_and_update_multiple_on_products(sim, client, refs):
    rows = [
        product_body(refs, f"BULK-{i}", bpi_brightpearlid=str(7000 + i), bpi_availablestock=float(i))
        for i in range(50)
    ]
    result = client.upsert_multiple("products", rows, key_columns=["bpi_brightpearlid"])
    assert len(result.succeeded) == 50 and result.bulk_requests == 1 and result.fallbacks == 0
    assert sim.admin.counters()["calls"]["POST products/UpsertMultiple"] == 1
    drafts = odata.eq("statecode", 2) & odata.startswith("productnumber", "BULK-")
    assert client.count("products", drafts) == 50  # bulk creates follow the lifecycle too

    ids = {
        r["bpi_brightpearlid"]: r.id
        for r in client.query(
            "products", select=["bpi_brightpearlid"], filter=odata.startswith("productnumber", "BULK-")
        )
    }
    stock = [{"productid": ids[str(7000 + i)], "bpi_availablestock": 100.0 + i} for i in range(0, 50, 5)]
    updated = client.update_multiple("products", stock)
    assert len(updated.succeeded) == 10 and updated.bulk_requests == 1
    publish = [{"productid": pid, "statecode": 0, "statuscode": 1} for pid in ids.values()]
    assert len(client.update_multiple("products", publish).succeeded) == 50
    assert client.get("products", ids["7005"], select=["bpi_availablestock"])["bpi_availablestock"] == 105.0
    assert state_of(client, ids["7005"]) == ACTIVE


def test_product_writes_in_a_batch_change_set(client, refs):
    ops = [
        BatchOperation("PATCH", "products(bpi_brightpearlid='901')", product_body(refs, "BATCH-1")),
        BatchOperation("PATCH", "products(productnumber='BATCH-1')", {"bpi_availablestock": 3}),
    ]
    results = client.execute_batch(ops, change_set=True)
    assert all(r.ok for r in results)
    row = client.get("products", {"bpi_brightpearlid": "901"}, select=["bpi_availablestock"])
    assert row["bpi_availablestock"] == 3

    bad = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies['GBP']})"}
    failing = [
        BatchOperation("PATCH", "products(bpi_brightpearlid='902')", product_body(refs, "BATCH-2")),
        BatchOperation(
            "POST",
            "productpricelevels",
            {
                "pricelevelid@odata.bind": f"/pricelevels({refs.price_lists['Retail EUR']})",
                "productid@odata.bind": "/products(bpi_brightpearlid='901')",
                "pricingmethodcode": 1,
                "amount": 1,
                **bad,
            },
        ),
    ]
    outcome = client.execute_batch(failing, change_set=True)
    assert all(not r.ok for r in outcome) and outcome[0].status == 400
    assert client.get_or_none("products", {"bpi_brightpearlid": "902"}) is None  # rolled back


# --- change tracking and webhooks ---------------------------------------------------------------


def test_change_tracking_on_products(client, refs):
    cursors = MemoryCursorStore()
    reader = ChangeTrackingReader(client, cursors, "products", select=["bpi_availablestock", "statecode"])
    first = client.create("products", product_body(refs, "CT-1", bpi_brightpearlid="801"))
    initial = reader.read()
    assert initial.full_sync and first in {r.id for r in initial.upserts}
    reader.advance(initial)

    client.update("products", {"bpi_brightpearlid": "801"}, {"bpi_availablestock": 9})
    second = client.create("products", product_body(refs, "CT-2"))
    delta = reader.read()
    assert {r.id: r["bpi_availablestock"] for r in delta.upserts} == {first: 9, second: None}
    reader.advance(delta)
    client.update("products", first, {"statecode": 1, "statuscode": 2})  # retired, never deleted
    assert [(r.id, r["statecode"]) for r in reader.read().upserts] == [(first, 1)]


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def endpoint(self, request: Request) -> Response:
        self.posts.append((dict(request.headers), await request.json()))
        return Response(status_code=200)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with ServeApp(Starlette(routes=[Route("/hook", rec.endpoint, methods=["POST"])])) as served:
        yield rec, f"{served.url}/hook"


def register_step(
    client: DataverseClient, endpoint: str, table: str, message: str, filtering: str | None
) -> None:
    msg = next(iter(client.query("sdkmessages", select=["name"], filter=odata.eq("name", message))))
    flt = odata.eq("primaryobjecttypecode", table) & odata.eq("sdkmessageid/name", message)
    message_filter = next(
        iter(client.query("sdkmessagefilters", select=["primaryobjecttypecode"], filter=flt))
    )
    step: dict[str, Any] = {
        "name": f"{table} {message}",
        "stage": 40,
        "mode": 1,
        "rank": 1,
        "supporteddeployment": 0,
        "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint})",
        "sdkmessageid@odata.bind": f"/sdkmessages({msg.id})",
        "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({message_filter.id})",
    }
    if filtering:
        step["filteringattributes"] = filtering
    client.create("sdkmessageprocessingsteps", step)


def test_webhooks_for_product_create_and_update(sim, client, refs, receiver):
    rec, url = receiver
    endpoint = client.create(
        "serviceendpoints",
        {
            "name": "catalogue",
            "url": url,
            "contract": 8,
            "authtype": 5,
            "authvalue": '<settings><setting name="x-api-key" value="k"/></settings>',
        },
    )
    register_step(client, endpoint, "product", "Create", None)
    register_step(client, endpoint, "product", "Update", "bpi_availablestock,statecode")

    pid = client.create("products", product_body(refs, "HOOK-1", bpi_brightpearlid="701"))
    client.update_multiple("products", [{"productid": pid, "bpi_availablestock": 11}])
    client.update("products", pid, {"description": "not a filtered column"})
    sim.admin.drain()

    seen = [
        (h["x-ms-dynamics-entity-name"], h["x-ms-dynamics-request-name"], b["PrimaryEntityId"])
        for h, b in rec.posts
    ]
    assert seen == [("product", "Create", pid), ("product", "Update", pid)]
    headers, body = rec.posts[1]
    assert headers["x-api-key"] == "k"
    target = dict((a["key"], a["value"]) for a in body["InputParameters"][0]["value"]["Attributes"])
    assert target["bpi_availablestock"] == 11
