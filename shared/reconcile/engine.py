"""Reconciliation, once for every entity: compare both systems with the links, report, heal.

An entity joins by naming its `EntityReconcile` class in its spec (`EntitySpec.reconciler`,
shared/sync/registry.py); this module does the rest. One run:

1. **Read both systems in bulk, paged** (`EntityReconcile.pages`): each record is reduced at
   once to a `Summary` (its content hash as that system holds it, its e-mail match key, the
   other system's id it carries, whether the flows sync it), so memory grows with the number of
   records (about 2.2 KB per customer with its link, benchmarks/reconcile.py), never by whole
   records.
2. **Read the links** (all of the entity's, or with `since` those of the records listed) and,
   by id, any linked counterpart the listing did not return (with `since`; otherwise these are
   the records gone).
3. **Classify** (report.KINDS): a link whose record is gone on either side is *orphaned*;
   records of both sides carrying each other's id, or with the same e-mail, but without a link
   are *unlinked*; an unlinked record sharing its e-mail with a linked record of its own side is a
   *duplicate*; other unlinked records the flows sync are *missing* on the other side; a linked
   pair where either side's content hash differs from the hash the link stored at the last sync
   was changed behind the integration's back: both records are read again and compared field by
   field through the canonical model; the fields that differ make a *drift* finding (equal
   content with stale hashes is not drift).
4. **Heal** (`heal=True`): publish, per finding, the change notices a webhook would have sent,
   to the topic of the flow reading that system (report.HEALING); the flows then do the writes.
   Reconciliation never writes to either system. An orphaned link is our own state: it is
   removed, and the surviving record's notice published (the flow then treats it as unlinked).

The report (ids and field names only) is stored as the entity's last one and its counts are
emitted as the `bpsync.reconcile_findings` metric (the drift alert in infra/modules/alerts.bicep).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from shared.events import notices_in_chunks
from shared.reconcile.report import Finding, Healing, ReconcileReport, save_report
from shared.store.links import Link
from shared.sync.ports import CursorsPort, Publish
from shared.sync.spec import EntitySpec, load
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("reconcile")

MAX_ITEMS = 1000  # findings listed in a report (counts are always complete)
PER_NOTICE = 100  # ids per healing change notice


class Summary(NamedTuple):
    """One record as reconciliation keeps it: no personal data besides a normalised e-mail key."""

    content_hash: str | None  # as the flows hash it for this system (None: unreadable)
    match_key: str | None  # normalised e-mail: duplicates and e-mail matching
    other_id: str | None  # the other system's id the record carries (Dataverse bpi_brightpearlid)
    synced: bool  # do the flows sync it (a Brightpearl customer; an active Dataverse contact)


Summaries = dict[str, Summary]


class EntityReconcile(Protocol):
    """What an entity provides: bulk reads of both systems as summaries, and a field comparison."""

    link_entity: str  # the links' entity: "customer"
    notice_entities: Mapping[System, str]  # what a healing notice names per system: "contact"

    def pages(self, system: System, since: datetime | None) -> Iterable[Summaries]:
        """Every record of `system` (changed since `since`), a page of summaries at a time."""
        ...

    def read(self, system: System, ids: list[str]) -> Summaries:
        """The records of `system` with these ids that exist (bulk reads)."""
        ...

    def carrying(self, ids: list[str]) -> Summaries:
        """Dataverse records carrying these Brightpearl ids (`other_id`), by Dataverse id."""
        ...

    def differing_fields(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """Per (Brightpearl id, Dataverse id): the canonical fields where the two records differ."""
        ...


class LinkListing(Protocol):
    def all_links(self, entity: str) -> Iterator[Link]: ...

    def get_many(self, entity: str, system: str, record_ids: Iterable[str | int]) -> dict[str, Link]: ...

    def unlink(self, entity: str, system: str, record_id: str | int) -> bool: ...


class Pair(NamedTuple):
    """A link, compact: both ids and the hashes stored at the last sync."""

    brightpearl_id: str
    dataverse_id: str
    brightpearl_hash: str | None
    dataverse_hash: str | None


def _pair(link: Link) -> Pair:
    bp, dv = link.side("brightpearl"), link.side("dataverse")
    return Pair(str(bp.id), str(dv.id).lower(), bp.content_hash, dv.content_hash)


@dataclass
class Reconciler:
    """Compare `spec`'s records in both systems through `entity`, report and optionally heal."""

    spec: EntitySpec
    entity: EntityReconcile
    links: LinkListing
    cursors: CursorsPort
    publish: Mapping[System, Publish]  # the topic of the flow reading each system
    clock: Callable[[], datetime]
    sources: Mapping[System, str]  # the notices' source per system: "/brightpearl/<account>"
    max_items: int = MAX_ITEMS
    per_notice: int = PER_NOTICE

    def run(
        self, *, since: datetime | None = None, heal: bool = False, store: bool = True
    ) -> ReconcileReport:
        report = ReconcileReport(
            entity=self.spec.name,
            run_id=self.clock().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
            started_at=self.clock(),
            since=since,
            heal=heal,
        )
        found = self._compare(report, since)
        if heal:
            report.healing = self._heal(found, report.run_id)
        report.finished_at = self.clock()
        if store:
            save_report(self.cursors, report)
        _emit(report)
        return report

    # ------------------------------------------------------------------------------ compare
    def _compare(self, report: ReconcileReport, since: datetime | None) -> list[Finding]:
        entity = self.entity.link_entity
        bp: Summaries = {}
        dv: Summaries = {}
        for page in self.entity.pages("brightpearl", since):
            bp.update(page)
        for page in self.entity.pages("dataverse", since):
            dv.update({k.lower(): v for k, v in page.items()})
        report.scanned = {"brightpearl": len(bp), "dataverse": len(dv)}

        pairs: dict[tuple[str, str], Pair] = {}
        pending: set[tuple[System, str]] = set()  # records under a creation claim: in flight
        if since is None:
            links: Iterable[Link] = self.links.all_links(entity)
        else:
            links = [
                *self.links.get_many(entity, "brightpearl", list(bp)).values(),
                *self.links.get_many(entity, "dataverse", list(dv)).values(),
            ]
        for link in links:
            if not link.is_linked:
                pending.add((link.source.system, str(link.source.id).lower()))  # type: ignore[arg-type]
                continue
            pair = _pair(link)
            pairs[(pair.brightpearl_id, pair.dataverse_id)] = pair
        report.scanned["links"] = len(pairs)

        # linked counterparts the listing did not return: read by id (absent = gone)
        bp.update(
            self.entity.read("brightpearl", sorted({p.brightpearl_id for p in pairs.values()} - bp.keys()))
        )
        dv.update(
            {
                k.lower(): v
                for k, v in self.entity.read(
                    "dataverse", sorted({p.dataverse_id for p in pairs.values()} - dv.keys())
                ).items()
            }
        )

        findings: list[Finding] = []
        linked_dv = {p.dataverse_id for p in pairs.values()}
        candidates: dict[tuple[str, str], list[System]] = {}
        for key, p in pairs.items():
            gone: list[System] = []
            if p.brightpearl_id not in bp:
                gone.append("brightpearl")
            if p.dataverse_id not in dv:
                gone.append("dataverse")
            if gone:
                findings.append(
                    Finding(kind="orphaned_link", brightpearl_id=p[0], dataverse_id=p[1], gone_in=gone)
                )
                continue
            changed: list[System] = []
            for system, stored, now in (
                ("brightpearl", p.brightpearl_hash, bp[p.brightpearl_id].content_hash),
                ("dataverse", p.dataverse_hash, dv[p.dataverse_id].content_hash),
            ):
                if now is not None and stored != now:
                    changed.append(system)  # type: ignore[arg-type]
            if changed:
                candidates[key] = changed
        partners = {p.brightpearl_id: p.dataverse_id for p in pairs.values()}
        findings += self._unlinked(bp, dv, partners, linked_dv, pending, since)
        if candidates:
            fields = self.entity.differing_fields(list(candidates))
            for (bp_id, dv_id), changed in candidates.items():
                names = fields.get((bp_id, dv_id)) or []
                if names:
                    findings.append(
                        Finding(
                            kind="drift",
                            brightpearl_id=bp_id,
                            dataverse_id=dv_id,
                            changed_in=changed,
                            fields=names,
                        )
                    )
        for finding in findings:
            report.add(finding, max_items=self.max_items)
        return findings

    def _unlinked(
        self,
        bp: Summaries,
        dv: Summaries,
        partners: dict[str, str],  # linked Brightpearl id -> its Dataverse id
        linked_dv: set[str],
        pending: set[tuple[System, str]],
        since: datetime | None,
    ) -> list[Finding]:
        """Records without a link: unlinked pairs, duplicates, and records missing on the other side."""
        loose_bp = {i for i in bp if i not in partners and ("brightpearl", i) not in pending}
        loose_dv = {i for i in dv if i not in linked_dv and ("dataverse", i) not in pending}
        if since is not None:  # the Dataverse records carrying a listed Brightpearl id may be older
            carried = {s.other_id for s in dv.values() if s.other_id}
            wanted = sorted(i for i in loose_bp if i not in carried)
            for dv_id, summary in self.entity.carrying(wanted).items():
                if dv_id.lower() not in dv:
                    dv[dv_id.lower()] = summary
                    if dv_id.lower() not in linked_dv:
                        loose_dv.add(dv_id.lower())
        findings: list[Finding] = []
        # a Dataverse record carrying a Brightpearl id: unlinked with it, or a duplicate of its partner
        for dv_id in sorted(loose_dv):
            other = dv[dv_id].other_id
            if other is None:
                continue
            if other in loose_bp:
                findings.append(Finding(kind="unlinked", brightpearl_id=other, dataverse_id=dv_id))
                loose_bp.discard(other)
                loose_dv.discard(dv_id)
            elif other in partners:
                partner = partners[other]
                findings.append(
                    Finding(
                        kind="duplicate",
                        system="dataverse",
                        dataverse_id=dv_id,
                        brightpearl_id=other,
                        duplicate_of=partner,
                    )
                )
                loose_dv.discard(dv_id)
        # by e-mail, per side: a duplicate of a linked record of its own side, or unlinked with
        # the other side's record
        for system, loose, mine, linked, others, other_loose in (
            ("brightpearl", loose_bp, bp, set(partners), dv, loose_dv),
            ("dataverse", loose_dv, dv, linked_dv, bp, loose_bp),
        ):
            linked_by_key: dict[str, str] = {}
            for i in sorted(linked):
                key = mine[i].match_key if i in mine else None
                if key:
                    linked_by_key.setdefault(key, i)
            loose_by_key: dict[str, list[str]] = defaultdict(list)
            for i in sorted(loose):
                if mine[i].match_key:
                    loose_by_key[mine[i].match_key].append(i)  # type: ignore[index]
            other_loose_by_key: dict[str, list[str]] = defaultdict(list)
            for i in sorted(other_loose):
                if others[i].match_key:
                    other_loose_by_key[others[i].match_key].append(i)  # type: ignore[index]
            for key, ids in loose_by_key.items():
                if key in linked_by_key:
                    for i in ids:
                        findings.append(_duplicate(system, i, linked_by_key[key]))  # type: ignore[arg-type]
                        loose.discard(i)
                elif len(ids) == 1 and len(other_loose_by_key.get(key, ())) == 1:
                    partner = other_loose_by_key[key][0]
                    bp_id, dv_id = (ids[0], partner) if system == "brightpearl" else (partner, ids[0])
                    findings.append(Finding(kind="unlinked", brightpearl_id=bp_id, dataverse_id=dv_id))
                    loose.discard(ids[0])
                    other_loose.discard(partner)
                elif len(ids) > 1 and other_loose_by_key.get(key):
                    for i in ids[1:]:
                        findings.append(_duplicate(system, i, ids[0]))  # type: ignore[arg-type]
                        loose.discard(i)
        for i in sorted(loose_bp, key=_id_order):
            if bp[i].synced:
                findings.append(Finding(kind="missing_in_dataverse", brightpearl_id=i))
        for i in sorted(loose_dv):
            if dv[i].synced:
                findings.append(Finding(kind="missing_in_brightpearl", dataverse_id=i))
        return findings

    # ------------------------------------------------------------------------------ heal
    def _heal(self, findings: list[Finding], run_id: str) -> Healing:
        """Publish the notices a webhook would have sent; remove orphaned links (our own state)."""
        ids: dict[System, list[str]] = {"brightpearl": [], "dataverse": []}
        healing = Healing()
        for f in findings:
            if f.kind == "missing_in_dataverse" or f.kind == "unlinked":
                ids["brightpearl"].append(str(f.brightpearl_id))
            elif f.kind == "missing_in_brightpearl":
                ids["dataverse"].append(str(f.dataverse_id))
            elif f.kind == "drift":
                for system in f.changed_in:
                    ids[system].append(str(f.brightpearl_id if system == "brightpearl" else f.dataverse_id))
            elif f.kind == "orphaned_link":
                if self.links.unlink(
                    self.entity.link_entity, "brightpearl", str(f.brightpearl_id)
                ) or self.links.unlink(self.entity.link_entity, "dataverse", str(f.dataverse_id)):
                    healing.links_removed += 1
                if "brightpearl" not in f.gone_in:
                    ids["brightpearl"].append(str(f.brightpearl_id))
                if "dataverse" not in f.gone_in:
                    ids["dataverse"].append(str(f.dataverse_id))
        now = self.clock()
        for system, record_ids in ids.items():
            unique = list(dict.fromkeys(record_ids))
            if not unique:
                continue
            envelopes = notices_in_chunks(
                system,
                self.entity.notice_entities[system],
                unique,
                per_notice=self.per_notice,
                version=f"reconcile:{run_id}",
                source=self.sources[system],
                origin="reconcile",
                observed_at=now,
            )
            self.publish[system](envelopes)
            healing.notices[system] = len(unique)
        return healing


