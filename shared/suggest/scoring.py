"""The evidence for mapping a Brightpearl field to a Dataverse column, and its confidence.

Three kinds of evidence, each a score from 0 to 1 with the reason in words:
- name: the labels and codes as normalised tokens (camel case and separators split, a code's
  PCF_ or publisher prefix dropped), compared with rapidfuzz (the best of token-set and
  whole-string ratios over label and code);
- type: does the Brightpearl type fit the column as `syncctl mapping check` requires (TEXT ->
  String or Memo, YES_NO -> Boolean, INTEGER -> Integer, DATE -> DateTime, SELECT -> Picklist);
  a pair that does not fit scores 0 and is never proposed;
- values: the sampled value profiles - agreement on linked records (the Dataverse row that
  carries the Brightpearl id), overlap of the value sets, pattern and cardinality; for choices
  also the option labels both sides share. Linked records that mostly disagree (under half)
  veto the pair: they hold different things whatever the names say.

confidence = 0.45 name + 0.20 type + 0.35 values (without sampled values: 0.85 name + 0.15 type,
so a fitting type alone never carries a weak name over the threshold).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from shared.suggest.fields import FieldInfo, Kind
from shared.suggest.profile import ValueProfile

# Brightpearl kind -> Dataverse kinds `mapping check` accepts for it (shared/mapping/config.py).
FITS: dict[Kind, tuple[Kind, ...]] = {
    "text": ("text", "textarea"),
    "textarea": ("textarea", "text"),
    "yesno": ("yesno",),
    "integer": ("integer",),
    "date": ("date",),
    "select": ("select",),
}
WEIGHTS = {"name": 0.45, "type": 0.20, "values": 0.35}
WEIGHTS_WITHOUT_VALUES = {"name": 0.85, "type": 0.15}
MIN_LINKED = 3  # linked records with a value on both sides before agreement counts
MIN_AGREEMENT = 0.5  # below it on linked records, a pair is never proposed


@dataclass(frozen=True)
class Score:
    value: float  # 0..1
    reason: str
    linked: float | None = None  # values: agreement on linked records, when there are enough


@dataclass(frozen=True)
class Evidence:
    name: Score
    type: Score
    values: Score | None  # None: no values sampled on one side

    @property
    def confidence(self) -> float:
        if self.type.value == 0 or self.contradicted:
            return 0.0
        if self.values is None:
            w = WEIGHTS_WITHOUT_VALUES
            return round(w["name"] * self.name.value + w["type"] * self.type.value, 3)
        w = WEIGHTS
        return round(
            w["name"] * self.name.value + w["type"] * self.type.value + w["values"] * self.values.value, 3
        )

    @property
    def contradicted(self) -> bool:
        """Linked records mostly disagree: the two fields hold different things."""
        return (
            self.values is not None and self.values.linked is not None and self.values.linked < MIN_AGREEMENT
        )

    def lines(self) -> list[str]:
        values = self.values.reason if self.values is not None else "no values sampled"
        return [
            f"name {self.name.value:.2f}: {self.name.reason}",
            f"type {self.type.value:.2f}: {self.type.reason}",
            f"values {self.values.value:.2f}: {values}" if self.values is not None else f"values: {values}",
        ]


def tokens(text: str, *, code: bool = False) -> list[str]:
    """Lower-case word tokens of a label or code: `Credit terms (days)` -> [credit, terms, days];
    a code loses its prefix (`PCF_CREDITDAYS` -> [creditdays], `bpi_loyaltyTier` -> [loyalty, tier])."""
    text = text.strip()
    if code and "_" in text:
        text = text.split("_", 1)[1]
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def name_score(a: FieldInfo, b: FieldInfo) -> Score:
    """The best similarity of `a`'s and `b`'s labels and codes as normalised tokens."""
    best, why = 0.0, ""
    for x_what, x in (("label", a.label), ("code", a.code)):
        for y_what, y in (("label", b.label), ("code", b.code)):
            tx = " ".join(tokens(x, code=x_what == "code"))
            ty = " ".join(tokens(y, code=y_what == "code"))
            if not tx or not ty:
                continue
            whole = fuzz.ratio(tx.replace(" ", ""), ty.replace(" ", ""))
            token_set = fuzz.token_set_ratio(tx, ty)
            score = max(whole, token_set) / 100
            if score > best:
                best, why = score, f"{x_what} {tx!r} ~ {y_what} {ty!r}"
    return Score(round(best, 3), why or "no comparable names")


def type_score(bp: FieldInfo, dv: FieldInfo) -> Score:
    allowed = FITS.get(bp.kind, ())
    if dv.kind not in allowed:
        return Score(0.0, f"{bp.raw_type} does not fit a {dv.raw_type} column")
    exact = dv.kind == allowed[0]
    return Score(1.0 if exact else 0.8, f"{bp.raw_type} fits {dv.raw_type}")


def option_overlap(bp: FieldInfo, dv: FieldInfo) -> tuple[float, list[tuple[int, str, int]]]:
    """(share of options both sides have, the matched (Brightpearl id, label, Dataverse value))."""
    dv_by_label = {" ".join(t.split()).casefold(): v for v, t in dv.options}
    matched = [
        (bp_id, text, dv_by_label[" ".join(text.split()).casefold()])
        for bp_id, text in bp.options
        if " ".join(text.split()).casefold() in dv_by_label
    ]
    total = max(len(bp.options), len(dv.options))
    return (len(matched) / total if total else 0.0), matched


def value_score(bp: FieldInfo, dv: FieldInfo, a: ValueProfile | None, b: ValueProfile | None) -> Score | None:
    """Value evidence of two profiles (and of choice options); None without any."""
    options_share = option_overlap(bp, dv)[0] if bp.kind == "select" and dv.kind == "select" else None
    if a is None or b is None or not a.filled or not b.filled:
        if options_share is None:
            return None
        return Score(round(options_share, 3), f"{options_share:.0%} of the choice labels on both sides")
    parts: list[str] = []
    common = [k for k in a.by_key if k in b.by_key]
    linked = None
    if len(common) >= MIN_LINKED:
        agree = sum(1 for k in common if a.by_key[k] == b.by_key[k])
        linked = agree / len(common)
        parts.append(f"{agree}/{len(common)} linked records agree")
    da, db = a.distinct, b.distinct
    overlap = len(da & db) / min(len(da), len(db)) if da and db else 0.0
    parts.append(f"{overlap:.0%} value overlap")
    pa, pb = a.patterns, b.patterns
    pattern = sum(min(pa[k] / a.filled, pb[k] / b.filled) for k in pa)
    top = pa.most_common(1)[0][0]
    parts.append(f"pattern {top} {pattern:.0%} alike")
    cardinality = 1 - abs(a.cardinality - b.cardinality)
    parts.append(f"cardinality {a.cardinality:.2f} vs {b.cardinality:.2f}")
    if options_share is not None:
        overlap = max(overlap, options_share)
        parts.append(f"{options_share:.0%} shared choice labels")
    if linked is not None:
        score = 0.6 * linked + 0.2 * overlap + 0.1 * pattern + 0.1 * cardinality
    else:
        score = 0.5 * overlap + 0.3 * pattern + 0.2 * cardinality
    return Score(round(score, 3), "; ".join(parts), linked)


def evidence(bp: FieldInfo, dv: FieldInfo, a: ValueProfile | None, b: ValueProfile | None) -> Evidence:
    return Evidence(name_score(bp, dv), type_score(bp, dv), value_score(bp, dv, a, b))
