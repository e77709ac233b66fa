"""Webhook delivery for the simulator: a background worker renders each registered webhook's
templates for the events the state raises and calls its URI with httpx.

Reference §10: a subscription matches its event or any event below it (`product` matches
`product.modified.on-hand-modified`; UNCONFIRMED). With `idSetAccepted`, the ids of one event
raised within `webhook_batch_seconds` go out as one id set; otherwise one call per id.
Retries (attempt count and back-off are UNCONFIRMED, so configurable): QoS 0 retries only
when the receiver answered 503; QoS 1 retries on anything but a 4xx (including network
errors). Faults: drop or duplicate the next N deliveries, delay deliveries, reverse the
order of the next batch.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox.brightpearl.state import SimState
from shared.brightpearl.idset import format_id_set

_VARIABLE = re.compile(r"\$\{([a-z-]+)\}")


@dataclass
class Delivery:
    hook: dict[str, Any]
    event: str
    ids: list[int]
    raised_on: datetime
    attempt: int = 0
    variables: dict[str, str] | None = None


@dataclass
class WebhookFaults:
    drop: int = 0
    duplicate: int = 0
    delay_seconds: float = 0.0
    reorder: int = 0


@dataclass
class DeliveryLog:
    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **entry: Any) -> None:
        with self.lock:
            self.entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.entries)


def matches(subscription: str, event: str) -> bool:
    return event == subscription or event.startswith(subscription + ".")


def render(template: str, variables: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


class WebhookDispatcher:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.faults = WebhookFaults()
        self.log = DeliveryLog()
        self._cond = threading.Condition()
        self._pending: list[tuple[str, list[int], datetime]] = []
        self._pending_since: float | None = None
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        state.set_event_sink(self.emit)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="bp-sim-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        with self._cond:
            self._pending.clear()
            self._heap.clear()
            self._pending_since = None
            self.faults = WebhookFaults()
        with self.log.lock:
            self.log.entries.clear()

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._heap and self._busy == 0

    # --- input ---------------------------------------------------------------------------
    def emit(self, event: str, ids: list[int], raised_on: datetime) -> None:
        with self._cond:
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            self._pending.append((event, list(ids), raised_on))
            self._cond.notify_all()

    def simulate(self, hook: dict[str, Any], variables: dict[str, str], ids: list[int]) -> int:
        """Queue deliveries of `hook` with caller-given template values; returns the count."""
        deliveries = [
            Delivery(
                hook,
                variables.get("full-event", hook["subscribeTo"]),
                ids,
                datetime.now(UTC),
                variables=variables,
            )
        ]
        if not hook["idSetAccepted"]:
            deliveries = [
                Delivery(
                    hook, d.event, [i], d.raised_on, variables=dict(variables, **{"resource-id": str(i)})
                )
                for d in deliveries
                for i in ids
            ]
        with self._cond:
            for d in deliveries:
                heapq.heappush(self._heap, (time.monotonic(), next(self._seq), d))
            self._cond.notify_all()
        return len(deliveries)

    # --- worker --------------------------------------------------------------------------
    def _plan(self, batch: list[tuple[str, list[int], datetime]]) -> list[Delivery]:
        with self.state.lock:
            hooks = [dict(h) for h in self.state.webhooks.values()]
        grouped: dict[tuple[int, str], Delivery] = {}
        out: list[Delivery] = []
        for event, ids, raised_on in batch:
            for hook in hooks:
                if not matches(hook["subscribeTo"], event):
                    continue
                if hook["idSetAccepted"]:
                    key = (hook["id"], event)
                    if key in grouped:
                        grouped[key].ids.extend(i for i in ids if i not in grouped[key].ids)
                    else:
                        grouped[key] = Delivery(hook, event, list(ids), raised_on)
                        out.append(grouped[key])
                else:
                    out.extend(Delivery(hook, event, [i], raised_on) for i in ids)
        return out

    def _run(self) -> None:
        config = self.state.config
        with httpx.Client(timeout=config.webhook_timeout_seconds) as http:
            while not self._stop.is_set():
                due: list[Delivery] = []
                batch: list[tuple[str, list[int], datetime]] = []
                with self._cond:
                    now = time.monotonic()
                    waits = []
                    if self._pending:
                        ready_at = (self._pending_since or now) + config.webhook_batch_seconds
                        if now >= ready_at:
                            batch = list(self._pending)
                            self._pending.clear()
                            self._pending_since = None
                            self._busy += 1  # planning in progress: not idle
                        else:
                            waits.append(ready_at - now)
                    while self._heap and self._heap[0][0] <= now:
                        due.append(heapq.heappop(self._heap)[2])
                    if self._heap:
                        waits.append(self._heap[0][0] - now)
                    if not due and not batch:
                        self._cond.wait(timeout=min(waits) if waits else 0.5)
                        continue
                    self._busy += len(due)
                if batch:
                    # Planning reads the webhooks under the state lock; never hold the condition
                    # then, because state changes emit events (state lock -> condition).
                    planned = self._plan(batch)
                    with self._cond:
                        if self.faults.reorder > 0 and len(planned) > 1:
                            planned.reverse()
                            self.faults.reorder -= 1
                        for d in planned:
                            self._schedule(d, time.monotonic())
                        self._busy -= 1
                        self._cond.notify_all()
                for delivery in due:
                    try:
                        self._send(http, delivery)
                    finally:
                        with self._cond:
                            self._busy -= 1

    def _schedule(self, delivery: Delivery, now: float) -> None:
        """Apply the delivery faults, then queue (caller holds the condition)."""
        hook_event = {
            "webhookId": delivery.hook["id"],
            "event": delivery.event,
            "ids": format_id_set(delivery.ids),
        }
        if self.faults.drop > 0:
            self.faults.drop -= 1
            self.log.add(**hook_event, attempt=0, outcome="dropped", at=time.time())
            return
        copies = 1
        if self.faults.duplicate > 0:
            self.faults.duplicate -= 1
            copies = 2
        for _ in range(copies):
            d = Delivery(delivery.hook, delivery.event, list(delivery.ids), delivery.raised_on)
            heapq.heappush(self._heap, (now + self.faults.delay_seconds, next(self._seq), d))

    def _variables(self, delivery: Delivery) -> dict[str, str]:
        if delivery.variables is not None:
            return delivery.variables
        parts = delivery.event.split(".")
        config = self.state.config
        return {
            "account-code": config.accounts[0],
            "resource-type": parts[0],
            "resource-id": format_id_set(delivery.ids),
            "lifecycle-event": parts[1] if len(parts) > 1 else "modified",
            "resource-specifier": parts[2] if len(parts) > 2 else "",
            "full-event": delivery.event,
            "raised-on": delivery.raised_on.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "brightpearl-version": config.brightpearl_version,
        }

    def _send(self, http: httpx.Client, delivery: Delivery) -> None:
        hook = delivery.hook
        variables = self._variables(delivery)
        uri = render(hook["uriTemplate"], variables)
        body = render(hook["bodyTemplate"], variables) if hook.get("bodyTemplate") else None
        headers = {"Content-Type": hook["contentType"]} if hook.get("contentType") else {}
        delivery.attempt += 1
        entry: dict[str, Any] = {
            "webhookId": hook["id"],
            "event": delivery.event,
            "ids": variables.get("resource-id", ""),
            "attempt": delivery.attempt,
            "at": time.time(),
        }
        status: int | None = None
        try:
            response = http.request(hook["httpMethod"], uri, content=body, headers=headers)
            status = response.status_code
            entry["status"] = status
        except httpx.HTTPError as exc:
            entry["error"] = type(exc).__name__
        ok = status is not None and 200 <= status < 300
        if ok:
            entry["outcome"] = "delivered"
            self.log.add(**entry)
            return
        # QoS 1: retry unless the receiver answered 4xx; QoS 0: only when it answered 503.
        qos1 = hook["qualityOfService"] == 1
        retry = (status is None or not 400 <= status < 500) if qos1 else status == 503
        config = self.state.config
        if retry and delivery.attempt < config.webhook_max_attempts:
            entry["outcome"] = "retrying"
            self.log.add(**entry)
            delay = config.webhook_backoff_seconds * (2 ** (delivery.attempt - 1))
            with self._cond:
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), delivery))
                self._cond.notify_all()
            return
        entry["outcome"] = "failed"
        self.log.add(**entry)
