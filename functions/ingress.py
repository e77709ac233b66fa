"""HTTP ingress: Brightpearl webhooks in, change notices out; and the health endpoint.

The webhook answers in milliseconds and never calls Brightpearl: it authenticates (function
key, checked by the host, plus the shared secret in the body), validates strictly, publishes
change notices to the brightpearl-changes topic and answers 202. Anything rejected gets a
4xx JSON error naming the problem and publishes nothing. When the bus is unreachable it
answers 503 so Brightpearl retries the delivery (both QoS levels retry on 503).

Notices of an entity no flow consumes yet (shared/routing.py; e.g. a product or order
webhook) are not published, where no subscription would take them and Service Bus would drop
them silently: each id is audited as `ignored` (reason NoConsumingFlow) and the 202 answer
says so. Both webhooks share this (`ignore_unconsumed`).
"""

from __future__ import annotations

import json

import azure.functions as func

from shared import __version__, runtime
from shared.brightpearl.webhook import WebhookRejected, parse_brightpearl_webhook
from shared.bus.port import BusError
from shared.events import ChangeNotice, Envelope
from shared.jsonbody import is_json_media_type
from shared.routing import IGNORED_REASON, is_consumed, routed
from shared.store.audit import AuditEntry, AuditResult
from shared.store.errors import StoreError
from shared.telemetry import (
    correlation,
    get_logger,
    notices_ignored,
    notices_published,
    webhooks_rejected,
)

bp = func.Blueprint()
log = get_logger("ingress")
INGRESS_FLOW = "ingress"  # the audit flow name of notices the ingress itself settles


def json_response(status: int, payload: dict) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload), status_code=status, mimetype="application/json", charset="utf-8"
    )


def reject(system: str, error: WebhookRejected) -> func.HttpResponse:
    webhooks_rejected.add(1, {"system": system, "reason": error.code})
    log.warning("%s webhook rejected: %s (%s)", system, error.code, error.message)
    return json_response(error.status, error.as_dict())


def read_body(req: func.HttpRequest, max_bytes: int) -> bytes:
    """The request body, or WebhookRejected for a wrong content type or an oversized body."""
    content_type = req.headers.get("content-type") or ""
    if not is_json_media_type(content_type):
        raise WebhookRejected(415, "UnsupportedMediaType", f"content type {content_type!r} is not JSON")
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise WebhookRejected(413, "BodyTooLarge", f"body of {declared} bytes exceeds {max_bytes} bytes")
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise WebhookRejected(413, "BodyTooLarge", f"body of {len(body)} bytes exceeds {max_bytes} bytes")
    if not body:
        raise WebhookRejected(400, "EmptyBody", "body is empty; a JSON object is required")
    return body


def publish_envelopes(topic: str, envelopes: list[Envelope], system: str) -> func.HttpResponse | None:
    """Publish; return a 503 response if the bus is unavailable (the sender should retry)."""
    try:
        runtime.publisher().publish(topic, [e.to_message() for e in envelopes])
    except BusError as exc:
        log.error("%s webhook not published, bus unavailable: %s", system, type(exc).__name__)
        return json_response(503, {"error": "BusUnavailable",
                                    "message": "the message bus is unavailable; retry later"})
    notices_published.add(len(envelopes), {"system": system, "origin": "webhook"})
    return None


def ignore_unconsumed(system: str, notices: list[ChangeNotice]) -> func.HttpResponse | None:
    """None when a flow consumes the notices' entity (publish them). Otherwise audit every id as
    ignored and return the 202 answer saying so, or 503 if the audit cannot be written (the
    sender retries rather than the notice vanishing)."""
    entity = notices[0].entity
    if is_consumed(system, entity):
        return None
    ids = [record_id for notice in notices for record_id in notice.ids]
    message = f"no flow consumes {system} {entity} notices yet; audited as ignored, not published"
    entries = [
        AuditEntry(
            flow=INGRESS_FLOW,
            entity=entity,
            source_system=system,
            source_id=record_id,
            result=AuditResult.IGNORED,
            reason_code=IGNORED_REASON,
            description=f"{system} {entity} {record_id} ({notice.operation}): {message}",
        )
        for notice in notices
        for record_id in notice.ids
    ]
    try:
        runtime.state_store().audit.record_many(entries)
    except StoreError as exc:
        log.error("%s %s webhook not audited, state store unavailable: %s",
                  system, entity, type(exc).__name__)
        return json_response(503, {"error": "StateStoreUnavailable",
                                   "message": "the state store is unavailable; retry later"})
    notices_ignored.add(len(ids), {"system": system, "entity": entity})
    log.info("ignored %s %s webhook: %d id(s) audited as ignored (%s)",
             system, entity, len(ids), IGNORED_REASON)
    return json_response(202, {"accepted": 0, "ignored": len(ids), "notices": [],
                               "reason": IGNORED_REASON, "message": message})


@bp.function_name("brightpearl_webhook")
@bp.route(route="webhooks/brightpearl", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def brightpearl_webhook(req: func.HttpRequest) -> func.HttpResponse:
    settings = runtime.settings()
    secret = settings.webhooks.brightpearl_secret
    if not secret:
        return json_response(503, {
            "error": "NotConfigured",
            "message": "BRIGHTPEARL_WEBHOOK_SECRET is not set; deliveries are refused",
        })
    try:
        body = read_body(req, settings.webhooks.max_body_bytes)
        notices = [routed(n) for n in parse_brightpearl_webhook(
            body,
            account=settings.brightpearl.account,
            secret=secret,
            max_ids=settings.webhooks.max_ids,
            ids_per_notice=settings.webhooks.ids_per_notice,
        )]
    except WebhookRejected as error:
        return reject("brightpearl", error)

    ignored = ignore_unconsumed("brightpearl", notices)
    if ignored is not None:
        return ignored
    envelopes = [Envelope.wrap(n) for n in notices]
    first = notices[0]
    with correlation(source_system="brightpearl", entity=first.entity,
                     message_id=envelopes[0].id, record_ids=[i for n in notices for i in n.ids]):
        failed = publish_envelopes(settings.bus.brightpearl_changes_topic, envelopes, "brightpearl")
        if failed is not None:
            return failed
        log.info("accepted %s webhook: %d id(s) in %d notice(s)", first.detail.get("event"),
                 sum(len(n.ids) for n in notices), len(notices))
    return json_response(202, {"accepted": sum(len(n.ids) for n in notices),
                               "notices": [e.id for e in envelopes]})


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness of the app's dependencies: bus and state store. No secrets, no details."""
    checks: dict[str, dict[str, str]] = {}
    for name, probe in (("bus", lambda: runtime.publisher().check()),
                        ("store", lambda: runtime.state_store().check())):
        try:
            probe()
            checks[name] = {"status": "ok"}
        except Exception as exc:  # report any failure as 'error' with its type only
            log.warning("health check %s failed: %s", name, type(exc).__name__)
            checks[name] = {"status": "error", "error": type(exc).__name__}
    healthy = all(c["status"] == "ok" for c in checks.values())
    return json_response(200 if healthy else 503, {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "checks": checks,
    })
