"""Flow products-to-brightpearl: Dynamics edits of Dynamics-owned product fields -> Brightpearl
(issue 12 item 5). Off by default.

Brightpearl is the master of products. mappings/products.yaml may give Dynamics a field group
(`ownership.groups: {description: dataverse}`); of those, the groups this flow writes back are
`WRITE_BACK_GROUPS` (the description, into the Brightpearl field `fields.description` names).
While Dynamics owns none of them the flow is off: `syncctl webhooks register` registers no step
on the product table (shared/dataverse/webhook_registration.entity_steps), and a notice that
arrives anyway is skipped (`ProductWriteBackOff`) without a read.

Per batch (the engine, shared/sync/engine.py): coalesce the Dynamics product ids; read them
(`In` query) with the catalogue names the products flow hashes with; a product without
`bpi_brightpearlid` was made in Dynamics and is left alone (`NotInBrightpearl`: never created in
Brightpearl); a product whose Dynamics content is what the last sync recorded (the link's hash,
typically our own write coming back) is an echo and costs no Brightpearl call; the others'
Brightpearl products are read fresh by id set (≤ 200 a call) and only the owned groups whose
value differs are sent, as a product PUT with the `version` just read in `If-Match`. A 412 (the
product changed in between) is `BrightpearlStaleVersion`: retried later through the resilience
table, and the retry reads the new version. Brightpearl's product.modified that follows is
synced back by products-to-dataverse, which keeps Dynamics' owned values (nothing to write) and
puts back any Brightpearl-owned field edited in Dynamics. Deleting a product in Dynamics never
deletes it in Brightpearl.
"""

from __future__ import annotations

from typing import Any, Self, Unpack

from shared.dataverse import odata
from shared.events import Envelope
from shared.flows.products_spec import TO_BRIGHTPEARL
from shared.flows.products_to_dataverse import (
    PRODUCT_GET,
    ProductsToDataverse,
    ProductSync,
    product_mapping_path,
)
from shared.mapping.brightpearl import bp_id
from shared.mapping.products import (
    PRODUCT_SELECT,
    BrightpearlProductDecision,
    ProductCatalogue,
    decide_brightpearl_write,
)
from shared.mapping.products_config import ProductMapping, load_product_mapping
from shared.model.product import Product
from shared.store.errors import StoreConflictError
from shared.sync.engine import Batch, FlowPorts, SyncRecord, integration_echo
from shared.sync.outcomes import BatchResults, RecordResult
from shared.telemetry import get_logger

log = get_logger("flows.products_to_brightpearl")


Record = SyncRecord[Product]


