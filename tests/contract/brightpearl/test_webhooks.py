"""Webhooks end to end: registration through the client, user changes in the simulator,
templated deliveries to a loopback receiver, QoS retries, delivery faults."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError
from shared.brightpearl.models import WebhookCreate
from shared.brightpearl.webhook import parse_brightpearl_webhook
from shared.brightpearl.webhook_registration import body_template, sync_brightpearl_webhooks

from .conftest import Receiver, wait_until

SECRET = "s3cret-webhook-value-0123"
KEY = "function-key-abc"


def contacts(sim: Simulator) -> list[int]:
    with sim.state.lock:
        return sorted(sim.state.contacts)


def deliveries(sim: Simulator) -> list[dict]:
    return sim.dispatcher.log.snapshot()


def hook(receiver: Receiver, event: str, qos: int = 1, id_set: bool = True) -> WebhookCreate:
    return WebhookCreate(
        subscribeTo=event,
        uriTemplate=f"{receiver.url}/api/bp?code={KEY}&e=${{full-event}}",
        bodyTemplate=body_template(SECRET),
        idSetAccepted=id_set,
        qualityOfService=qos,
    )


def test_contact_change_reaches_the_receiver_rendered_from_the_templates(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client
):
    sim.configure(contact_webhooks=True)  # real accounts cannot subscribe to contact.* (reference §10.3)
    actions = sync_brightpearl_webhooks(
        client,
        ingress_url=f"{receiver.url}/api/brightpearl",
        function_key=KEY,
        secret=SECRET,
        events=["contact.modified"],
        dry_run=False,
    )
    assert [a.kind for a in actions] == ["create"]
    cid = contacts(sim)[4]
    admin.post(f"/contacts/{cid}/change", json={"firstName": "Renamed"}).raise_for_status()

    assert wait_until(lambda: len(receiver.received()) == 1)
    request = receiver.received()[0]
    assert request["method"] == "POST" and request["path"] == "/api/brightpearl"
    assert request["query"] == {"code": KEY} and request["headers"]["content-type"] == "application/json"
    body = json.loads(request["body"])
    assert body["accountCode"] == "sandbox" and body["resourceType"] == "contact" and body["id"] == str(cid)
    assert (body["lifecycleEvent"], body["fullEvent"], body["secret"]) == (
        "modified",
        "contact.modified",
        SECRET,
    )
    assert body["brightpearlVersion"] == sim.config.brightpearl_version
    # The ingress's own parser accepts exactly what the simulator sent.
    [notice] = parse_brightpearl_webhook(request["body"], account="sandbox", secret=SECRET, max_ids=100)
    assert notice.ids == (str(cid),) and notice.entity == "contact" and notice.operation == "updated"


def test_id_set_accepted_batches_ids_and_uri_variables_render(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client
):
    sim.configure(contact_webhooks=True, webhook_batch_seconds=0.3)
    client.create_webhook(hook(receiver, "contact"))  # a prefix matches every contact event
    ids = contacts(sim)[:3]
    for cid in ids:
        admin.post(f"/contacts/{cid}/change", json={"lastName": "Batch"}).raise_for_status()

    assert wait_until(lambda: sim.dispatcher.idle() and len(receiver.received()) >= 1)
    [request] = receiver.received()
    assert json.loads(request["body"])["id"] == f"{ids[0]}-{ids[2]}"
    assert request["query"]["e"] == "contact.modified"


def test_one_call_per_id_without_id_set_accepted(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client
):
    sim.configure(contact_webhooks=True, webhook_batch_seconds=0.2)
    client.create_webhook(hook(receiver, "contact.modified", id_set=False))
    ids = contacts(sim)[:2]
    for cid in ids:
        admin.post(f"/contacts/{cid}/change", json={"lastName": "Single"}).raise_for_status()
    assert wait_until(lambda: len(receiver.received()) == 2)
    assert sorted(json.loads(r["body"])["id"] for r in receiver.received()) == [str(i) for i in ids]


def test_order_events_from_api_writes(client: BrightpearlClient, sim: Simulator, receiver: Receiver):
    client.create_webhook(hook(receiver, "order.modified.order-status"))
    client.create_webhook(hook(receiver, "sales-order.created"))
    order_id = min(sim.state.orders)
    client.set_order_status(order_id, 3)
    assert wait_until(lambda: len(receiver.received()) == 1)
    body = json.loads(receiver.received()[0]["body"])
    assert (body["fullEvent"], body["id"], body["resourceType"]) == (
        "order.modified.order-status",
        str(order_id),
        "order",
    )


def test_qos1_retries_a_failing_receiver_until_it_succeeds(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver
):
    sim.configure(webhook_backoff_seconds=0.05, webhook_max_attempts=5)
    client.create_webhook(hook(receiver, "order.modified.order-status", qos=1))
    receiver.script = [500, 502, 200]
    client.set_order_status(min(sim.state.orders), 3)

    assert wait_until(lambda: len(receiver.received()) == 3 and sim.dispatcher.idle())
    assert [r["status"] for r in receiver.received()] == [500, 502, 200]
    assert [d["outcome"] for d in deliveries(sim)] == ["retrying", "retrying", "delivered"]
    assert len({r["body"] for r in receiver.received()}) == 1  # the same request each time


def test_qos1_gives_up_on_4xx_and_qos0_retries_only_on_503(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver
):
    sim.configure(webhook_backoff_seconds=0.05)
    webhook_id = client.create_webhook(hook(receiver, "order.modified.order-status", qos=1))
    receiver.script = [400]
    client.set_order_status(min(sim.state.orders), 3)
    assert wait_until(lambda: len(deliveries(sim)) == 1 and sim.dispatcher.idle())
    assert deliveries(sim)[0]["outcome"] == "failed"

    client.delete_webhook(webhook_id)
    client.create_webhook(hook(receiver, "order.modified.order-status", qos=0))
    receiver.script = [500]
    client.set_order_status(min(sim.state.orders), 2)
    assert wait_until(lambda: len(deliveries(sim)) == 2 and sim.dispatcher.idle())
    assert deliveries(sim)[1]["outcome"] == "failed"  # QoS 0: a 500 is not retried

    receiver.script = [503]
    client.set_order_status(min(sim.state.orders), 3)
    assert wait_until(lambda: len(deliveries(sim)) == 4 and sim.dispatcher.idle())
    assert [d["outcome"] for d in deliveries(sim)[2:]] == ["retrying", "delivered"]  # but a 503 is


def test_delivery_faults_drop_and_duplicate(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver, admin: httpx.Client
):
    client.create_webhook(hook(receiver, "order.modified.order-status"))
    admin.post("/webhooks/faults", json={"drop": 1, "duplicate": 1}).raise_for_status()
    order_id = min(sim.state.orders)
    client.set_order_status(order_id, 3)  # dropped
    assert wait_until(lambda: sim.dispatcher.idle() and len(deliveries(sim)) == 1)
    client.set_order_status(order_id, 2)  # delivered twice
    assert wait_until(lambda: len(receiver.received()) == 2)
    assert [d["outcome"] for d in deliveries(sim)] == ["dropped", "delivered", "delivered"]


def test_simulate_endpoint_and_subscription_rules(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver
):
    webhook_id = client.create_webhook(hook(receiver, "product.modified.on-hand-modified", id_set=False))
    answer = client.request(
        "POST",
        f"/integration-service/webhook/{webhook_id}/simulate",
        json={
            "testData": {
                "${account-code}": "sandbox",
                "${resource-type}": "product",
                "${resource-id}": "1-3",
                "${lifecycle-event}": "modified",
                "${resource-specifier}": "on-hand-modified",
                "${raised-on}": "2026-01-01T01:01:01Z",
                "${brightpearl-version}": "4.23.1",
            }
        },
    )
    assert answer.response == 3  # one call per id without idSetAccepted
    assert wait_until(lambda: len(receiver.received()) == 3)
    assert sorted(json.loads(r["body"])["id"] for r in receiver.received()) == ["1", "2", "3"]

    with pytest.raises(BrightpearlValidationError, match="contact events cannot be subscribed"):
        client.create_webhook(hook(receiver, "contact.modified"))
    with pytest.raises(BrightpearlValidationError, match="bodyTemplate and contentType are required"):
        client.request(
            "POST",
            "/integration-service/webhook",
            json={"subscribeTo": "product", "httpMethod": "POST", "uriTemplate": receiver.url},
        )


def test_registration_is_idempotent_and_removes_stale_hooks(
    client: BrightpearlClient, sim: Simulator, receiver: Receiver
):
    ingress = "https://func-sync.azurewebsites.net/api/brightpearl"
    events = ["order.modified.order-status", "goods-out-note.modified.shipped", "product.modified"]
    foreign = client.create_webhook(
        WebhookCreate(
            subscribeTo="product.modified",
            uriTemplate=f"{receiver.url}/x",
            bodyTemplate="{}",
            qualityOfService=0,
        )
    )
    old_key = client.create_webhook(
        WebhookCreate(
            subscribeTo="order.modified.order-status",
            uriTemplate=f"{ingress}?code=OLD",
            bodyTemplate=body_template(SECRET),
        )
    )
    unwanted = client.create_webhook(
        WebhookCreate(
            subscribeTo="sales-order.created",
            uriTemplate=f"{ingress}?code={KEY}",
            bodyTemplate=body_template(SECRET),
        )
    )

    plan = sync_brightpearl_webhooks(
        client, ingress_url=ingress, function_key=KEY, secret=SECRET, events=events, dry_run=True
    )
    assert sorted((a.kind, a.event) for a in plan) == [
        ("create", "goods-out-note.modified.shipped"),
        ("create", "order.modified.order-status"),
        ("create", "product.modified"),
        ("delete", "order.modified.order-status"),
        ("delete", "sales-order.created"),
    ]
    assert all("code=***" in a.uri and KEY not in a.uri and "OLD" not in a.uri for a in plan)
    assert len(client.list_webhooks()) == 3  # a dry run changes nothing

    done = sync_brightpearl_webhooks(
        client, ingress_url=ingress, function_key=KEY, secret=SECRET, events=events, dry_run=False
    )
    assert {a.id for a in done if a.kind == "delete"} == {old_key, unwanted}
    hooks = {h.id: h for h in client.list_webhooks()}
    assert foreign in hooks  # another integration's hook is left alone
    ours = [h for h in hooks.values() if h.uri_template.startswith(ingress)]
    assert sorted(h.subscribe_to for h in ours) == sorted(events)
    assert all(
        h.id_set_accepted
        and h.quality_of_service == 1
        and h.http_method == "POST"
        and h.content_type == "application/json"
        and h.uri_template == f"{ingress}?code={KEY}"
        for h in ours
    )
    assert json.loads(ours[0].body_template or "")["secret"] == SECRET

    again = sync_brightpearl_webhooks(
        client, ingress_url=ingress, function_key=KEY, secret=SECRET, events=events, dry_run=False
    )
    assert sorted(a.kind for a in again) == ["keep", "keep", "keep"]
    assert len(client.list_webhooks()) == 4

    rotated = sync_brightpearl_webhooks(
        client,
        ingress_url=ingress,
        function_key=KEY,
        secret="another-secret-1234",
        events=events,
        dry_run=False,
    )
    assert (
        sorted(a.kind for a in rotated) == ["create"] * 3 + ["delete"] * 3
    )  # a new secret replaces each hook
