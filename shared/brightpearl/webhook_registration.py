"""Keeps Brightpearl's webhook registrations pointing at our ingress (logic of
`syncctl webhooks register --brightpearl`).

For each wanted event there must be exactly one webhook whose URI is our ingress (function
key in `?code=`), POSTing our JSON body template (with the shared secret) with
`idSetAccepted=true` and `qualityOfService=1`. Brightpearl has no webhook update, so a hook
that differs (old key, old secret, other options) is deleted and created again. Our hooks that
point at an earlier ingress URL (our body template, with our secret or our ingress route) are
deleted too, so registering a new ingress URL replaces the old hooks instead of leaving them
firing at a dead address. Hooks of other integrations are never touched: webhooks are
account-wide (reference §10.1). Running it twice changes nothing the second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.brightpearl.models import Webhook, WebhookCreate
from shared.brightpearl.webhook import BODY_TEMPLATE_FIELDS
from shared.sync.registry import brightpearl_events

TEMPLATE_VARIABLES = {
    "accountCode": "${account-code}",
    "resourceType": "${resource-type}",
    "id": "${resource-id}",
    "lifecycleEvent": "${lifecycle-event}",
    "fullEvent": "${full-event}",
    "raisedOn": "${raised-on}",
    "brightpearlVersion": "${brightpearl-version}",
}


# Events to register: each synced entity's (its spec, shared/sync/registry.py), then those of
# entities still being built (reference §10.3: all subscribable on real accounts). contact.* is
# not subscribable, so customers rely on contact-search polling.
DEFAULT_EVENTS: tuple[str, ...] = brightpearl_events()


@dataclass(frozen=True)
class WebhookAction:
    """One step of the plan; `uri` has the function key masked."""

    kind: Literal["create", "delete", "keep"]
    event: str
    id: int | None
    uri: str


class WebhookApi(Protocol):
    def list_webhooks(self) -> list[Webhook]: ...

    def create_webhook(self, webhook: WebhookCreate) -> int: ...

    def delete_webhook(self, webhook_id: int) -> None: ...


def body_template(secret: str) -> str:
    """The body template the ingress validates (shared.brightpearl.webhook)."""
    if not secret:
        raise ValueError("secret: the webhook secret must not be empty")
    fields = dict(TEMPLATE_VARIABLES, secret=secret)
    if tuple(fields) != BODY_TEMPLATE_FIELDS:  # the ingress and we must agree on the shape
        raise RuntimeError("body template fields differ from shared.brightpearl.webhook")
    return json.dumps(fields, separators=(",", ":"))


def ingress_uri(ingress_url: str, function_key: str) -> str:
    """The ingress URL with `?code=<function key>` (replacing any code already there)."""
    parts = urlsplit(ingress_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"ingress_url: {ingress_url!r} is not an absolute http(s) URL")
    if not function_key:
        raise ValueError("function_key: must not be empty")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "code"]
    query.append(("code", function_key))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def mask_uri(uri: str) -> str:
    parts = urlsplit(uri)
    query = [(k, "***" if k == "code" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe="*"), ""))


def _destination(uri: str) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")


def sync_brightpearl_webhooks(
    client: WebhookApi,
    *,
    ingress_url: str,
    function_key: str,
    secret: str,
    events: list[str],
    dry_run: bool,
) -> list[WebhookAction]:
    """List, then create the missing, delete the stale; return what was (or would be) done."""
    if not events:
        raise ValueError("events: give at least one event such as 'order.modified'")
    uri = ingress_uri(ingress_url, function_key)
    wanted = {
        event: WebhookCreate(
            subscribe_to=event,
            http_method="POST",
            uri_template=uri,
            body_template=body_template(secret),
            content_type="application/json",
            id_set_accepted=True,
            quality_of_service=1,
        )
        for event in dict.fromkeys(events)
    }
    ours_destination = _destination(uri)
    existing = [h for h in client.list_webhooks() if _ours(h, ours_destination, secret)]

    actions: list[WebhookAction] = []
    kept: set[str] = set()
    for hook in sorted(existing, key=lambda h: h.id):
        spec = wanted.get(hook.subscribe_to)
        if spec is not None and hook.subscribe_to not in kept and _same(hook, spec):
            kept.add(hook.subscribe_to)
            actions.append(WebhookAction("keep", hook.subscribe_to, hook.id, mask_uri(hook.uri_template)))
            continue
        if not dry_run:
            client.delete_webhook(hook.id)
        actions.append(WebhookAction("delete", hook.subscribe_to, hook.id, mask_uri(hook.uri_template)))
    for event, spec in wanted.items():
        if event in kept:
            continue
        new_id = None if dry_run else client.create_webhook(spec)
        actions.append(WebhookAction("create", event, new_id, mask_uri(uri)))
    return actions


INGRESS_PATH_SUFFIX = "/webhooks/brightpearl"  # the ingress route (functions/ingress.py)


def _ours(hook: Webhook, destination: tuple[str, str, str], secret: str) -> bool:
    """Is `hook` one of ours: sent to our ingress now, or to an earlier ingress URL (a new app,
    host name or route prefix)? An earlier one is recognised by our body template (exactly our
    fields) carrying our secret, or sent to a path ending in our ingress route; another
    integration's hooks have neither and are never touched."""
    if _destination(hook.uri_template) == destination:
        return True
    try:
        body = json.loads(hook.body_template or "")
    except ValueError:
        return False
    if not isinstance(body, dict) or tuple(body) != BODY_TEMPLATE_FIELDS:
        return False
    return body.get("secret") == secret or _destination(hook.uri_template)[2].endswith(INGRESS_PATH_SUFFIX)


def _same(hook: Webhook, spec: WebhookCreate) -> bool:
    return (
        hook.uri_template == spec.uri_template
        and hook.http_method.upper() == spec.http_method
        and hook.id_set_accepted == spec.id_set_accepted
        and hook.quality_of_service == spec.quality_of_service
        and (hook.content_type or "").lower() == (spec.content_type or "").lower()
        and _same_json(hook.body_template, spec.body_template)
    )


def _same_json(left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return left == right
    try:
        return bool(json.loads(left) == json.loads(right))
    except ValueError:
        return left == right
