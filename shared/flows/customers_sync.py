"""The customer entity's hooks both directions share: canonical model, hashes, decisions, reads.

`CustomerSync` binds the engine (shared/sync/engine.py) to the customer mapping
(mappings/customers.yaml via shared/mapping): how a Brightpearl or Dataverse contact reads as
a canonical `Customer`, its content hash per side, the ownership-aware write decision, and
the bulk reads of contacts on either side. The two flows add only their direction's
matching and writes.
"""

from __future__ import annotations

from typing import Any, NotRequired, Self, Unpack

from shared.dataverse import odata
from shared.mapping import (
    CustomerMapping,
    MappingInputError,
    brightpearl_to_canonical,
    contact_query,
    contact_select,
    content_hash,
    dataverse_to_canonical,
    decide_write,
)
from shared.mapping.decision import WriteDecision
from shared.mapping.translation import Translation
from shared.model.customer import Customer
from shared.quality.duplicates import DuplicateIndex
from shared.sync.engine import FlowPorts, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult
from shared.systems import System

CONTACT_GET = "/contact-service/contact/{ids}"
SEARCH_COLUMNS = ["contactId", "primaryEmail", "firstName", "lastName"]


class CustomerFlowArgs(FlowPorts):
    """The keyword arguments of every customer flow: the ports, the mapping and its options."""

    mapping: CustomerMapping
    sync_custom_fields: NotRequired[bool]


class CustomerSync(RecordSync[Customer]):
    """Customers on the engine: the hooks that do not depend on the direction."""

    link_entity = "customer"

    def __init__(
        self, *, mapping: CustomerMapping, sync_custom_fields: bool = False, **ports: Unpack[FlowPorts]
    ) -> None:
        super().__init__(**ports)
        self.mapping = mapping if sync_custom_fields else mapping.model_copy(update={"custom_fields": []})
        self.sync_custom_fields = sync_custom_fields and bool(mapping.custom_fields)
        self.key = self.mapping.dataverse.contact_key
        self.account_key = self.mapping.dataverse.account.key
        self.select = contact_select(self.mapping)
        self.expand_account = contact_query(self.mapping).get("$expand")

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters (shared/runtime.py, the composition root)."""
        from shared import runtime

        return cls(
            brightpearl=runtime.brightpearl(),
            dataverse=runtime.dataverse(),
            store=runtime.state_store(),
            mapping=runtime.customer_mapping(),
            publish=runtime.publisher_to(cls.spec.topic_setting),
            sync_custom_fields=runtime.settings().customers.sync_custom_fields,
            **cls.runtime_options(),
        )

    @classmethod
    def runtime_options(cls) -> dict[str, Any]:
        """Settings a direction takes beyond the common ones (keyword arguments of __init__)."""
        return {}

    # ------------------------------------------------------------------------------ hooks
    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[Customer]:
        if system == "brightpearl":
            return brightpearl_to_canonical(record, self.mapping)
        return dataverse_to_canonical(record, self.mapping)

    def content_hash(self, value: Customer, system: System) -> str:
        return content_hash(value, system, self.mapping)

    def decide_write(self, record: SyncRecord[Customer], current: Customer | None) -> WriteDecision:
        return decide_write(
            record.read.value,
            current,
            self.spec.target,
            self.mapping,
            source_issues=record.read.issues,
            account_id=self.account_of(record),
        )

    def account_of(self, record: SyncRecord[Customer]) -> str | None:
        """The Dataverse account id of the record's current target (Dataverse targets only)."""
        return None

    # ------------------------------------------------------------------------------ reads
    def brightpearl_contacts(self, ids: list[int]) -> dict[str, dict[str, Any]]:
        """Brightpearl contacts (with postal addresses and, when synced, custom fields) by id."""
        if not ids:
            return {}
        raw = self.bp.get_by_ids(CONTACT_GET, ids, limit=200, params={"includeOptional": "postalAddresses"})
        out = {str(item["contactId"]): item for item in raw if isinstance(item, dict) and "contactId" in item}
        if self.sync_custom_fields:
            for record_id, item in out.items():
                answer = self.bp.request("GET", f"/contact-service/contact/{int(record_id)}/custom-field")
                item["customFields"] = answer.response or {}
        return out

    def dataverse_contacts(self, flt: odata.Filter, select: list[str]) -> list[dict[str, Any]]:
        """Dataverse contacts (with the parent account expanded) matching `flt`."""
        return [
            dict(r.values)
            for r in self.dv.query("contacts", select=select, expand=self.expand_account, filter=flt)
        ]

    def duplicate_index(self, *, name_threshold: float | None = None) -> DuplicateIndex:
        dup = self.mapping.duplicates
        return DuplicateIndex(
            name_threshold=dup.name_threshold if name_threshold is None else name_threshold,
            require_postcode=dup.require_postcode,
            max_candidates=dup.max_candidates,
        )

    def flag_likely_duplicates(
        self, records: list[SyncRecord[Customer]], index: DuplicateIndex, results: BatchResults, advice: str
    ) -> None:
        """Records that look like a target record (fuzzy name + postcode) need review: not created."""
        for r in records:
            match = index.match(r.read.value)
            if match.needs_review:
                ids = ", ".join(f"{c.record_id} ({c.score:.0f})" for c in match.likely)
                results.set(
                    r.source_id,
                    RecordResult(
                        "needs-review",
                        "LikelyDuplicate",
                        f"{self.label} {r.source_id} looks like {self.spec.target_label}(s) {ids} "
                        f"(name + postcode); not created. {advice}",
                    ),
                )

    def index_of(
        self, system: System, rows: dict[str, dict[str, Any]], index: DuplicateIndex
    ) -> DuplicateIndex:
        """Add `rows` of `system` (by record id) to `index`; unreadable ones are left out."""
        for row_id, row in rows.items():
            try:
                index.add(row_id, self.to_canonical(system, row).value)
            except (MappingInputError, KeyError):
                continue
        return index
