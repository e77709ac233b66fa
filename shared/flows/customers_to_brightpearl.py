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

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Unpack

from shared.brightpearl import errors as bp_errors
from shared.brightpearl.client import (
    MULTI_MESSAGE_MAX,
    POSTAL_ADDRESS_GET,
    POSTAL_ADDRESS_POST,
    postal_address_fingerprint,
)
from shared.dataverse import odata
from shared.events import Envelope
from shared.flows.customers_spec import TO_BRIGHTPEARL
from shared.flows.customers_sync import CONTACT_GET, SEARCH_COLUMNS, CustomerFlowArgs, CustomerSync
from shared.mapping import (
    MappingInputError,
    brightpearl_custom_field_ops,
    brightpearl_patch_ops,
    decide_write,
    plan_postal_addresses,
)
from shared.mapping.brightpearl import PostalAddressDraft, bp_id
from shared.mapping.dataverse import PARENT_ACCOUNT_BIND
from shared.mapping.decision import WriteDecision
from shared.model.customer import Customer
from shared.quality.duplicates import DuplicateIndex, customer_emails, fold_name, full_name
from shared.store.cursors import Cursor
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.store.links import Claim
from shared.sync.engine import Batch, SyncRecord, integration_echo
from shared.sync.lost_creates import (
    SCAN_WINDOW,
    FoundRecord,
    PendingCreates,
    PendingItem,
    find_lost,
    remember_high_water,
    stored_high_water,
)
from shared.sync.outcomes import BatchResults, RecordResult, chunked, in_parallel, waiting_on_claim
from shared.sync.ports import ClaimKeeperPort, CursorsPort
from shared.telemetry import get_logger

log = get_logger("flows.customers_to_brightpearl")

