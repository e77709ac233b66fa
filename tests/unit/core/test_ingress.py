"""The Brightpearl webhook ingress: valid deliveries publish notices; bad ones publish nothing."""

import json
from pathlib import Path

import azure.functions as func
import pytest

from functions import ingress
from shared import runtime
from shared.bus.port import BusError
from shared.events import Envelope
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
VALUES = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
SECRET = VALUES["BRIGHTPEARL_WEBHOOK_SECRET"]


class RecordingPublisher:
    def __init__(self, fail: bool = False):
        self.sent: list[tuple[str, list]] = []
        self.fail = fail

    def publish(self, topic, messages):
        if self.fail:
            raise BusError("namespace unreachable")
        self.sent.append((topic, list(messages)))

    def publish_scheduled(self, topic, messages, enqueue_at):
        self.publish(topic, messages)

    def check(self):
        if self.fail:
            raise BusError("namespace unreachable")

    def close(self):
        pass


class HealthyStore:
    def check(self):
        return None


@pytest.fixture
def publisher():
    pub = RecordingPublisher()
    settings = load_settings(dict(VALUES, WEBHOOK_MAX_IDS="300", WEBHOOK_MAX_BODY_BYTES="2048"))
    with runtime.override(settings=settings, publisher=pub, state_store=HealthyStore()):
        yield pub


def delivery(**overrides):
    body = {
        "accountCode": "sandbox",
        "resourceType": "contact",
        "id": "1-3,7",
        "lifecycleEvent": "modified",
        "fullEvent": "contact.modified",
        "raisedOn": "2026-11-01T10:20:41.691Z",
        "brightpearlVersion": "4.95.2647",
        "secret": SECRET,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def post(payload, *, raw: bytes | None = None, content_type="application/json"):
    data = raw if raw is not None else json.dumps(payload).encode()
    req = func.HttpRequest("POST", "http://127.0.0.1:7071/api/webhooks/brightpearl",
                           headers={"content-type": content_type}, body=data)
    response = ingress.brightpearl_webhook(req)
    return response.status_code, json.loads(response.get_body() or b"{}")


def test_a_valid_delivery_publishes_one_notice_per_chunk(publisher):
    status, body = post(delivery())
    assert status == 202 and body["accepted"] == 4
    [(topic, messages)] = publisher.sent
    assert topic == "brightpearl-changes"
    [message] = messages
    env = Envelope.from_body(message.body)
    assert env.notice.ids == ("1", "2", "3", "7")
    assert env.notice.entity == "contact" and env.notice.operation == "updated"
    assert message.application_properties["entity"] == "contact"
    assert message.message_id == body["notices"][0]


def test_large_id_sets_are_split_into_notices(publisher):
    status, body = post(delivery(id="1-250"))
    assert status == 202 and body["accepted"] == 250
    [(_, messages)] = publisher.sent
    assert [len(Envelope.from_body(m.body).notice.ids) for m in messages] == [100, 100, 50]


def test_a_repeated_delivery_yields_the_same_message_ids(publisher):
    post(delivery())
    post(delivery())
    first, second = publisher.sent
    assert [m.message_id for m in first[1]] == [m.message_id for m in second[1]]
    post(delivery(raisedOn="2026-11-01T10:25:00Z"))
    assert publisher.sent[2][1][0].message_id != first[1][0].message_id


@pytest.mark.parametrize(
    ("payload", "raw", "status", "code", "mentions"),
    [
        (None, b"{not json", 400, "MalformedJson", "JSON"),
        (None, b"[]", 400, "MalformedJson", "object"),
        (delivery(secret="wrong-secret-value"), None, 401, "BadSecret", "secret"),
        (delivery(secret=None), None, 401, "BadSecret", "secret"),
        (delivery(accountCode="someoneelse"), None, 403, "UnknownAccount", "accountCode"),
        (delivery(id="5-1"), None, 400, "InvalidIdSet", "descending"),
        (delivery(id="1-301"), None, 400, "InvalidIdSet", "more than 300"),
        (delivery(id="abc"), None, 400, "InvalidIdSet", "'id'"),
        (delivery(lifecycleEvent="exploded"), None, 400, "InvalidField", "lifecycleEvent"),
        (delivery(resourceType=None), None, 400, "InvalidField", "resourceType"),
        (delivery(raisedOn="yesterday"), None, 400, "InvalidField", "raisedOn"),
        (delivery(extra="field"), None, 400, "InvalidField", "extra"),
        (None, b"", 400, "EmptyBody", "empty"),
        (None, b"{" + b" " * 3000 + b"}", 413, "BodyTooLarge", "exceeds"),
    ],
)
def test_bad_deliveries_get_a_4xx_naming_the_problem_and_publish_nothing(
    publisher, payload, raw, status, code, mentions
):
    got_status, body = post(payload, raw=raw)
    assert got_status == status
    assert body["error"] == code and mentions in body["message"]
    assert publisher.sent == []


def test_wrong_content_type_is_refused(publisher):
    status, _ = post(delivery(), content_type="text/plain")
    assert status == 415 and publisher.sent == []


def test_bus_outage_answers_503_so_brightpearl_retries():
    settings = load_settings(dict(VALUES))
    with runtime.override(settings=settings, publisher=RecordingPublisher(fail=True)):
        status, body = post(delivery())
    assert status == 503 and body["error"] == "BusUnavailable"


def test_missing_secret_refuses_every_delivery():
    settings = load_settings({k: v for k, v in VALUES.items() if k != "BRIGHTPEARL_WEBHOOK_SECRET"})
    pub = RecordingPublisher()
    with runtime.override(settings=settings, publisher=pub):
        status, body = post(delivery())
    assert status == 503 and "BRIGHTPEARL_WEBHOOK_SECRET" in body["message"] and pub.sent == []


def test_health_reports_each_dependency(publisher):
    response = ingress.health(func.HttpRequest("GET", "http://127.0.0.1/api/health", body=b""))
    body = json.loads(response.get_body())
    assert response.status_code == 200
    assert body["checks"] == {"bus": {"status": "ok"}, "store": {"status": "ok"}}
    settings = load_settings(dict(VALUES))
    with runtime.override(settings=settings, publisher=RecordingPublisher(fail=True),
                          state_store=HealthyStore()):
        response = ingress.health(func.HttpRequest("GET", "http://127.0.0.1/api/health", body=b""))
    body = json.loads(response.get_body())
    assert response.status_code == 503 and body["checks"]["bus"]["status"] == "error"
