"""Anomaly flags and where they go: the audit (flow `anomalies`), App Insights, the log.

A flag names its kind (reason code `Anomaly<Kind>`), the flow and record (or, for a spike,
the flow) and the numbers that made it one. It never carries personal data: ids, counts,
amounts and field names only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.store import AuditEntry, AuditResult
from shared.telemetry import ANOMALY_EVENT, custom_event, get_logger
from shared.telemetry import anomalies as anomaly_counter

log = get_logger("anomaly")

Kind = Literal[
    "OrderValue", "StockDepleted", "StockMismatch", "DeadLetterSpike", "DeletionSpike", "EmailChurn"
]
KINDS: tuple[Kind, ...] = (
    "OrderValue",
    "StockDepleted",
    "StockMismatch",
    "DeadLetterSpike",
    "DeletionSpike",
    "EmailChurn",
)
AUDIT_FLOW = "anomalies"  # the audit flow every flag is written to (the console lists it)
EVENT = ANOMALY_EVENT  # the App Insights custom event of a flag


@dataclass(frozen=True)
class Flag:
    """One anomaly: `record_id` is the flow's source record (for a spike: the flow's name)."""

    kind: Kind
    flow: str
    entity: str  # the audit entity (customer, order, product)
    system: str  # the system `record_id` belongs to
    record_id: str
    detail: str  # why, with the numbers: never personal data
    held: bool = False  # the record was held for review instead of written

    @property
    def reason(self) -> str:
        return f"Anomaly{self.kind}"

    @property
    def description(self) -> str:
        held = " (held for review: needs-review in the flow)" if self.held else ""
        return f"{self.flow}: {self.detail}{held}"

    def audit_entry(self) -> AuditEntry:
        return AuditEntry(
            flow=AUDIT_FLOW,
            entity=self.entity,
            source_system=self.system,
            source_id=self.record_id,
            result=AuditResult.ANOMALY,
            reason_code=self.reason,
            description=self.description,
        )


def emit(audit: Any, flags: Sequence[Flag]) -> None:
    """Write `flags` to the audit, count them and send each as a custom event. A failed audit
    write is logged, not raised: a flag never fails a sync."""
    if not flags:
        return
    for flag in flags:
        anomaly_counter.add(1, {"kind": flag.kind, "flow": flag.flow})
        custom_event(
            EVENT,
            kind=flag.kind,
            reason=flag.reason,
            flow=flag.flow,
            entity=flag.entity,
            system=flag.system,
            record=flag.record_id,
            held=int(flag.held),
        )
        log.warning("anomaly %s in %s: %s %s", flag.reason, flag.flow, flag.record_id, flag.detail)
    try:
        audit.record_many([f.audit_entry() for f in flags])
    except Exception as exc:
        log.warning("writing %d anomaly flag(s) to the audit failed: %s", len(flags), type(exc).__name__)