# State of address POSTs whose answer may be lost (issue 17 item 2, shared/sync/lost_creates.py):
# the claim progress key of a new contact's pending addresses, the cursor of an existing
# contact's, and the cursor keeping a lower bound of the address ids Brightpearl allocates next.
PENDING_ADDRESSES = "pending_addresses"
PENDING_ADDRESSES_CURSOR = "brightpearl-pending-postal-addresses-of-contact-"
ADDRESS_HIGH_WATER_CURSOR = "brightpearl-postal-address-high-water"
# Failures after which a POST was surely not applied (refused, throttled, not authenticated);
# after any other (timeout, dropped connection, 5xx) its pending marker is kept.
_NOT_APPLIED = (
    bp_errors.BrightpearlValidationError,
    bp_errors.BrightpearlThrottled,
    bp_errors.BrightpearlAuthError,
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Record = SyncRecord[Customer]


@dataclass
class _ReadBack:
    columns: dict[str, Any]  # Dataverse contact columns to send with the bpi_brightpearlid write-back
    brightpearl_hash: str  # of the contact as Brightpearl holds it
    dataverse_hash: str  # of the Dataverse contact once the write-back is applied


class CustomersToBrightpearl(CustomerSync):
    """Dataverse contacts and accounts -> Brightpearl contacts. Hooks: sort_notice (deletes,
    the integration user's echo), expand (an account stands for its contacts), fetch, skip
    (inactive), match (key, link, e-mail, likely duplicates), write (JSON Patch updates,
    claimed creates, the id written back)."""

    spec = TO_BRIGHTPEARL
    batch_ids_shown = 5
    echo_needs_linked_target = True

    def __init__(
        self,
        *,
        integration_user_id: str | None = None,
        trust_integration_user: bool = False,
        delete_handling: str = "record",
        delete_tag: str = "Deleted in Dynamics",
        scan_threshold: int = 25,
        **common: Unpack[CustomerFlowArgs],
    ) -> None:
        """Besides the ports and mapping (`common`): how this direction treats the integration
        user's own edits and deletions, and when to scan all contacts instead of searching per
        record."""
        super().__init__(**common)
        self.integration_user = (integration_user_id or "").lower() or None
        self.trust_integration_user = trust_integration_user
        self.delete_handling = delete_handling
        self.delete_tag = delete_tag
        self.scan_threshold = scan_threshold
        self.select = sorted({*self.select, "statecode"})
        self._tag_id: int | None = None
        self._rows: dict[str, dict[str, Any]] = {}  # Dataverse contacts read by `expand`

    @classmethod
    def runtime_options(cls) -> dict[str, Any]:
        from shared import runtime

        s = runtime.settings().customers
        return {
            "integration_user_id": s.integration_user_id,
            "trust_integration_user": s.trust_integration_user,
            "delete_handling": s.delete_handling,
            "delete_tag": s.delete_tag,
            "scan_threshold": s.brightpearl_scan_threshold,
        }

    # ------------------------------------------------------------------------------ notices
    def id_problem(self, entity: str, record_id: str) -> str | None:
        if _GUID.match(record_id) is None:
            return f"Dataverse {entity} id {record_id!r} is not a GUID"
        return None

    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        n = envelope.notice
        problem = self.id_problem(n.entity, record_id)
        if problem is not None:
            results.set(record_id, RecordResult("fatal", "MalformedMessage", problem))
        elif n.operation == "deleted" and n.entity == "contact":
            if record_id not in batch.deleted:
                batch.deleted.append(record_id)
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
                record_id, RecordResult("skipped", "IntegrationEcho", "initiated by the integration user")
            )
        else:
            batch.add(n.entity, record_id)

    def _is_own_echo(self, envelope: Envelope) -> bool:
        return integration_echo(envelope, self.integration_user, self.trust_integration_user)

    # ------------------------------------------------------------------------------ reads
    def _query(self, flt: odata.Filter) -> list[dict[str, Any]]:
        return self.dataverse_contacts(flt, self.select)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        """The contacts named, then the contacts under each account named (read here, once)."""
        contact_ids = batch.changed.get("contact", [])
        account_ids = batch.changed.get("account", [])
        rows: dict[str, dict[str, Any]] = {}
        for of_contacts in odata.in_chunks("contactid", contact_ids):
            for row in self._query(of_contacts):
                rows[str(row["contactid"]).lower()] = row
        derived = batch.derived
        for chunk, under in odata.fit_chunks(account_ids, partial(odata.in_, "_parentcustomerid_value")):
            for row in self._query(under):
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
        self._rows = rows
        return list(dict.fromkeys([*contact_ids, *(c for cs in derived.values() for c in cs)]))

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self._rows

    def fetch_key(self, record_id: str) -> str:
        return record_id.lower()

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        if source.get("statecode") != 1:
            return False
        self._deactivated(record_id, source, results)
        return True

    def match(self, records: list[Record], results: BatchResults) -> None:
        """By bpi_brightpearlid, by link, then e-mail and likely duplicates (`_match`)."""
        links = self.store.links.get_many(self.link_entity, "dataverse", [r.source_id for r in records])
        for r in records:
            key = bp_id(r.source.get(self.key))
            link = r.link = links.get(r.source_id)
            if key:
                r.target_id, r.matched_by = key, "key"
            elif link is not None and link.is_linked and link.id_in("brightpearl"):
                r.target_id, r.matched_by = link.id_in("brightpearl"), "link"
        self._fetch_current(records)
        for r in records:
            if r.target_id and r.target is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "needs-review",
                        "BrightpearlContactMissing",
                        f"Dataverse contact {r.source_id} is linked to Brightpearl contact {r.target_id}, "
                        "which no longer exists; clear bpi_brightpearlid to create a new one, then resubmit",
                    ),
                )
        unmatched = [r for r in records if r.target_id is None and not r.read.fatal]
        if unmatched:
            self._match(unmatched, records, results)

    def _fetch_current(self, records: list[Record]) -> None:
        ids = sorted({int(_target(r)) for r in records if r.target_id and r.target is None})
        by_id = self.brightpearl_contacts(ids)
        for r in records:
            if r.target_id and r.target is None:
                r.target = by_id.get(r.target_id)

    def _match(self, unmatched: list[Record], records: list[Record], results: BatchResults) -> None:
        taken = {r.target_id for r in records if r.target_id}
        rows: dict[str, dict[str, Any]] = {}  # contact-search rows by contact id
        if len(unmatched) > self.scan_threshold:
            for row in self.bp.search_contacts(is_customer=True, columns=SEARCH_COLUMNS):
                rows[str(row["contactId"])] = row
        else:
            for r in unmatched:
                rows.update(self._search_like(r))
        by_email: dict[str, set[str]] = {}
        for contact_id, row in rows.items():
            email = str(row.get("primaryEmail") or "").strip().lower()
            if email:
                by_email.setdefault(email, set()).add(contact_id)
        linked = self.store.links.get_many(self.link_entity, "brightpearl", list(rows)) if rows else {}
        name_pool: list[Record] = []
        for r in unmatched:
            found: set[str] = set()
            for email in customer_emails(r.read.value):
                found |= by_email.get(email, set())
            owned = {c for c in found if c in taken or (c in linked and linked[c].is_linked)}
            if len(found) == 1 and not owned:
                r.target_id, r.matched_by = found.pop(), "email"
                taken.add(r.target_id)
            elif found:
                why = "already belong to other Dynamics contacts" if found == owned else "are several"
                results.set(
                    r.source_id,
                    RecordResult(
                        "needs-review",
                        "AmbiguousEmailMatch",
                        f"Dataverse contact {r.source_id}: its e-mail matches Brightpearl contact(s) "
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
        index = self.duplicate_index()
        self._add_to_index(index, near_ids)
        self.flag_likely_duplicates(
            name_pool, index, results, "Set bpi_brightpearlid to link it, or fix the names, then resubmit"
        )

    # ------------------------------------------------------------------------------ writes
    def write(self, records: list[Record], results: BatchResults) -> None:
        todo = self.to_write(records, results)
        creates = [r for r in todo if r.target is None and _writes(r)]
        for r in todo:
            if r.target is not None and _writes(r):
                try:
                    self._update(r)
                except Exception as exc:
                    results.error(
                        r.source_id,
                        exc,
                        f"Brightpearl contact {r.target_id} (from Dataverse contact {r.source_id})",
                    )
        read_back: dict[str, _ReadBack] = {}
        if creates:
            self._create(creates, results)
            read_back = self._read_back([r for r in creates if r.target_id and not results.has(r.source_id)])
        write_back = [
            r
            for r in todo
            if not results.has(r.source_id) and r.target_id and bp_id(r.source.get(self.key)) != r.target_id
        ]
        if write_back:
            result = self.dv.update_multiple(
                "contacts",
                [
                    {
                        "contactid": r.source["contactid"],
                        **(read_back[r.source_id].columns if r.source_id in read_back else {}),
                        self.key: r.target_id,
                    }
                    for r in write_back
                ],
            )
            for r, outcome in zip(write_back, result.outcomes, strict=True):
                if not outcome.ok:
                    results.error(
                        r.source_id,
                        outcome.error,
                        f"write-back of bpi_brightpearlid to Dataverse contact {r.source_id}",
                    )
                elif r.source_id in read_back:
                    self._record_read_back(r, read_back[r.source_id])
        remember: list[Record] = []
        for r in todo:
            if results.has(r.source_id):
                continue
            extra = ""
            if r.source_id in read_back and read_back[r.source_id].columns:
                extra = "; values Brightpearl filled in written back to Dataverse: " + ", ".join(
                    sorted(read_back[r.source_id].columns)
                )
            self.settle(r, results, extra)
            remember.append(r)
        in_parallel(self.remember, remember)

    def _update(self, r: Record) -> None:
        assert r.target_id is not None and r.target is not None
        desired = _decided(r).customer
        contact_id = int(_target(r))
        ops = brightpearl_patch_ops(desired, r.target, self.mapping).value
        if ops:
            self.bp.patch_contact(contact_id, ops)
        plan = plan_postal_addresses(
            desired, r.target, r.target.get("postalAddresses") or [], self.mapping
        ).value
        for address_id, body in plan.update.items():
            self.bp.update_postal_address(address_id, body)
        if plan.create:
            done = self._new_addresses_of(contact_id, plan.create)
            links = [
                {"postalAddressId": address_id, "type": role}
                for draft, address_id in zip(plan.create, done.ids, strict=True)
                for role in draft.roles
            ]
            self.bp.link_contact_addresses(contact_id, links)
            done.forget()
        if self.sync_custom_fields:
            cf_ops = brightpearl_custom_field_ops(desired, r.target.get("customFields"), self.mapping).value
            if cf_ops:
                self.bp.patch_contact_custom_fields(contact_id, cf_ops)

    def _new_addresses_of(self, contact_id: int, drafts: list[PostalAddressDraft]) -> _NewAddresses:
        """Postal addresses with these bodies for the existing contact `contact_id`, not yet
        linked to it: those an earlier attempt created but never learnt of (its answer was lost,
        or it failed before the link PUT) are adopted, the rest are posted.

        Before posting, a pending marker (PendingCreates) is kept in a cursor named after the
        contact; the caller forgets it once the addresses are linked, so a retry after a lost
        answer finds the addresses instead of orphaning them. A second writer of the same
        contact meanwhile fails on the cursor's ETag (a transient StoreConflictError).
        """
        cursors = self.store.cursors
        name = f"{PENDING_ADDRESSES_CURSOR}{contact_id}"
        marker = cursors.get(name)
        hashes = [_body_hash(d.body) for d in drafts]
        ids: list[int | None] = [None] * len(drafts)
        earlier = PendingCreates.from_progress(_json(marker.value)) if marker is not None else None
        if earlier is not None:
            spare: list[int] = []
            for key, address_id in self._find_lost_addresses({"contact": earlier}).get("contact", []):
                slot = next((i for i, h in enumerate(hashes) if h == key and ids[i] is None), None)
                if slot is None:
                    spare.append(address_id)
                else:
                    ids[slot] = address_id
            for i, draft in enumerate(drafts):
                if ids[i] is None and spare:  # the body changed since: the adopted address takes the new one
                    reused = ids[i] = spare.pop(0)
                    self.bp.update_postal_address(reused, draft.body)
            if any(i is not None for i in ids):
                log.warning(
                    "Brightpearl contact %s: adopted %d postal addresses an earlier attempt created",
                    contact_id,
                    sum(1 for i in ids if i is not None),
                )
        missing = [i for i, address_id in enumerate(ids) if address_id is None]
        if missing:
            # the new marker covers every draft from the earliest bound, so the addresses adopted
            # just now are found again too if this attempt fails before linking them
            floor = self._address_floor()
            pending = PendingCreates(
                min(floor, earlier.after) if earlier is not None else floor,
                tuple(
                    PendingItem(h, postal_address_fingerprint(d.body))
                    for h, d in zip(hashes, drafts, strict=True)
                ),
            )
            marker = cursors.save(
                name, json.dumps(pending.to_progress()), etag=marker.etag if marker is not None else None
            )
            for i in missing:
                ids[i] = self.bp.create_postal_address(drafts[i].body)
            self._remember_address_floor()
        return _NewAddresses([int(i) for i in ids if i is not None], cursors, name, marker)

    def _find_lost_addresses(self, pending: dict[str, PendingCreates]) -> dict[str, list[tuple[str, int]]]:
        known_top = self.bp.highest_created_id(POSTAL_ADDRESS_POST)
        return find_lost(pending, self._read_addresses, known_top=known_top)

    def _address_floor(self) -> int:
        """A lower bound of the postal-address ids Brightpearl allocates next (any existing id
        is one): one above the highest id this process's answers carried, else above the one a
        process kept in the cursor, else (before the first address POST of a deployment is
        answered) the highest address id of the newest contact, else 1."""
        seen = self.bp.highest_created_id(POSTAL_ADDRESS_POST)
        if seen is None:
            seen = stored_high_water(self.store.cursors, ADDRESS_HIGH_WATER_CURSOR)
        if seen is None:
            seen = self._newest_address_id()
        return (seen or 0) + 1

    def _newest_address_id(self) -> int | None:
        """The highest postal-address id of the newest Brightpearl contact (two reads)."""
        for row in self.bp.search_contacts(columns=["contactId"], sort="contactId.DESC", page_size=1):
            contact_ids = [int(row["contactId"])]
            items = self.bp.get_by_ids(
                CONTACT_GET, contact_ids, limit=200, params={"includeOptional": "postalAddresses"}
            )
            ids = [
                int(a["addressId"])
                for item in items
                if isinstance(item, dict)
                for a in item.get("postalAddresses") or []
                if isinstance(a, dict) and str(a.get("addressId", "")).isdigit()
            ]
            if ids:
                remember_high_water(self.store.cursors, ADDRESS_HIGH_WATER_CURSOR, max(ids))
            return max(ids, default=None)
        return None

    def _remember_address_floor(self) -> None:
        seen = self.bp.highest_created_id(POSTAL_ADDRESS_POST)
        if seen is not None:
            remember_high_water(self.store.cursors, ADDRESS_HIGH_WATER_CURSOR, seen)

    def _read_addresses(self, first: int, last: int) -> list[FoundRecord]:
        """Postal addresses `first`-`last` (one ranged GET) as lost-create candidates: an
        address with a contactId belongs to a contact and is never adopted."""
        items = self.bp.get_by_ids(POSTAL_ADDRESS_GET, range(first, last + 1), limit=SCAN_WINDOW)
        return [
            FoundRecord(
                int(item["addressId"]), postal_address_fingerprint(item), owned=bool(item.get("contactId"))
            )
            for item in items
            if isinstance(item, dict) and str(item.get("addressId", "")).isdigit()
        ]

    def _adopt_lost_addresses(self, claimed: list[Record], failed: dict[str, BaseException]) -> None:
        """Claims whose progress holds pending addresses (a POST whose answer was lost, or an
        attempt that died mid-POST): adopt the addresses Brightpearl made for them, so they are
        reused, not posted again. If Brightpearl cannot be read, those records wait (failed)."""
        pending = {
            r.source_id: p
            for r in claimed
            if (p := PendingCreates.from_progress(_claimed(r).progress.get(PENDING_ADDRESSES))) is not None
        }
        if not pending:
            return
        try:
            adopted = self._find_lost_addresses(pending)
        except bp_errors.BrightpearlError as exc:
            for source_id in pending:
                failed[source_id] = exc
            return

        def save(r: Record) -> None:
            progress = {k: v for k, v in _claimed(r).progress.items() if k != PENDING_ADDRESSES}
            found = [{"id": address_id, "hash": key} for key, address_id in adopted.get(r.source_id, [])]
            if found:
                progress["postal_addresses"] = [*(progress.get("postal_addresses") or []), *found]
            try:
                r.claim = self.store.links.save_progress(_claimed(r), progress)
            except Exception as exc:
                failed.setdefault(r.source_id, exc)

        in_parallel(save, [r for r in claimed if r.source_id in pending])
        if adopted:
            log.warning(
                "adopted %d postal addresses made by attempts whose answer was lost (Dataverse contacts %s)",
                sum(len(found) for found in adopted.values()),
                ", ".join(sorted(adopted)[: self.batch_ids_shown]),
            )

    def _drop_taken_addresses(self, claimed: list[Record], failed: dict[str, BaseException]) -> None:
        """Forget saved address ids that meanwhile belong to a contact or are gone, so new ones
        are posted: Brightpearl refuses a contact whose address belongs to another. (Another
        writer can have adopted an identical address; see shared/sync/lost_creates.py.) One
        ranged GET per batch with saved ids; if it fails, those records wait."""
        kept = {r.source_id: _kept_ids(r) for r in claimed if r.source_id not in failed}
        ids = sorted({i for saved in kept.values() for i in saved})
        if not ids:
            return
        try:
            items = self.bp.get_by_ids(POSTAL_ADDRESS_GET, ids, limit=SCAN_WINDOW)
        except bp_errors.BrightpearlError as exc:
            for source_id, saved in kept.items():
                if saved:
                    failed[source_id] = exc
            return
        free = {int(i["addressId"]) for i in items if isinstance(i, dict) and not i.get("contactId")}
        for r in claimed:
            if set(kept.get(r.source_id, [])) - free:
                progress = dict(_claimed(r).progress)
                progress["postal_addresses"] = [a for a in progress["postal_addresses"] if a["id"] in free]
                r.claim = _claimed(r).model_copy(update={"progress": progress})
                log.warning(
                    "Dataverse contact %s: saved postal addresses %s belong to another contact or are gone; "
                    "new ones are posted",
                    r.source_id,
                    sorted(set(kept[r.source_id]) - free),
                )

    def _create(self, creates: list[Record], results: BatchResults) -> None:
        claimed: list[Record] = []
        for r in creates:
            try:
                r.claim = self.store.links.claim(self.link_entity, "dataverse", r.source_id, "brightpearl")
                if r.claim.takeover and self._recover(r):
                    continue  # an earlier attempt had created it after all: linked, not created again
                claimed.append(r)
            except ClaimTaken as taken:
                # another worker is creating it (or just did): wait for it without spending a retry
                results.set(r.source_id, waiting_on_claim(f"Dataverse contact {r.source_id}", taken))
        if not claimed:
            return
        with self.store.links.keep([_claimed(r) for r in claimed]) as keeper:
            failed, maybe_created = self._post_new(claimed, keeper)
        groups: dict[int, list[int]] = {}
        for r in claimed:
            if r.source_id in failed:
                if r.source_id not in maybe_created:
                    self._release(r)  # its progress (address ids, pending addresses) stays with the row
                # else: the contact POST may have been applied; the claim stays pending, and whoever
                # takes it over once it is stale looks for that contact before creating (_recover)
                results.error(
                    r.source_id,
                    failed[r.source_id],
                    f"creation of Dataverse contact {r.source_id} in Brightpearl",
                )
                continue
            try:
                self.store.links.complete_claim(
                    _claimed(r),
                    _target(r),
                    source_hash=self.content_hash(r.read.value, "dataverse"),
                    target_hash=_decided(r).desired_hash,
                )
            except StoreConflictError as exc:
                log.warning("claim of Dataverse contact %s was taken over: %s", r.source_id, exc)
            payload = _decided(r).payload
            if self.sync_custom_fields and payload.custom_field_ops:
                try:
                    self.bp.patch_contact_custom_fields(int(_target(r)), payload.custom_field_ops)
                except Exception as exc:
                    results.error(r.source_id, exc, f"custom fields of Brightpearl contact {r.target_id}")
            if payload.contact_group_id is not None:
                groups.setdefault(int(payload.contact_group_id), []).append(int(_target(r)))
        for group_id, members in groups.items():
            self.bp.add_contacts_to_group(group_id, members)

    def _post_new(
        self, claimed: list[Record], keeper: ClaimKeeperPort
    ) -> tuple[dict[str, BaseException], set[str]]:
        """POST the postal addresses, then the contacts, of claimed records; sets `bp_id` of
        those created. Returns the failures by Dataverse id, and the ids whose contact POST may
        have been applied (their claims must stay pending for `_recover`).

        Each claim's progress holds the ids of its addresses before the contact POST, so a retry
        (or a worker taking the claim over) reuses them instead of leaving contact-less
        addresses. Before each address POST it also holds a pending marker (a lower bound of
        the new ids and the bodies' fingerprints), so when that POST's answer is lost the next
        attempt finds and adopts what Brightpearl made (`_adopt_lost_addresses`).
        """
        failed: dict[str, BaseException] = {}
        self._adopt_lost_addresses(claimed, failed)
        self._drop_taken_addresses(claimed, failed)
        role_ids: dict[str, dict[str, int]] = {}
        made: dict[str, list[dict[str, Any]]] = {}  # dv id -> [{"id", "hash"}] kept with the claim
        pending: dict[str, PendingCreates] = {}  # dv id -> addresses being posted, answer not yet read
        posted: set[str] = set()  # dv ids whose address POST this attempt made (it owns their marker)
        to_post: list[tuple[Record, PostalAddressDraft, str]] = []
        for r in claimed:
            if r.source_id in failed:
                continue
            for draft, address_id, body_hash, stale in _reuse_addresses(r):
                if address_id is not None and stale:
                    try:
                        self.bp.update_postal_address(address_id, draft.body)
                    except bp_errors.BrightpearlNotFound:
                        address_id = None  # gone meanwhile: post a new one
                    except bp_errors.BrightpearlError as exc:
                        failed.setdefault(r.source_id, exc)
                        made.setdefault(r.source_id, []).append({"id": address_id, "hash": ""})  # reuse later
                        continue
                if address_id is None:
                    to_post.append((r, draft, body_hash))
                    continue
                made.setdefault(r.source_id, []).append({"id": address_id, "hash": body_hash})
                for role in draft.roles:
                    role_ids.setdefault(r.source_id, {})[role] = address_id

        def progress_of(r: Record) -> dict[str, Any]:
            progress = {
                k: v
                for k, v in _claimed(r).progress.items()
                if k not in ("postal_addresses", PENDING_ADDRESSES)
            }
            if made.get(r.source_id):
                progress["postal_addresses"] = made[r.source_id]
            if r.source_id in pending:
                progress[PENDING_ADDRESSES] = pending[r.source_id].to_progress()
            elif r.source_id not in posted and PENDING_ADDRESSES in _claimed(r).progress:
                # an earlier attempt's marker this one could not resolve (e.g. the scan for what
                # a lost answer made was throttled): keep it, or the next attempt posts again
                progress[PENDING_ADDRESSES] = _claimed(r).progress[PENDING_ADDRESSES]
            return progress

        def keep_progress(r: Record) -> None:
            try:
                r.claim = self.store.links.save_progress(_claimed(r), progress_of(r))
            except Exception as exc:  # claim lost or storage down: do not post the contact now
                failed.setdefault(r.source_id, exc)

        def keep_changed(records: Iterable[Record]) -> None:
            unsaved = {r.source_id: r for r in records if progress_of(r) != _claimed(r).progress}
            in_parallel(keep_progress, list(unsaved.values()))

        # One multi-message of addresses at a time: first its pending marker is kept with the
        # claims, then it is posted, then the new ids replace the marker. A crash (or a failure)
        # leaves at most this one request's addresses without saved ids, and those are found
        # again through the marker; a retry reuses whatever was saved.
        for chunk in chunked(to_post, MULTI_MESSAGE_MAX):
            floor = self._address_floor()
            for r, draft, body_hash in chunk:
                if r.source_id not in failed:
                    item = PendingItem(body_hash, postal_address_fingerprint(draft.body))
                    pending[r.source_id] = PendingCreates(floor, (item,)).merged(pending.get(r.source_id))
            keep_changed(r for r, _, _ in chunk)
            posting = [(r, d, h) for r, d, h in chunk if r.source_id not in failed]
            if not posting:
                continue
            posted.update(r.source_id for r, _, _ in posting)
            answers = self.bp.create_many(POSTAL_ADDRESS_POST, [d.body for _, d, _ in posting])
            lost: dict[str, list[PendingItem]] = {}  # bodies whose POST may have been applied unseen
            for (r, draft, body_hash), answer in zip(posting, answers, strict=True):
                if isinstance(answer, BaseException):
                    failed.setdefault(r.source_id, answer)
                    if not isinstance(answer, _NOT_APPLIED):
                        lost.setdefault(r.source_id, []).append(
                            PendingItem(body_hash, postal_address_fingerprint(draft.body))
                        )
                    continue
                made.setdefault(r.source_id, []).append({"id": answer, "hash": body_hash})
                for role in draft.roles:
                    role_ids.setdefault(r.source_id, {})[role] = answer
            for r, _, _ in posting:
                marker = pending.pop(r.source_id, None)
                if marker is not None and r.source_id in lost:
                    pending[r.source_id] = PendingCreates(marker.after, tuple(lost[r.source_id]))
            keep_changed(r for r, _, _ in chunk)
        if to_post:
            self._remember_address_floor()
        keep_changed(claimed)  # reused and re-PUT addresses whose claim does not hold them yet
        for r in claimed:
            if r.source_id not in failed and not keeper.held(_claimed(r)):
                failed[r.source_id] = StoreConflictError(
                    f"the creation claim of Dataverse contact {r.source_id} was taken over while this "
                    "worker held it; the other worker creates it"
                )
        ready = [r for r in claimed if r.source_id not in failed]
        contact_ids = self.bp.create_many(
            "/contact-service/contact/",
            [_decided(r).payload.post_body(role_ids.get(r.source_id)) for r in ready],
        )
        maybe_created: set[str] = set()
        for r, answer in zip(ready, contact_ids, strict=True):
            if isinstance(answer, BaseException):
                failed[r.source_id] = answer
                if isinstance(answer, bp_errors.BrightpearlAmbiguousWrite):
                    maybe_created.add(r.source_id)
            else:
                r.target_id = str(answer)
        return failed, maybe_created

    def _recover(self, r: Record) -> bool:
        """After taking over a stale claim: find the contact an earlier, interrupted attempt may
        have created (same e-mail, else same name + postcode, not linked to anything) and link it."""
        rows = self._search_like(r)
        if not rows:
            return False
        linked = self.store.links.get_many(self.link_entity, "brightpearl", list(rows))
        free = sorted(int(c) for c in rows if not (c in linked and linked[c].is_linked))
        if not free:
            return False
        index = DuplicateIndex(name_threshold=99.0, require_postcode=self.mapping.duplicates.require_postcode)
        self._add_to_index(index, free)
        match = index.match(r.read.value)
        found = match.linked_id or (match.likely[0].record_id if len(match.likely) == 1 else None)
        if found is None:
            return False
        r.target_id, r.matched_by = found, "recovered"
        self._fetch_current([r])
        self.store.links.complete_claim(
            _claimed(r), found, source_hash=self.content_hash(r.read.value, "dataverse")
        )
        log.warning(
            "Dataverse contact %s: recovered Brightpearl contact %s created by an interrupted attempt",
            r.source_id,
            found,
        )
        return True

    def _read_back(self, created: list[Record]) -> dict[str, _ReadBack]:
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
            if r.target is None:
                continue
            try:
                in_brightpearl = self.to_canonical("brightpearl", r.target).value
            except MappingInputError:
                continue
            account = r.source.get("parentcustomerid_account") or {}
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
            columns = payload.contact_delta(r.source) if decision.should_write else {}
            if PARENT_ACCOUNT_BIND in columns or payload.account_delta(account or None):
                continue  # an account change: left to the customers-to-dataverse flow
            columns.pop(self.key, None)
            out[r.source_id] = _ReadBack(
                columns=columns,
                brightpearl_hash=self.content_hash(in_brightpearl, "brightpearl"),
                dataverse_hash=decision.desired_hash,
            )
        return out

    def _record_read_back(self, r: Record, read_back: _ReadBack) -> None:
        """After the write-back: the link holds what both sides now hold."""
        try:
            self.store.links.record_hashes(
                self.link_entity,
                "dataverse",
                r.source_id,
                {"brightpearl": read_back.brightpearl_hash, "dataverse": read_back.dataverse_hash},
            )
        except StoreConflictError as exc:  # someone else moved the link on; their hashes stand
            log.info("hashes of Dataverse contact %s not recorded: %s", r.source_id, type(exc).__name__)
        except Exception as exc:  # both writes are done: without these hashes it converges a poll later
            log.warning("hashes of Dataverse contact %s not recorded: %s", r.source_id, type(exc).__name__)

    def _search_like(self, r: Record) -> dict[str, dict[str, Any]]:
        """contact-search rows (by contact id) sharing an e-mail or the last name with `r`."""
        rows: dict[str, dict[str, Any]] = {}
        for email in sorted(customer_emails(r.read.value)):
            for row in self.bp.search_contacts(primary_email=email, columns=SEARCH_COLUMNS):
                rows[str(row["contactId"])] = row
        last = r.read.value.name.last_name
        if last:
            for row in self.bp.search_contacts(lastName=last, columns=SEARCH_COLUMNS):
                rows[str(row["contactId"])] = row
        return rows

    def _add_to_index(self, index: DuplicateIndex, contact_ids: list[int]) -> None:
        """Read these Brightpearl contacts (with addresses) into `index`; unreadable ones are left out."""
        if not contact_ids:
            return
        items = self.bp.get_by_ids(
            CONTACT_GET, contact_ids, limit=200, params={"includeOptional": "postalAddresses"}
        )
        rows = {str(i["contactId"]): i for i in items if isinstance(i, dict) and "contactId" in i}
        self.index_of("brightpearl", rows, index)

    def _release(self, r: Record) -> None:
        try:
            self.store.links.release_claim(_claimed(r))
        except Exception:  # an unreleased claim expires after LINK_CLAIM_TIMEOUT_SECONDS
            log.warning("releasing the claim of Dataverse contact %s failed", r.source_id)

    # ------------------------------------------------------------------------------ deletes
    def deleted(self, ids: list[str], results: BatchResults) -> None:
        links = self.store.links.get_many(self.link_entity, "dataverse", ids)
        targets = {i: links[i].id_in("brightpearl") for i in ids if i in links and links[i].is_linked}
        self._tag([t for t in targets.values() if t])
        for record_id in ids:
            target = targets.get(record_id)
            why = f"Dataverse contact {record_id} was deleted; {self._kept(target)}"
            results.set(record_id, RecordResult("skipped", "DeletedInDataverse", why, target_id=target))

    def _deactivated(self, record_id: str, row: dict[str, Any], results: BatchResults) -> None:
        target = bp_id(row.get(self.key))
        if target is None:
            link = self.store.links.get(self.link_entity, "dataverse", record_id)
            target = link.id_in("brightpearl") if link is not None and link.is_linked else None
        if target:
            self._tag([target])
        why = f"Dataverse contact {record_id} is inactive; {self._kept(target)}"
        results.set(record_id, RecordResult("skipped", "DeactivatedInDataverse", why, target_id=target))

    def _kept(self, target: str | None) -> str:
        """What became of the linked Brightpearl contact of a deleted or inactive one."""
        what = f"linked Brightpearl contact {target} kept" if target else "no linked Brightpearl contact"
        if target and self.delete_handling == "tag":
            what += f" and tagged {self.delete_tag!r}"
        return what

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


def _kept_ids(r: Record) -> list[int]:
    """Ids of the postal addresses kept with `r`'s claim (progress `postal_addresses`)."""
    kept = _claimed(r).progress.get("postal_addresses") or []
    return [int(a["id"]) for a in kept if isinstance(a, dict) and isinstance(a.get("id"), int)]


def _reuse_addresses(r: Record) -> list[tuple[PostalAddressDraft, int | None, str, bool]]:
    """(draft, address id to reuse or None, body hash, needs a PUT) for each postal address the
    new contact needs. Ids an earlier attempt created (kept with the claim) are reused: first
    for the same body, then, with a PUT of the new body, for any other draft."""
    kept = [dict(a) for a in (_claimed(r).progress.get("postal_addresses") or []) if isinstance(a, dict)]
    drafts = [(d, _body_hash(d.body)) for d in _decided(r).payload.postal_addresses]
    plan: list[tuple[PostalAddressDraft, int | None, str, bool]] = []
    unmatched: list[tuple[PostalAddressDraft, str]] = []
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


@dataclass
class _NewAddresses:
    """Postal addresses for an existing contact and the pending marker kept while posting them."""

    ids: list[int]
    cursors: CursorsPort
    cursor_name: str
    marker: Cursor | None  # the cursor holding the marker

    def forget(self) -> None:
        """Once the addresses are linked: drop the marker (a leftover one only costs a scan)."""
        if self.marker is None:
            return
        try:
            self.cursors.delete(self.cursor_name, self.marker.etag)
        except Exception as exc:
            log.warning("dropping cursor %s failed: %s", self.cursor_name, type(exc).__name__)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _body_hash(body: dict[str, Any]) -> str:

    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _is_guid(value: str) -> bool:
    import re

    return re.match(_GUID, value) is not None


def _row_name(row: dict[str, Any]) -> str:

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


def _writes(r: Record) -> bool:
    return r.decision is not None and r.decision.should_write


def _decided(r: Record) -> WriteDecision:
    assert isinstance(r.decision, WriteDecision), f"Dataverse contact {r.source_id} has no decision"
    return r.decision


def _claimed(r: Record) -> Claim:
    assert r.claim is not None, f"Dataverse contact {r.source_id} has no creation claim"
    return r.claim


def _target(r: Record) -> str:
    assert r.target_id is not None, f"Dataverse contact {r.source_id} has no Brightpearl contact"
    return r.target_id
