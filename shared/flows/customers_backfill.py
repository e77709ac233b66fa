"""Customer backfill: page the source's customers and publish change notices in chunks.

The flows do the work (the same code as live changes), so a backfill is only ids on the bus.
It is resumable: after each page the position reached (records published so far, in a stable
order: Brightpearl by contactId, Dataverse by createdon then contactid) is saved in the
`cursors` table; a re-run continues from there (Brightpearl jumps straight to that row with
`firstResult`; Dataverse re-reads the skipped pages, ids only). Notices of one run share a run
id in their version, so a chunk re-published after a crash has the same message id and the
broker's duplicate detection drops it. The cursor is deleted when the run completes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.brightpearl.search import SearchPaginator, period
from shared.dataverse import odata
from shared.events import ChangeNotice, Envelope
from shared.flows.customers_spec import CUSTOMERS
from shared.sync.outcomes import chunked
from shared.sync.ports import CursorsPort, Publish
from shared.systems import System

if TYPE_CHECKING:
    from shared.brightpearl.client import BrightpearlClient
    from shared.dataverse.client import DataverseClient

Source = System  # the system a backfill reads
PAGE = 500


def cursor_name(source: Source) -> str:
    return CUSTOMERS.backfill_cursor(source)


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
    source: Source
    run_id: str
    published_ids: int
    notices: int
    resumed_from: int
    total: int | None


class CustomerBackfill:
    def __init__(
        self,
        source: Source,
        *,
        brightpearl: BrightpearlClient | None = None,
        dataverse: DataverseClient | None = None,
        cursors: CursorsPort,
        publish: Publish,
        clock: Callable[[], datetime],
        source_name: str,
        per_notice: int = 100,
        page_size: int = PAGE,
    ) -> None:
        if source not in ("brightpearl", "dataverse"):
            raise ValueError(f"--from must be brightpearl or dataverse, not {source!r}")
        self.source = source
        self.bp = brightpearl
        self.dv = dataverse
        self.cursors = cursors
        self.publish = publish
        self.clock = clock
        self.source_name = source_name
        self.per_notice = per_notice
        self.page_size = page_size

    @classmethod
    def from_runtime(cls, source: Source) -> CustomerBackfill:
        """A backfill from `source` with this process's adapters, publishing to its topic."""
        from shared import runtime

        s = runtime.settings()
        flow = (
            next(f for f in CUSTOMERS.flows if f.source == source)
            if source in ("brightpearl", "dataverse")
            else None
        )
        if flow is None:
            raise ValueError(f"--from must be brightpearl or dataverse, not {source!r}")
        return cls(
            source,
            brightpearl=runtime.brightpearl() if source == "brightpearl" else None,
            dataverse=runtime.dataverse() if source == "dataverse" else None,
            cursors=runtime.state_store().cursors,
            publish=runtime.publisher_to(flow.topic_setting),
            clock=runtime.clock,
            source_name=f"/brightpearl/{s.brightpearl.account}"
            if source == "brightpearl"
            else runtime.dataverse_source(),
            per_notice=s.customers.ids_per_notice,
        )

    def run(
        self,
        since: datetime | None = None,
        *,
        restart: bool = False,
        progress: Callable[[int, int | None], None] | None = None,
        max_pages: int | None = None,
    ) -> BackfillReport:
        """Publish every customer id (changed since `since`); `progress(done, total)` after each page.

        `max_pages` stops early (tests: simulate an interruption); the cursor stays for a resume.
        """
        name = cursor_name(self.source)
        cursor = None if restart else self.cursors.get(name)
        since_text = since.isoformat() if since else None
        if cursor is not None:
            state = BackfillState(**json.loads(cursor.value))
            if state.since != since_text:
                raise ValueError(
                    f"a backfill from {self.source} since {state.since or 'the beginning'} is unfinished; "
                    "resume it with the same --since, or start over with --restart"
                )
        else:
            state = BackfillState(run_id=self.clock().strftime("%Y%m%dT%H%M%S%f"), since=since_text)
        etag = cursor.etag if cursor is not None else None
        resumed_from = state.position
        notices = 0
        for pages, (ids, total) in enumerate(self._pages(since, state.position), start=1):
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
            if max_pages is not None and pages >= max_pages:
                return BackfillReport(
                    self.source,
                    state.run_id,
                    state.position - resumed_from,
                    notices,
                    resumed_from,
                    state.total,
                )
        if etag is not None:
            self.cursors.delete(name, etag=etag)
        return BackfillReport(
            self.source, state.run_id, state.position - resumed_from, notices, resumed_from, state.total
        )

    def _notices(self, ids: list[str], state: BackfillState) -> list[Envelope]:
        out = []
        entity = "contact"
        for chunk in chunked(ids, self.per_notice):
            notice = ChangeNotice(
                system=self.source,
                entity=entity,
                ids=tuple(chunk),
                operation="changed",
                observed_at=self.clock(),
                source=self.source_name,
                origin="backfill",
                version=f"backfill:{state.run_id}",
            )
            out.append(Envelope.wrap(notice))
        return out

    def _pages(self, since: datetime | None, position: int) -> Iterator[tuple[list[str], int | None]]:
        if self.source == "brightpearl":
            if self.bp is None:
                raise ValueError("a backfill from brightpearl needs the Brightpearl client")
            filters: dict[str, Any] = {"isCustomer": True}
            if since is not None:
                filters["updatedOn"] = period(since, None)
            paginator = SearchPaginator(
                self.bp.transport,
                "/contact-service/contact-search",
                filters=filters,
                columns=["contactId"],
                sort="contactId.ASC",
                page_size=self.page_size,
                first_result=position + 1,
            )
            for page in paginator.pages():
                yield [str(row["contactId"]) for row in page], paginator.results_available
            return
        if self.dv is None:
            raise ValueError("a backfill from dataverse needs the Dataverse client")
        flt = odata.ge("modifiedon", since) if since else None
        total = self.dv.count("contacts", flt) if position == 0 else None
        skipped = 0
        for dv_page in self.dv.pages(
            "contacts",
            select=["contactid"],
            filter=flt,
            orderby=["createdon asc", "contactid asc"],
            page_size=self.page_size,
        ):
            ids = [str(r.id) for r in dv_page.records]
            if skipped + len(ids) <= position:
                skipped += len(ids)
                continue
            ids = ids[max(position - skipped, 0) :]
            skipped = position
            yield ids, total
