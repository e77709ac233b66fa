"""A customer whose e-mail changes more than ANOMALY_EMAIL_CHANGES_PER_DAY times in a UTC day.

Counted per customer (by its Brightpearl contact id, so changes made on either side count
together) when a sync writes another primary e-mail into the linked record on the other side;
creating or first linking a record is no change. With EmailChurn in ANOMALY_HOLD_FOR_REVIEW, the change that
would exceed the limit is held for review instead of written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.anomaly.flags import Flag
from shared.anomaly.state import read, update
from shared.anomaly.watch import Watch
from shared.outcomes import Outcome
from shared.sync.outcomes import BatchResults


def _email_changes(flow: Any, batch: Any) -> list[Any]:
    """Records of an already linked customer whose write changes the primary e-mail the target
    holds (a first link by e-mail, or a create, is no change)."""
    return [
        r
        for r in batch.records
        if r.matched_by in ("link", "key")
        and r.target is not None
        and r.decision is not None
        and r.decision.should_write
        and "emails.primary" in r.changed
        and _primary(r.read.value) != _primary(_held(flow, r))
    ]


def _primary(customer: Any) -> str | None:
    value = getattr(getattr(customer, "emails", None), "primary", None)
    return str(value).casefold() if value else None


def _held(flow: Any, r: Any) -> Any:
    """The customer as the target holds it (None when it cannot be read as one)."""
    try:
        return flow.to_canonical(flow.spec.target, r.target).value
    except Exception:  # an unreadable target: the e-mail is not compared
        return None


def _customer_key(flow: Any, r: Any) -> str | None:
    """The customer's Brightpearl contact id, whichever way the flow runs."""
    if flow.spec.source == "brightpearl":
        return str(r.source_id)
    if r.target_id:
        return str(r.target_id)
    return r.link.id_in("brightpearl") if r.link is not None else None


class EmailChurnWatch(Watch):
    def _today(self) -> str:
        return self.context.now().strftime("%Y%m%d")

    def _count(self, key: str) -> int:
        state = read(self.context.values, f"email|customer|{key}") or {}
        return int(state.get("n", 0)) if state.get("day") == self._today() else 0

    def _flag(self, flow: Any, r: Any, count: int) -> Flag:
        limit = self.settings.email_changes_per_day
        return self.flag(
            flow, "EmailChurn", r.source_id, f"e-mail changed {count} times today (UTC), more than {limit}"
        )

    def before_write(self, flow: Any, batch: Any, results: BatchResults) -> list[Flag]:
        if "EmailChurn" not in self.settings.held_kinds:
            return []  # flagged after the write, once the change happened
        flags = []
        for r in _email_changes(flow, batch):
            key = _customer_key(flow, r)
            if key is not None and not results.has(r.source_id):
                count = self._count(key) + 1
                if count > self.settings.email_changes_per_day:
                    flags.append(self._flag(flow, r, count))
        return flags

    def after_settle(
        self, flow: Any, batch: Any, results: BatchResults, outcomes: Sequence[Outcome]
    ) -> list[Flag]:
        flags = []
        today = self._today()
        for r in _email_changes(flow, batch):
            result = results.by_id.get(r.source_id)
            key = _customer_key(flow, r)
            if key is None or result is None or result.kind != "synced":
                continue
            state = update(
                self.context.values,
                f"email|customer|{key}",
                lambda old: {
                    "day": today,
                    "n": (old or {}).get("n", 0) + 1 if (old or {}).get("day") == today else 1,
                },
            )
            if state["n"] > self.settings.email_changes_per_day:
                flags.append(self._flag(flow, r, state["n"]))
        return flags
