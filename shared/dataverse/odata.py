"""The one place that writes OData literals: filters with escaped values, record keys, references.

No other module concatenates values into a query or a URL. Values are escaped as the
reference §3.8 says: single quotes doubled in string literals; array parameters of the
Dataverse query functions (Microsoft.Dynamics.CRM.In ...) use double-quoted JSON strings
(backslash escapes for `"` and `\\` inside them are an assumption - UNCONFIRMED); GUIDs bare;
the whole query string is percent-encoded by httpx, so `& + # %` inside values are safe.
`contains/startswith/endswith` escape the SQL wildcards % _ [ that Dataverse honours in values.
`in_chunks` / `fit_chunks` split a look-up into as few `In` filters as fit the URL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar
from urllib.parse import quote_plus

_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_UNSAFE = set("/<>*%&:\\?+")

Scalar = str | int | float | bool | Decimal | datetime | date | uuid.UUID | None
T = TypeVar("T")

# Dataverse accepts request URLs up to 32 KB, 32,768 characters (Microsoft Learn, "Compose HTTP
# requests and handle errors" > "Maximum URL length", since 2023-09; a request line inside a
# $batch body may be 64 KB). The client refuses to send a longer GET (client.py).
MAX_URL_LENGTH = 32_768
# Characters of percent-encoded $filter one look-up may use: about 530 GUIDs (45 characters
# each encoded). It leaves ~8.7 KB of the URL for the service root, the entity set,
# $select/$expand/$orderby and the $skiptoken a server-driven nextLink appends.
IN_FILTER_BUDGET = 24_000
# `In` values per query, whatever their length. Dataverse runs a query as one SQL statement with
# a parameter per value, and SQL Server takes at most 2,100 parameters; longer In lists are
# reported to fail with "too many parameters" (UNCONFIRMED for Dataverse). GUID look-ups reach
# the URL budget first (~530); this caps short keys (~1,700 five-digit ids would fit the URL).
# Rows a look-up returns are not capped: the client follows @odata.nextLink past 5,000.
MAX_IN_VALUES = 1_000


class ODataValueError(ValueError):
    """A value or property name cannot be expressed safely; the message names it."""


def prop(name: str) -> str:
    """Validate a property name or lookup path (`parentcustomerid_account/name`, `_x_value`)."""
    if not isinstance(name, str) or not _PROPERTY.match(name):
        raise ODataValueError(f"{name!r} is not a valid property name")
    return name


def literal(value: Scalar) -> str:
    """The OData literal for a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ODataValueError(f"{value!r} cannot be used in a filter")
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ODataValueError("datetimes in filters must carry a time zone")
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ODataValueError(f"values of type {type(value).__name__} cannot be used in a filter")


def is_guid(value: object) -> bool:
    """Is `value` a GUID (36 characters, hex groups 8-4-4-4-12)?"""
    return _GUID.match(str(value)) is not None


def guid(value: str | uuid.UUID) -> str:
    """A validated, lower-case GUID (ids are validated before use)."""
    text = str(value)
    if not _GUID.match(text):
        raise ODataValueError(f"{text!r} is not a GUID")
    return text.lower()


def _array_item(value: Scalar) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(literal(value).strip("'"))


def escape_like(value: str) -> str:
    """Escape SQL wildcards so contains/startswith/endswith match the text literally."""
    return re.sub(r"([%_\[])", r"[\1]", value)


@dataclass(frozen=True)
class Filter:
    """A composable, already-escaped filter expression. Build with the functions below.
    `in_values` counts the values of the `In` lists inside it (see MAX_IN_VALUES)."""

    text: str
    in_values: int = field(default=0, compare=False)

    def __and__(self, other: Filter) -> Filter:
        return Filter(f"({self.text}) and ({other.text})", self.in_values + other.in_values)

    def __or__(self, other: Filter) -> Filter:
        return Filter(f"({self.text}) or ({other.text})", self.in_values + other.in_values)

    def __invert__(self) -> Filter:
        return Filter(f"not ({self.text})", self.in_values)

    def __str__(self) -> str:
        return self.text


