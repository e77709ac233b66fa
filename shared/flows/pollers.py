"""Pollers: the backstop for missed webhooks (DESIGN §3.2). They publish the same change notices.

- `BrightpearlContactPoller`: contact-search by `updatedOn` from the watermark minus an overlap
  window (time stamps carry the account's offset and webhooks can be late; reference §4.3),
  paged at 500 rows. The watermark is the newest `updatedOn` seen, never the local clock, so
  clock skew between us and Brightpearl cannot lose changes. Re-reading the overlap is
  harmless: a notice's id is a hash of its (id, updatedOn) pairs, so an unchanged repeat is
  dropped by the broker's duplicate detection, and the flows are state-based anyway.
- `DataverseChangePoller`: change tracking on contacts and accounts (delta links in
  `cursors`). The very first run only records the delta link (history is the backfill's
  job: `syncctl backfill customers --from dataverse`); an expired delta token restarts with a
  full read, which is published. Deleted rows become `deleted` notices.

Cursors advance only after the notices were published: a crash in between re-reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from shared.brightpearl.ratebudget import RateBudget, poll_may_run
from shared.dataverse.change_tracking import ChangeTrackingReader
from shared.events import ChangeNotice, Envelope, System
from shared.flows.customers_spec import CUSTOMERS, DATAVERSE_CURSORS
from shared.flows.orders_spec import DATAVERSE_ORDER_CURSORS, ORDERS
from shared.mapping.brightpearl import parse_bp_time
from shared.sync.outcomes import chunked
from shared.sync.ports import BrightpearlPort, CursorsPort, Publish
from shared.sync.spec import PollerSpec
from shared.telemetry import get_logger

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient

log = get_logger("flows.pollers")
DATAVERSE_ENTITIES = {"contacts": "contact", "accounts": "account"}


@dataclass
class PollReport:
    published: int = 0  # notices
    records: int = 0  # ids in them
    deleted: int = 0
    cursor: str | None = None
    initialised: bool = False
    skipped: bool = False  # the shared rate budget was short: nothing read, the cursor kept


def _version(pairs: Iterable[tuple[str, str]]) -> str:
    text = "|".join(f"{i}@{v}" for i, v in sorted(pairs))
    return "v:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def notices_for(
    system: System,
    entity: str,
    stamped_ids: Sequence[tuple[str, str]],
    *,
    source: str,
    origin: str,
    observed_at: datetime,
    per_notice: int,
    operation: str = "changed",
    detail: dict[str, Any] | None = None,
) -> list[Envelope]:
    """Notices of up to `per_notice` ids; each keyed by its (id, version stamp) pairs."""
    out = []
    for chunk in chunked(list(stamped_ids), per_notice):
        notice = ChangeNotice(
            system=system,
            entity=entity,
            ids=tuple(i for i, _ in chunk),
            operation=operation,  # type: ignore[arg-type]
            observed_at=observed_at,
            source=source,
            origin=origin,  # type: ignore[arg-type]
            version=_version(chunk),
            detail=detail or {},
        )
        out.append(Envelope.wrap(notice))
    return out


@dataclass(kw_only=True)
class Poller:
    """What every poller holds besides its client: its cursors, where it publishes notices and
    as which `source`, its clock, and how many ids go into one notice."""

    spec: ClassVar[PollerSpec]
    cursors: CursorsPort
    publish: Publish
    clock: Callable[[], datetime]
    source: str
    per_notice: int = 100

    def notices(
        self,
        system: System,
        entity: str,
        stamped_ids: Sequence[tuple[str, str]],
        observed_at: datetime,
        operation: str = "changed",
    ) -> list[Envelope]:
        """This poller's notices of `stamped_ids` (origin "poller")."""
        return notices_for(
            system,
            entity,
            stamped_ids,
            source=self.source,
            origin="poller",
            observed_at=observed_at,
            per_notice=self.per_notice,
            operation=operation,
        )


