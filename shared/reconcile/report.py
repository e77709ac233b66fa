"""The reconciliation report: counts per kind and per-record findings (ids and field names only).

A report is plain JSON (`ReconcileReport.model_dump(mode="json")`) and the last one of each
entity is kept in the state store's `cursors` table under `reconcile-report|<entity>`, so
`syncctl reconcile <entity> --last` and the operations console show it without reading either
system again. A stored report keeps every count exactly; when its findings would not fit in one
table property (32,000 characters) the stored copy keeps the first ones and says how many it left
out (`items_left_out`). Findings never carry personal data: record ids, systems, field names.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field

from shared.store.cursors import keep_latest
from shared.store.tables import MAX_STRING_PROPERTY_CHARS
from shared.sync.ports import CursorsPort
from shared.systems import System

Kind = Literal[
    "missing_in_brightpearl",
    "missing_in_dataverse",
    "orphaned_link",
    "unlinked",
    "duplicate",
    "drift",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
# What `--heal` does per kind (docs/operations.md "Reconciliation" says the same in prose).
HEALING: dict[Kind, str] = {
    "missing_in_brightpearl": "publish the Dataverse record's change notice (the flow creates it)",
    "missing_in_dataverse": "publish the Brightpearl record's change notice (the flow creates it)",
    "orphaned_link": "remove the link; publish the surviving record's change notice",
    "unlinked": "publish the Brightpearl record's change notice (the flow matches and links it)",
    "duplicate": "nothing: merging records needs an operator",
    "drift": "publish a change notice for each side changed since the last sync",
}
REPORT_CURSOR = "reconcile-report|{entity}"


class Finding(BaseModel):
    """One record (or pair) out of step. Ids and field names only."""

    kind: Kind
    brightpearl_id: str | None = None
    dataverse_id: str | None = None
    system: System | None = None  # duplicate: the side holding the extra record
    duplicate_of: str | None = None  # duplicate: the record on the same side it duplicates
    changed_in: list[System] = Field(default_factory=list)  # drift: sides changed since the last sync
    fields: list[str] = Field(default_factory=list)  # drift: canonical fields that differ
    gone_in: list[System] = Field(default_factory=list)  # orphaned link: where the record is gone


def _per_system() -> dict[System, int]:
    return {"brightpearl": 0, "dataverse": 0}


class Healing(BaseModel):
    """What `--heal` did: record ids published per system, orphaned links removed."""

    notices: dict[System, int] = Field(default_factory=_per_system)
    links_removed: int = 0


class ReconcileReport(BaseModel):
    """What one reconciliation run found (and healed) for one entity."""

    entity: str
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    since: datetime | None = None
    heal: bool = False
    scanned: dict[str, int] = Field(default_factory=dict)  # brightpearl, dataverse, links
    counts: dict[Kind, int] = Field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    items: list[Finding] = Field(default_factory=list)
    items_left_out: int = 0  # findings not listed (max_items, or the stored copy's size)
    healing: Healing | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, finding: Finding, *, max_items: int) -> None:
        self.counts[finding.kind] += 1
        if len(self.items) < max_items:
            self.items.append(finding)
        else:
            self.items_left_out += 1

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def summary(self) -> str:
        """One line of counts (logs, the CLI): no ids."""
        counts = " ".join(f"{kind}={n}" for kind, n in self.counts.items())
        return f"reconcile {self.entity}: {counts}"


def cursor_name(entity: str) -> str:
    return REPORT_CURSOR.format(entity=entity)


def stored_text(report: ReconcileReport, limit: int = MAX_STRING_PROPERTY_CHARS) -> str:
    """The report as stored: compact JSON under `limit` characters, findings cut if need be."""
    text = report.model_dump_json()
    if len(text) <= limit:
        return text
    keep = len(report.items)
    while keep > 0:
        keep //= 2
        cut = report.model_copy(
            update={
                "items": report.items[:keep],
                "items_left_out": report.items_left_out + len(report.items) - keep,
            }
        )
        text = cut.model_dump_json()
        if len(text) <= limit:
            return text
    raise ValueError(
        f"reconcile report of {report.entity} does not fit in {limit} characters without findings"
    )


def save_report(cursors: CursorsPort, report: ReconcileReport) -> None:
    """Keep `report` as the entity's last one (replacing the previous; a concurrent save wins)."""
    keep_latest(
        cursors,
        cursor_name(report.entity),
        stored_text(report),
        f"the last reconcile report of {report.entity}",
    )


def last_report(cursors: CursorsPort, entity: str) -> ReconcileReport | None:
    """The entity's last stored report, or None when it was never reconciled."""
    cursor = cursors.get(cursor_name(entity))
    if cursor is None:
        return None
    return ReconcileReport.model_validate(json.loads(cursor.value))


REPORT_PREFIX = REPORT_CURSOR.split("{", 1)[0]  # "reconcile-report|": the cursors rows of reports


def last_reports(cursors: CursorsPort) -> list[tuple[str, ReconcileReport | None]]:
    """(entity, its last report or None) for every entity that declares a reconciler (the console)."""
    from shared.sync import registry

    return [(spec.name, last_report(cursors, spec.name)) for spec in registry.ENTITIES if spec.reconciler]
