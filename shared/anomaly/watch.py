"""The engine's anomaly step: watches run before a batch's write and after it settles.

Every flow has the spike watch (dead letters and deletion notices per hour); a flow adds its
entity's own watches in its FlowSpec (`watch`: "module:Class" paths), e.g. order values for
orders-to-brightpearl. A watch returns flags; a flag raised before the write whose kind is in
ANOMALY_HOLD_FOR_REVIEW holds its record (result needs-review, reason `Anomaly<Kind>`, so it
appears on the needs-review list) instead of writing it, unless an operator asked for that
record (`syncctl sync`, review accept: the notice's `requested_by`), which is how a held record
is let through. Otherwise flags never change a sync's outcome, and a watch that fails is
logged and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import ValidationError

from shared.anomaly.flags import Flag, Kind, emit
from shared.anomaly.state import Values, update, values_of
from shared.anomaly.stats import judge
from shared.outcomes import DeadLetter, Outcome
from shared.settings import AnomalySettings
from shared.sync.outcomes import BatchResults, RecordResult
from shared.telemetry import get_logger

log = get_logger("anomaly")

SPIKE_HOURS = 24  # the hours before the current one a spike is judged against


@dataclass
class WatchContext:
    """What every watch of one flow shares: the settings, the stored values, the clock."""

    settings: AnomalySettings
    values: Values
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Watch:
    """One kind of check. `flow` is the RecordSync running the batch (its spec, label, store);
    `batch` the engine's Batch (envelopes, records read, deletions)."""

    def __init__(self, context: WatchContext) -> None:
        self.context = context

    @property
    def settings(self) -> AnomalySettings:
        return self.context.settings

    def before_write(self, flow: Any, batch: Any, results: BatchResults) -> list[Flag]:
        return []

    def after_settle(
        self, flow: Any, batch: Any, results: BatchResults, outcomes: Sequence[Outcome]
    ) -> list[Flag]:
        return []

    @staticmethod
    def flag(flow: Any, kind: Any, record_id: str, detail: str) -> Flag:
        """A flag about the flow's source record `record_id`."""
        return Flag(kind, flow.name, flow.link_entity, flow.spec.source, record_id, detail)


def result_kind(results: BatchResults, record_id: str) -> str | None:
    result = results.by_id.get(record_id)
    return None if result is None else result.kind


def requested(batch: Any) -> set[str]:
    """Record ids (lower case) an operator asked for in this batch: never held."""
    return {
        i.lower() for e in batch.envelopes if e.notice.detail.get("requested_by") for i in batch.ids_of(e)
    }


class SpikeWatch(Watch):
    """Dead letters and deletion notices of a flow per UTC hour, against the previous 24 hours:
    a spike when the hour's count reaches ANOMALY_SPIKE_MINIMUM and lies more than
    ANOMALY_SPIKE_THRESHOLD robust deviations above their median. Flagged once per hour and kind."""

    KINDS: ClassVar[dict[str, Kind]] = {"d": "DeadLetterSpike", "x": "DeletionSpike"}
    WHAT: ClassVar[dict[str, str]] = {"d": "dead letters", "x": "deletion notices"}

    def after_settle(
        self, flow: Any, batch: Any, results: BatchResults, outcomes: Sequence[Outcome]
    ) -> list[Flag]:
        counts = {
            "d": sum(isinstance(o, DeadLetter) for o in outcomes),
            "x": sum(
                len(e.notice.ids)
                for e in batch.envelopes
                if e.notice.operation == "deleted" and e.attempt == 1
            ),
        }
        if not any(counts.values()):
            return []  # nothing to count: no storage call
        now = self.context.now()
        hour = now.strftime("%Y%m%d%H")
        previous = [(now - timedelta(hours=h)).strftime("%Y%m%d%H") for h in range(1, SPIKE_HOURS + 1)]
        found: list[Flag] = []

        def change(state: Any) -> Any:
            found.clear()
            state = state or {"h": {}, "f": []}
            hours: dict[str, dict[str, int]] = {
                k: v for k, v in state["h"].items() if k in previous or k == hour
            }
            current = hours.setdefault(hour, {})
            flagged = [f for f in state["f"] if f.split(":")[0] == hour]
            for key, added in counts.items():
                if not added:
                    continue
                current[key] = current.get(key, 0) + added
                history = [float(hours.get(h, {}).get(key, 0)) for h in previous]
                verdict = judge(float(current[key]), history, self.settings.spike_threshold, floor=1.0)
                mark = f"{hour}:{key}"
                if current[key] >= self.settings.spike_minimum and verdict.outlier and mark not in flagged:
                    flagged.append(mark)
                    found.append(
                        Flag(
                            self.KINDS[key],
                            flow.name,
                            flow.link_entity,
                            flow.spec.source,
                            flow.name,
                            f"{current[key]} {self.WHAT[key]} in the hour {hour[:8]} {hour[8:]}:00 UTC; "
                            f"the previous {SPIKE_HOURS} hours' median is {verdict.median:g} "
                            f"(robust deviation {verdict.deviation:g}, score {verdict.score:.1f})",
                        )
                    )
            return {"h": hours, "f": flagged}

        update(self.context.values, f"spikes|{flow.name}", change)
        return list(found)


