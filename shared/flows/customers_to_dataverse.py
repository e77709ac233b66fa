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

from collections.abc import Sequence
from typing import Any

from shared.dataverse import odata
from shared.flows.customers_spec import TO_DATAVERSE
from shared.flows.customers_sync import CustomerSync
from shared.mapping import is_customer
from shared.model.customer import Customer
from shared.quality.duplicates import customer_emails, customer_postcodes
from shared.quality.issues import IssueCode
from shared.quality.normalise import email_match_key, postcode_match_key
from shared.sync.engine import SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, in_parallel
from shared.telemetry import get_logger

log = get_logger("flows.customers_to_dataverse")


Record = SyncRecord[Customer]


class CustomersToDataverse(CustomerSync):
    """Brightpearl contacts -> Dataverse. Hooks: fetch (contact GET by id set), match (key,
    link, e-mail, likely duplicates), write (accounts, then contacts in bulk)."""

    spec = TO_DATAVERSE

    # ------------------------------------------------------------------------------ hooks
    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self.brightpearl_contacts([int(i) for i in ids])

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        if is_customer(source):
            return False
        results.set(
            record_id,
            RecordResult(
                "skipped", "NotACustomer", f"Brightpearl contact {record_id} is a supplier or staff"
            ),
        )
        return True

    def account_of(self, record: Record) -> str | None:
        account = (record.target or {}).get("parentcustomerid_account") or {}
        return account.get("accountid") if account else None

    def match(self, records: list[Record], results: BatchResults) -> None:
        self._pool: dict[str, dict[str, Any]] = {}  # Dataverse contacts that may match (by id)
        links = self.store.links.get_many(self.link_entity, "brightpearl", [r.source_id for r in records])
        for r in records:
            r.link = links.get(r.source_id)
        self._current_rows(records)
        self._match_unlinked(records, results)

    def settle(self, r: Record, results: BatchResults, extra: str = "") -> None:
        """As every flow, but a customer written with the default group (its Brightpearl group is
        not in the map) is flagged: its audit row carries reason UnknownCustomerGroup."""
        flagged = [
            issue
            for issue in (r.decision.issues if r.decision is not None else [])
            if issue.code is IssueCode.UNKNOWN_CUSTOMER_GROUP and not issue.fatal
        ]
        super().settle(r, results, extra + "".join(f"; flagged {i.summary()}" for i in flagged))
        if flagged:
            results.by_id[r.source_id].reason = str(IssueCode.UNKNOWN_CUSTOMER_GROUP)

    # ------------------------------------------------------------------------------ matching
    def _query_contacts(self, flt: odata.Filter) -> list[dict[str, Any]]:
        return self.dataverse_contacts(flt, self.select)

    def _current_rows(self, records: list[Record]) -> None:
        """One query per chunk of records (as many as its filter fits the URL) finds their
        contacts by key and every candidate for e-mail and name + postcode matching
        (`self._pool`)."""
        pool: dict[str, dict[str, Any]] = {}
        for _, candidates in odata.fit_chunks(records, self._candidates_filter):
            for row in self._query_contacts(candidates):
                pool[str(row["contactid"]).lower()] = row
        self._pool = pool
        by_key = {str(row.get(self.key)): row for row in pool.values() if row.get(self.key)}
        linked_ids = {
            r.source_id: r.link.id_in("dataverse")
            for r in records
            if r.link is not None and r.link.is_linked and r.source_id not in by_key
        }
        by_id: dict[str, dict[str, Any]] = {}
        wanted = [i for i in linked_ids.values() if i]
        for of_contacts in odata.in_chunks("contactid", wanted):
            for row in self._query_contacts(of_contacts):
                by_id[str(row["contactid"]).lower()] = row
        for r in records:
            linked = linked_ids.get(r.source_id)
            if r.source_id in by_key:
                self._found(r, by_key[r.source_id], "key")
            elif linked and linked.lower() in by_id:
                self._found(r, by_id[linked.lower()], "link")

    def _candidates_filter(self, chunk: Sequence[Record]) -> odata.Filter:
        """The contacts of `chunk` by key, or by the e-mail or a postcode of a live record."""
        live = [r for r in chunk if not r.read.fatal]
        emails = sorted({e for r in live for e in customer_emails(r.read.value)})
        postcodes = sorted(
            {v for r in live for p in _postcodes(r.read.value) for v in (p, p.replace(" ", ""))}
        )
        parts = [odata.in_(self.key, [r.source_id for r in chunk])]
        if emails:
            parts.append(odata.in_("emailaddress1", emails))
        if postcodes:
            parts += [
                odata.in_("address1_postalcode", postcodes),
                odata.in_("address2_postalcode", postcodes),
            ]
        return odata.any_of(*parts)

    @staticmethod
    def _found(r: Record, row: dict[str, Any], how: str) -> None:
        r.target, r.target_id, r.matched_by = row, str(row["contactid"]), how

    def _match_unlinked(self, records: list[Record], results: BatchResults) -> None:
        """E-mail match (link to it) then fuzzy name + postcode (flag for review)."""
        unmatched = [r for r in records if r.target is None and not r.read.fatal]
        if not unmatched:
            return
        taken = {str(r.target["contactid"]).lower() for r in records if r.target is not None}
        emails = {e for r in unmatched for e in customer_emails(r.read.value)}
        candidates = {
            k: row for k, row in self._pool.items() if email_match_key(row.get("emailaddress1")) in emails
        }
        index = self.index_of("dataverse", candidates, self.duplicate_index())
        still: list[Record] = []
        for r in unmatched:
            match = index.match(r.read.value)
            owned = {
                c.record_id
                for c in match.email_matches
                if c.record_id in taken or candidates[c.record_id].get(self.key)
            }
            if match.linked_id is not None and not owned:
                self._found(r, candidates[match.linked_id], "email")
                taken.add(match.linked_id)
            elif match.email_matches:
                ids = ", ".join(c.record_id for c in match.email_matches)
                results.set(
                    r.source_id,
                    RecordResult(
                        "needs-review",
                        "AmbiguousEmailMatch",
                        f"Brightpearl contact {r.source_id}: its e-mail matches Dataverse contact(s) {ids}, "
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
        index = self.index_of(
            "dataverse", {k: v for k, v in near.items() if k not in taken}, self.duplicate_index()
        )
        self.flag_likely_duplicates(
            still,
            index,
            results,
            "Link it by setting bpi_brightpearlid on the right contact, or fix the names, then resubmit",
        )

    # ------------------------------------------------------------------------------ writes
    def write(self, records: list[Record], results: BatchResults) -> None:
        todo = self.to_write(records, results)
        writes = [r for r in todo if r.decision is not None and r.decision.should_write]
        account_errors = self._write_accounts(writes)
        upserts: list[tuple[Record, dict[str, Any]]] = []
        updates: list[tuple[Record, dict[str, Any]]] = []
        for r in writes:
            assert r.decision is not None
            payload = r.decision.payload
            if payload.account is not None and payload.account_key_value in account_errors:
                results.error(
                    r.source_id,
                    account_errors[payload.account_key_value],
                    f"Dataverse account of Brightpearl contact {r.source_id}",
                )
                continue
            columns = payload.contact_delta(r.target)
            if r.target is not None and str(r.target.get(self.key) or "") == r.source_id:
                if columns:
                    upserts.append((r, {**columns, self.key: r.source_id}))
            elif r.target is not None:
                updates.append((r, {"contactid": r.target["contactid"], **columns, self.key: r.source_id}))
            else:
                upserts.append((r, {**columns, self.key: r.source_id}))
        self.write_rows(
            "contacts", "Dataverse contact", results, upserts=upserts, updates=updates, key=self.key
        )
        created = [r.source_id for r in todo if r.target is None and not results.has(r.source_id)]
        new_ids: dict[str, str] = {}
        for of_created in odata.in_chunks(self.key, created):
            for rec in self.dv.query("contacts", select=["contactid", self.key], filter=of_created):
                new_ids[str(rec.get(self.key))] = str(rec.get("contactid"))
        remember: list[Record] = []
        for r in todo:
            if results.has(r.source_id):
                continue
            if r.target is None:
                r.target_id = new_ids.get(r.source_id)
            self.settle(r, results)
            remember.append(r)
        in_parallel(self.remember, remember)

    def _write_accounts(self, writes: list[Record]) -> dict[str, BaseException]:
        rows: dict[str, dict[str, Any]] = {}
        for r in writes:
            assert r.decision is not None
            payload = r.decision.payload
            key = payload.account_key_value
            if payload.account is None or not key:
                continue
            current = (r.target or {}).get("parentcustomerid_account")
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
        return {k: o.error for k, o in zip(keys, result.outcomes, strict=True) if not o.ok and o.error}


def _postcodes(customer: Customer) -> set[str]:
    """Postcodes as Dataverse holds them when we wrote them (the canonical, normalised form)."""
    out = set()
    for address in (customer.addresses.default, customer.addresses.billing, customer.addresses.shipping):
        if address is not None and address.postcode:
            out.add(address.postcode)
    return out or set(customer_postcodes(customer))