def _duplicate(system: System, record_id: str, of: str) -> Finding:
    if system == "brightpearl":
        return Finding(kind="duplicate", system=system, brightpearl_id=record_id, duplicate_of=of)
    return Finding(kind="duplicate", system=system, dataverse_id=record_id, duplicate_of=of)


def _id_order(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


def _emit(report: ReconcileReport) -> None:
    """The counts as a metric per kind (the drift alert reads it) and one log line (no ids)."""
    from shared import telemetry

    for kind, count in report.counts.items():
        telemetry.reconcile_findings.add(count, {"entity": report.entity, "kind": kind})
    log.info("%s (run %s, heal=%s)", report.summary(), report.run_id, report.heal)


def from_runtime(spec: EntitySpec) -> Reconciler:
    """The reconciler of `spec` with this process's adapters, publishing to the flows' topics."""
    from shared import runtime
    from shared.sync.spec import TOPIC_SETTINGS

    if not spec.reconciler:
        raise ValueError(f"{spec.name} cannot be reconciled: its spec names no reconciler")
    cls: Any = load(spec.reconciler)
    store = runtime.state_store()
    s = runtime.settings()
    return Reconciler(
        spec,
        cls.from_runtime(),
        links=store.links,
        cursors=store.cursors,
        publish={system: runtime.publisher_to(setting) for system, setting in TOPIC_SETTINGS.items()},
        clock=runtime.clock,
        sources={
            "brightpearl": f"/brightpearl/{s.brightpearl.account}",
            "dataverse": runtime.dataverse_source(),
        },
    )


def reconcilable(specs: Iterable[EntitySpec]) -> list[EntitySpec]:
    """The entities that declare a reconciler."""
    return [s for s in specs if s.reconciler]


def schedule_setting(spec: EntitySpec) -> str:
    """The app setting holding the NCRONTAB of `spec`'s reconciliation timer."""
    return f"{spec.name.upper()}_RECONCILE_SCHEDULE"


def run_scheduled(spec: EntitySpec) -> ReconcileReport | None:
    """The timer's run: report only. A transient failure (throttling, 5xx, network) is logged and
    left to the next day; anything else is raised."""
    from shared.resilience import classify

    try:
        return from_runtime(spec).run()
    except Exception as exc:
        verdict = classify(exc)
        if verdict is None or not verdict.transient:
            raise
        log.warning("reconcile %s failed (%s); the next run tries again", spec.name, verdict.reason)
        return None
