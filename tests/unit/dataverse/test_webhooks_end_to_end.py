"""Simulator webhooks end to end: steps registered through the client with
sync_dataverse_webhooks, CRM-user edits through the admin surface, RemoteExecutionContext
POSTed to a receiver that runs the real ingress function, change notices recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator

import azure.functions as func
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import functions.ingress_dataverse as ingress
from sandbox.dataverse.config import DEFAULT_ORGANIZATION_ID
from sandbox.dataverse.seed import CRM_USER_ID
from shared.dataverse import odata
from shared.dataverse.webhook_registration import StepSpec, sync_dataverse_webhooks
from shared.events import Envelope
from shared.settings import load_settings
from tests.contract.dataverse.simfixtures import ServeApp
from tests.unit.dataverse.test_ingress_dataverse import RecordingPublisher

SECRET = "end-to-end-webhook-secret-42"
FUNCTION_KEY = "function-key-abc"


class Receiver:
    def __init__(self) -> None:
        self.publisher = RecordingPublisher()
        self.requests: list[dict[str, str]] = []
        self.fail_status: int | None = None
        self.fail_after_publish = 0  # answer 503 after publishing, this many times
        self.settings = load_settings(
            {
                "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
                "BRIGHTPEARL_ACCOUNT": "acme",
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "BUS_BACKEND": "local",
                "DATAVERSE_WEBHOOK_SECRET": SECRET,
                "DATAVERSE_ORGANIZATION_ID": DEFAULT_ORGANIZATION_ID,
            }
        )

    async def endpoint(self, request: Request) -> Response:
        headers = dict(request.headers)
        self.requests.append(headers)
        if self.fail_status:
            return Response(status_code=self.fail_status)
        if headers.get("x-functions-key") != FUNCTION_KEY:  # what the Functions host checks
            return Response(status_code=401)
        req = func.HttpRequest(
            "POST",
            str(request.url),
            headers=headers,
            params=dict(request.query_params),
            body=await request.body(),
        )
        resp = ingress.handle(req, self.settings)
        if self.fail_after_publish > 0:
            self.fail_after_publish -= 1
            return Response(status_code=503)
        return Response(resp.get_body(), status_code=resp.status_code, media_type="application/json")

    def notices(self):
        return [Envelope.from_body(m.body).notice for _, batch in self.publisher.sent for m in batch]


@pytest.fixture
def receiver(monkeypatch) -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    monkeypatch.setattr(ingress, "publisher_factory", lambda _s: rec.publisher)
    app = Starlette(routes=[Route("/api/webhooks/dataverse", rec.endpoint, methods=["POST"])])
    with ServeApp(app) as served:
        yield rec, f"{served.url}/api/webhooks/dataverse"


STEPS = [
    StepSpec("contact", "Create"),
    StepSpec("contact", "Update", filtering_attributes=("emailaddress1", "firstname", "lastname")),
    StepSpec("contact", "Delete"),
    StepSpec("account", "Update"),
]


def register(client, url: str, steps=STEPS, **kw):
    return sync_dataverse_webhooks(
        client,
        ingress_url=url,
        function_key=FUNCTION_KEY,
        secret=SECRET,
        steps=steps,
        dry_run=kw.pop("dry_run", False),
        **kw,
    )


def test_crm_user_edits_fire_webhooks_that_become_change_notices(sim, client, receiver):
    rec, url = receiver
    register(client, url)
    contact_id = client.create("contacts", {"firstname": "Ann", "lastname": "Lee"})
    sim.admin.crm("PATCH", f"contacts({contact_id})", {"emailaddress1": "ann@example.com"})
    sim.admin.crm("PATCH", f"contacts({contact_id})", {"jobtitle": "Buyer"})  # not a filtering attribute
    sim.admin.crm("DELETE", f"contacts({contact_id})")
    sim.admin.drain()

    notices = rec.notices()
    assert [(n.entity, n.operation) for n in notices] == [
        ("contact", "created"),
        ("contact", "updated"),
        ("contact", "deleted"),
    ]
    created, updated, _deleted = notices
    assert all(n.ids == (contact_id,) for n in notices)
    assert updated.detail["changed_attributes"] == ["emailaddress1"]
    assert updated.detail["initiating_user"] == CRM_USER_ID
    assert created.detail["initiating_user"] != CRM_USER_ID  # created by the integration's app user
    assert "firstname" in created.detail["changed_attributes"]
    assert all(n.source == f"/dataverse/{DEFAULT_ORGANIZATION_ID}" for n in notices)
    first = rec.requests[0]
    assert first["x-ms-dynamics-entity-name"] == "contact" and first["x-ms-dynamics-request-name"] == "Create"
    assert first["x-ms-dynamics-organization"].startswith("sandbox.")
    assert first["x-bpi-webhook-secret"] == SECRET and "x-ms-correlation-request-id" in first
    assert "x-request-id" in first


def test_registration_is_idempotent_and_tracks_changes(sim, client, receiver):
    _, url = receiver
    planned = register(client, url, dry_run=True)
    assert [(a.kind, a.resource) for a in planned] == [("create", "serviceendpoint")] + [
        ("create", "step")
    ] * 4
    assert client.count("serviceendpoints") == 0  # dry run wrote nothing

    assert [a.kind for a in register(client, url)] == ["create"] * 5
    assert [a.kind for a in register(client, url)] == ["unchanged"] * 5

    changed = [
        StepSpec("contact", "Create"),
        StepSpec("contact", "Update", filtering_attributes=("lastname",)),
        StepSpec("account", "Update"),
    ]
    actions = {(a.kind, a.name) for a in register(client, url, steps=changed)}
    assert ("update", "bpi-sync: contact Update") in actions
    assert ("delete", "bpi-sync: contact Delete") in actions
    steps = {
        r["name"]: r
        for r in client.query("sdkmessageprocessingsteps", select=["name", "filteringattributes"])
    }
    assert steps["bpi-sync: contact Update"]["filteringattributes"] == "lastname"
    assert "bpi-sync: contact Delete" not in steps

    rotated = sync_dataverse_webhooks(
        client,
        ingress_url=url,
        function_key=FUNCTION_KEY,
        secret=SECRET + "-new",
        steps=changed,
        dry_run=False,
    )
    assert rotated[0].kind == "update" and rotated[0].changes == {"auth": "rotated"}
    endpoint = next(iter(client.query("serviceendpoints", select=["authtype", "contract", "url"])))
    assert (endpoint["contract"], endpoint["authtype"], endpoint["url"]) == (8, 5, url)
    assert "authvalue" not in endpoint.values  # write-only, never read back


def test_registration_validates_its_input(client):
    with pytest.raises(ValueError, match="https"):
        register(client, "http://example.com/api/webhooks/dataverse")
    with pytest.raises(ValueError, match="Update steps only"):
        StepSpec("contact", "Create", filtering_attributes=("lastname",)).validate()


def test_failed_async_delivery_is_a_failed_system_job(sim, client, receiver):
    rec, url = receiver
    register(client, url, steps=[StepSpec("account", "Create")])
    rec.fail_status = 503
    client.create("accounts", {"name": "Retry me"})
    sim.admin.drain()
    [delivery] = [
        d for d in sim.admin.call("GET", "webhooks/deliveries")["deliveries"] if d["entity"] == "account"
    ]
    assert delivery["attempts"] == 2 and delivery["ok"] is False  # one more attempt on 503
    jobs = sim.admin.rows("asyncoperation")
    assert [j["statuscode"] for j in jobs] == [31]

    sim.admin.call("POST", "webhooks/fail", {"count": 1})
    rec.fail_status = None
    client.create("accounts", {"name": "Lost one"})
    client.create("accounts", {"name": "Delivered"})
    sim.admin.drain()
    assert [n.entity for n in rec.notices()] == ["account"]


def test_sync_step_failure_rolls_the_operation_back(sim, client, receiver):
    rec, url = receiver
    register(client, url, steps=[StepSpec("account", "Create", mode=0)])
    rec.fail_status = 500
    with pytest.raises(Exception, match="Endpoint unavailable"):
        client.create("accounts", {"name": "Never stored", "bpi_brightpearlid": "SYNC-1"})
    assert client.count("accounts", odata.eq("bpi_brightpearlid", "SYNC-1")) == 0


def test_oversized_context_drops_input_parameters(sim, client, receiver):
    rec, url = receiver
    register(client, url, steps=[StepSpec("account", "Create")])
    sim.admin.config(webhook_size_limit_bytes=2000)
    account_id = client.create("accounts", {"name": "Big", "description": "d" * 1900})
    sim.admin.drain()
    [notice] = rec.notices()
    assert notice.ids == (account_id,)
    assert notice.detail["size_exceeded"] is True and notice.detail["changed_attributes"] is None
    assert rec.requests[0]["x-ms-dynamics-msg-size-exceeded"] == "true"


def test_context_shape_uses_typed_values(sim, client, receiver):
    _, url = receiver
    captured: list[dict] = []
    original = ingress.handle

    def spy(req, settings):
        captured.append(json.loads(req.get_body()))
        return original(req, settings)

    ingress.handle = spy
    try:
        register(client, url, steps=[StepSpec("account", "Create")])
        client.create("accounts", {"name": "Typed", "customertypecode": 3, "revenue": 10.5})
        sim.admin.drain()
    finally:
        ingress.handle = original
    [ctx] = captured
    attrs = {a["key"]: a["value"] for a in ctx["InputParameters"][0]["value"]["Attributes"]}
    assert attrs["customertypecode"] == {
        "__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Value": 3,
    }
    assert attrs["revenue"]["__type"].startswith("Money:") and attrs["revenue"]["Value"] == 10.5
    assert attrs["ownerid"]["__type"].startswith("EntityReference:")
    assert attrs["createdon"].startswith("/Date(")
    assert ctx["OperationCreatedOn"].startswith("/Date(") and ctx["Stage"] == 40 and ctx["Mode"] == 1
    assert ctx["OutputParameters"][0]["key"] == "id"


def test_redelivery_after_a_lost_answer_publishes_the_same_message_id(sim, client, receiver):
    rec, url = receiver
    register(client, url, steps=[StepSpec("account", "Create")])
    rec.fail_after_publish = 1  # published, but Dataverse saw a 503 and tried once more
    client.create("accounts", {"name": "Twice"})
    sim.admin.drain()
    ids = [m.message_id for _, batch in rec.publisher.sent for m in batch]
    assert len(ids) == 2 and ids[0] == ids[1]  # broker duplicate detection drops the second


def test_a_new_ingress_url_moves_the_one_endpoint_instead_of_leaving_the_old(client, receiver):
    _, url = receiver
    old = "https://old-app.example.net/api/webhooks/dataverse"
    register(client, old, steps=[StepSpec("account", "Create")])
    actions = register(client, url, steps=[StepSpec("account", "Create")])
    [endpoint_action] = [a for a in actions if a.resource == "serviceendpoint"]
    assert endpoint_action.kind == "update" and endpoint_action.changes.get("url") == url
    endpoints = list(client.query("serviceendpoints", select=["url"]))
    assert [e["url"] for e in endpoints] == [url]  # one endpoint, at the new URL
