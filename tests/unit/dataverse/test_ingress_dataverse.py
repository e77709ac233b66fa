"""The Dataverse webhook function: authentication, validation, publishing (and nothing on reject)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import azure.functions as func
import pytest

import functions.ingress_dataverse as ingress
from shared.bus.port import BusError, OutgoingMessage
from shared.events import Envelope
from shared.settings import load_settings

SECRET = "s3cr3t-webhook-value-0123456789"
ORG = "a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
SAMPLES = Path(__file__).parent / "samples"


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, list[OutgoingMessage]]] = []
        self.fail = fail

    def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if self.fail:
            raise BusError("bus down")
        self.sent.append((topic, list(messages)))

    def publish_scheduled(self, topic, messages, enqueue_at) -> None:  # pragma: no cover - unused
        raise AssertionError("not expected")

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


def settings(**extra: str):
    env = {
        "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
        "BRIGHTPEARL_ACCOUNT": "acme",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "BUS_BACKEND": "local",
        "DATAVERSE_WEBHOOK_SECRET": SECRET,
        "DATAVERSE_ORGANIZATION_ID": ORG,
        **extra,
    }
    return load_settings(env)


@pytest.fixture
def publisher(monkeypatch):
    recorder = RecordingPublisher()
    monkeypatch.setattr(ingress, "publisher_factory", lambda _settings: recorder)
    return recorder


def request(body: bytes, headers: dict[str, str] | None = None, params: dict[str, str] | None = None):
    base = {
        "Content-Type": "application/json; charset=utf-8",
        "x-bpi-webhook-secret": SECRET,
        "x-ms-dynamics-entity-name": "contact",
        "x-ms-dynamics-request-name": "Update",
    }
    if headers is not None:
        base.update(headers)
    base = {k: v for k, v in base.items() if v is not None}
    return func.HttpRequest(
        "POST", "http://localhost:7071/api/webhooks/dataverse", headers=base, params=params or {}, body=body
    )


def test_blueprint_declares_the_route_with_function_auth():
    [function] = ingress.bp._function_builders
    fn = function.build()
    trigger = fn.get_trigger()
    assert trigger.route == "webhooks/dataverse"
    assert trigger.auth_level == func.AuthLevel.FUNCTION
    assert [m.value if hasattr(m, "value") else m for m in trigger.methods] == ["POST"]


def test_valid_webhook_is_published_as_one_change_notice(publisher):
    resp = ingress.handle(request((SAMPLES / "update_contact.json").read_bytes()), settings())
    assert resp.status_code == 202
    [(topic, [message])] = publisher.sent
    assert topic == "dataverse-changes"
    envelope = Envelope.from_body(message.body)
    assert envelope.notice.entity == "contact" and envelope.notice.operation == "updated"
    assert message.application_properties["source_system"] == "dataverse"
    assert json.loads(resp.get_body())["notices"] == [message.message_id]


def test_secret_in_the_query_string_is_refused(publisher):
    # URL logs keep query strings: the secret counts only as a header.
    req = request(
        (SAMPLES / "update_contact.json").read_bytes(),
        {"x-bpi-webhook-secret": None},
        params={"x-bpi-webhook-secret": SECRET},
    )
    resp = ingress.handle(req, settings())
    body = json.loads(resp.get_body())
    assert resp.status_code == 401 and body["error"] == "Unauthenticated"
    assert "query string" in body["message"] and SECRET not in body["message"]
    assert publisher.sent == []


def test_the_function_key_in_code_does_not_stand_in_for_the_secret(publisher):
    # WebhookKey auth sends ?code=<function key>: that is the host's key, not our secret.
    req = request(
        (SAMPLES / "update_contact.json").read_bytes(),
        {"x-bpi-webhook-secret": None},
        params={"code": SECRET},
    )
    assert ingress.handle(req, settings()).status_code == 401 and publisher.sent == []


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"x-bpi-webhook-secret": None}, 401, "Unauthenticated"),
        ({"x-bpi-webhook-secret": "wrong-secret-wrong-secret"}, 401, "Unauthenticated"),
        ({"Content-Type": "text/xml"}, 415, "UnsupportedMediaType"),
        ({"Content-Type": "application/x-notjson"}, 415, "UnsupportedMediaType"),
        ({"Content-Type": "application/jsonp"}, 415, "UnsupportedMediaType"),
        ({"x-ms-dynamics-entity-name": "account"}, 400, "InvalidPayload"),
    ],
)
def test_rejected_requests_publish_nothing(publisher, headers, status, code):
    resp = ingress.handle(request((SAMPLES / "update_contact.json").read_bytes(), headers), settings())
    assert resp.status_code == status
    assert json.loads(resp.get_body())["error"] == code
    assert publisher.sent == []


@pytest.mark.parametrize(("body", "status"), [(b"", 400), (b"{", 400), (b'{"MessageName": "Update"}', 400)])
def test_malformed_bodies_publish_nothing(publisher, body, status):
    resp = ingress.handle(request(body), settings())
    assert resp.status_code == status
    assert "message" in json.loads(resp.get_body())
    assert publisher.sent == []


def test_unknown_organization_is_forbidden(publisher):
    resp = ingress.handle(
        request((SAMPLES / "update_contact.json").read_bytes()),
        settings(DATAVERSE_ORGANIZATION_ID="00000000-0000-4000-8000-000000000009"),
    )
    assert resp.status_code == 403 and publisher.sent == []


def test_oversized_body_is_refused(publisher):
    body = (SAMPLES / "update_contact.json").read_bytes()
    resp = ingress.handle(request(body + b" " * 2048), settings(WEBHOOK_MAX_BODY_BYTES="2048"))
    assert resp.status_code == 413 and publisher.sent == []


def test_unset_secret_refuses_all_deliveries(publisher):
    env = settings()
    env.webhooks.dataverse_secret = None
    resp = ingress.handle(request((SAMPLES / "update_contact.json").read_bytes()), env)
    assert resp.status_code == 503 and publisher.sent == []


def test_bus_outage_answers_503_so_dataverse_retries(monkeypatch):
    monkeypatch.setattr(ingress, "publisher_factory", lambda _s: RecordingPublisher(fail=True))
    resp = ingress.handle(request((SAMPLES / "update_contact.json").read_bytes()), settings())
    assert resp.status_code == 503
