"""Injected faults: API faults (503, 500, throttle, 401, timeouts, slow or dropped
responses) matched by method and path, and the switches of webhook delivery faults."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.brightpearl.envelope import NOT_AUTHENTICATED, Reply, throttled
from sandbox.brightpearl.webhooks import WebhookDispatcher, WebhookFaults


@dataclass
class Fault:
    kind: str
    remaining: int
    seconds: float = 0.0
    path: str | None = None
    method: str | None = None


@dataclass
class LostAnswer:
    """A write the simulator applied while a `drop` or `timeout` fault kept its answer from the client."""

    method: str
    path: str
    body: Any
    reply: Reply

    def created_ids(self, resource: str) -> list[int]:
        """Ids of `resource` (e.g. "contact-service/postal-address") the lost answer created."""
        payload = self.reply.payload if isinstance(self.reply.payload, dict) else {}
        if self.method == "POST" and self.path == resource:
            return _ids([payload.get("response")])
        if self.path != "multi-message" or not isinstance(self.body, dict):
            return []
        uris = {
            str(m.get("label")): str(m.get("uri", "")).strip("/")
            for m in self.body.get("messages") or []
            if isinstance(m, dict) and m.get("httpMethod") == "POST"
        }
        response = payload.get("response")
        found: list[Any] = []
        for item in (response or {}).get("processedMessages") or []:
            if uris.get(str(item.get("label"))) == resource and int(item.get("statusCode", 500)) < 300:
                content = (item.get("body") or {}).get("content") or "{}"
                found.append(json.loads(content).get("response"))
        return _ids(found)


def _ids(values: list[Any]) -> list[int]:
    return [int(v) for v in values if isinstance(v, int) or (isinstance(v, str) and v.isdigit())]


FAULT_KINDS = {"503", "500", "throttle", "timeout", "slow", "drop", "drop-before", "401"}


def fault_reply(fault: Fault | None) -> Reply | None:
    """The answer a fault gives instead of the resource's, for the faults that answer at all."""
    if fault is None:
        return None
    if fault.kind == "throttle":
        return throttled()
    if fault.kind == "503":
        return Reply(503, {"response": "Service Unavailable: Brightpearl is down for maintenance"})
    if fault.kind == "500":
        return Reply(
            500, {"errors": [{"code": "CMNU-003", "message": "An internal server error has occurred"}]}
        )
    if fault.kind == "401":
        return Reply(401, {"response": NOT_AUTHENTICATED})
    return None


class FaultInjection:
    """The Simulator's fault list (its lock also guards the request counters)."""

    faults: list[Fault]
    _faults_lock: threading.Lock
    dispatcher: WebhookDispatcher

    def _take_fault(self, method: str, rest: str) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.remaining <= 0:
                    continue
                if fault.method and fault.method != method:
                    continue
                if fault.path and not _under(rest, fault.path):
                    continue
                fault.remaining -= 1
                return fault
            return None

    def add_fault(
        self,
        kind: str,
        count: int = 1,
        seconds: float = 0.0,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} must be one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("fault count must be at least 1")
        if kind in ("timeout", "slow") and seconds <= 0:
            raise ValueError(f"fault {kind} needs seconds > 0")
        fault = Fault(kind, count, seconds, path, method.upper() if method else None)
        with self._faults_lock:
            self.faults.append(fault)
        return fault

    def set_webhook_faults(self, **values: Any) -> WebhookFaults:
        faults = self.dispatcher.faults
        for key, value in values.items():
            if not hasattr(faults, key):
                raise ValueError(f"unknown webhook fault {key!r}")
            setattr(faults, key, type(getattr(faults, key))(value))
        return faults


def _under(rest: str, prefix: str) -> bool:
    """Is the request path `rest` at or below `prefix`, segment by segment? ("contact-service/contact"
    covers ".../contact/12" but not ".../contact-search")."""
    path, wanted = rest.strip("/"), prefix.strip("/")
    return path == wanted or path.startswith(wanted + "/")
