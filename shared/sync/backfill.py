"""Backfill, once for every entity: page the source's ids and publish change notices in chunks.

`syncctl backfill <entity> --from <system>` reads the entity's spec: the `BackfillSource` it
declares for that system names the notice entity and a lister ("module:function", the
`Lister` protocol below) that yields every id of the entity in that system, page by page, in
a stable order, starting after the first `position` records. The flows do the work (the same
code as live changes), so a backfill is only ids on the bus.

It is resumable: after each page the position reached (records listed so far) is saved in the
`cursors` table under `EntitySpec.backfill_cursor(source)`; a re-run continues from there (a
Brightpearl search jumps straight to that row with `firstResult`; a Dataverse listing re-reads
the skipped pages, ids only). Notices of one run share a run id in their version, so a chunk
re-published after a crash has the same message id and the broker's duplicate detection drops
it. The cursor is deleted when the run completes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Required, TypedDict, Unpack

from shared.brightpearl.search import MAX_PAGE_SIZE, SearchPaginator
from shared.events import Envelope, notices_in_chunks
from shared.sync.outcomes import chunked
from shared.sync.ports import CursorsPort, Publish
from shared.sync.spec import SYSTEM_TITLES, EntitySpec, load
from shared.systems import System

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient

PAGE = 500
IdPage = tuple[list[str], int | None]  # the ids of one page, and the total when the source says


class Lister(Protocol):
    """Every id of an entity in one system, page by page, after the first `position` records
    (a stable order, so a resumed run neither skips nor repeats), changed since `since` if given.
    `client` is the source system's client (Brightpearl or Dataverse)."""

    def __call__(
        self, client: Any, *, since: datetime | None, position: int, page_size: int
    ) -> Iterable[IdPage]: ...


def search_pages(
    rows: Iterable[dict[str, Any]], id_column: str, position: int, page_size: int
) -> Iterator[IdPage]:
    """Pages of ids from a Brightpearl `*-search` (the client's `SearchPaginator`, which is asked
    from row `position + 1` with `firstResult`; any other iterable of rows, an in-memory port's,
    is skipped to it)."""
    if isinstance(rows, SearchPaginator):
        rows.first_result = position + 1
        rows.page_size = min(page_size, MAX_PAGE_SIZE)
        for page in rows.pages():
            yield [str(row[id_column]) for row in page], rows.results_available
        return
    listed = list(rows)
    for chunk in chunked(listed[position:], page_size):
        yield [str(row[id_column]) for row in chunk], len(listed)


def dataverse_pages(
    client: DataverseClient,
    entity_set: str,
    id_column: str,
    *,
    since: datetime | None,
    position: int,
    page_size: int,
) -> Iterator[IdPage]:
    """Pages of ids of a Dataverse table (oldest first, then by id; modified since `since`),
    following `@odata.nextLink`; the pages before `position` are read again, ids only."""
    from shared.dataverse import odata

    flt = odata.ge("modifiedon", since) if since else None
    total = client.count(entity_set, flt) if position == 0 else None
    skipped = 0
    for page in client.pages(
        entity_set,
        select=[id_column],
        filter=flt,
        orderby=["createdon asc", f"{id_column} asc"],
        page_size=page_size,
    ):
        ids = [str(r.id) for r in page.records]
        if skipped + len(ids) <= position:
            skipped += len(ids)
            continue
        ids = ids[max(position - skipped, 0) :]
        skipped = position
        yield ids, total