class ProductsToBrightpearl(ProductSync):
    """Dynamics products -> their Brightpearl products, Dynamics-owned groups only. Hooks:
    sort_notice (off, deletions, the integration user's echo), fetch, skip (no Brightpearl id),
    match (the link's echo, then a fresh Brightpearl read), write (PUT with If-Match)."""

    spec = TO_BRIGHTPEARL
    echo_needs_linked_target = True

    def __init__(
        self,
        *,
        mapping: ProductMapping,
        integration_user_id: str | None = None,
        trust_integration_user: bool = False,
        **ports: Unpack[FlowPorts],
    ) -> None:
        super().__init__(mapping=mapping, **ports)
        self.groups = mapping.write_back_groups()
        self.integration_user = (integration_user_id or "").lower() or None
        self.trust_integration_user = trust_integration_user

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters, the mapping PRODUCT_MAPPING_PATH names and the
        integration user the customers' settings name (DATAVERSE_INTEGRATION_USER_ID)."""
        from shared import runtime

        customers = runtime.settings().customers
        return cls(
            mapping=load_product_mapping(product_mapping_path()),
            integration_user_id=customers.integration_user_id,
            trust_integration_user=customers.trust_integration_user,
            **cls.runtime_ports(),
        )

    # ------------------------------------------------------------------------------ notices
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        problem = self.id_problem(envelope.notice.entity, record_id)
        left = self._left_alone(envelope, record_id)
        if problem is not None:
            results.set(record_id, RecordResult("fatal", "MalformedMessage", problem))
        elif left is not None:
            results.set(record_id, RecordResult("skipped", *left))
        else:
            batch.add(envelope.notice.entity, record_id.lower())

    def _left_alone(self, envelope: Envelope, record_id: str) -> tuple[str, str] | None:
        """(reason, note) of a notice skipped without a read; None: read it."""
        if not self.groups:
            return "ProductWriteBackOff", (
                "mappings/products.yaml gives Dynamics no product field to write back (ownership); "
                "nothing is written to Brightpearl"
            )
        if envelope.notice.operation == "deleted":
            return "DeletedInDataverse", (
                f"Dataverse product {record_id} was deleted; nothing is deleted in Brightpearl"
            )
        if integration_echo(envelope, self.integration_user, self.trust_integration_user):
            return "IntegrationEcho", "initiated by the integration user"
        return None

    # ------------------------------------------------------------------------------ hooks
    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        # the names the products flow hashed the Dynamics product with (never created here)
        self.catalogue = self._read_catalogue()
        rows: dict[str, dict[str, Any]] = {}
        for of_products in odata.in_chunks("productid", ids):
            for row in self.dv.query("products", select=[*PRODUCT_SELECT, self.key], filter=of_products):
                rows[str(row["productid"]).lower()] = dict(row.values)
        return rows

    def fetch_key(self, record_id: str) -> str:
        return record_id.lower()

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        if bp_id(source.get(self.key)) is not None:
            return False
        results.set(
            record_id,
            RecordResult(
                "skipped",
                "NotInBrightpearl",
                f"Dataverse product {record_id} has no Brightpearl product ({self.key} empty): made in "
                "Dynamics, it is never created in Brightpearl",
            ),
        )
        return True

    def decide_write(self, record: Record, current: Product | None) -> BrightpearlProductDecision:
        assert record.target is not None  # matched: its Brightpearl product, read fresh
        return decide_brightpearl_write(record.read.value, record.target, self.mapping)

    def match(self, records: list[Record], results: BatchResults) -> None:
        links = self.store.links.get_many(self.link_entity, "dataverse", [r.source_id for r in records])
        wanted: list[Record] = []
        for r in records:  # an echo (the link's hash) costs no Brightpearl read
            r.link, r.target_id = links.get(r.source_id), str(bp_id(r.source.get(self.key)))
            if self.is_echo(r):
                results.set(r.source_id, self.echo_result(r))
            else:
                wanted.append(r)
        if not wanted:
            return
        ids = sorted({int(str(r.target_id)) for r in wanted})
        found = {
            str(item["id"]): item
            for item in self.bp.get_by_ids(PRODUCT_GET, ids, limit=200)
            if isinstance(item, dict) and "id" in item
        }
        for r in wanted:
            key = str(r.target_id)
            if key in found:
                r.target, r.matched_by = found[key], "key"
            else:
                results.set(
                    r.source_id,
                    RecordResult(
                        "missing",
                        "BrightpearlRecordMissing",
                        f"{self.label} {r.source_id}: Brightpearl product {key} no longer exists; nothing "
                        "written (products-to-dataverse retires it)",
                    ),
                )

    def write(self, records: list[Record], results: BatchResults) -> None:
        for r in self.to_write(records, results):
            decision = r.decision
            assert isinstance(decision, BrightpearlProductDecision) and r.target is not None
            if decision.should_write:
                version = r.target.get("version")
                try:
                    self.bp.update_product(
                        int(str(r.target_id)),
                        decision.payload,
                        version=int(version) if version is not None else None,
                    )
                except Exception as exc:  # known errors through the one table; others re-raised
                    # a 412 is BrightpearlStaleVersion: retried later, with the version read then
                    results.error(r.source_id, exc, f"PUT of Brightpearl product {r.target_id}")
                    continue
            note = f" ({', '.join(decision.groups)})" if decision.groups else ""
            self.settle(r, results, note)
            self.remember(r)

    def remember(self, r: Record) -> None:
        """Record the Dynamics side's hash only (a repeat of this content is then an echo here).
        Brightpearl's hash is left as products-to-dataverse last recorded it, so the
        product.modified our PUT raises is compared in full there: a Brightpearl-owned field
        edited in Dynamics meanwhile is put back by that sync instead of passing as an echo."""
        link = r.link
        if link is None or not link.is_linked or link.id_in("brightpearl") != r.target_id:
            return  # not linked yet: products-to-dataverse links it on its next sync
        source_hash = self.content_hash(r.read.value, "dataverse")
        if link.hash_of("dataverse") == source_hash:
            return
        try:
            self.store.links.record_hashes(
                self.link_entity, "dataverse", r.source_id, {"dataverse": source_hash}, etag=link.etag
            )
        except StoreConflictError as exc:  # another worker recorded the link meanwhile
            log.info("hash of %s %s not recorded: %s", self.label, r.source_id, type(exc).__name__)

    # ------------------------------------------------------------------------------ helpers
    def _read_catalogue(self) -> ProductCatalogue:
        """The unit group, its units and the default price list by name, read only (the products
        flow creates them)."""
        unit_group = self.mapping.unit_group.model_copy(update={"create_if_missing": False})
        reader = ProductsToDataverse(
            mapping=self.mapping.model_copy(update={"unit_group": unit_group}),
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=self.publish,
        )
        return reader.resolve_catalogue()
