"""The proposal: for the custom fields a mapping leaves out, the best one-to-one pairs of a
Brightpearl field and a Dataverse column (greedy by confidence, at least `threshold`), each
as a `custom_fields` entry of the customer mapping with its confidence and evidence as YAML
comments; inserted into the mapping file's text (its comments kept) and validated exactly as
`syncctl mapping check` validates before anything is written."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.mapping.config import CustomerMapping
from shared.mapping.preview import Loader, check_mapping
from shared.suggest.fields import FieldInfo
from shared.suggest.profile import ValueProfile
from shared.suggest.scoring import Evidence, evidence, option_overlap

THRESHOLD = 0.55
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Mapped:
    """What a mapping already uses: Brightpearl codes, Dataverse columns, canonical names."""

    brightpearl: frozenset[str] = frozenset()
    dataverse: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ("bpi_",)


def customer_mapped(mapping: CustomerMapping) -> Mapped:
    dv = mapping.dataverse
    columns = {c for c in (*dv.contact_columns.values(), dv.contact_key, dv.marketing_consent.column) if c}
    columns |= {c.column for c in mapping.customer_group.dataverse_columns if c.entity == "contact"}
    columns |= {cf.dataverse for cf in mapping.custom_fields}
    return Mapped(
        brightpearl=frozenset(cf.brightpearl for cf in mapping.custom_fields),
        dataverse=frozenset(columns),
        names=frozenset(cf.name for cf in mapping.custom_fields),
        prefixes=tuple(dv.custom_column_prefixes),
    )


@dataclass(frozen=True)
class Suggestion:
    brightpearl: FieldInfo
    dataverse: FieldInfo
    evidence: Evidence
    entry: dict[str, Any]  # the custom_fields entry
    notes: tuple[str, ...] = ()  # what the entry leaves out (unmatched choice options)

    @property
    def confidence(self) -> float:
        return self.evidence.confidence

    def yaml_lines(self, indent: str = "  ") -> list[str]:
        """The entry as YAML list lines, its confidence and evidence as comments above it."""
        head = (
            f"{indent}# suggested: {self.brightpearl.code} ({self.brightpearl.label!r}) -> "
            f"{self.dataverse.code} ({self.dataverse.label!r}), confidence {self.confidence:.2f}"
        )
        comments = [head] + [f"{indent}#   {line}" for line in (*self.evidence.lines(), *self.notes)]
        body = yaml.safe_dump([self.entry], sort_keys=False, allow_unicode=True, width=100)
        return comments + [f"{indent}{line}" for line in body.rstrip("\n").splitlines()]


@dataclass
class Proposal:
    entity: str
    suggestions: list[Suggestion] = field(default_factory=list)
    unmatched_brightpearl: list[FieldInfo] = field(default_factory=list)
    unmatched_dataverse: list[FieldInfo] = field(default_factory=list)
    considered: int = 0  # pairs scored

    def block(self, indent: str = "  ") -> str:
        """The suggestions as YAML lines of a `custom_fields` list."""
        lines: list[str] = []
        for s in self.suggestions:
            lines.extend(s.yaml_lines(indent))
        return "\n".join(lines) + ("\n" if lines else "")

    def pairs(self) -> dict[str, str]:
        return {s.brightpearl.code: s.dataverse.code for s in self.suggestions}


def candidates(
    bp_fields: Iterable[FieldInfo], dv_fields: Iterable[FieldInfo], mapped: Mapped
) -> tuple[list[FieldInfo], list[FieldInfo]]:
    """The fields a mapping leaves out: Brightpearl custom fields of a known type, and the
    Dataverse custom columns (by publisher prefix) of a mappable type."""
    bp = [f for f in bp_fields if f.kind != "other" and f.code not in mapped.brightpearl]
    dv = [
        f
        for f in dv_fields
        if f.kind not in ("other", "decimal")
        and f.code not in mapped.dataverse
        and f.code.startswith(mapped.prefixes)  # mapping check: custom columns carry a prefix
    ]
    return bp, dv


def suggest(
    entity: str,
    bp_fields: Iterable[FieldInfo],
    dv_fields: Iterable[FieldInfo],
    mapped: Mapped,
    bp_profiles: Mapping[str, ValueProfile] | None = None,
    dv_profiles: Mapping[str, ValueProfile] | None = None,
    *,
    threshold: float = THRESHOLD,
) -> Proposal:
    bp, dv = candidates(bp_fields, dv_fields, mapped)
    bp_profiles, dv_profiles = bp_profiles or {}, dv_profiles or {}
    scored: list[tuple[float, int, int, Evidence]] = []
    for i, a in enumerate(bp):
        for j, b in enumerate(dv):
            ev = evidence(a, b, bp_profiles.get(a.code), dv_profiles.get(b.code))
            if ev.type.value > 0:
                scored.append((ev.confidence, i, j, ev))
    scored.sort(key=lambda t: (-t[0], bp[t[1]].code, dv[t[2]].code))
    proposal = Proposal(entity, considered=len(scored))
    used_bp: set[int] = set()
    used_dv: set[int] = set()
    names = set(mapped.names)
    for confidence, i, j, ev in scored:
        if confidence < threshold or i in used_bp or j in used_dv:
            continue
        made = _entry(bp[i], dv[j], names)
        if made is None:
            continue
        entry, notes = made
        used_bp.add(i)
        used_dv.add(j)
        names.add(entry["name"])
        proposal.suggestions.append(Suggestion(bp[i], dv[j], ev, entry, notes))
    proposal.suggestions.sort(key=lambda s: s.brightpearl.code)
    proposal.unmatched_brightpearl = [f for k, f in enumerate(bp) if k not in used_bp]
    proposal.unmatched_dataverse = [f for k, f in enumerate(dv) if k not in used_dv]
    return proposal


def canonical_name(info: FieldInfo, taken: set[str]) -> str:
    """A free canonical key from the Brightpearl label (`Loyalty tier` -> loyalty_tier)."""
    base = "_".join(re.findall(r"[a-z0-9]+", info.label.lower())) or info.code.lower()
    base = re.sub(r"^[^a-z]+", "", base)[:60] or "field"
    name, n = base, 2
    while name in taken or not NAME_PATTERN.match(name):
        name, n = f"{base}_{n}", n + 1
    return name


def _entry(bp: FieldInfo, dv: FieldInfo, taken: set[str]) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """The custom_fields entry of a pair (None: a choice pair without one shared option)."""
    entry: dict[str, Any] = {
        "name": canonical_name(bp, taken),
        "brightpearl": bp.code,
        "dataverse": dv.code,
        "type": bp.kind,
    }
    notes: list[str] = []
    if bp.kind in ("text", "textarea") and dv.max_length:
        entry["max_length"] = dv.max_length
    if bp.kind == "select":
        _, matched = option_overlap(bp, dv)
        if not matched:
            return None
        entry["options"] = [
            {"value": text, "brightpearl_id": bp_id, "dataverse": value} for bp_id, text, value in matched
        ]
        left = [t for i, t in bp.options if i not in {m[0] for m in matched}]
        if left:
            notes.append(
                f"Brightpearl options without a Dataverse choice: {', '.join(left)} (add them by hand)"
            )
    return entry, tuple(notes)


# --- the mapping file -----------------------------------------------------------------------

TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def insert_block(text: str, block: str, key: str = "custom_fields") -> str:
    """`text` with `block` (list lines of `key`) added at the end of the top-level `key`'s list,
    which is created when missing (an inline `key: []` becomes a block list)."""
    if not block:
        return text
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"^{key}\s*:", line)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n{key}:\n{block}"
    if re.match(rf"^{key}\s*:\s*\[\s*\]\s*(#.*)?$", lines[start].rstrip("\n")):
        lines[start] = f"{key}:\n"
    end = start + 1
    last = start
    while end < len(lines) and not TOP_KEY.match(lines[end]):
        if lines[end].strip() and not lines[end].lstrip().startswith("#"):
            last = end
        end += 1
    return "".join([*lines[: last + 1], block, *lines[last + 1 :]])


def check_text(text: str, loaders: Sequence[Loader], directory: Path | None = None) -> list[str]:
    """`syncctl mapping check`'s problems for a mapping file holding `text` (checked in a
    temporary file beside the real one; [] when valid)."""
    with tempfile.NamedTemporaryFile(
        "w", suffix=".yaml", dir=directory, delete=False, encoding="utf-8"
    ) as handle:
        handle.write(text)
        path = Path(handle.name)
    try:
        return check_mapping(path, list(loaders))
    finally:
        path.unlink(missing_ok=True)
