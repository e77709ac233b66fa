"""Value profiles of sampled records: each field's values normalised so both systems compare
(a Brightpearl select `{"id": 11, "value": "Gold"}` and a Dataverse choice 100000000 whose
label is Gold are both `gold`; dates are ISO days; yes/no is true/false), with the pattern,
the cardinality and, per record key (the Brightpearl id a linked Dataverse row carries), the
value - so a pair of fields can be compared on linked records."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.suggest.fields import FieldInfo

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
    ("yesno", re.compile(r"^(true|false)$")),
    ("integer", re.compile(r"^-?\d+$")),
    ("number", re.compile(r"^-?\d+\.\d+$")),
    ("email", re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")),
    ("code", re.compile(r"^[a-z0-9][a-z0-9_\-/]{0,15}$")),
)


def pattern_of(value: str) -> str:
    """The class of a normalised value: date, yesno, integer, number, email, code, word(s)."""
    for name, regex in PATTERNS:
        if regex.match(value):
            return name
    return "words" if len(value) <= 60 else "long text"


def normalise(info: FieldInfo, raw: Any) -> str | None:
    """`raw` (as the system answered it) as comparable text; None when empty."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, Mapping):  # Brightpearl select {"id": .., "value": ..}
        text = raw.get("value")
        if text is None and "id" in raw:
            text = info.option_label(raw["id"])
        return _text(text) if text is not None else None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if info.kind == "select" and isinstance(raw, int):
        label = info.option_label(raw)
        return _text(label) if label is not None else str(raw)
    if info.kind == "date" or isinstance(raw, dt.date):
        text = str(raw.isoformat() if isinstance(raw, dt.date) else raw)
        if re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return text[:10]
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return _text(raw)


def _text(value: Any) -> str:
    return " ".join(str(value).split()).casefold()


@dataclass
class ValueProfile:
    """The values one field holds in a sample of records."""

    sampled: int = 0  # records read
    by_key: dict[str, str] = field(default_factory=dict)  # record key -> normalised value
    values: list[str] = field(default_factory=list)  # every non-empty normalised value

    @property
    def filled(self) -> int:
        return len(self.values)

    @property
    def distinct(self) -> set[str]:
        return set(self.values)

    @property
    def cardinality(self) -> float:
        """Distinct values per filled record (1.0: every value differs; near 0: a few choices)."""
        return len(self.distinct) / self.filled if self.values else 0.0

    @property
    def patterns(self) -> Counter[str]:
        return Counter(pattern_of(v) for v in self.values)

    def summary(self) -> str:
        top = ", ".join(f"{name} {n}" for name, n in self.patterns.most_common(2))
        return f"{self.filled}/{self.sampled} filled, {len(self.distinct)} distinct ({top or 'none'})"


def profiles(
    fields: Iterable[FieldInfo],
    records: Iterable[tuple[str | None, Mapping[str, Any]]],
) -> dict[str, ValueProfile]:
    """Profiles by field code of `records` ((record key or None, {field code: raw value}))."""
    wanted = list(fields)
    out = {f.code: ValueProfile() for f in wanted}
    for key, values in records:
        for info in wanted:
            profile = out[info.code]
            profile.sampled += 1
            value = normalise(info, values.get(info.code))
            if value is None:
                continue
            profile.values.append(value)
            if key is not None:
                profile.by_key[key] = value
    return out
