"""The fix for each reason code, as docs/operations.md states it (parsed once, never copied).

The runbook's "Reason codes" tables (`| Code | Meaning | Fix ... |`) and its "Audit results
that are not dead letters" table (`| Result / code | Meaning | What to do |`) are read; a row
naming several codes gives each the same text; the first row naming a code wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_SECTIONS = ("## Reason codes", "## Audit results that are not dead letters")
_CODE = re.compile(r"`([A-Za-z][A-Za-z0-9-]*)`")


@dataclass(frozen=True)
class Fix:
    code: str
    meaning: str
    fix: str
    section: str  # the runbook heading it is under, e.g. "Brightpearl API"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(text: str) -> dict[str, Fix]:
    """Reason code -> its runbook row, from the markdown text of docs/operations.md."""
    fixes: dict[str, Fix] = {}
    in_scope, heading, header = False, "", False
    for line in text.splitlines():
        if line.startswith("## "):
            in_scope = any(line.startswith(s) for s in _SECTIONS)
            heading, header = line[3:].strip(), False
            continue
        if line.startswith("### "):
            heading, header = line[4:].strip(), False
            continue
        if not in_scope or not line.startswith("|"):
            header = False
            continue
        cells = _cells(line)
        if not header:
            header = True  # the table's header row
            continue
        if len(cells) < 3 or set(cells[0]) <= {"-", ":", " "}:
            continue
        codes_cell = cells[0].split("/", 1)[-1] if "/" in cells[0] else cells[0]
        for code in _CODE.findall(codes_cell):
            fixes.setdefault(code, Fix(code, cells[1], cells[-1], heading))
    return fixes


@lru_cache(maxsize=1)
def _load(path: Path, mtime: float) -> dict[str, Fix]:
    return parse(path.read_text(encoding="utf-8"))


def fixes(path: Path = RUNBOOK) -> dict[str, Fix]:
    """The runbook's fixes, parsed once per version of the file ({} when it is not deployed)."""
    try:
        return _load(path, path.stat().st_mtime)
    except FileNotFoundError:
        return {}


def fix_for(code: str | None, path: Path = RUNBOOK) -> Fix | None:
    return fixes(path).get(code or "")
