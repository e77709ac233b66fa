"""`mapping suggest` and the scheduled schema check, on top of the clients.

`suggest_mapping` reads both schemas and samples, proposes, inserts the proposal into the
mapping file's text and checks the result as `syncctl mapping check` does. `check_drift`
lists every custom field on either side the mapping ignores, each with a suggested mapping
line, and which of them are new since the last report (kept in the state store's cursors
table under `schema-drift|<entity>`); each new one is logged and sent as the custom event
`SchemaDrift` (field codes and types only, no record values).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from shared.brightpearl.client import BrightpearlClient
from shared.dataverse.client import DataverseClient
from shared.mapping.config import MappingError, read_customer_mapping
from shared.mapping.orders_config import read_order_mapping
from shared.mapping.products_config import read_product_mapping
from shared.store.cursors import keep_latest
from shared.suggest import read
from shared.suggest.fields import FieldInfo
from shared.suggest.profile import profiles
from shared.suggest.propose import (
    Mapped,
    Proposal,
    canonical_name,
    check_text,
    customer_mapped,
    insert_block,
    suggest,
)
from shared.sync.ports import CursorsPort
from shared.telemetry import custom_event, get_logger

log = get_logger(__name__)
DEFAULT_SAMPLE = 200
REPORT_CURSOR = "schema-drift|{entity}"


@dataclass
class SuggestResult:
    proposal: Proposal
    mapping_path: Path
    text: str | None = None  # the mapping file with the proposal (None: cannot be written)
    problems: list[str] = field(default_factory=list)  # mapping check's, or why it cannot be written
    sampled: dict[str, int] = field(default_factory=dict)  # records read per system

    @property
    def writable(self) -> bool:
        return self.text is not None and not self.problems


def _mapped(src: read.EntitySource, mapping_path: Path) -> Mapped:
    """What the entity's mapping (and the code behind it) already uses on both sides; for
    products and orders the Dataverse columns of their schema plan (shared/dataverse/schema.py)."""
    from shared.dataverse import schema

    # the integration's own columns on the table, whichever entity plans them (the customer value
    # figures on contact, SKU matching's bpi_ean on product): never a suggestion, never drift
    def own(plan: schema.SchemaPlan) -> set[str]:
        return {c.name for t in plan.tables if t.table == src.dataverse_table for c in t.columns}

    if src.name == "customer":
        customers = read_customer_mapping(mapping_path)
        mapped = customer_mapped(customers)
        return replace(mapped, dataverse=mapped.dataverse | own(schema.schema_plan(customers)))
    if src.name == "product":
        products = read_product_mapping(mapping_path)
        tables = schema.plan_for_products(products)
        bp = {products.units.custom_field} if products.units.custom_field else set()
    else:
        tables = schema.plan_for_orders(read_order_mapping(mapping_path))
        bp = set()
    columns = {c.name for t in tables if t.table == src.dataverse_table for c in t.columns}
    return Mapped(brightpearl=frozenset(bp), dataverse=frozenset(columns | own(schema.schema_plan())))


def propose_for(
    src: read.EntitySource,
    bp: BrightpearlClient,
    dv: DataverseClient,
    mapped: Mapped,
    sample: int,
) -> tuple[Proposal, dict[str, int]]:
    bp_fields = read.brightpearl_schema(bp, src)
    dv_fields = read.dataverse_schema(dv, src.dataverse_table)
    bp_rows = read.brightpearl_records(bp, src, sample) if sample and bp_fields else []
    candidates = [f for f in dv_fields if f.code.startswith(mapped.prefixes)]
    dv_rows = read.dataverse_records(dv, src, [f.code for f in candidates], sample) if sample else []
    proposal = suggest(
        src.name,
        bp_fields,
        dv_fields,
        mapped,
        profiles(bp_fields, bp_rows),
        profiles(candidates, dv_rows),
    )
    return proposal, {"brightpearl": len(bp_rows), "dataverse": len(dv_rows)}


def suggest_mapping(
    entity: str,
    bp: BrightpearlClient,
    dv: DataverseClient,
    mapping_path: Path,
    *,
    sample: int = DEFAULT_SAMPLE,
) -> SuggestResult:
    """The proposal for `entity`, and the mapping file with it when `mapping check` passes."""
    src = read.source(entity)
    try:
        mapped = _mapped(src, mapping_path)
    except MappingError as exc:
        proposal = Proposal(entity)
        return SuggestResult(
            proposal,
            mapping_path,
            problems=[f"{mapping_path.name} itself does not pass mapping check: {p}" for p in exc.problems],
        )
    proposal, sampled = propose_for(src, bp, dv, mapped, sample)
    result = SuggestResult(proposal, mapping_path, sampled=sampled)
    if not src.custom_fields_mapped:
        result.problems.append(
            f"the {entity} mapping ({mapping_path.name}) has no custom_fields section yet: no flow would "
            "read these lines, so the proposal is printed, not written"
        )
        return result
    text = insert_block(mapping_path.read_text(encoding="utf-8"), proposal.block())
    result.text = text
    result.problems = check_text(text, [read_customer_mapping], mapping_path.parent)
    return result


# --- schema drift ---------------------------------------------------------------------------


class DriftItem(BaseModel):
    system: str
    field: str
    label: str
    type: str
    suggested: str  # mapping YAML for it
    confidence: float | None = None  # of a matched counterpart; None: none found
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.system}:{self.field}"


class DriftReport(BaseModel):
    entity: str
    checked_at: dt.datetime
    mapping: str
    ignored: list[DriftItem]
    new: list[str]  # keys (system:field) not ignored at the previous check

    def summary(self) -> str:
        return f"schema check {self.entity}: {len(self.ignored)} ignored custom field(s), {len(self.new)} new"


def _yaml(entry: dict[str, Any]) -> str:
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=100).rstrip("\n")


def drift_items(proposal: Proposal, mapped: Mapped) -> list[DriftItem]:
    """Every custom field the mapping ignores, with a suggested line: the matched pair when
    there is one; a Brightpearl field alone gets a new column (`syncctl dataverse provision`
    creates it); a Dataverse column alone needs a Brightpearl field made by hand first."""
    items: list[DriftItem] = []
    taken = set(mapped.names)

    def item(info: FieldInfo, suggested: str, confidence: float | None = None, note: str = "") -> DriftItem:
        return DriftItem(
            system=info.system,
            field=info.code,
            label=info.label,
            type=info.raw_type,
            suggested=suggested,
            confidence=confidence,
            note=note,
        )

    for s in proposal.suggestions:
        line = "\n".join(s.yaml_lines(""))
        items += [item(s.brightpearl, line, s.confidence), item(s.dataverse, line, s.confidence)]
    prefix = mapped.prefixes[0] if mapped.prefixes else "bpi_"
    for info in proposal.unmatched_brightpearl:
        name = canonical_name(info, taken)
        taken.add(name)
        column = f"{prefix}{name.replace('_', '')}"
        entry: dict[str, Any] = {
            "name": name,
            "brightpearl": info.code,
            "dataverse": column,
            "type": info.kind,
        }
        if info.kind == "select":
            entry["options"] = [
                {"value": text, "brightpearl_id": i, "dataverse": 100000000 + n}
                for n, (i, text) in enumerate(info.options)
            ]
        note = f"no Dataverse column fits: `syncctl dataverse provision` creates {column} once mapped"
        items.append(item(info, _yaml(entry), note=note))
    for info in proposal.unmatched_dataverse:
        name = canonical_name(info, taken)
        taken.add(name)
        code = "PCF_" + "".join(ch for ch in name.upper() if ch.isalnum())[:20]
        entry = {"name": name, "brightpearl": code, "dataverse": info.code, "type": info.kind}
        if info.kind == "select":  # placeholder ids: Brightpearl gives the real ones
            entry["options"] = [
                {"value": t, "brightpearl_id": n + 1, "dataverse": v} for n, (v, t) in enumerate(info.options)
            ]
        note = (
            f"no Brightpearl custom field fits: create {code} in Brightpearl (the API cannot create "
            "custom fields), then put its code (and option ids) in this line"
        )
        items.append(item(info, _yaml(entry), note=note))
    return sorted(items, key=lambda i: i.key)


def check_drift(
    entity: str,
    bp: BrightpearlClient,
    dv: DataverseClient,
    mapping_path: Path,
    cursors: CursorsPort | None,
    *,
    sample: int = DEFAULT_SAMPLE,
    now: dt.datetime | None = None,
) -> DriftReport:
    """Compare both schemas with the mapping, store the report and announce the new fields."""
    src = read.source(entity)
    mapped = _mapped(src, mapping_path)
    proposal, _ = propose_for(src, bp, dv, mapped, sample)
    items = drift_items(proposal, mapped)
    previous = last_drift(cursors, entity) if cursors is not None else None
    before = {i.key for i in previous.ignored} if previous is not None else set()
    report = DriftReport(
        entity=entity,
        checked_at=now or dt.datetime.now(dt.UTC),
        mapping=mapping_path.name,
        ignored=items,
        new=[i.key for i in items if i.key not in before],
    )
    for item in items:
        if item.key in report.new:
            log.warning(
                "schema check %s: %s custom field %s (%s) is not in the mapping; suggested:\n%s",
                entity,
                item.system,
                item.field,
                item.type,
                item.suggested,
            )
            custom_event(
                "SchemaDrift",
                entity=entity,
                system=item.system,
                field=item.field,
                type=item.type,
                confidence=item.confidence if item.confidence is not None else -1,
            )
    if cursors is not None:
        save_drift(cursors, report)
    return report


def save_drift(cursors: CursorsPort, report: DriftReport) -> None:
    name = REPORT_CURSOR.format(entity=report.entity)
    keep_latest(cursors, name, report.model_dump_json(), f"the schema drift report of {report.entity}")


def last_drift(cursors: CursorsPort, entity: str) -> DriftReport | None:
    cursor = cursors.get(REPORT_CURSOR.format(entity=entity))
    if cursor is None:
        return None
    return DriftReport.model_validate(json.loads(cursor.value))


def drift_entities() -> list[str]:
    """The entities the scheduled check covers: those whose mapping maps custom fields."""
    return [name for name, src in read.SOURCES.items() if src.custom_fields_mapped]


def run_scheduled() -> list[DriftReport]:
    """The timer's run over `drift_entities()`; a transient failure waits for the next run."""
    from shared import runtime
    from shared.resilience import classify

    reports: list[DriftReport] = []
    for entity in drift_entities():
        try:
            path = runtime.app_file(runtime.settings().customers.mapping_path)
            reports.append(
                check_drift(
                    entity, runtime.brightpearl(), runtime.dataverse(), path, runtime.state_store().cursors
                )
            )
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None or not verdict.transient:
                raise
            log.warning("schema check %s failed (%s); the next run tries again", entity, verdict.reason)
    return reports
