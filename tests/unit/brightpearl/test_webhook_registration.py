"""Webhook registration planning against an in-memory webhook API."""

from __future__ import annotations

import json

import pytest

from shared.brightpearl.models import Webhook, WebhookCreate
from shared.brightpearl.webhook import parse_brightpearl_webhook
from shared.brightpearl.webhook_registration import (
    DEFAULT_EVENTS,
    body_template,
    ingress_uri,
    mask_uri,
    sync_brightpearl_webhooks,
)

SECRET = "0123456789abcdef-secret"
INGRESS = "https://func.azurewebsites.net/api/brightpearl"


class FakeApi:
    def __init__(self) -> None:
        self.hooks: dict[int, Webhook] = {}
        self.next_id = 1
        self.calls: list[str] = []

    def list_webhooks(self) -> list[Webhook]:
        self.calls.append("list")
        return list(self.hooks.values())

    def create_webhook(self, webhook: WebhookCreate) -> int:
        self.calls.append(f"create {webhook.subscribe_to}")
        hook = Webhook.model_validate({**webhook.wire(), "id": self.next_id})
        self.hooks[self.next_id] = hook
        self.next_id += 1
        return hook.id

    def delete_webhook(self, webhook_id: int) -> None:
        self.calls.append(f"delete {webhook_id}")
        del self.hooks[webhook_id]


def test_body_template_is_exactly_what_the_ingress_validates():
    template = body_template(SECRET)
    assert template == (
        '{"accountCode":"${account-code}","resourceType":"${resource-type}","id":"${resource-id}",'
        '"lifecycleEvent":"${lifecycle-event}","fullEvent":"${full-event}","raisedOn":"${raised-on}",'
        '"brightpearlVersion":"${brightpearl-version}","secret":"' + SECRET + '"}'
    )
    rendered = (
        template.replace("${account-code}", "acme")
        .replace("${resource-type}", "order")
        .replace("${resource-id}", "5-7")
        .replace("${lifecycle-event}", "modified")
        .replace("${full-event}", "order.modified.order-status")
        .replace("${raised-on}", "2026-07-01T10:00:00.000Z")
        .replace("${brightpearl-version}", "4.95.2647")
    )
    [notice] = parse_brightpearl_webhook(rendered.encode(), account="acme", secret=SECRET, max_ids=10)
    assert notice.ids == ("5", "6", "7")
    with pytest.raises(ValueError, match="secret"):
        body_template("")


def test_uri_carries_the_function_key_and_masks_it():
    uri = ingress_uri(INGRESS + "?code=old&x=1", "k3y")
    assert uri == INGRESS + "?x=1&code=k3y"
    assert mask_uri(uri) == INGRESS + "?x=1&code=***"
    with pytest.raises(ValueError, match="ingress_url"):
        ingress_uri("func.azurewebsites.net/api", "k")
    with pytest.raises(ValueError, match="function_key"):
        ingress_uri(INGRESS, "")


def test_plan_create_keep_delete_and_idempotence():
    api = FakeApi()
    events = ["order.modified.order-status", "product.modified"]
    first = sync_brightpearl_webhooks(
        api, ingress_url=INGRESS, function_key="k", secret=SECRET, events=events, dry_run=False
    )
    assert [(a.kind, a.event, a.id) for a in first] == [
        ("create", "order.modified.order-status", 1),
        ("create", "product.modified", 2),
    ]
    assert all(a.uri == INGRESS + "?code=***" for a in first)
    hook = api.hooks[1]
    assert (hook.http_method, hook.content_type, hook.id_set_accepted, hook.quality_of_service) == (
        "POST",
        "application/json",
        True,
        1,
    )
    assert json.loads(hook.body_template or "")["secret"] == SECRET

    second = sync_brightpearl_webhooks(
        api, ingress_url=INGRESS, function_key="k", secret=SECRET, events=events, dry_run=False
    )
    assert [a.kind for a in second] == ["keep", "keep"]
    assert [c for c in api.calls if c != "list"] == [
        "create order.modified.order-status",
        "create product.modified",
    ]

    api.create_webhook(
        WebhookCreate(
            subscribeTo="product.modified",
            uriTemplate=INGRESS + "?code=k",
            bodyTemplate=body_template(SECRET),
        )
    )  # a duplicate
    fewer = sync_brightpearl_webhooks(
        api, ingress_url=INGRESS, function_key="k", secret=SECRET, events=["product.modified"], dry_run=True
    )
    assert sorted((a.kind, a.id) for a in fewer) == [("delete", 1), ("delete", 3), ("keep", 2)]
    assert len(api.hooks) == 3  # dry run
    with pytest.raises(ValueError, match="events"):
        sync_brightpearl_webhooks(
            api, ingress_url=INGRESS, function_key="k", secret=SECRET, events=[], dry_run=True
        )


def test_default_events_register_cleanly():
    api = FakeApi()
    done = sync_brightpearl_webhooks(
        api, ingress_url=INGRESS, function_key="k", secret=SECRET, events=list(DEFAULT_EVENTS), dry_run=False
    )
    assert [a.kind for a in done] == ["create"] * len(DEFAULT_EVENTS)
    assert not any(e.startswith("contact") or e == "order.created" for e in DEFAULT_EVENTS)


def test_a_new_ingress_url_replaces_our_old_hooks_and_leaves_other_integrations_alone():
    api = FakeApi()
    old_ingress = "https://old-app.azurewebsites.net/api/webhooks/brightpearl"
    events = ["order.modified.order-status", "product.modified"]
    sync_brightpearl_webhooks(
        api, ingress_url=old_ingress, function_key="k", secret=SECRET, events=events, dry_run=False
    )
    rotated = api.create_webhook(  # ours, from before a secret rotation: recognised by the route
        WebhookCreate(
            subscribeTo="goods-out-note.created",
            uriTemplate="https://older.example.net/api/webhooks/brightpearl?code=x",
            bodyTemplate=body_template("an-older-secret"),
        )
    )
    foreign = api.create_webhook(
        WebhookCreate(
            subscribeTo="product.modified", uriTemplate="https://other-integration.example.com/hook"
        )
    )
    lookalike = api.create_webhook(  # someone else's endpoint with a body of its own
        WebhookCreate(
            subscribeTo="order.modified.order-status",
            uriTemplate="https://other-integration.example.com/webhooks/brightpearl",
            bodyTemplate='{"id":"${resource-id}"}',
        )
    )
    new_ingress = "https://new-app.azurewebsites.net/api/webhooks/brightpearl"
    actions = sync_brightpearl_webhooks(
        api, ingress_url=new_ingress, function_key="k2", secret=SECRET, events=events, dry_run=False
    )
    assert sorted((a.kind, a.id) for a in actions if a.kind == "delete") == [
        ("delete", 1),
        ("delete", 2),
        ("delete", rotated),
    ]
    assert sorted(a.event for a in actions if a.kind == "create") == sorted(events)
    remaining = {h.id: h.uri_template for h in api.hooks.values()}
    assert remaining[foreign] == "https://other-integration.example.com/hook"
    assert lookalike in remaining
    ours = [uri for uri in remaining.values() if uri.startswith("https://new-app")]
    assert len(ours) == 2 and not [uri for uri in remaining.values() if "old" in uri]