def _comparison(op: str) -> Callable[[str, Scalar], Filter]:
    def compare(name: str, value: Scalar) -> Filter:
        return Filter(f"{prop(name)} {op} {literal(value)}")

    compare.__name__ = compare.__qualname__ = op
    compare.__doc__ = f"`<name> {op} <value>`, the value escaped as an OData literal."
    return compare


eq, ne, gt, ge, lt, le = (_comparison(op) for op in ("eq", "ne", "gt", "ge", "lt", "le"))


def lookup_eq(column: str, record_id: str | uuid.UUID) -> Filter:
    """`_<column>_value eq <guid>` for a lookup column."""
    return Filter(f"_{prop(column)}_value eq {guid(record_id)}")


def contains(name: str, text: str) -> Filter:
    return Filter(f"contains({prop(name)},{literal(escape_like(text))})")


def startswith(name: str, text: str) -> Filter:
    return Filter(f"startswith({prop(name)},{literal(escape_like(text))})")


def endswith(name: str, text: str) -> Filter:
    return Filter(f"endswith({prop(name)},{literal(escape_like(text))})")


def in_(name: str, values: Iterable[Scalar]) -> Filter:
    """`Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=["a","b"])`."""
    items = list(values)
    if not items:
        raise ODataValueError(f"In() on {name!r} needs at least one value")
    return Filter(
        f"Microsoft.Dynamics.CRM.In(PropertyName={literal(prop(name))},"
        f"PropertyValues=[{','.join(_array_item(v) for v in items)}])",
        len(items),
    )


def between(name: str, low: Scalar, high: Scalar) -> Filter:
    return Filter(
        f"Microsoft.Dynamics.CRM.Between(PropertyName={literal(prop(name))},"
        f"PropertyValues=[{_array_item(low)},{_array_item(high)}])"
    )


def all_of(*filters: Filter) -> Filter:
    if not filters:
        raise ODataValueError("all_of needs at least one filter")
    return Filter(" and ".join(f"({f.text})" for f in filters), sum(f.in_values for f in filters))


def any_of(*filters: Filter) -> Filter:
    if not filters:
        raise ODataValueError("any_of needs at least one filter")
    return Filter(" or ".join(f"({f.text})" for f in filters), sum(f.in_values for f in filters))


# --- look-ups sized to the URL -----------------------------------------------------------------
def encoded_length(text: str) -> int:
    """Characters `text` takes as a query-string value, percent-encoded as httpx sends it
    (urllib.parse.urlencode: quote_plus, UTF-8, nothing kept safe)."""
    return len(quote_plus(text, safe=""))


def _fits(flt: Filter, budget: int, max_values: int) -> bool:
    return encoded_length(flt.text) <= budget and flt.in_values <= max_values


def in_chunks(
    name: str,
    values: Iterable[Scalar],
    *,
    also: Filter | None = None,
    budget: int = IN_FILTER_BUDGET,
    max_values: int = MAX_IN_VALUES,
) -> Iterator[Filter]:
    """`In(name, ...)` filters (each `and also` when given) covering every distinct value once,
    in first-seen order, as few as fit: each filter's encoded text within `budget` characters
    and its In lists within `max_values` values. A value that cannot fit alone is an error."""
    distinct = list(dict.fromkeys(values))
    if not distinct:
        return

    def render(chunk: list[Scalar]) -> Filter:
        return in_(name, chunk) if also is None else in_(name, chunk) & also

    # Percent-encoding works character by character, so encoded lengths add up: a filter's
    # length is its fixed part plus each item's length plus a separator between items.
    costs = [encoded_length(_array_item(v)) for v in distinct]
    fixed = encoded_length(render(distinct[:1]).text) - costs[0]
    comma = encoded_length(",")
    room = max_values - (also.in_values if also is not None else 0)
    if room < 1:
        raise ODataValueError(f"the filter beside In() on {name!r} already holds {max_values} values")
    longest = max(costs)  # the value itself is not named: it may be an e-mail address
    if fixed + longest > budget:
        raise ODataValueError(
            f"a value of {name!r} is {longest} characters percent-encoded; with the rest of the "
            f"filter it cannot fit an In() look-up of {budget} characters"
        )
    start, used = 0, fixed + costs[0]
    for i in range(1, len(distinct)):
        if used + comma + costs[i] > budget or i - start >= room:
            yield render(distinct[start:i])
            start, used = i, fixed + costs[i]
        else:
            used += comma + costs[i]
    yield render(distinct[start:])


