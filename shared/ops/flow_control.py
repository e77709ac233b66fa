"""Pause and resume one flow without redeploying (`syncctl flow pause|resume <flow>`).

The flag is a row of the state store's cursors table, `flow-paused|<flow>`, holding when and by
whom the flow was paused and how often its messages are looked at again. The flow's topic
trigger (functions/flow_triggers.py) asks `paused(flow)` before running a batch; while the flow
is paused every message of the batch is *postponed*: a copy is scheduled on the topic for this
subscription only (`replay_to`, as retries are) `recheck_seconds` later, with the same
envelope (same attempt, same wait total, same id in the body, so ledger keys and dead-letter
holders are unchanged) and a fresh broker message id, and the original is completed. So while
paused:

- nothing is lost: each message is on the bus, scheduled, until the flow runs it;
- no delivery count is spent and no retry attempt is used: a paused flow never dead-letters
  anything (MaxDeliveryCountExceeded or RetriesExhausted), however long the pause;
- `syncctl bus status` shows them as scheduled; they become active every `recheck_seconds`
  and are postponed again until the flow is resumed; after `resume` they run at their next
  recheck (at most `recheck_seconds` later), in the order they fall due.

The flag is read at most every `CACHE_SECONDS` per flow and process (one table read), so a
pause or resume takes effect within that time on every instance.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.bus.port import BusError
from shared.bus.settlement import Settlement
from shared.store.errors import StoreConflictError
from shared.telemetry import get_logger

PREFIX = "flow-paused|"
DEFAULT_RECHECK_SECONDS = 60
MIN_RECHECK_SECONDS, MAX_RECHECK_SECONDS = 5, 3600
CACHE_SECONDS = 10.0
POSTPONED_ID_MARKER = ".p"
_MAX_MESSAGE_ID = 128
_POSTPONED_SUFFIX = re.compile(r"\.p\d+$")

log = get_logger("ops.flow_control")


@dataclass(frozen=True)
class Pause:
    """A paused flow: since when, by whom, why, and how often its messages are looked at again."""

    flow: str
    since: datetime
    by: str
    reason: str
    recheck_seconds: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "since": self.since.isoformat(),
            "by": self.by,
            "reason": self.reason,
            "recheckSeconds": self.recheck_seconds,
        }


def _name(flow: str) -> str:
    return PREFIX + flow


def get_pause(cursors: Any, flow: str) -> Pause | None:
    """The pause of `flow`, or None when it runs."""
    cursor = cursors.get(_name(flow))
    if cursor is None:
        return None
    try:
        data = json.loads(cursor.value)
        return Pause(
            flow=flow,
            since=datetime.fromisoformat(data["since"]),
            by=str(data.get("by") or ""),
            reason=str(data.get("reason") or ""),
            recheck_seconds=int(data.get("recheck_seconds") or DEFAULT_RECHECK_SECONDS),
        )
    except (ValueError, KeyError, TypeError):  # a hand-edited row: still paused, default recheck
        return Pause(flow, cursor.updated_at, "", "unreadable pause row", DEFAULT_RECHECK_SECONDS)


def pause(
    cursors: Any,
    flow: str,
    *,
    now: datetime,
    by: str,
    reason: str = "",
    recheck_seconds: int = DEFAULT_RECHECK_SECONDS,
) -> tuple[Pause, bool]:
    """Pause `flow`; returns the pause and whether this call paused it (False: already paused)."""
    if not MIN_RECHECK_SECONDS <= recheck_seconds <= MAX_RECHECK_SECONDS:
        raise ValueError(
            f"recheck must be {MIN_RECHECK_SECONDS} to {MAX_RECHECK_SECONDS} seconds, got {recheck_seconds}"
        )
    existing = get_pause(cursors, flow)
    if existing is not None:
        return existing, False
    value = {
        "since": now.isoformat(),
        "by": by[:100],
        "reason": reason[:500],
        "recheck_seconds": recheck_seconds,
    }
    try:
        cursors.save(_name(flow), json.dumps(value, sort_keys=True))
    except StoreConflictError:  # paused meanwhile by someone else
        found = get_pause(cursors, flow)
        if found is not None:
            return found, False
        raise
    return Pause(flow, now, by[:100], reason[:500], recheck_seconds), True


def resume(cursors: Any, flow: str) -> Pause | None:
    """Resume `flow`; returns the pause it ended (None: it was not paused)."""
    existing = get_pause(cursors, flow)
    if existing is None:
        return None
    cursors.delete(_name(flow))
    return existing


def paused_flows(cursors: Any, flows: Sequence[str]) -> list[Pause]:
    """The pauses of `flows` (a row read per flow)."""
    return [p for p in (get_pause(cursors, f) for f in flows) if p is not None]


class PauseCache:
    """`paused(flow)` for the trigger path: the flag read at most every `ttl` seconds per flow and
    state store (keyed by the cursors table, so two stores in one process never share a flag)."""

    def __init__(self, cursors: Callable[[], Any], ttl: float | None = None) -> None:
        self._cursors = cursors
        self._ttl = ttl  # None: CACHE_SECONDS at each call
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, Pause | None]] = {}

    def paused(self, flow: str) -> Pause | None:
        now = time.monotonic()
        try:
            cursors = self._cursors()
        except Exception:  # no store to read: run the flow (it fails and retries on its own)
            log.warning("could not open the state store to read the pause flag of flow %s; running it", flow)
            return None
        key = (str(getattr(cursors, "table_name", id(cursors))), flow)
        with self._lock:
            cached = self._seen.get(key)
        ttl = CACHE_SECONDS if self._ttl is None else self._ttl
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        try:
            found = get_pause(cursors, flow)
        except Exception:  # the store is down: run the flow (it will fail and retry on its own)
            log.warning("could not read the pause flag of flow %s; running it", flow)
            found = None
        with self._lock:
            self._seen[key] = (now, found)
        return found

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


def postponed_id(original: str, now: datetime) -> str:
    """A fresh broker message id for a postponed copy (<= 128 characters)."""
    suffix = f"{POSTPONED_ID_MARKER}{int(now.timestamp() * 1000)}"
    base = _POSTPONED_SUFFIX.sub("", original)
    return base[: _MAX_MESSAGE_ID - len(suffix)] + suffix


def postpone(
    messages: Sequence[Any], actions: Any, settlement: Settlement, *, pause: Pause, now: datetime
) -> int:
    """Schedule a copy of each message for the settlement's subscription only,
    `pause.recheck_seconds` from `now`, then complete the original; returns how many were
    postponed. A message that is not a change notice is dead-lettered as the flow would
    (MalformedMessage); one whose copy cannot be sent is abandoned (the broker redelivers it:
    nothing lost)."""
    due = now + timedelta(seconds=pause.recheck_seconds)
    subscription = settlement.subscription
    done = 0
    for message in messages:
        envelope = settlement.parse(message, actions)
        if envelope is None:
            continue
        outgoing = envelope.model_copy(update={"replay_to": subscription}).to_message()
        original_id = str(getattr(message, "message_id", "") or outgoing.message_id)
        outgoing = replace(outgoing, message_id=postponed_id(original_id, now))
        try:
            settlement.publisher.publish_scheduled(settlement.topic, [outgoing], due)
        except BusError as exc:
            log.warning("flow %s paused: could not postpone a message (%s); abandoning it", subscription, exc)
            actions.abandon(message)
            continue
        actions.complete(message)
        done += 1
    log.info("flow %s paused: %d message(s) postponed until %s", subscription, done, due.isoformat())
    return done


def _runtime_cursors() -> Any:
    from shared import runtime

    return runtime.state_store().cursors


PAUSES = PauseCache(_runtime_cursors)  # the trigger path's view of the flags (functions/flow_triggers.py)
