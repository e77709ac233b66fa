"""The Dataverse client sends its bearer token only under the configured service root: a
nextLink or delta link (returned, or saved in the cursors table) to another host is refused
with DataverseForeignLink, which the error table dead-letters with its own reason."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from shared.dataverse.change_tracking import ChangeTrackingReader
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import DataverseForeignLink
from shared.resilience import Action, classify

ROOT = "https://contoso.crm.dynamics.com/api/data/v9.2/"
FOREIGN = "https://collector.evil.example/api/data/v9.2/contacts?$skiptoken=abc"


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("secret-bearer-token", int(time.time()) + 3600)


class Server:
    """Answers every GET with the next canned body; records where each request went."""

    def __init__(self, *bodies: dict[str, Any]) -> None:
        self.bodies = list(bodies)
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((str(request.url.host), request.headers.get("authorization")))
        return httpx.Response(200, json=self.bodies.pop(0) if self.bodies else {"value": []})


def client_for(server: Server) -> DataverseClient:
    return DataverseClient(
        "https://contoso.crm.dynamics.com", StaticCredential(), transport=httpx.MockTransport(server)
    )


class Cursors:
    def __init__(self, value: str | None = None) -> None:
        self.value = value
        self.saved: list[str] = []

    def get(self, name: str) -> Any:
        return None if self.value is None else type("C", (), {"value": self.value, "etag": None})()

    def save(self, name: str, value: str, etag: str | None = None) -> None:
        self.saved.append(value)


def hosts_given_the_token(server: Server) -> set[str]:
    return {host for host, auth in server.seen if auth}


def test_a_next_link_to_another_host_is_not_followed():
    server = Server(
        {"value": [{"contactid": "00000000-0000-0000-0000-000000000001"}], "@odata.nextLink": FOREIGN}
    )
    with client_for(server) as client, pytest.raises(DataverseForeignLink) as exc:
        list(client.query("contacts", select=["contactid"]))
    assert hosts_given_the_token(server) == {"contoso.crm.dynamics.com"}
    message = str(exc.value)
    assert "collector.evil.example" in message and "another host than DATAVERSE_URL" in message
    assert "skiptoken" not in message  # the link's query is not repeated


def test_a_next_link_under_the_service_root_is_followed():
    server = Server({"value": [], "@odata.nextLink": ROOT + "contacts?$skiptoken=p2"}, {"value": []})
    with client_for(server) as client:
        assert list(client.query("contacts", select=["contactid"])) == []
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "link",
    [
        FOREIGN,
        "http://contoso.crm.dynamics.com/api/data/v9.2/contacts",  # not https
        "https://contoso.crm.dynamics.com:8443/api/data/v9.2/contacts",  # another port
        "https://contoso.crm.dynamics.com.evil.example/api/data/v9.2/contacts",
        "https://user:pw@contoso.crm.dynamics.com/api/data/v9.2/contacts",
        "https://contoso.crm.dynamics.com/other/contacts",  # outside /api/data/v9.2/
        "//collector.evil.example/api/data/v9.2/contacts",
    ],
)
def test_any_request_outside_the_service_root_is_refused_before_sending(link):
    server = Server()
    with client_for(server) as client, pytest.raises(DataverseForeignLink):
        client.request("GET", link)
    assert server.seen == []


def test_a_saved_delta_link_to_another_host_is_refused_naming_the_cursor_and_the_fix():
    server = Server()
    cursors = Cursors(FOREIGN)
    with client_for(server) as client:
        reader = ChangeTrackingReader(client, cursors, "contacts", select=["contactid"])
        with pytest.raises(DataverseForeignLink) as exc:
            reader.read()
    assert server.seen == []
    assert "dataverse-delta-contacts" in str(exc.value) and "full sync" in str(exc.value)


def test_a_returned_delta_link_to_another_host_is_never_saved():
    server = Server({"value": [], "@odata.deltaLink": FOREIGN})
    cursors = Cursors()
    with client_for(server) as client:
        reader = ChangeTrackingReader(client, cursors, "contacts", select=["contactid"])
        with pytest.raises(DataverseForeignLink):
            reader.read()
    assert cursors.saved == []


def test_the_error_table_dead_letters_it_with_its_own_reason():
    verdict = classify(DataverseForeignLink("x"))
    assert verdict is not None
    assert verdict.action is Action.DEAD_LETTER and verdict.reason == "DataverseForeignLink"
    assert "DATAVERSE_URL" in verdict.fix