def fit_chunks(
    items: Sequence[T],
    render: Callable[[Sequence[T]], Filter],
    *,
    budget: int = IN_FILTER_BUDGET,
    max_values: int = MAX_IN_VALUES,
) -> Iterator[tuple[Sequence[T], Filter]]:
    """Split `items` into consecutive chunks, each as long as `render(chunk)` (a filter that
    grows with the chunk, e.g. several In lists built from the same records) still fits
    `budget` encoded characters and `max_values` In values; yields (chunk, filter). An item
    whose filter cannot fit alone is an error."""
    start = 0
    while start < len(items):
        first = render(items[start : start + 1])
        if not _fits(first, budget, max_values):
            raise ODataValueError(
                f"the filter for one item is {encoded_length(first.text)} characters encoded with "
                f"{first.in_values} In values; it cannot fit {budget} characters and {max_values} values"
            )
        good, good_filter, bad = 1, first, None
        # Double while it fits, then halve the gap between the longest fit and the first miss.
        while bad is None or bad - good > 1:
            size = good * 2 if bad is None else (good + bad) // 2
            if start + good >= len(items):
                break
            size = min(size, len(items) - start)
            candidate = render(items[start : start + size])
            if _fits(candidate, budget, max_values):
                good, good_filter = size, candidate
                if start + size >= len(items):
                    break
            else:
                bad = size
        yield items[start : start + good], good_filter
        start += good


# --- record keys and references ------------------------------------------------------------
Key = str | uuid.UUID | Mapping[str, Scalar]


def key_segment(key: Key) -> str:
    """`(guid)` or `(col='v',col2=2)` for a record address by primary or alternate key."""
    if isinstance(key, (str, uuid.UUID)):
        return f"({guid(key)})"
    if not key:
        raise ODataValueError("an alternate key needs at least one column")
    parts = []
    for column, value in key.items():
        if value is None:
            raise ODataValueError(f"alternate key column {column!r} has no value")
        if isinstance(value, str) and _KEY_UNSAFE & set(value):
            bad = "".join(sorted(_KEY_UNSAFE & set(value)))
            raise ODataValueError(
                f"alternate key {column}={value!r} contains {bad!r}, which Dataverse cannot address in "
                "a URL; look the record up with a filter instead"
            )
        parts.append(f"{prop(column)}={literal(value)}")
    return "(" + ",".join(parts) + ")"


def record_path(entity_set: str, key: Key) -> str:
    return f"{prop(entity_set)}{key_segment(key)}"


def bind(entity_set: str, key: Key) -> str:
    """The value of a `<nav>@odata.bind` property: `/accounts(guid)` or `/accounts(k='v')`."""
    return "/" + record_path(entity_set, key)


def entity_id_from_url(url: str) -> str | None:
    """The GUID between the last '(' and ')' of an OData-EntityId, if it is a GUID."""
    start, end = url.rfind("("), url.rfind(")")
    if start == -1 or end < start:
        return None
    inner = url[start + 1 : end]
    return inner.lower() if _GUID.match(inner) else None