@dataclass(kw_only=True)
class BrightpearlContactPoller(Poller):
    """contact-search by updatedOn from the watermark (module docstring). Another Brightpearl
    resource with `updatedOn` subclasses it with its spec, `entity`, `id_column` and `search`."""

    spec: ClassVar[PollerSpec] = CUSTOMERS.pollers[0]
    entity: ClassVar[str] = "contact"  # the notices' entity
    id_column: ClassVar[str] = "contactId"
    client: BrightpearlPort
    overlap: timedelta
    initial_lookback: timedelta
    budget: RateBudget | None = None  # the client's shared budget: a short one skips the round

    @classmethod
    def from_runtime(cls) -> BrightpearlContactPoller:
        from shared import runtime

        s = runtime.settings()
        client = runtime.brightpearl()
        return cls(
            client=client,
            cursors=runtime.state_store().cursors,
            publish=runtime.publisher_to(cls.spec.topic_setting),
            clock=runtime.clock,
            source=f"/brightpearl/{s.brightpearl.account}",
            overlap=timedelta(seconds=s.customers.poll_overlap_seconds),
            initial_lookback=timedelta(hours=s.customers.poll_initial_lookback_hours),
            per_notice=s.customers.ids_per_notice,
            budget=client.transport.budget,
        )

    def poll(self) -> PollReport:
        if not poll_may_run(self.budget, self.spec.function_name):
            return PollReport(skipped=True)
        cursor_name = self.spec.cursors[0]
        cursor = self.cursors.get(cursor_name)
        watermark = parse_bp_time(cursor.value) if cursor is not None else None
        since = (watermark - self.overlap) if watermark else self.clock() - self.initial_lookback
        stamped: dict[str, str] = {}
        newest = watermark
        for row in self.search(since):
            updated = parse_bp_time(row.get("updatedOn"))
            stamped[str(row[self.id_column])] = str(row.get("updatedOn") or "")
            if updated is not None and (newest is None or updated > newest):
                newest = updated
        report = PollReport(records=len(stamped))
        if stamped:
            stamped_ids = sorted(stamped.items(), key=lambda p: int(p[0]))
            envelopes = self.notices("brightpearl", self.entity, stamped_ids, self.clock())
            self.publish(envelopes)
            report.published = len(envelopes)
        if newest is not None and newest != watermark:
            value = newest.isoformat()
            self.cursors.save(cursor_name, value, etag=cursor.etag if cursor else None)
            report.cursor = value
        log.info("brightpearl %s poll: %d ids in %d notices", self.entity, report.records, report.published)
        return report

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        """Rows (`id_column`, `updatedOn`) of the records changed since `since`."""
        return self.client.search_contacts(
            updated_since=since, is_customer=True, columns=["contactId", "updatedOn"], sort="updatedOn.ASC"
        )


@dataclass(kw_only=True)
class DataverseChangePoller(Poller):
    """Change tracking on contacts and accounts (module docstring)."""

    spec: ClassVar[PollerSpec] = CUSTOMERS.pollers[1]
    # entity set -> (the notice's entity, the cursor keeping its delta link)
    tables: ClassVar[Mapping[str, tuple[str, str]]] = {
        s: (DATAVERSE_ENTITIES[s], DATAVERSE_CURSORS[s]) for s in ("accounts", "contacts")
    }
    client: DataverseClient

    @classmethod
    def from_runtime(cls) -> DataverseChangePoller:
        from shared import runtime

        return cls(
            client=runtime.dataverse(),
            cursors=runtime.state_store().cursors,
            publish=runtime.publisher_to(cls.spec.topic_setting),
            clock=runtime.clock,
            source=runtime.dataverse_source(),
            per_notice=runtime.settings().customers.ids_per_notice,
        )

    def poll(self) -> dict[str, PollReport]:
        from shared.dataverse.tables import PRIMARY_IDS

        reports = {}
        for entity_set, (entity, cursor) in self.tables.items():
            pk = PRIMARY_IDS[entity_set]
            reader = ChangeTrackingReader(
                self.client,
                self.cursors,
                entity_set,
                select=[pk, "modifiedon", "versionnumber"],
                cursor_name=cursor,
            )
            changes = reader.read()
            report = PollReport()
            if changes.full_sync and changes.reason == "no delta link yet":
                report.initialised = True  # history is the backfill's job
            else:
                now = self.clock()
                # the row version tells two changes apart where modifiedon (whole seconds) may not
                upserts = [(str(r.id), _row_stamp(r.values)) for r in changes.upserts if r.id]
                deleted = [(i, "deleted") for i in changes.deleted_ids]
                envelopes = self.notices("dataverse", entity, upserts, now)
                envelopes += self.notices("dataverse", entity, deleted, now, operation="deleted")
                if envelopes:
                    self.publish(envelopes)
                report.published, report.records, report.deleted = (
                    len(envelopes),
                    len(upserts),
                    len(changes.deleted_ids),
                )
            reader.advance(changes)
            report.cursor = cursor
            reports[entity_set] = report
            log.info("dataverse %s poll: %d changed, %d deleted", entity_set, report.records, report.deleted)
        return reports


class OrderChangePoller(DataverseChangePoller):
    """Change tracking on sales orders and their lines: the backstop of the Dataverse webhooks
    of orders-to-brightpearl (a line notice stands for its order there)."""

    spec: ClassVar[PollerSpec] = ORDERS.pollers[0]
    tables: ClassVar[Mapping[str, tuple[str, str]]] = {
        "salesorders": ("salesorder", DATAVERSE_ORDER_CURSORS["salesorders"]),
        "salesorderdetails": ("salesorderdetail", DATAVERSE_ORDER_CURSORS["salesorderdetails"]),
    }


def _row_stamp(values: Mapping[str, Any]) -> str:
    """A Dataverse row's version stamp: its versionnumber (RowVersion, unique per change), else
    modifiedon. Two changes within one second share a modifiedon, and the bus's duplicate
    detection would drop the second one's notice as a copy of the first."""
    return str(values.get("versionnumber") or values.get("modifiedon") or "")
