"""The simulator over HTTP takes look-up URLs up to Dataverse's 32,768 characters and answers a
longer one 414 with an OData error (the real status is UNCONFIRMED)."""

from __future__ import annotations

import uuid

import httpx

from sandbox.dataverse.app import MAX_URL_LENGTH
from shared.dataverse import odata
from shared.dataverse.client import DataverseClient
from tests.contract.dataverse.simfixtures import Sim


def test_a_url_sized_look_up_of_a_thousand_contacts_takes_two_queries(
    sim: Sim, client: DataverseClient
) -> None:
    made = [client.create("contacts", {"lastname": f"L{n}"}) for n in range(3)]
    wanted = [*made, *(str(uuid.uuid4()) for _ in range(997))]
    before = client.calls
    found = {
        str(row["contactid"]).lower()
        for flt in odata.in_chunks("contactid", wanted)
        for row in client.query("contacts", select=["contactid"], filter=flt)
    }
    assert found == set(made)
    assert client.calls - before == 2  # about 24 KB of URL each; 100 ids a query took 10


def test_a_url_longer_than_the_limit_is_answered_414(sim: Sim, client: DataverseClient) -> None:
    headers = {"Authorization": f"Bearer {client.tokens.get()}"}
    prefix, suffix = "/api/data/v9.2/contacts?%24filter=lastname%20eq%20%27", "%27"

    def url(length: int) -> str:  # path + query of exactly `length` characters, sent as is
        return prefix + "a" * (length - len(prefix) - len(suffix)) + suffix

    with httpx.Client(base_url=sim.url, timeout=30) as http:
        ok = http.get(url(MAX_URL_LENGTH), headers=headers)
        refused = http.get(url(MAX_URL_LENGTH + 1), headers=headers)
    assert len(ok.request.url.raw_path) == MAX_URL_LENGTH
    assert ok.status_code == 200, ok.text
    assert refused.status_code == 414
    error = refused.json()["error"]
    assert error["code"] and f"{MAX_URL_LENGTH + 1} characters" in error["message"]
    assert str(MAX_URL_LENGTH) in error["message"]


def test_the_in_process_transport_answers_the_same_414() -> None:
    from sandbox.dataverse.app import Simulator
    from sandbox.dataverse.inprocess import BASE_URL, InProcessTransport

    prefix = "/api/data/v9.2/contacts?%24filter=lastname%20eq%20%27"
    with httpx.Client(base_url=BASE_URL, transport=InProcessTransport(Simulator())) as http:
        fits = http.get(prefix + "a" * (MAX_URL_LENGTH - len(prefix) - 3) + "%27")
        over = http.get(prefix + "a" * (MAX_URL_LENGTH - len(prefix) - 2) + "%27")
    assert fits.status_code == 200, fits.text
    assert over.status_code == 414 and "32769 characters" in over.json()["error"]["message"]
