"""Flow customers-to-brightpearl: Dataverse contacts (+ parent accounts) -> Brightpearl contacts.

Per batch (DESIGN §3): coalesce contact ids (an account notice stands for the contacts under
it); read the contacts with their parent account in `Microsoft.Dynamics.CRM.In` queries;
translate and check; find each one's Brightpearl contact by `bpi_brightpearlid`, by link, then
by normalised e-mail (contact-search; one search per record for a few, one paged scan for
many), then flag likely duplicates (fuzzy name + postcode) for review instead of creating a
second customer. Existing contacts are updated with JSON Patch (names, phones, e-mails,
newsletter), postal-address PUT/POST and custom-field PATCH. New contacts are created under a
creation claim in `links` (two workers never create the same customer): postal addresses first
(the contact POST references them), then the contact, both in multi-message batches of up to
ten. The new contacts are read back (one GET per 200) and the Brightpearl id is written back
to Dataverse (`bpi_brightpearlid`, one UpdateMultiple) together with any values Brightpearl
filled in itself (such as the default price list), so one pass converges. Deletions and
deactivations in Dataverse never delete in Brightpearl: they are audited and, if configured,
the linked contact is tagged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.brightpearl import errors as bp_errors
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
from shared.flows.customers_to_dataverse import _unchanged_since_sync
from shared.mapping import (
    CustomerMapping,
    MappingInputError,
    brightpearl_custom_field_ops,
    brightpearl_patch_ops,
    brightpearl_to_canonical,
    contact_query,
    contact_select,
    content_hash,
    dataverse_to_canonical,
    decide_write,
    plan_postal_addresses,
)
from shared.mapping.brightpearl import bp_id
from shared.mapping.dataverse import PARENT_ACCOUNT_BIND
from shared.outcomes import Outcome
from shared.quality.duplicates import DuplicateIndex, customer_emails, full_name
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.telemetry import get_logger

log = get_logger("flows.customers_to_brightpearl")

CONTACT_GET = "/contact-service/contact/{ids}"
GUIDS_PER_QUERY = 200  # about 9 KB of URL; Dataverse accepts 32 KB
MULTI_MESSAGE_MAX = 10
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass
class _Record:
    dv_id: str
    row: dict[str, Any]
    read: Any  # Translation[Customer]
    bp_id: str | None = None
    matched_by: str | None = None  # key | link | email
    current: dict[str, Any] | None = None  # Brightpearl contact GET (with postalAddresses)
    decision: Any = None
    claim: Any = None
    link: Any = None


@dataclass
class _ReadBack:
    columns: dict[str, Any]  # Dataverse contact columns to send with the bpi_brightpearlid write-back
    brightpearl_hash: str  # of the contact as Brightpearl holds it
    dataverse_hash: str  # of the Dataverse contact once the write-back is applied


class CustomersToBrightpearl:
    """Dataverse contacts and accounts -> Brightpearl contacts."""

    name = "customers-to-brightpearl"

    def __init__(
        self,
        *,
        brightpearl: Any,
        dataverse: Any,
        store: Any,
        mapping: CustomerMapping,
        publish: Publish,
        sync_custom_fields: bool = False,
        integration_user_id: str | None = None,
        trust_integration_user: bool = False,
        delete_handling: str = "record",
        delete_tag: str = "Deleted in Dynamics",
        scan_threshold: int = 25,
        clock: Callable[[], Any] | None = None,
    ) -> None:
        self.bp = brightpearl
        self.dv = dataverse
        self.store = store
        self.mapping = mapping if sync_custom_fields else mapping.model_copy(update={"custom_fields": []})
        self.publish = publish
        self.sync_custom_fields = sync_custom_fields and bool(mapping.custom_fields)
        self.integration_user = (integration_user_id or "").lower() or None
        self.trust_integration_user = trust_integration_user
        self.delete_handling = delete_handling
        self.delete_tag = delete_tag
        self.scan_threshold = scan_threshold
        self.key = self.mapping.dataverse.contact_key
        query = contact_query(self.mapping)
        self.select = sorted({*contact_select(self.mapping), "statecode"})
        self.expand = query.get("$expand")
        self._tag_id: int | None = None

    # ------------------------------------------------------------------------------ entry
    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        started = time.monotonic()
        results = BatchResults()
        message_of: dict[str, Envelope] = {}
        contacts: list[str] = []
        accounts: list[str] = []
        deleted: list[str] = []
        for envelope in envelopes:
            n = envelope.notice
            for record_id in n.ids:
                message_of.setdefault(record_id, envelope)
                if not _is_guid(record_id):
                    results.set(
                        record_id,
                        RecordResult(
                            "fatal",
                            "MalformedMessage",
                            f"Dataverse {n.entity} id {record_id!r} is not a GUID",
                        ),
                    )
                elif n.operation == "deleted" and n.entity == "contact":
                    deleted.append(record_id)
                elif n.operation == "deleted":
                    results.set(
                        record_id,
                        RecordResult(
                            "skipped",
                            "DeletedInDataverse",
                            f"Dataverse account {record_id} was deleted; nothing is deleted in Brightpearl",
                        ),
                    )
                elif self._is_own_echo(envelope):
                    results.set(
                        record_id,
                        RecordResult("skipped", "IntegrationEcho", "initiated by the integration user"),
                    )
                elif n.entity == "account":
                    accounts.append(record_id)
                else:
                    contacts.append(record_id)
        derived: dict[str, list[str]] = {}
        try:
            if deleted:
                self._deleted(list(dict.fromkeys(deleted)), results)
            derived = self._run(list(dict.fromkeys(contacts)), list(dict.fromkeys(accounts)), results)
        except Exception as exc:
            return batch_failure(exc, envelopes, f"Dataverse contacts {','.join(list(message_of)[:5])}")

        def ids_of(envelope: Envelope) -> list[str]:
            out: list[str] = []
            for record_id in envelope.notice.ids:
                out.append(record_id)
                out.extend(derived.get(record_id, ()))
            return out

        for contact_ids in derived.values():
            for contact_id in contact_ids:
                message_of.setdefault(contact_id, message_of.get(contact_id) or envelopes[0])
        return finish_batch(
            envelopes,
            ids_of,
            results,
            flow=self.name,
            system_label="Dataverse contact",
            publish=self.publish,
            store=self.store,
            source_system="dataverse",
            target_system="brightpearl",
            message_of=message_of,
            started=started,
        )

    def _is_own_echo(self, envelope: Envelope) -> bool:
        user = str(envelope.notice.detail.get("initiating_user") or "").lower()
        return self.trust_integration_user and bool(self.integration_user) and user == self.integration_user

    # ------------------------------------------------------------------------------ reads
    def _query(self, flt: odata.Filter) -> list[dict[str, Any]]:
        return [
            dict(r.values)
            for r in self.dv.query("contacts", select=self.select, expand=self.expand, filter=flt)
        ]

    def _run(
        self, contact_ids: list[str], account_ids: list[str], results: BatchResults
    ) -> dict[str, list[str]]:
        rows: dict[str, dict[str, Any]] = {}
        for chunk in chunked(contact_ids, GUIDS_PER_QUERY):
            for row in self._query(odata.in_("contactid", list(chunk))):
                rows[str(row["contactid"]).lower()] = row
        derived: dict[str, list[str]] = {}
        for chunk in chunked(account_ids, GUIDS_PER_QUERY):
            for row in self._query(odata.in_("_parentcustomerid_value", list(chunk))):
                contact_id = str(row["contactid"]).lower()
                rows.setdefault(contact_id, row)
                parent = str(row.get("_parentcustomerid_value") or "").lower()
                for account_id in chunk:
                    if account_id.lower() == parent:
                        derived.setdefault(account_id, []).append(contact_id)
        for account_id in account_ids:
            if account_id not in derived:
                results.set(
                    account_id,
                    RecordResult(
                        "skipped", "NoContacts", f"Dataverse account {account_id} has no contacts to sync"
                    ),
                )
        records: list[_Record] = []
        wanted = list(dict.fromkeys([*contact_ids, *(c for cs in derived.values() for c in cs)]))
        for record_id in wanted:
            row = rows.get(record_id.lower())
            if row is None:
                results.set(
                    record_id,
                    RecordResult(
                        "missing", "DataverseRecordMissing", f"Dataverse contact {record_id} no longer exists"
                    ),
                )
                continue
            if row.get("statecode") == 1:
                self._deactivated(record_id, row, results)
                continue
            try:
                read = dataverse_to_canonical(row, self.mapping)
            except MappingInputError as exc:
                results.set(
                    record_id,
                    RecordResult("fatal", "DataverseProtocolError", f"Dataverse contact {record_id}: {exc}"),
                )
                continue
            records.append(_Record(record_id, row, read))
        if records:
            self._targets(records, results)
            self._decide(records, results)
            self._write(records, results)
        return derived

    def _targets(self, records: list[_Record], results: BatchResults) -> None:
        links = self.store.links.get_many(ENTITY, "dataverse", [r.dv_id for r in records])
        for r in records:
            key = bp_id(r.row.get(self.key))
            link = r.link = links.get(r.dv_id)
            if key:
                r.bp_id, r.matched_by = key, "key"
            elif link is not None and link.is_linked and link.id_in("brightpearl"):
                r.bp_id, r.matched_by = link.id_in("brightpearl"), "link"
        self._fetch_current(records)
        for r in records:
            if r.bp_id and r.current is None:
                results.set(
                    r.dv_id,
                    RecordResult(
                        "needs-review",
                        "BrightpearlContactMissing",
                        f"Dataverse contact {r.dv_id} is linked to Brightpearl contact {r.bp_id}, which no "
                        "longer exists; clear bpi_brightpearlid to create a new one, then resubmit",
                    ),
                )
        unmatched = [r for r in records if r.bp_id is None and not r.read.fatal]
        if unmatched:
            self._match(unmatched, records, results)

    def _fetch_current(self, records: list[_Record]) -> None:
        ids = sorted({int(r.bp_id) for r in records if r.bp_id and r.current is None})
        if not ids:
            return
        raw = self.bp.get_by_ids(CONTACT_GET, ids, limit=200, params={"includeOptional": "postalAddresses"})
        by_id = {str(item["contactId"]): item for item in raw if isinstance(item, dict)}
        if self.sync_custom_fields:
            for record_id, item in by_id.items():
                item["customFields"] = (
                    self.bp.request("GET", f"/contact-service/contact/{int(record_id)}/custom-field").response
                    or {}
                )
        for r in records:
            if r.bp_id and r.current is None:
                r.current = by_id.get(r.bp_id)

    def _match(self, unmatched: list[_Record], records: list[_Record], results: BatchResults) -> None:
        taken = {r.bp_id for r in records if r.bp_id}
        rows: dict[str, dict[str, Any]] = {}  # contact-search rows by contact id
        if len(unmatched) > self.scan_threshold:
            for row in self.bp.search_contacts(is_customer=True, columns=_SEARCH_COLUMNS):
                rows[str(row["contactId"])] = row
        else:
            for r in unmatched:
                rows.update(self._search_like(r))
        by_email: dict[str, set[str]] = {}
        for contact_id, row in rows.items():
            email = str(row.get("primaryEmail") or "").strip().lower()
            if email:
                by_email.setdefault(email, set()).add(contact_id)
        linked = self.store.links.get_many(ENTITY, "brightpearl", list(rows)) if rows else {}
        name_pool: list[_Record] = []
        for r in unmatched:
            found: set[str] = set()
            for email in customer_emails(r.read.value):
                found |= by_email.get(email, set())
            owned = {c for c in found if c in taken or (c in linked and linked[c].is_linked)}
            if len(found) == 1 and not owned:
                r.bp_id, r.matched_by = found.pop(), "email"
                taken.add(r.bp_id)
            elif found:
                why = "already belong to other Dynamics contacts" if found == owned else "are several"
                results.set(
                    r.dv_id,
                    RecordResult(
                        "needs-review",
                        "AmbiguousEmailMatch",
                        f"Dataverse contact {r.dv_id}: its e-mail matches Brightpearl contact(s) "
                        f"{', '.join(sorted(found))}, which {why}; not created. Merge the duplicates or set "
                        "bpi_brightpearlid to the right one, then resubmit",
                    ),
                )
            else:
                name_pool.append(r)
        self._fetch_current([r for r in unmatched if r.matched_by == "email"])
        if not name_pool:
            return
        # likely duplicates: same folded name among the search rows, then confirm by postcode
        names = {full_name(r.read.value) for r in name_pool}
        row_names = {c: name for c, row in rows.items() if (name := _row_name(row))}
        near_ids = sorted(
            int(c) for c in _near_names(row_names, names, self.mapping.duplicates.name_threshold)
        )
        index = DuplicateIndex(
            name_threshold=self.mapping.duplicates.name_threshold,
            require_postcode=self.mapping.duplicates.require_postcode,
            max_candidates=self.mapping.duplicates.max_candidates,
        )
        self._add_to_index(index, near_ids)
        for r in name_pool:
            match = index.match(r.read.value)
            if match.needs_review:
                ids = ", ".join(f"{c.record_id} ({c.score:.0f})" for c in match.likely)
                results.set(
                    r.dv_id,
                    RecordResult(
                        "needs-review",
                        "LikelyDuplicate",
                        f"Dataverse contact {r.dv_id} looks like Brightpearl contact(s) {ids} "
                        "(name + postcode); "
                        "not created. Set bpi_brightpearlid to link it, or fix the names, then resubmit",
                    ),
                )

    def _decide(self, records: list[_Record], results: BatchResults) -> None:
        for r in records:
            if results.has(r.dv_id):
                continue
            link = r.link
            if (
                r.current is not None
                and not r.read.fatal
                and link is not None
                and link.is_linked
                and link.id_in("brightpearl") == r.bp_id
                and link.hash_of("dataverse") == content_hash(r.read.value, "dataverse", self.mapping)
            ):
                # Dataverse holds what was last synced (our own write coming back): nothing to push.
                results.set(
                    r.dv_id,
                    RecordResult(
                        "unchanged",
                        None,
                        f"Dataverse contact {r.dv_id} unchanged since the last sync (echo or no-op)",
                        target_id=r.bp_id,
                    ),
                )
                continue
            current = None
            if r.current is not None:
                try:
                    current = brightpearl_to_canonical(r.current, self.mapping).value
                except MappingInputError:
                    current = None
            if current is not None and _unchanged_since_sync(r.link, "brightpearl", current, self.mapping):
                # only Dataverse changed since the last sync: it is the last writer (see the other flow)
                current = current.model_copy(update={"modified_at": None})
            r.decision = decide_write(
                r.read.value, current, "brightpearl", self.mapping, source_issues=r.read.issues
            )
            if r.decision.fatal:
                results.set(
                    r.dv_id,
                    RecordResult(
                        "fatal",
                        r.decision.reason,
                        fatal_description(r.decision.issues),
                        stamp=str(r.row.get("modifiedon") or ""),
                    ),
                )

    # ------------------------------------------------------------------------------ writes
    def _write(self, records: list[_Record], results: BatchResults) -> None:
        todo = [r for r in records if r.decision is not None and not results.has(r.dv_id)]
        creates = [r for r in todo if r.current is None and r.decision.should_write]
        for r in todo:
            if r.current is not None and r.decision.should_write:
                try:
                    self._update(r)
                except Exception as exc:
                    results.error(
                        r.dv_id, exc, f"Brightpearl contact {r.bp_id} (from Dataverse contact {r.dv_id})"
                    )
        read_back: dict[str, _ReadBack] = {}
        if creates:
            self._create(creates, results)
            read_back = self._read_back([r for r in creates if r.bp_id and not results.has(r.dv_id)])
        write_back = [
            r for r in todo if not results.has(r.dv_id) and r.bp_id and bp_id(r.row.get(self.key)) != r.bp_id
        ]
        if write_back:
            result = self.dv.update_multiple(
                "contacts",
                [
                    {
                        "contactid": r.row["contactid"],
                        **(read_back[r.dv_id].columns if r.dv_id in read_back else {}),
                        self.key: r.bp_id,
                    }
                    for r in write_back
                ],
            )
            for r, outcome in zip(write_back, result.outcomes, strict=True):
                if not outcome.ok:
                    results.error(
                        r.dv_id,
                        outcome.error,
                        f"write-back of bpi_brightpearlid to Dataverse contact {r.dv_id}",
                    )
                elif r.dv_id in read_back:
                    self._record_read_back(r, read_back[r.dv_id])
        remember: list[_Record] = []
        for r in todo:
            if results.has(r.dv_id):
                continue
            kind = "synced" if r.decision.should_write else "unchanged"
            how = {
                "email": " (linked by e-mail)",
                "key": "",
                "link": "",
                "recovered": " (recovered after an interrupted create)",
            }.get(r.matched_by or "", " (created)")
            description = f"Dataverse contact {r.dv_id} -> Brightpearl contact {r.bp_id}"
            description += (
                ": Brightpearl already holds this content (echo or no-op)" if kind == "unchanged" else how
            )
            if r.dv_id in read_back and read_back[r.dv_id].columns:
                description += "; values Brightpearl filled in written back to Dataverse: " + ", ".join(
                    sorted(read_back[r.dv_id].columns)
                )
            results.set(
                r.dv_id,
                RecordResult(kind, None, description, target_id=r.bp_id, created=r.matched_by is None),
            )
            remember.append(r)
        in_parallel(self._remember, remember)

    def _update(self, r: _Record) -> None:
        assert r.bp_id is not None and r.current is not None
        desired = r.decision.customer
        contact_id = int(r.bp_id)
        ops = brightpearl_patch_ops(desired, r.current, self.mapping).value
        if ops:
            self.bp.patch_contact(contact_id, ops)
        plan = plan_postal_addresses(
            desired, r.current, r.current.get("postalAddresses") or [], self.mapping
        ).value
        for address_id, body in plan.update.items():
            self.bp.update_postal_address(address_id, body)
        if plan.create:
            links = []
            for draft in plan.create:
                new_id = self.bp.create_postal_address(draft.body)
                links.extend({"postalAddressId": new_id, "type": role} for role in draft.roles)
            self.bp.link_contact_addresses(contact_id, links)
        if self.sync_custom_fields:
            cf_ops = brightpearl_custom_field_ops(desired, r.current.get("customFields"), self.mapping).value
            if cf_ops:
                self.bp.patch_contact_custom_fields(contact_id, cf_ops)

    def _create(self, creates: list[_Record], results: BatchResults) -> None:
        claimed: list[_Record] = []
        for r in creates:
            try:
                r.claim = self.store.links.claim(ENTITY, "dataverse", r.dv_id, "brightpearl")
                if r.claim.takeover and self._recover(r):
                    continue  # an earlier attempt had created it after all: linked, not created again
                claimed.append(r)
            except ClaimTaken as taken:
                # another worker is creating it (or just did): wait for it without spending a retry
                what = "linked meanwhile" if taken.link is not None and taken.link.is_linked else "claimed"
                results.set(
                    r.dv_id,
                    RecordResult(
                        "transient",
                        "StateConflict",
                        f"Dataverse contact {r.dv_id} ({what}): {taken}",
                        retry_after=taken.retry_after,
                        waiting=True,
                    ),
                )
        if not claimed:
            return
        with self.store.links.keep([r.claim for r in claimed]) as keeper:
            failed = self._post_new(claimed, keeper)
        groups: dict[int, list[int]] = {}
        for r in claimed:
            if r.dv_id in failed:
                if not isinstance(failed[r.dv_id], bp_errors.BrightpearlAmbiguousWrite):
                    self._release(r)
                # else: the POST may have been applied; the claim stays pending, and whoever takes
                # it over once it is stale looks for that contact before creating (_recover)
                results.error(
                    r.dv_id, failed[r.dv_id], f"creation of Dataverse contact {r.dv_id} in Brightpearl"
                )
                continue
            try:
                self.store.links.complete_claim(
                    r.claim,
                    r.bp_id,
                    source_hash=content_hash(r.read.value, "dataverse", self.mapping),
                    target_hash=r.decision.desired_hash,
                )
            except StoreConflictError as exc:
                log.warning("claim of Dataverse contact %s was taken over: %s", r.dv_id, exc)
            payload = r.decision.payload
            if self.sync_custom_fields and payload.custom_field_ops:
                try:
                    self.bp.patch_contact_custom_fields(int(r.bp_id), payload.custom_field_ops)
                except Exception as exc:
                    results.error(r.dv_id, exc, f"custom fields of Brightpearl contact {r.bp_id}")
            if payload.contact_group_id is not None:
                groups.setdefault(int(payload.contact_group_id), []).append(int(r.bp_id))
        for group_id, members in groups.items():
            self.bp.add_contacts_to_group(group_id, members)

    def _post_new(self, claimed: list[_Record], keeper: Any) -> dict[str, BaseException]:
        """POST the postal addresses, then the contacts, of claimed records; sets `bp_id` of
        those created and returns the failures by Dataverse id.

        The address ids are kept with each claim before the contact POST, so a retry (or a
        worker taking the claim over) reuses them instead of leaving contact-less addresses.
        """
        failed: dict[str, BaseException] = {}
        role_ids: dict[str, dict[str, int]] = {}
        made: dict[str, list[dict[str, Any]]] = {}  # dv id -> [{"id", "hash"}] kept with the claim
        to_post: list[tuple[_Record, Any, str]] = []
        for r in claimed:
            for draft, address_id, body_hash, stale in _reuse_addresses(r):
                if address_id is not None and stale:
                    try:
                        self.bp.update_postal_address(address_id, draft.body)
                    except bp_errors.BrightpearlNotFound:
                        address_id = None  # gone meanwhile: post a new one
                    except bp_errors.BrightpearlError as exc:
                        failed.setdefault(r.dv_id, exc)
                        made.setdefault(r.dv_id, []).append({"id": address_id, "hash": ""})  # reuse later
                        continue
                if address_id is None:
                    to_post.append((r, draft, body_hash))
                    continue
                made.setdefault(r.dv_id, []).append({"id": address_id, "hash": body_hash})
                for role in draft.roles:
                    role_ids.setdefault(r.dv_id, {})[role] = address_id
        answers = self._post_many("/contact-service/postal-address/", [d.body for _, d, _ in to_post])
        for (r, draft, body_hash), answer in zip(to_post, answers, strict=True):
            if isinstance(answer, BaseException):
                failed.setdefault(r.dv_id, answer)
                continue
            made.setdefault(r.dv_id, []).append({"id": answer, "hash": body_hash})
            for role in draft.roles:
                role_ids.setdefault(r.dv_id, {})[role] = answer

        def keep_progress(r: _Record) -> None:
            try:
                r.claim = self.store.links.save_progress(r.claim, {"postal_addresses": made[r.dv_id]})
            except Exception as exc:  # claim lost or storage down: do not post the contact now
                failed.setdefault(r.dv_id, exc)

        changed = [
            r for r in claimed if made.get(r.dv_id, []) != r.claim.progress.get("postal_addresses", [])
        ]
        in_parallel(keep_progress, [r for r in changed if r.dv_id in made])
        for r in claimed:
            if r.dv_id not in failed and not keeper.held(r.claim):
                failed[r.dv_id] = StoreConflictError(
                    f"the creation claim of Dataverse contact {r.dv_id} was taken over while this "
                    "worker held it; the other worker creates it"
                )
        ready = [r for r in claimed if r.dv_id not in failed]
        contact_ids = self._post_many(
            "/contact-service/contact/", [r.decision.payload.post_body(role_ids.get(r.dv_id)) for r in ready]
        )
        for r, answer in zip(ready, contact_ids, strict=True):
            if isinstance(answer, BaseException):
                failed[r.dv_id] = answer
            else:
                r.bp_id = str(answer)
        return failed

    def _recover(self, r: _Record) -> bool:
        """After taking over a stale claim: find the contact an earlier, interrupted attempt may
        have created (same e-mail, else same name + postcode, not linked to anything) and link it."""
        rows = self._search_like(r)
        if not rows:
            return False
        linked = self.store.links.get_many(ENTITY, "brightpearl", list(rows))
        free = sorted(int(c) for c in rows if not (c in linked and linked[c].is_linked))
        if not free:
            return False
        index = DuplicateIndex(name_threshold=99.0, require_postcode=self.mapping.duplicates.require_postcode)
        self._add_to_index(index, free)
        match = index.match(r.read.value)
        found = match.linked_id or (match.likely[0].record_id if len(match.likely) == 1 else None)
        if found is None:
            return False
        r.bp_id, r.matched_by = found, "recovered"
        self._fetch_current([r])
        self.store.links.complete_claim(
            r.claim, found, source_hash=content_hash(r.read.value, "dataverse", self.mapping)
        )
        log.warning(
            "Dataverse contact %s: recovered Brightpearl contact %s created by an interrupted attempt",
            r.dv_id,
            found,
        )
        return True

    def _read_back(self, created: list[_Record]) -> dict[str, _ReadBack]:
        """Read the contacts just created and work out what Brightpearl filled in itself.

        Brightpearl completes a new contact with values of its own (the default price list,
        normalised phones). Sent to Dataverse with the bpi_brightpearlid write-back, they make
        the first pass converge: the Brightpearl poller then finds the contact as last synced
        instead of pushing those values in a second round. One contact GET per 200 creates;
        if it fails, nothing is lost: the poller brings the same values a round later.
        """
        if not created:
            return {}
        try:
            self._fetch_current(created)
        except bp_errors.BrightpearlError as exc:
            log.warning(
                "reading back %d new Brightpearl contacts failed: %s", len(created), type(exc).__name__
            )
            return {}
        out: dict[str, _ReadBack] = {}
        for r in created:
            if r.current is None:
                continue
            try:
                in_brightpearl = brightpearl_to_canonical(r.current, self.mapping).value
            except MappingInputError:
                continue
            account = r.row.get("parentcustomerid_account") or {}
            decision = decide_write(
                in_brightpearl,
                r.read.value.model_copy(update={"modified_at": None}),  # Dataverse was the source
                "dataverse",
                self.mapping,
                account_id=account.get("accountid") if isinstance(account, dict) else None,
            )
            if decision.fatal:
                continue
            payload = decision.payload
            columns = payload.contact_delta(r.row) if decision.should_write else {}
            if PARENT_ACCOUNT_BIND in columns or payload.account_delta(account or None):
                continue  # an account change: left to the customers-to-dataverse flow
            columns.pop(self.key, None)
            out[r.dv_id] = _ReadBack(
                columns=columns,
                brightpearl_hash=content_hash(in_brightpearl, "brightpearl", self.mapping),
                dataverse_hash=decision.desired_hash,
            )
        return out

    def _record_read_back(self, r: _Record, read_back: _ReadBack) -> None:
        """After the write-back: the link holds what both sides now hold."""
        try:
            self.store.links.record_hashes(
                ENTITY,
                "dataverse",
                r.dv_id,
                {"brightpearl": read_back.brightpearl_hash, "dataverse": read_back.dataverse_hash},
            )
        except StoreConflictError as exc:  # someone else moved the link on; their hashes stand
            log.info("hashes of Dataverse contact %s not recorded: %s", r.dv_id, type(exc).__name__)
        except Exception as exc:  # both writes are done: without these hashes it converges a poll later
            log.warning("hashes of Dataverse contact %s not recorded: %s", r.dv_id, type(exc).__name__)

    def _search_like(self, r: _Record) -> dict[str, dict[str, Any]]:
        """contact-search rows (by contact id) sharing an e-mail or the last name with `r`."""
        rows: dict[str, dict[str, Any]] = {}
        for email in sorted(customer_emails(r.read.value)):
            for row in self.bp.search_contacts(primary_email=email, columns=_SEARCH_COLUMNS):
                rows[str(row["contactId"])] = row
        last = r.read.value.name.last_name
        if last:
            for row in self.bp.search_contacts(lastName=last, columns=_SEARCH_COLUMNS):
                rows[str(row["contactId"])] = row
        return rows

    def _add_to_index(self, index: DuplicateIndex, contact_ids: list[int]) -> None:
        """Read these Brightpearl contacts (with addresses) into `index`; unreadable ones are left out."""
        if not contact_ids:
            return
        for item in self.bp.get_by_ids(
            CONTACT_GET, contact_ids, limit=200, params={"includeOptional": "postalAddresses"}
        ):
            try:
                index.add(str(item["contactId"]), brightpearl_to_canonical(item, self.mapping).value)
            except (MappingInputError, KeyError):
                continue

    def _release(self, r: _Record) -> None:
        try:
            self.store.links.release_claim(r.claim)
        except Exception:  # an unreleased claim expires after LINK_CLAIM_TIMEOUT_SECONDS
            log.warning("releasing the claim of Dataverse contact %s failed", r.dv_id)

    def _post_many(self, uri: str, bodies: list[dict[str, Any]]) -> list[int | BaseException]:
        """POST each body; groups of 2-10 go as one multi-message. New ids or the error, in order."""
        out: list[int | BaseException] = []
        for group in chunked(bodies, MULTI_MESSAGE_MAX):
            if len(group) == 1:
                try:
                    answer = self.bp.request("POST", uri, json=group[0])
                    out.append(_new_id(answer.response))
                except bp_errors.BrightpearlError as exc:
                    out.append(exc)
                continue
            messages = [
                {"label": str(i), "uri": uri, "httpMethod": "POST", "body": body}
                for i, body in enumerate(group)
            ]
            try:
                result = self.bp.multi_message(messages)
            except bp_errors.BrightpearlError as exc:
                out.extend(exc for _ in group)
                continue
            for i in range(len(group)):
                item = result.processed.get(str(i))
                if item is None:
                    out.append(bp_errors.BrightpearlUnavailable(f"multi-message left {uri} #{i} unprocessed"))
                elif item.ok:
                    out.append(_new_id(item.body.get("response")))
                else:
                    out.append(_message_error(item.status, item.body, uri))
        return out

    def _remember(self, r: _Record) -> None:
        if not r.bp_id or r.claim is not None:
            return  # created records were linked by complete_claim
        dv_hash = content_hash(r.read.value, "dataverse", self.mapping)
        bp_hash = r.decision.desired_hash
        links = self.store.links
        try:
            link = links.get(ENTITY, "dataverse", r.dv_id)
            if link is None:
                links.link(
                    ENTITY,
                    "dataverse",
                    r.dv_id,
                    "brightpearl",
                    r.bp_id,
                    source_hash=dv_hash,
                    target_hash=bp_hash,
                )
            elif link.is_linked and (
                link.hash_of("brightpearl") != bp_hash or link.hash_of("dataverse") != dv_hash
            ):
                links.record_hashes(
                    ENTITY,
                    "dataverse",
                    r.dv_id,
                    {"brightpearl": bp_hash, "dataverse": dv_hash},
                    etag=link.etag,
                )
        except StoreConflictError as exc:
            log.info("link of Dataverse contact %s not recorded: %s", r.dv_id, type(exc).__name__)

    # ------------------------------------------------------------------------------ deletes
    def _deleted(self, ids: list[str], results: BatchResults) -> None:
        links = self.store.links.get_many(ENTITY, "dataverse", ids)
        targets = {i: links[i].id_in("brightpearl") for i in ids if i in links and links[i].is_linked}
        self._tag([t for t in targets.values() if t])
        for record_id in ids:
            target = targets.get(record_id)
            what = f"linked Brightpearl contact {target} kept" if target else "no linked Brightpearl contact"
            if target and self.delete_handling == "tag":
                what += f" and tagged {self.delete_tag!r}"
            results.set(
                record_id,
                RecordResult(
                    "skipped",
                    "DeletedInDataverse",
                    f"Dataverse contact {record_id} was deleted; {what}",
                    target_id=target,
                ),
            )

    def _deactivated(self, record_id: str, row: dict[str, Any], results: BatchResults) -> None:
        target = bp_id(row.get(self.key))
        if target is None:
            link = self.store.links.get(ENTITY, "dataverse", record_id)
            target = link.id_in("brightpearl") if link is not None and link.is_linked else None
        if target:
            self._tag([target])
        what = f"linked Brightpearl contact {target} kept" if target else "no linked Brightpearl contact"
        if target and self.delete_handling == "tag":
            what += f" and tagged {self.delete_tag!r}"
        results.set(
            record_id,
            RecordResult(
                "skipped",
                "DeactivatedInDataverse",
                f"Dataverse contact {record_id} is inactive; {what}",
                target_id=target,
            ),
        )

    def _tag(self, contact_ids: list[str]) -> None:
        if self.delete_handling != "tag" or not contact_ids:
            return
        if self._tag_id is None:
            existing = [t for t in self.bp.get_tags() if t.tag_name == self.delete_tag]
            self._tag_id = (
                existing[0].tag_id
                if existing
                else self.bp.create_tag(
                    self.delete_tag,
                    "set by the integration when the Dynamics contact was deleted or deactivated",
                )
            )
        self.bp.tag_contacts([int(c) for c in contact_ids], self._tag_id)


_SEARCH_COLUMNS = ["contactId", "primaryEmail", "firstName", "lastName"]


def _reuse_addresses(r: _Record) -> list[tuple[Any, int | None, str, bool]]:
    """(draft, address id to reuse or None, body hash, needs a PUT) for each postal address the
    new contact needs. Ids an earlier attempt created (kept with the claim) are reused: first
    for the same body, then, with a PUT of the new body, for any other draft."""
    kept = [dict(a) for a in (r.claim.progress.get("postal_addresses") or []) if isinstance(a, dict)]
    drafts = [(d, _body_hash(d.body)) for d in r.decision.payload.postal_addresses]
    plan: list[tuple[Any, int | None, str, bool]] = []
    unmatched: list[tuple[Any, str]] = []
    for draft, body_hash in drafts:
        same = next((a for a in kept if a.get("hash") == body_hash), None)
        if same is None:
            unmatched.append((draft, body_hash))
            continue
        kept.remove(same)
        plan.append((draft, int(same["id"]), body_hash, False))
    for draft, body_hash in unmatched:
        other = kept.pop(0) if kept else None
        plan.append((draft, int(other["id"]) if other else None, body_hash, other is not None))
    return plan


def _body_hash(body: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _is_guid(value: str) -> bool:
    import re

    return re.match(_GUID, value) is not None


def _row_name(row: dict[str, Any]) -> str:
    from shared.quality.duplicates import fold_name

    return fold_name(" ".join(str(p) for p in (row.get("firstName"), row.get("lastName")) if p))


def _near_names(row_names: dict[str, str], names: set[str], threshold: float) -> set[str]:
    """Keys of `row_names` whose name scores at least `threshold` against any of `names`.

    The score is rapidfuzz's token_sort_ratio. Its token sort is done once per name here and
    the comparisons run inside rapidfuzz (process.extract), since a batch compares up to a
    thousand names against every scanned Brightpearl contact.
    """
    from rapidfuzz import fuzz, process

    def token_sorted(text: str) -> str:
        return " ".join(sorted(text.split()))

    choices = {key: token_sorted(name) for key, name in row_names.items()}
    near: set[str] = set()
    for name in names:
        if not name:
            continue
        for _, _, key in process.extract(
            token_sorted(name), choices, scorer=fuzz.ratio, processor=None, score_cutoff=threshold, limit=None
        ):
            near.add(key)
    return near


def _new_id(value: Any) -> int:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bp_errors.BrightpearlError(f"POST answered {value!r}, not a new id") from exc


def _message_error(status: int, body: dict[str, Any], uri: str) -> BaseException:
    errors = body.get("errors") if isinstance(body, dict) else None
    text = (
        "; ".join(str(e.get("message") or e) for e in errors) if isinstance(errors, list) else str(body)[:300]
    )
    message = f"Brightpearl answered {status} to POST {uri} in a multi-message: {text}"
    if status == 503:
        return bp_errors.BrightpearlThrottled(message, status=status)
    if status >= 500:
        return bp_errors.BrightpearlUnavailable(message, status=status)
    return bp_errors.BrightpearlValidationError(message, status=status, errors=errors or [])