@dataclass
class BackfillState:
    run_id: str
    position: int = 0
    since: str | None = None
    total: int | None = None

    def dump(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass
class BackfillReport:
    source: System
    run_id: str
    published_ids: int
    notices: int
    resumed_from: int
    total: int | None
    entity: str = ""  # the spec's name: "customers"
    record: str = ""  # what one id is, for messages: "customer"


class BackfillOptions(TypedDict, total=False):
    """A backfill's keyword arguments besides its client."""

    cursors: Required[CursorsPort]  # where the position reached is kept
    publish: Required[Publish]
    clock: Required[Callable[[], datetime]]
    source_name: Required[str]  # the notices' source: "/brightpearl/<account>"
    per_notice: int  # ids per change notice (default 100)
    page_size: int  # ids per listing page (default PAGE)


class Backfill:
    """Publish every id of `spec`'s records in `source` as change notices (resumable)."""

    def __init__(
        self, spec: EntitySpec, source: System, *, client: Any, **options: Unpack[BackfillOptions]
    ) -> None:
        self.declared = spec.backfill_source(source)  # ValueError naming why not
        self.spec = spec
        self.source = source
        self.client = client
        self.cursors = options["cursors"]
        self.publish = options["publish"]
        self.clock = options["clock"]
        self.source_name = options["source_name"]
        self.per_notice = options.get("per_notice", 100)
        self.page_size = options.get("page_size", PAGE)

    @property
    def cursor_name(self) -> str:
        return self.spec.backfill_cursor(self.source)

    def run(
        self,
        since: datetime | None = None,
        *,
        restart: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
        max_pages: int | None = None,
    ) -> BackfillReport:
        """Publish every id (changed since `since`); `progress(done, total)` after each page.

        `max_pages` stops early (tests: simulate an interruption); the cursor stays for a resume.
        """
        if self.client is None:
            raise ValueError(f"a backfill from {self.source} needs the {SYSTEM_TITLES[self.source]} client")
        name = self.cursor_name
        cursor = None if restart else self.cursors.get(name)
        since_text = since.isoformat() if since else None
        if cursor is not None:
            state = BackfillState(**json.loads(cursor.value))
            if state.since != since_text:
                raise ValueError(
                    f"a backfill of {self.spec.name} from {self.source} since "
                    f"{state.since or 'the beginning'} is unfinished; "
                    "resume it with the same --since, or start over with --restart"
                )
        else:
            state = BackfillState(run_id=self.clock().strftime("%Y%m%dT%H%M%S%f"), since=since_text)
        etag = cursor.etag if cursor is not None else None
        resumed_from = state.position
        notices = 0
        lister: Lister = load(self.declared.lister)  # type: ignore[assignment]
        pages = lister(self.client, since=since, position=state.position, page_size=self.page_size)
        for count, (ids, total) in enumerate(pages, start=1):
            state.total = total
            if ids:
                envelopes = self._notices(ids, state)
                self.publish(envelopes)
                notices += len(envelopes)
                state.position += len(ids)
            saved = self.cursors.save(name, state.dump(), etag=etag)
            etag = getattr(saved, "etag", None)
            if progress is not None:
                progress(state.position, total)
            if max_pages is not None and count >= max_pages:
                return self._report(state, resumed_from, notices)
        if etag is not None:
            self.cursors.delete(name, etag=etag)
        return self._report(state, resumed_from, notices)

    def _report(self, state: BackfillState, resumed_from: int, notices: int) -> BackfillReport:
        return BackfillReport(
            self.source,
            state.run_id,
            state.position - resumed_from,
            notices,
            resumed_from,
            state.total,
            entity=self.spec.name,
            record=self.spec.link_entity,
        )

    def _notices(self, ids: list[str], state: BackfillState) -> list[Envelope]:
        return notices_in_chunks(
            self.source,
            self.declared.entity,
            ids,
            per_notice=self.per_notice,
            version=f"backfill:{state.run_id}",
            source=self.source_name,
            origin="backfill",
            observed_at=self.clock(),
        )


def topic_setting(spec: EntitySpec, source: System) -> str:
    """The app setting naming the topic a backfill of `spec` from `source` publishes to (the
    topic of the flow reading that system)."""
    spec.backfill_source(source)
    flow = next((f for f in spec.flows if f.source == source), None)
    if flow is None:
        raise ValueError(f"no flow of {spec.name} reads {source}: nothing would consume a backfill")
    return flow.topic_setting


def from_runtime(spec: EntitySpec, source: System) -> Backfill:
    """A backfill of `spec` from `source` with this process's adapters, publishing to its topic."""
    from shared import runtime

    s = runtime.settings()
    setting = topic_setting(spec, source)
    return Backfill(
        spec,
        source,
        client=runtime.brightpearl() if source == "brightpearl" else runtime.dataverse(),
        cursors=runtime.state_store().cursors,
        publish=runtime.publisher_to(setting),
        clock=runtime.clock,
        source_name=f"/brightpearl/{s.brightpearl.account}"
        if source == "brightpearl"
        else runtime.dataverse_source(),
        per_notice=s.customers.ids_per_notice,  # CUSTOMERS_IDS_PER_NOTICE: pollers and backfill
    )
