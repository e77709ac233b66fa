"""Validates Brightpearl webhook deliveries (the body template we register) into change notices.

Brightpearl cannot send custom headers or sign requests (reference §10.4), so the body
template we register carries a shared secret next to the template variables:

    {"accountCode":"${account-code}","resourceType":"${resource-type}","id":"${resource-id}",
     "lifecycleEvent":"${lifecycle-event}","fullEvent":"${full-event}","raisedOn":"${raised-on}",
     "brightpearlVersion":"${brightpearl-version}","secret":"<BRIGHTPEARL_WEBHOOK_SECRET>"}

Every check fails with `WebhookRejected`, which carries the HTTP status, a reason code and a
message naming the field, so the ingress answers 4xx and publishes nothing.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.brightpearl.idset import IdSetError, chunk_ids, parse_id_set
from shared.events import ChangeNotice
from shared.jsonbody import JsonBodyError, load_json_body
from shared.webhooks import WebhookRejected

__all__ = ["BrightpearlWebhook", "WebhookRejected", "parse_brightpearl_webhook"]

BODY_TEMPLATE_FIELDS = (
    "accountCode",
    "resourceType",
    "id",
    "lifecycleEvent",
    "fullEvent",
    "raisedOn",
    "brightpearlVersion",
    "secret",
)

_OPERATIONS = {"created": "created", "modified": "updated", "destroyed": "deleted"}


class BrightpearlWebhook(BaseModel):
    """One delivery rendered from our body template."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    account_code: str = Field(alias="accountCode", min_length=1, max_length=64)
    resource_type: str = Field(alias="resourceType", pattern=r"^[a-z][a-z0-9-]{0,63}$")
    id: str = Field(min_length=1, max_length=20_000)
    lifecycle_event: Literal["created", "modified", "destroyed"] = Field(alias="lifecycleEvent")
    full_event: str = Field(alias="fullEvent", pattern=r"^[a-z][a-z0-9.-]{0,127}$")
    raised_on: datetime = Field(alias="raisedOn")
    brightpearl_version: str | None = Field(None, alias="brightpearlVersion", max_length=64)
    secret: str = Field(min_length=1, max_length=512)


def parse_brightpearl_webhook(
    body: bytes,
    *,
    account: str,
    secret: str,
    max_ids: int,
    ids_per_notice: int = 100,
) -> list[ChangeNotice]:
    """Authenticate and validate one delivery; return its change notices (ids chunked)."""
    try:
        raw: Any = load_json_body(body)
    except JsonBodyError as exc:
        raise WebhookRejected(400, "MalformedJson", str(exc)) from exc
    if not isinstance(raw, dict):
        raise WebhookRejected(400, "MalformedJson", "body must be a JSON object")

    # Authenticate before describing anything else about the body.
    given = raw.get("secret")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8")):
        raise WebhookRejected(401, "BadSecret", "field 'secret' is missing or wrong")

    try:
        hook = BrightpearlWebhook.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise WebhookRejected(400, "InvalidField", f"field '{where}': {err['msg']}") from exc

    if hook.account_code != account:
        raise WebhookRejected(
            403, "UnknownAccount", f"field 'accountCode': account {hook.account_code!r} is not served here"
        )
    if hook.raised_on.tzinfo is None:
        raise WebhookRejected(400, "InvalidField", "field 'raisedOn': time zone missing")
    try:
        ids = parse_id_set(hook.id, max_ids=max_ids)
    except IdSetError as exc:
        raise WebhookRejected(400, "InvalidIdSet", f"field 'id': {exc}") from exc

    operation = _OPERATIONS[hook.lifecycle_event]
    try:
        raised_on = hook.raised_on.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise WebhookRejected(
            400, "InvalidField", "field 'raisedOn': the time is out of range once converted to UTC"
        ) from None
    return [
        ChangeNotice(
            system="brightpearl",
            entity=hook.resource_type,
            ids=tuple(str(i) for i in chunk),
            operation=operation,  # type: ignore[arg-type]
            observed_at=raised_on,
            source=f"/brightpearl/{hook.account_code}",
            origin="webhook",
            version=f"{hook.full_event}@{raised_on.isoformat()}",
            detail={"event": hook.full_event},
        )
        for chunk in chunk_ids(ids, ids_per_notice)
    ]
