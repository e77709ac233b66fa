"""Customers' side of reconciliation: Brightpearl contacts and Dataverse contacts, in bulk.

Reads go through the customer flows' own code (`CustomersToDataverse`, whose CustomerSync base in
shared/flows/customers_sync.py holds the mapping, canonical model, content hashes and bulk reads
both directions share: the hashes the flows store in the links), so "the
hash the link stored" and "the hash now" are computed alike:

- Brightpearl: contact-search of customers (ids only, 500 rows a page, `firstResult` paging),
  then the contacts by id set, 200 a GET, with their postal addresses.
- Dataverse: contacts with the mapped columns and the parent account expanded, in pages of
  5,000 rows (`@odata.nextLink`); by id or by `bpi_brightpearlid` in `In` queries.

Drift is compared per field on the mapping's projections (shared/mapping/hashing.py): the
fields each system receives, as it would store them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Self

from shared.dataverse import odata
from shared.flows.customers_to_dataverse import CustomersToDataverse
from shared.mapping import CustomerMapping, MappingInputError, is_customer
from shared.mapping.hashing import project_for_target
from shared.model.customer import Customer
from shared.quality.normalise import email_match_key
from shared.reconcile.engine import Summaries, Summary
from shared.sync.backfill import search_pages
from shared.sync.outcomes import chunked
from shared.sync.ports import BrightpearlPort, DataversePort, StateStorePort
from shared.systems import SYSTEMS, System

SEARCH_PAGE = 500  # contact-search rows per request (Brightpearl's maximum)
IDS_PER_GET = 200  # contacts per GET by id set
DATAVERSE_PAGE = 5000  # rows per Dataverse page (its maximum)


class CustomerReconcile:
    """Customers as reconciliation sees them (shared/reconcile/engine.py `EntityReconcile`)."""

    link_entity = "customer"
    notice_entities: Mapping[System, str] = {"brightpearl": "contact", "dataverse": "contact"}

    def __init__(
        self,
        *,
        brightpearl: BrightpearlPort,
        dataverse: DataversePort,
        store: StateStorePort,
        mapping: CustomerMapping,
        sync_custom_fields: bool = False,
    ) -> None:
        # the flow's own reads and hashes; reconciliation never writes or publishes through it
        self.sync = CustomersToDataverse(
            brightpearl=brightpearl,
            dataverse=dataverse,
            store=store,
            mapping=mapping,
            sync_custom_fields=sync_custom_fields,
            publish=_never_publish,
        )
        self.bp = brightpearl
        self.dv = dataverse
        self.key = self.sync.key
        self.select = sorted({*self.sync.select, "statecode", self.key})

    @classmethod
    def from_runtime(cls) -> Self:
        from shared import runtime

        return cls(
            brightpearl=runtime.brightpearl(),
            dataverse=runtime.dataverse(),
            store=runtime.state_store(),
            mapping=runtime.customer_mapping(),
            sync_custom_fields=runtime.settings().customers.sync_custom_fields,
        )

    # ------------------------------------------------------------------------------ reads
    def pages(self, system: System, since: datetime | None) -> Iterator[Summaries]:
        if system == "brightpearl":
            rows = self.bp.search_contacts(
                updated_since=since,
                is_customer=True,
                columns=["contactId"],
                sort="contactId.ASC",
                page_size=SEARCH_PAGE,
            )
            waiting: list[str] = []  # ids listed, not read yet: full id sets of 200 across search pages
            for ids, _ in search_pages(rows, "contactId", 0, SEARCH_PAGE):
                waiting += ids
                if len(waiting) >= IDS_PER_GET:
                    cut = len(waiting) - len(waiting) % IDS_PER_GET
                    yield self.read("brightpearl", waiting[:cut])
                    waiting = waiting[cut:]
            if waiting:
                yield self.read("brightpearl", waiting)
            return
        flt = odata.ge("modifiedon", since) if since else None
        page: Summaries = {}
        for row in self._dataverse_rows(flt):
            page[str(row["contactid"]).lower()] = self._summary("dataverse", row)
            if len(page) >= DATAVERSE_PAGE:
                yield page
                page = {}
        if page:
            yield page

    def read(self, system: System, ids: list[str]) -> Summaries:
        return {i: self._summary(system, row) for i, row in self._records(system, ids).items()}

    def carrying(self, ids: list[str]) -> Summaries:
        out: Summaries = {}
        for of_keys in odata.in_chunks(self.key, ids):
            for row in self._dataverse_rows(of_keys):
                out[str(row["contactid"]).lower()] = self._summary("dataverse", row)
        return out

    def differing_fields(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        bp = self._records("brightpearl", [b for b, _ in pairs])
        dv = self._records("dataverse", [d for _, d in pairs])
        out: dict[tuple[str, str], list[str]] = {}
        for bp_id, dv_id in pairs:
            left, right = (
                self._canonical("brightpearl", bp.get(bp_id)),
                self._canonical("dataverse", dv.get(dv_id)),
            )
            if left is None or right is None:
                continue
            names: set[str] = set()
            for system in SYSTEMS:
                names |= _differing(
                    project_for_target(left, system, self.sync.mapping),
                    project_for_target(right, system, self.sync.mapping),
                )
            out[(bp_id, dv_id)] = sorted(names)
        return out

    # ------------------------------------------------------------------------------ helpers
    def _records(self, system: System, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Full records of `system` by id (those that exist), read in bulk."""
        out: dict[str, dict[str, Any]] = {}
        if system == "brightpearl":
            numbers = [int(i) for i in ids if i.isdigit()]
            for numbers_chunk in chunked(numbers, IDS_PER_GET):
                out.update(self.sync.brightpearl_contacts(list(numbers_chunk)))
            return out
        guids = [i.lower() for i in ids if odata.is_guid(i)]
        for of_contacts in odata.in_chunks("contactid", guids):
            for row in self._dataverse_rows(of_contacts):
                out[str(row["contactid"]).lower()] = row
        return out

    def _dataverse_rows(self, flt: odata.Filter | None) -> Iterator[dict[str, Any]]:
        for record in self.dv.query(
            "contacts",
            select=self.select,
            expand=self.sync.expand_account,
            filter=flt,
            page_size=DATAVERSE_PAGE,
        ):
            yield dict(record.values)

    def _canonical(self, system: System, row: dict[str, Any] | None) -> Customer | None:
        if row is None:
            return None
        try:
            return self.sync.to_canonical(system, row).value
        except (MappingInputError, KeyError, ValueError):
            return None

    def _summary(self, system: System, row: dict[str, Any]) -> Summary:
        value = self._canonical(system, row)
        content_hash = self.sync.content_hash(value, system) if value is not None else None
        if system == "brightpearl":
            email = value.emails.primary if value is not None else None
            return Summary(content_hash, email_match_key(email), None, is_customer(row))
        other = row.get(self.key)
        return Summary(
            content_hash,
            email_match_key(row.get("emailaddress1")),
            str(other) if other not in (None, "") else None,
            row.get("statecode") in (None, 0),
        )


def _never_publish(envelopes: list[Any]) -> None:
    raise RuntimeError("reconciliation publishes through its own publishers, not the flow's")


def _differing(left: dict[str, Any], right: dict[str, Any]) -> set[str]:
    """Projection keys whose values differ; one level into dicts ("emails.primary")."""
    names: set[str] = set()
    for key in left.keys() | right.keys():
        a, b = left.get(key), right.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            names |= {f"{key}.{k}" for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        else:
            names.add(key)
    return names