class Watches:
    """The watches of one flow, run by the engine (never raising into it)."""

    def __init__(self, watches: Sequence[Watch], context: WatchContext, audit: Any) -> None:
        self.watches = list(watches)
        self.context = context
        self.audit = audit

    @classmethod
    def of(cls, spec: Any, store: Any, settings: AnomalySettings | None = None) -> Watches:
        """The spike watch and `spec.watch`'s watches, with ANOMALY_* settings from the environment."""
        from shared.sync.spec import load

        if settings is None:
            try:
                settings = AnomalySettings()
            except ValidationError as exc:  # `syncctl settings check` and start-up name it
                log.error(
                    "anomaly detection off: invalid ANOMALY_* settings (%d problem(s))", exc.error_count()
                )
                settings = AnomalySettings(ANOMALY_DETECTION=False)  # type: ignore[call-arg]
        context = WatchContext(settings, values_of(store))
        kinds = [SpikeWatch, *(load(path) for path in getattr(spec, "watch", ()))]
        return cls([kind(context) for kind in kinds], context, store.audit)  # type: ignore[operator]

    @property
    def enabled(self) -> bool:
        return self.context.settings.detection

    def before_write(self, flow: Any, batch: Any, results: BatchResults) -> None:
        if not self.enabled:
            return
        flags: list[Flag] = []
        for watch in self.watches:
            try:
                flags += watch.before_write(flow, batch, results)
            except Exception as exc:
                log.warning(
                    "anomaly watch %s failed before the write: %s", type(watch).__name__, type(exc).__name__
                )
        held_kinds, asked = self.context.settings.held_kinds, requested(batch)
        for index, f in enumerate(flags):
            if f.kind in held_kinds and f.record_id.lower() not in asked and not results.has(f.record_id):
                flags[index] = f = replace(f, held=True)
                results.set(
                    f.record_id,
                    RecordResult(
                        "needs-review", f.reason, f"{flow.label} {f.record_id} held for review: {f.detail}"
                    ),
                )
        batch.flags = flags  # emitted after the batch settles

    def after_settle(self, flow: Any, batch: Any, results: BatchResults, outcomes: Sequence[Outcome]) -> None:
        if not self.enabled:
            return
        # a record that failed transiently is judged again on its retry
        flags = [f for f in batch.flags if result_kind(results, f.record_id) not in (None, "transient")]
        for watch in self.watches:
            try:
                flags += watch.after_settle(flow, batch, results, outcomes)
            except Exception as exc:
                log.warning(
                    "anomaly watch %s failed after the batch: %s", type(watch).__name__, type(exc).__name__
                )
        unique = {(f.kind, f.record_id): f for f in reversed(flags)}  # the first of a kind per record
        emit(self.audit, list(reversed(unique.values())))
