"""Webhook subscriptions: validating and storing integration-service/webhook POSTs (delivery
is `sandbox.brightpearl.webhooks`)."""

from __future__ import annotations

import re
from typing import Any

from sandbox.brightpearl.errors import bad
from sandbox.brightpearl.records.core import StateCore


class SubscriptionStore(StateCore):
    webhooks: dict[int, dict[str, Any]]

    def _reset_subscriptions(self) -> None:
        self.webhooks = {}

    def create_webhook(self, body: Any) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            event = body.get("subscribeTo")
            if not isinstance(event, str) or not re.fullmatch(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+){0,2}", event):
                raise bad(f"subscribeTo {event!r} is not an event name", "INTW-001")
            if event.startswith("contact") and not self.config.contact_webhooks:
                raise bad(f"subscribeTo {event!r}: contact events cannot be subscribed to", "INTW-002")
            if event == "order.created" and not self.config.order_created_webhooks:
                raise bad("subscribeTo 'order.created' cannot be subscribed to", "INTW-002")
            method = body.get("httpMethod")
            if method not in ("GET", "POST", "PUT", "DELETE"):
                raise bad(f"httpMethod {method!r} must be GET, POST, PUT or DELETE", "INTW-003")
            uri = body.get("uriTemplate")
            if not isinstance(uri, str) or not re.match(r"https?://", uri):
                raise bad("uriTemplate must be an http(s) URL", "INTW-004")
            if method in ("POST", "PUT") and (not body.get("bodyTemplate") or not body.get("contentType")):
                raise bad("bodyTemplate and contentType are required for POST and PUT", "INTW-005")
            qos = body.get("qualityOfService", 0)
            if qos not in (0, 1):
                raise bad("qualityOfService must be 0 or 1", "INTW-006")
            wid = self.next_id("webhook")
            record = {
                "id": wid,
                "subscribeTo": event,
                "httpMethod": method,
                "uriTemplate": uri,
                "idSetAccepted": bool(body.get("idSetAccepted", False)),
                "qualityOfService": qos,
            }
            if method in ("POST", "PUT"):
                record.update(bodyTemplate=body["bodyTemplate"], contentType=body["contentType"])
            self.webhooks[wid] = record
            return wid
