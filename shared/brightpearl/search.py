"""Brightpearl `firstResult` paging: `FirstResultPaginator` (one loop for every paged GET) and,
on it, `SearchPaginator`, an iterator of resource-search rows as dicts keyed by column name.

A GET above its per-request limit pages instead of failing (contact GET, reference §5.1) and
says so in the envelope's `pagination`; a search pages through `metaData` (below). Both are
asked again from `firstResult` = the previous page's `lastResult + 1`.

A search answers `{"response":{"metaData":{...,"columns":[...]},"results":[[...]]},
"reference":{...}}` (reference §4.1): rows are arrays in the order of `metaData.columns`.
Pages are fetched with `firstResult` (1-based) and `pageSize` (<= 500) until
`morePagesAvailable` is false (or, when that key is absent, `lastResult >= resultsAvailable`).
A 404 means "no rows". The paginator merges every page's `reference` maps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from shared.brightpearl.errors import BrightpearlError, BrightpearlNotFound

if TYPE_CHECKING:
    from shared.brightpearl.transport import BrightpearlResponse, BrightpearlTransport

MAX_PAGE_SIZE = 500


def period(since: datetime | date | None = None, until: datetime | date | None = None) -> str:
    """A PERIOD filter value: `from/`, `from/to` or `/to` (ISO 8601 with offset)."""
    if since is None and until is None:
        raise ValueError("a period needs a start, an end or both")
    return f"{_iso(since)}/{_iso(until)}"


def _iso(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"datetime {value!r} has no time zone; Brightpearl needs an offset")
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.isoformat()


@dataclass
class FirstResultPaginator:
    """The answers of GET `path` page by page; `next_first(answer, first)` reads from an answer
    the `firstResult` of the next page, or None when it was the last. A 404 means no (more) rows.
    """

    transport: BrightpearlTransport
    path: str
    params: dict[str, Any] | None = None
    _: KW_ONLY
    next_first: Callable[[BrightpearlResponse, int], int | None]
    first_result: int | None = None
    max_pages: int | None = None
    pages_fetched: int = field(default=0, init=False)

    def __iter__(self) -> Iterator[BrightpearlResponse]:
        first = self.first_result
        while self.max_pages is None or self.pages_fetched < self.max_pages:
            params = dict(self.params or {})
            if first is not None:
                params["firstResult"] = first
            try:
                answer = self.transport.request("GET", self.path, params=params or None)
            except BrightpearlNotFound:
                return
            self.pages_fetched += 1
            yield answer
            first = self.next_first(answer, first or 1)
            if first is None:
                return


def envelope_next_first(answer: BrightpearlResponse, first: int) -> int | None:
    """The next `firstResult` of a paged GET (the envelope's `pagination`), None on the last page."""
    pagination = answer.body.get("pagination")
    if not isinstance(pagination, dict) or not pagination.get("morePagesAvailable"):
        return None
    last = pagination.get("lastResult")
    return last + 1 if isinstance(last, int) else None


class SearchPaginator:
    """Iterate a `*-search` resource page by page; yields one dict per row."""

    def __init__(
        self,
        transport: BrightpearlTransport,
        path: str,
        *,
        filters: dict[str, Any] | None = None,
        columns: list[str] | None = None,
        sort: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        first_result: int = 1,
        max_pages: int | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if first_result < 1:
            raise ValueError("first_result is 1-based")
        self._transport = transport
        self.path = path
        self.filters = {k: _filter_value(v) for k, v in (filters or {}).items() if v is not None}
        self.columns = columns
        self.sort = sort
        self.page_size = page_size
        self.first_result = first_result
        self.max_pages = max_pages
        self.reference: dict[str, dict[str, Any]] = {}
        self.pages_fetched = 0
        self.results_available: int | None = None
        self.column_names: list[str] = []

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.filters)
        if self.columns:
            params["columns"] = ",".join(self.columns)
        if self.sort:
            params["sort"] = self.sort
        params["pageSize"] = self.page_size
        return params

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """Each page's rows (dicts keyed by column name)."""
        answers = FirstResultPaginator(
            self._transport,
            self.path,
            self._params(),
            next_first=self._next_first,
            first_result=self.first_result,
            max_pages=None if self.max_pages is None else self.max_pages - self.pages_fetched,
        )
        for answer in answers:
            self.pages_fetched += 1
            meta = self._meta(answer)
            names = [c["name"] for c in meta.get("columns", [])]
            self.column_names = names
            for key, mapping in answer.reference.items():
                self.reference.setdefault(key, {}).update(mapping or {})
            self.results_available = _int(meta.get("resultsAvailable"))
            yield [dict(zip(names, row, strict=False)) for row in answer.response.get("results") or []]

    def _meta(self, answer: BrightpearlResponse) -> dict[str, Any]:
        response = answer.response
        if not isinstance(response, dict) or "metaData" not in response:
            raise BrightpearlError(
                f"search {self.path} answered without metaData; got {type(response).__name__}"
            )
        meta = response["metaData"]
        return meta if isinstance(meta, dict) else {}

    def _next_first(self, answer: BrightpearlResponse, first: int) -> int | None:
        meta = self._meta(answer)
        rows = answer.response.get("results") or []
        last = _int(meta.get("lastResult"))
        more = meta.get("morePagesAvailable")
        if more is None:
            more = last is not None and self.results_available is not None and last < self.results_available
        if not more or not rows:
            return None
        return (last + 1) if last is not None else first + len(rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page


def _filter_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set)):
        return ",".join(str(v) for v in value)
    if isinstance(value, datetime | date):
        return _iso(value)
    return str(value)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
