"""HTTP ingress for Dataverse webhooks: RemoteExecutionContext in, change notices out.

`POST /api/webhooks/dataverse` (auth level FUNCTION: the host checks the function key, sent
by Dataverse as `x-functions-key` with the HttpHeader auth that `syncctl webhooks register`
sets up). This function additionally checks, in constant time, the shared secret Dataverse
sends in the header named by DATAVERSE_WEBHOOK_HEADER. Only the header counts: a secret in
the query string (HttpQueryString auth) would be kept by every URL log on the way, so it is
refused. (The `?code=` of WebhookKey auth is the function key, checked by the host; it is not
this secret.) It then validates the body strictly, publishes the notices to the
dataverse-changes topic and answers 202; a table no flow consumes is audited as ignored
instead of published (functions.ingress.ignore_unconsumed). A rejected request gets a 4xx
JSON error naming the problem and publishes nothing; an unreachable bus gives 503 (Dataverse
retries 502/503/504 once). A Delete whose step carries a pre-entity image of the row's parent
(DataverseTable.delete_image: a sales order line's order) publishes the parent as updated too.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import azure.functions as func

from functions.ingress import ignore_unconsumed
from shared import runtime
from shared.bus.port import BusError, BusPublisher
from shared.dataverse.webhook import WebhookRejected, parse_webhook
from shared.events import Envelope
from shared.settings import AppSettings
from shared.sync.registry import ENTITIES
from shared.sync.spec import delete_images
from shared.telemetry import correlation, get_logger, notices_published, webhooks_rejected

bp = func.Blueprint()
log = get_logger("ingress.dataverse")

# Seam for tests: replace with a callable returning a (recording) publisher. By default the
# process-wide publisher from shared.runtime, i.e. shared.bus.factory.build_publisher(settings.bus).
publisher_factory: Callable[[AppSettings], BusPublisher] | None = None
# table -> lookup columns of its Delete step's pre-image (the same specs registration reads)
DELETE_IMAGES = delete_images(ENTITIES)


def _publisher(settings: AppSettings) -> BusPublisher:
    if publisher_factory is not None:
        return publisher_factory(settings)
    return runtime.publisher()


def _json(status: int, payload: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload), status_code=status, mimetype="application/json", charset="utf-8"
    )


def _reject(status: int, code: str, message: str) -> func.HttpResponse:
    webhooks_rejected.add(1, {"system": "dataverse", "reason": code})
    log.warning("dataverse webhook rejected: %s (%s)", code, message)
    return _json(status, {"error": code, "message": message})


_CODES = {
    400: "InvalidPayload",
    403: "UnknownOrganization",
    413: "BodyTooLarge",
    415: "UnsupportedMediaType",
    422: "UnsupportedMessage",
}


def handle(req: func.HttpRequest, settings: AppSettings) -> func.HttpResponse:
    """The webhook logic, independent of the decorator (used by the tests and the local host)."""
    secret = settings.webhooks.dataverse_secret
    if not secret:
        return _json(
            503,
            {
                "error": "NotConfigured",
                "message": "DATAVERSE_WEBHOOK_SECRET is not set; deliveries are refused",
            },
        )
    header = settings.dataverse.webhook_header
    presented = req.headers.get(header) or ""
    if not hmac.compare_digest(presented.encode("utf-8"), secret.encode("utf-8")):
        problem = "missing" if not presented else "wrong"
        where = ""
        if not presented and header in req.params:
            where = "; it came in the query string, where URL logs keep it: send it as a header"
        return _reject(401, "Unauthenticated", f"{problem} webhook secret in header {header!r}{where}")
    declared = req.headers.get("content-length")
    max_bytes = settings.webhooks.max_body_bytes
    if declared and declared.isdigit() and int(declared) > max_bytes:
        return _reject(413, "BodyTooLarge", f"body of {declared} bytes exceeds {max_bytes} bytes")
    body = req.get_body() or b""
    if not body:
        return _reject(400, "EmptyBody", "body is empty; a RemoteExecutionContext JSON object is required")
    try:
        notices = parse_webhook(
            body,
            dict(req.headers),
            organization_id=settings.dataverse.organization_id,
            max_body_bytes=max_bytes,
            delete_images=DELETE_IMAGES,
        )
    except WebhookRejected as exc:
        return _reject(exc.status, _CODES.get(exc.status, "Rejected"), exc.problem)

    ignored = ignore_unconsumed("dataverse", notices)
    if ignored is not None:
        return ignored
    envelopes = [Envelope.wrap(n) for n in notices]
    first = notices[0]
    with correlation(
        source_system="dataverse", entity=first.entity, message_id=envelopes[0].id, record_ids=list(first.ids)
    ):
        try:
            _publisher(settings).publish(
                settings.bus.dataverse_changes_topic, [e.to_message() for e in envelopes]
            )
        except BusError as exc:
            log.error("dataverse webhook not published, bus unavailable: %s", type(exc).__name__)
            return _json(
                503, {"error": "BusUnavailable", "message": "the message bus is unavailable; retry later"}
            )
        notices_published.add(len(envelopes), {"system": "dataverse", "origin": "webhook"})
        log.info("accepted dataverse %s %s webhook", first.entity, first.detail.get("message"))
    return _json(202, {"accepted": len(envelopes), "notices": [e.id for e in envelopes]})


@bp.function_name("dataverse_webhook")
@bp.route(route="webhooks/dataverse", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def dataverse_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return handle(req, runtime.settings())
