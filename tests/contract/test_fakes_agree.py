"""The in-memory fakes (shared/sync/fakes.py) answer like the real adapters: each check runs
against the fake and against the real thing (the Brightpearl and Dataverse simulators over
loopback, the state store on Azurite). A fake that drifts from what the flows see in the
sandbox fails here, so the fast engine tests (tests/unit/engine) stay honest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from sandbox.customers_solution import install
from sandbox.dataverse import SimulatorConfig as DataverseConfig
from sandbox.dataverse import SimulatorServer as DataverseServer
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlPreconditionFailed
from shared.brightpearl.ratebudget import RateBudget
from shared.brightpearl.settings import BrightpearlSettings
from shared.dataverse import odata
from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential
from shared.store import StateStore
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from shared.sync.ports import BrightpearlPort, DataversePort, StateStorePort

KEY = "bpi_brightpearlid"
CONTACT_GET = "/contact-service/contact/{ids}"


@pytest.fixture(scope="module")
def bp_server() -> Iterator[BrightpearlServer]:
    with BrightpearlServer(seed_contacts=0, seed_products=0, seed_orders=0) as server:
        yield server


@pytest.fixture(scope="module")
def dv_server() -> Iterator[DataverseServer]:
    with DataverseServer(DataverseConfig(fractional_retry_after=True)) as server:
        install(server.simulator)
        yield server


@pytest.fixture(params=["fake", "simulator"])
def brightpearl(request: pytest.FixtureRequest) -> Iterator[BrightpearlPort]:
    if request.param == "fake":
        yield FakeBrightpearl()
        return
    server: BrightpearlServer = request.getfixturevalue("bp_server")
    settings = BrightpearlSettings.model_validate(
        {
            "BRIGHTPEARL_ACCOUNT": server.account,
            "BRIGHTPEARL_BASE_URL": server.url,
            "BRIGHTPEARL_APP_REF": "sandbox-app",
            "BRIGHTPEARL_ACCOUNT_TOKEN": "sandbox-account-token",
        }
    )
    client = BrightpearlClient.from_settings(settings, budget=RateBudget(10_000, 60.0, reserve=0))
    yield client
    client.close()


@pytest.fixture(params=["fake", "simulator"])
def dataverse(request: pytest.FixtureRequest) -> Iterator[DataversePort]:
    if request.param == "fake":
        yield FakeDataverse()
        return
    server: DataverseServer = request.getfixturevalue("dv_server")
    client = DataverseClient(
        server.url, SandboxCredential(server.token_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    )
    yield client
    client.close()


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> StateStorePort:
    if request.param == "memory":
        return MemoryStateStore()
    real: StateStore = request.getfixturevalue("state_store")
    return real


def unique() -> str:
    return uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------- Brightpearl
def new_customer(bp: BrightpearlPort, email: str) -> int:
    address = {"addressLine1": "1 High Street", "addressLine3": "Bristol", "postalCode": "BS1 4DJ"}
    [address_id] = bp.create_many("/contact-service/postal-address/", [{**address, "countryIsoCode": "GBR"}])
    assert isinstance(address_id, int)
    body = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "postAddressIds": {"DEF": address_id, "BIL": address_id, "DEL": address_id},
        "communication": {"emails": {"PRI": {"email": email}}},
        "relationshipToAccount": {"isSupplier": False, "isStaff": False},
    }
    [contact_id] = bp.create_many("/contact-service/contact/", [body])
    assert isinstance(contact_id, int)
    return contact_id


def test_brightpearl_created_contacts_read_back_with_their_addresses(brightpearl: BrightpearlPort) -> None:
    email = f"ada.{unique()}@example.org"
    contact_id = new_customer(brightpearl, email)

    [contact] = brightpearl.get_by_ids(
        CONTACT_GET, [contact_id], params={"includeOptional": "postalAddresses"}
    )

    assert contact["contactId"] == contact_id
    assert contact["lastName"] == "Lovelace"
    lines = [a.get("addressLine1") for a in contact.get("postalAddresses") or []]
    assert "1 High Street" in lines


def test_brightpearl_missing_ids_are_left_out(brightpearl: BrightpearlPort) -> None:
    contact_id = new_customer(brightpearl, f"x.{unique()}@example.org")

    found = brightpearl.get_by_ids(CONTACT_GET, [contact_id, 987_654_321])

    assert [c["contactId"] for c in found] == [contact_id]


def test_brightpearl_search_by_primary_email(brightpearl: BrightpearlPort) -> None:
    email = f"grace.{unique()}@example.org"
    contact_id = new_customer(brightpearl, email)
    new_customer(brightpearl, f"other.{unique()}@example.org")

    rows = list(brightpearl.search_contacts(primary_email=email, columns=["contactId", "primaryEmail"]))

    assert [int(r["contactId"]) for r in rows] == [contact_id]


def test_brightpearl_product_put_checks_the_version_and_replaces_the_channels(
    brightpearl: BrightpearlPort,
) -> None:
    channel = {"salesChannelName": "Brightpearl", "productName": "Red Mug"}
    body = {"brandId": 1, "identity": {"sku": f"MUG-{unique()}"}, "salesChannels": [channel]}
    product_id = int(brightpearl.request("POST", "/product-service/product/", json=body).response)
    [before] = brightpearl.get_by_ids("/product-service/product/{ids}", [product_id])
    edited = {**channel, "description": {"languageCode": "EN", "text": "Glazed", "format": "PLAINTEXT"}}

    brightpearl.update_product(product_id, {"salesChannels": [edited]}, version=before["version"])

    [after] = brightpearl.get_by_ids("/product-service/product/{ids}", [product_id])
    assert after["salesChannels"] == [edited]
    assert int(after["version"]) > int(before["version"])
    with pytest.raises(BrightpearlPreconditionFailed):  # 412: the version read before is stale
        brightpearl.update_product(product_id, {"salesChannels": [channel]}, version=before["version"])
    [unchanged] = brightpearl.get_by_ids("/product-service/product/{ids}", [product_id])
    assert unchanged["salesChannels"] == [edited]


# ---------------------------------------------------------------------------------- Dataverse
def rows_by_key(dv: DataversePort, *keys: str) -> list[dict[str, Any]]:
    flt = odata.any_of(odata.in_(KEY, list(keys)), odata.in_("emailaddress1", ["nobody@example.org"]))
    return [dict(r.values) for r in dv.query("contacts", select=["contactid", KEY, "lastname"], filter=flt)]


def test_dataverse_upsert_by_alternate_key_creates_then_updates(dataverse: DataversePort) -> None:
    key = str(uuid.uuid4().int % 10**9)
    first = dataverse.upsert_multiple("contacts", [{KEY: key, "lastname": "Lovelace"}], key_columns=[KEY])
    again = dataverse.upsert_multiple("contacts", [{KEY: key, "lastname": "King"}], key_columns=[KEY])

    rows = rows_by_key(dataverse, key)

    assert [o.ok for o in first.outcomes + again.outcomes] == [True, True]
    assert [(r[KEY], r["lastname"]) for r in rows] == [(key, "King")]


def test_dataverse_update_of_a_missing_row_fails_that_row_only(dataverse: DataversePort) -> None:
    key = str(uuid.uuid4().int % 10**9)
    dataverse.upsert_multiple("contacts", [{KEY: key, "lastname": "Lovelace"}], key_columns=[KEY])
    [row] = rows_by_key(dataverse, key)

    result = dataverse.update_multiple(
        "contacts",
        [
            {"contactid": str(uuid.uuid4()), "lastname": "Ghost"},
            {"contactid": row["contactid"], "lastname": "King"},
        ],
    )

    assert [o.ok for o in result.outcomes] == [False, True]
    assert result.outcomes[0].error is not None
    assert [r["lastname"] for r in rows_by_key(dataverse, key)] == ["King"]


# ---------------------------------------------------------------------------------- state store
def test_store_links_are_found_from_both_sides_and_claimed_once(store: StateStorePort) -> None:
    bp_id, dv_id = unique(), str(uuid.uuid4())
    store.links.link("customer", "brightpearl", bp_id, "dataverse", dv_id, source_hash="a", target_hash="b")

    from_bp = store.links.get_many("customer", "brightpearl", [bp_id, "absent"])
    from_dv = store.links.get("customer", "dataverse", dv_id)

    assert list(from_bp) == [bp_id] and from_bp[bp_id].id_in("dataverse") == dv_id
    assert (
        from_dv is not None and from_dv.id_in("brightpearl") == bp_id and from_dv.hash_of("dataverse") == "b"
    )
    with pytest.raises(ClaimTaken):
        store.links.claim("customer", "brightpearl", bp_id, "dataverse")


def test_store_hashes_need_the_current_etag(store: StateStorePort) -> None:
    bp_id, dv_id = unique(), str(uuid.uuid4())
    link = store.links.link(
        "customer", "brightpearl", bp_id, "dataverse", dv_id, source_hash="a", target_hash="b"
    )
    moved = store.links.record_hashes("customer", "brightpearl", bp_id, {"brightpearl": "c"}, etag=link.etag)

    with pytest.raises(StoreConflictError):
        store.links.record_hashes("customer", "brightpearl", bp_id, {"brightpearl": "d"}, etag=link.etag)

    assert moved.hash_of("brightpearl") == "c"
    current = store.links.get("customer", "dataverse", dv_id)
    assert current is not None and current.hash_of("brightpearl") == "c"


def test_store_claim_then_complete_links_the_record(store: StateStorePort) -> None:
    dv_id, bp_id = str(uuid.uuid4()), unique()
    claim = store.links.claim("customer", "dataverse", dv_id, "brightpearl")
    with pytest.raises(ClaimTaken):
        store.links.claim("customer", "dataverse", dv_id, "brightpearl")

    store.links.complete_claim(claim, bp_id, source_hash="s", target_hash="t")

    link = store.links.get("customer", "brightpearl", bp_id)
    assert link is not None and link.is_linked and link.id_in("dataverse") == dv_id


def test_store_ledger_holds_a_key_for_one_holder(store: StateStorePort) -> None:
    key = f"dl-{unique()}"

    assert store.ledger.record(key, holder="m1") is True
    assert store.ledger.record(key, holder="m2") is False
    assert store.ledger.record_for(key, "m1") is True
    assert store.ledger.record_for(key, "m2") is False
    store.ledger.forget(key)
    assert store.ledger.record_for(key, "m2") is True
