"""Flow customers-to-dataverse: Brightpearl contacts -> Dataverse contacts (+ parent accounts).

Per batch of change notices (DESIGN §3): coalesce the contact ids; read the contacts with
their postal addresses by id set; translate and check them through the mapping; find each
one's Dataverse contact by link, by `bpi_brightpearlid`, then by normalised e-mail (one
`Microsoft.Dynamics.CRM.In` query per chunk), then flag likely duplicates (fuzzy name +
postcode) for review instead of creating a second contact; decide per record (ownership,
content hash: the integration's own echo writes nothing); write accounts first, then
contacts, with UpsertMultiple on the `bpi_brightpearlid` alternate key (a contact matched by
e-mail is updated by its id and gets the key); then record links, hashes and audit rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.dataverse import odata
from shared.events import Envelope
from shared.flows.customers_common import (
    ENTITY,
    BatchResults,
    Publish,
    RecordResult,
    batch_failure,
    chunked,
    fatal_description,
    finish_batch,
    in_parallel,
)
from shared.mapping import (
    CustomerMapping,
    MappingInputError,
    brightpearl_to_canonical,
    contact_query,
    contact_select,
    content_hash,
    dataverse_to_canonical,
    decide_write,
    is_customer,
)
from shared.mapping.brightpearl import bp_id
from shared.outcomes import Outcome
from shared.quality.duplicates import DuplicateIndex, customer_emails, customer_postcodes
from shared.quality.normalise import email_match_key, postcode_match_key
from shared.store.errors import StoreConflictError
from shared.telemetry import get_logger

log = get_logger("flows.customers_to_dataverse")

CONTACT_GET = "/contact-service/contact/{ids}"
LOOKUP_CHUNK = 100  # records per combined lookup query (keys, e-mails, postcodes: a few KB of URL)
BP_IDS_PER_QUERY = 500  # short integer keys only (a few KB of URL)
VALUES_PER_QUERY = 100  # GUIDs


@dataclass
class _Record:
    bp_id: str
    raw: dict[str, Any]
    read: Any  # Translation[Customer]
    row: dict[str, Any] | None = None  # current Dataverse contact (with expanded account)
    matched_by: str | None = None  # link | key | email
    decision: Any = None


class CustomersToDataverse:
    """Brightpearl contacts -> Dataverse. One instance per process; `handle` per batch."""

    name = "customers-to-dataverse"

    def __init__(
        self,
        *,
        brightpearl: Any,
        dataverse: Any,
        store: Any,
        mapping: CustomerMapping,
        publish: Publish,
        sync_custom_fields: bool = False,
        clock: Callable[[], Any] | None = None,
    ) -> None:
        self.bp = brightpearl
        self.dv = dataverse
        self.store = store
        self.mapping = mapping if sync_custom_fields else mapping.model_copy(update={"custom_fields": []})
        self.publish = publish
        self.sync_custom_fields = sync_custom_fields and bool(mapping.custom_fields)
        self.key = self.mapping.dataverse.contact_key
        self.account_key = self.mapping.dataverse.account.key
        query = contact_query(self.mapping)
        self.select = contact_select(self.mapping)
        self.expand = query.get("$expand")
        self._pool: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------------ entry
    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        started = time.monotonic()
        message_of: dict[str, Envelope] = {}
        for envelope in envelopes:
            for record_id in envelope.notice.ids:
                message_of.setdefault(record_id, envelope)
        results = BatchResults()
        try:
            self._run(list(message_of), results)
        except Exception as exc:  # a read or a state call failed for the whole batch
            return batch_failure(exc, envelopes, f"Brightpearl contacts {','.join(list(message_of)[:10])}")
        return finish_batch(
            envelopes,
            lambda e: e.notice.ids,
            results,
            flow=self.name,
            system_label="Brightpearl contact",
            publish=self.publish,
            store=self.store,
            source_system="brightpearl",
            target_system="dataverse",
            message_of=message_of,
            started=started,
        )

    # ------------------------------------------------------------------------------ steps
    def _run(self, ids: list[str], results: BatchResults) -> None:
        valid = []
        for record_id in ids:
            if bp_id(record_id) is None:
                results.set(
                    record_id,
                    RecordResult(
                        "fatal",
                        "MalformedMessage",
                        f"Brightpearl contact id {record_id!r} is not a positive integer",
                    ),
                )
            else:
                valid.append(record_id)
        if not valid:
            return
        raw_by_id = self._fetch_contacts(valid)
        records: list[_Record] = []
        for record_id in valid:
            raw = raw_by_id.get(record_id)
            if raw is None:
                results.set(
                    record_id,
                    RecordResult(
                        "missing",
                        "BrightpearlRecordMissing",
                        f"Brightpearl contact {record_id} no longer exists",
                    ),
                )
                continue
            if not is_customer(raw):
                results.set(
                    record_id,
                    RecordResult(
                        "skipped", "NotACustomer", f"Brightpearl contact {record_id} is a supplier or staff"
                    ),
                )
                continue
            try:
                read = brightpearl_to_canonical(raw, self.mapping)
            except MappingInputError as exc:
                results.set(
                    record_id,
                    RecordResult(
                        "fatal", "BrightpearlProtocolError", f"Brightpearl contact {record_id}: {exc}"
                    ),
                )
                continue
            records.append(_Record(record_id, raw, read))
        if not records:
            return
        links = self.store.links.get_many(ENTITY, "brightpearl", [r.bp_id for r in records])
        self._current_rows(records, links)
        self._match_unlinked(records, results)
        self._decide(records, results, links)
        self._write(records, results, links)

    def _fetch_contacts(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        raw = self.bp.get_by_ids(
            CONTACT_GET, [int(i) for i in ids], limit=200, params={"includeOptional": "postalAddresses"}
        )
        out = {str(item["contactId"]): item for item in raw if isinstance(item, dict) and "contactId" in item}
        if self.sync_custom_fields:
            for record_id, item in out.items():
                answer = self.bp.request("GET", f"/contact-service/contact/{int(record_id)}/custom-field")
                item["customFields"] = answer.response or {}
        return out

    def _query_contacts(self, flt: odata.Filter) -> list[dict[str, Any]]:
        return [
            dict(r.values)
            for r in self.dv.query("contacts", select=self.select, expand=self.expand, filter=flt)
        ]

    def _current_rows(self, records: list[_Record], links: dict[str, Any]) -> None:
        """One query per chunk of records finds their contacts by key and every candidate for
        e-mail and name + postcode matching (`self._pool`)."""
        pool: dict[str, dict[str, Any]] = {}
        for chunk in chunked(records, LOOKUP_CHUNK):
            live = [r for r in chunk if not r.read.fatal]
            emails = sorted({e for r in live for e in customer_emails(r.read.value)})
            postcodes = sorted(
                {v for r in live for p in _postcodes(r.read.value) for v in (p, p.replace(" ", ""))}
            )
            parts = [odata.in_(self.key, [r.bp_id for r in chunk])]
            if emails:
                parts.append(odata.in_("emailaddress1", emails))
            if postcodes:
                parts += [
                    odata.in_("address1_postalcode", postcodes),
                    odata.in_("address2_postalcode", postcodes),
                ]
            for row in self._query_contacts(odata.any_of(*parts)):
                pool[str(row["contactid"]).lower()] = row
        self._pool = pool
        by_key = {str(row.get(self.key)): row for row in pool.values() if row.get(self.key)}
        linked_ids = {
            r.bp_id: links[r.bp_id].id_in("dataverse")
            for r in records
            if r.bp_id in links and links[r.bp_id].is_linked and r.bp_id not in by_key
        }
        by_id: dict[str, dict[str, Any]] = {}
        wanted = [i for i in linked_ids.values() if i]
        for chunk in chunked(wanted, VALUES_PER_QUERY):
            for row in self._query_contacts(odata.in_("contactid", list(chunk))):
                by_id[str(row["contactid"]).lower()] = row
        for r in records:
            if r.bp_id in by_key:
                r.row, r.matched_by = by_key[r.bp_id], "key"
            elif linked_ids.get(r.bp_id) and linked_ids[r.bp_id].lower() in by_id:
                r.row, r.matched_by = by_id[linked_ids[r.bp_id].lower()], "link"

    def _match_unlinked(self, records: list[_Record], results: BatchResults) -> None:
        """E-mail match (link to it) then fuzzy name + postcode (flag for review)."""
        unmatched = [r for r in records if r.row is None and not r.read.fatal]
        if not unmatched:
            return
        taken = {str(r.row["contactid"]).lower() for r in records if r.row is not None}
        emails = {e for r in unmatched for e in customer_emails(r.read.value)}
        candidates = {
            k: row for k, row in self._pool.items() if email_match_key(row.get("emailaddress1")) in emails
        }
        dup = self.mapping.duplicates
        index = self._index(candidates, dup)
        still: list[_Record] = []
        for r in unmatched:
            match = index.match(r.read.value)
            owned = {
                c.record_id
                for c in match.email_matches
                if c.record_id in taken or candidates[c.record_id].get(self.key)
            }
            if match.linked_id is not None and not owned:
                r.row, r.matched_by = candidates[match.linked_id], "email"
                taken.add(match.linked_id)
            elif match.email_matches:
                ids = ", ".join(c.record_id for c in match.email_matches)
                results.set(
                    r.bp_id,
                    RecordResult(
                        "needs-review",
                        "AmbiguousEmailMatch",
                        f"Brightpearl contact {r.bp_id}: its e-mail matches Dataverse contact(s) {ids}, "
                        "which are "
                        "several or already linked to other Brightpearl contacts; not created. Merge the "
                        "duplicates or set bpi_brightpearlid on the right one, then resubmit",
                    ),
                )
            else:
                still.append(r)
        if not still:
            return
        postcodes = {postcode_match_key(p) for r in still for p in _postcodes(r.read.value)} - {None}
        near = {
            k: row
            for k, row in self._pool.items()
            if {
                postcode_match_key(row.get("address1_postalcode")),
                postcode_match_key(row.get("address2_postalcode")),
            }
            & postcodes
        }
        index = self._index({k: v for k, v in near.items() if k not in taken}, dup)
        for r in still:
            match = index.match(r.read.value)
            if match.needs_review:
                ids = ", ".join(f"{c.record_id} ({c.score:.0f})" for c in match.likely)
                results.set(
                    r.bp_id,
                    RecordResult(
                        "needs-review",
                        "LikelyDuplicate",
                        f"Brightpearl contact {r.bp_id} looks like Dataverse contact(s) {ids} "
                        "(name + postcode); "
                        "not created. Link it by setting bpi_brightpearlid on the right contact, or fix the "
                        "names, then resubmit",
                    ),
                )

    def _index(self, rows: dict[str, dict[str, Any]], dup: Any) -> DuplicateIndex:
        index = DuplicateIndex(
            name_threshold=dup.name_threshold,
            require_postcode=dup.require_postcode,
            max_candidates=dup.max_candidates,
        )
        for row_id, row in rows.items():
            try:
                index.add(row_id, dataverse_to_canonical(row, self.mapping).value)
            except MappingInputError:
                continue
        return index

    def _decide(self, records: list[_Record], results: BatchResults, links: dict[str, Any]) -> None:
        for r in records:
            if results.has(r.bp_id):
                continue
            link = links.get(r.bp_id)
            if (
                r.row is not None
                and not r.read.fatal
                and link is not None
                and link.is_linked
                and link.hash_of("brightpearl") == content_hash(r.read.value, "brightpearl", self.mapping)
            ):
                # Brightpearl holds what was last synced (typically our own write coming back):
                # nothing to push. A newer Dataverse edit travels the other way.
                results.set(
                    r.bp_id,
                    RecordResult(
                        "unchanged",
                        None,
                        f"Brightpearl contact {r.bp_id} unchanged since the last sync (echo or no-op)",
                        target_id=str(r.row["contactid"]),
                    ),
                )
                continue
            current = None
            if r.row is not None:
                try:
                    current = dataverse_to_canonical(r.row, self.mapping).value
                except MappingInputError:
                    current = None
            if current is not None and _unchanged_since_sync(link, "dataverse", current, self.mapping):
                # only Brightpearl changed since the last sync: it is the last writer, whatever the
                # clocks say (Dataverse stamps whole seconds, our own writes move its modifiedon)
                current = current.model_copy(update={"modified_at": None})
            account = (r.row or {}).get("parentcustomerid_account") or {}
            r.decision = decide_write(
                r.read.value,
                current,
                "dataverse",
                self.mapping,
                source_issues=r.read.issues,
                account_id=account.get("accountid") if account else None,
            )
            if r.decision.fatal:
                results.set(
                    r.bp_id,
                    RecordResult(
                        "fatal",
                        r.decision.reason,
                        fatal_description(r.decision.issues),
                        stamp=str(r.raw.get("updatedOn") or ""),
                    ),
                )

    # ------------------------------------------------------------------------------ writes
    def _write(self, records: list[_Record], results: BatchResults, links: dict[str, Any]) -> None:
        todo = [r for r in records if r.decision is not None and not results.has(r.bp_id)]
        writes = [r for r in todo if r.decision.should_write]
        account_errors = self._write_accounts(writes)
        upserts: list[tuple[_Record, dict[str, Any]]] = []
        updates: list[tuple[_Record, dict[str, Any]]] = []
        for r in writes:
            payload = r.decision.payload
            if payload.account is not None and payload.account_key_value in account_errors:
                results.error(
                    r.bp_id,
                    account_errors[payload.account_key_value],
                    f"Dataverse account of Brightpearl contact {r.bp_id}",
                )
                continue
            columns = payload.contact_delta(r.row)
            if r.row is not None and str(r.row.get(self.key) or "") == r.bp_id:
                if columns:
                    upserts.append((r, {**columns, self.key: r.bp_id}))
            elif r.row is not None:
                updates.append((r, {"contactid": r.row["contactid"], **columns, self.key: r.bp_id}))
            else:
                upserts.append((r, {**columns, self.key: r.bp_id}))
        if upserts:
            result = self.dv.upsert_multiple("contacts", [row for _, row in upserts], key_columns=[self.key])
            for (r, _), outcome in zip(upserts, result.outcomes, strict=True):
                if not outcome.ok:
                    results.error(
                        r.bp_id, outcome.error, f"Dataverse contact of Brightpearl contact {r.bp_id}"
                    )
        if updates:
            result = self.dv.update_multiple("contacts", [row for _, row in updates])
            for (r, _), outcome in zip(updates, result.outcomes, strict=True):
                if not outcome.ok:
                    results.error(
                        r.bp_id, outcome.error, f"Dataverse contact of Brightpearl contact {r.bp_id}"
                    )
        created = [r.bp_id for r in todo if r.row is None and not results.has(r.bp_id)]
        new_ids: dict[str, str] = {}
        for chunk in chunked(created, BP_IDS_PER_QUERY):
            for rec in self.dv.query(
                "contacts", select=["contactid", self.key], filter=odata.in_(self.key, list(chunk))
            ):
                new_ids[str(rec.get(self.key))] = str(rec.get("contactid"))
        remember: list[tuple[_Record, str]] = []
        for r in todo:
            if results.has(r.bp_id):
                continue
            dv_id = str(r.row["contactid"]) if r.row is not None else new_ids.get(r.bp_id)
            kind = "synced" if r.decision.should_write else "unchanged"
            note = {"email": "linked by e-mail", "key": "", "link": ""}.get(r.matched_by or "", "created")
            description = f"Brightpearl contact {r.bp_id} -> Dataverse contact {dv_id}"
            if kind == "unchanged":
                description += ": Dataverse already holds this content (echo or no-op)"
            elif note:
                description += f" ({note})"
            results.set(
                r.bp_id, RecordResult(kind, None, description, target_id=dv_id, created=r.row is None)
            )
            if dv_id:
                remember.append((r, dv_id))
        in_parallel(
            lambda item: self._remember(item[0], item[1], links.get(item[0].bp_id), results), remember
        )

    def _write_accounts(self, writes: list[_Record]) -> dict[str, BaseException]:
        rows: dict[str, dict[str, Any]] = {}
        for r in writes:
            payload = r.decision.payload
            key = payload.account_key_value
            if payload.account is None or not key:
                continue
            current = (r.row or {}).get("parentcustomerid_account")
            if isinstance(current, dict) and str(current.get(self.account_key) or "") != key:
                current = None
            columns = payload.account_delta(current if isinstance(current, dict) else None)
            if current is not None and not columns:
                continue
            rows[key] = {**rows.get(key, {}), **columns, self.account_key: key}
        if not rows:
            return {}
        keys = list(rows)
        result = self.dv.upsert_multiple("accounts", [rows[k] for k in keys], key_columns=[self.account_key])
        return {k: o.error for k, o in zip(keys, result.outcomes, strict=True) if not o.ok}

    def _remember(self, r: _Record, dv_id: str, link: Any, results: BatchResults) -> None:
        bp_hash = content_hash(r.read.value, "brightpearl", self.mapping)
        dv_hash = r.decision.desired_hash
        links = self.store.links
        try:
            if (
                link is not None
                and link.is_linked
                and (link.id_in("dataverse") or "").lower() == dv_id.lower()
            ):
                if link.hash_of("brightpearl") != bp_hash or link.hash_of("dataverse") != dv_hash:
                    links.record_hashes(
                        ENTITY,
                        "brightpearl",
                        r.bp_id,
                        {"brightpearl": bp_hash, "dataverse": dv_hash},
                        etag=link.etag,
                    )
            elif link is None:
                links.link(
                    ENTITY,
                    "brightpearl",
                    r.bp_id,
                    "dataverse",
                    dv_id,
                    source_hash=bp_hash,
                    target_hash=dv_hash,
                )
        except StoreConflictError as exc:
            # another worker recorded the link meanwhile; the record itself is synced
            log.info("link of Brightpearl contact %s not recorded: %s", r.bp_id, type(exc).__name__)


def _unchanged_since_sync(link: Any, system: str, current: Any, mapping: CustomerMapping) -> bool:
    """Does `system` still hold exactly what the last sync left there (per the link's hash)?"""
    return (
        link is not None
        and link.is_linked
        and link.hash_of(system) is not None
        and link.hash_of(system) == content_hash(current, system, mapping)  # type: ignore[arg-type]
    )


def _postcodes(customer: Any) -> set[str]:
    """Postcodes as Dataverse holds them when we wrote them (the canonical, normalised form)."""
    out = set()
    for address in (customer.addresses.default, customer.addresses.billing, customer.addresses.shipping):
        if address is not None and address.postcode:
            out.add(address.postcode)
    return out or set(customer_postcodes(customer))
