"""Brightpearl ID sets: parse "1-5,99,202" into ids (with a bound) and format ids back.

Forms (reference brightpearl-api.md §1.3): a single id `8`, an ascending range `1-50`, a
comma list `1,5,9`, a period list `1.5.9` (UNCONFIRMED form, accepted), any mix. Descending
ranges are not allowed. Ids are positive integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# ASCII digits only: `\d` would also take "١٢٣" (Arabic-Indic digits), which int() reads as 123.
_TERM = re.compile(r"([0-9]{1,12})(?:-([0-9]{1,12}))?")
DEFAULT_MAX_IDS = 1000


class IdSetError(ValueError):
    """The id set is malformed or larger than allowed; the message says how."""


def parse_id_set(text: str, *, max_ids: int = DEFAULT_MAX_IDS) -> list[int]:
    """Expand an id set into sorted unique ids; raise IdSetError if malformed or > max_ids."""
    if not isinstance(text, str):
        raise IdSetError("id set must be a string such as '1-3,7'")
    text = text.strip()
    if not text:
        raise IdSetError("id set is empty")
    separator = "." if "." in text and "," not in text else ","
    ids: set[int] = set()
    for raw_term in text.split(separator):
        term = raw_term.strip()
        match = _TERM.fullmatch(term)
        if not match:
            raise IdSetError(f"id set term {term!r} is not an id or an ascending range like 1-5")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else start
        if start < 1:
            raise IdSetError(f"id {start} is not a positive integer")
        if end < start:
            raise IdSetError(f"range {term!r} is descending; Brightpearl ranges ascend")
        # Check the span before expanding it, so "1-999999999" cannot exhaust memory.
        if end - start + 1 > max_ids:
            raise IdSetError(f"id set names more than {max_ids} ids (the bound)")
        ids.update(range(start, end + 1))
        if len(ids) > max_ids:
            raise IdSetError(f"id set names more than {max_ids} ids (the bound)")
    return sorted(ids)


def format_id_set(ids: Iterable[int]) -> str:
    """Compact ids into Brightpearl's id-set syntax: [1,2,3,7] -> '1-3,7'."""
    ordered = sorted(set(int(i) for i in ids))
    if not ordered:
        raise IdSetError("cannot format an empty id set")
    parts: list[str] = []
    start = prev = ordered[0]
    for value in ordered[1:]:
        if value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = value
    parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def chunk_ids(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    """Split ids (sorted, unique) into lists of at most `size`."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    ordered = sorted(set(int(i) for i in ids))
    for offset in range(0, len(ordered), size):
        yield ordered[offset : offset + size]
