"""Returns: the declaration the engine, triggers and registration read (no flow code).

Brightpearl sales credits (returns; reference §6.9) -> Dynamics cases (incident; reference
dataverse-api.md §10.10), flow returns-to-dataverse (shared/flows/returns_to_dataverse.py),
configured by mappings/returns.yaml (RETURNS_MAPPING_PATH). The notices are of entity
`sales-credit`, one id per credit.

Trigger: sales-credit webhooks are UNCONFIRMED (reference §10.3: "Other events (sales-credit.*,
...): UNCONFIRMED"), and refunds (customer payments) and status changes of a credit raise no
documented sales-credit event at all, so no Brightpearl event is registered for this entity:
the poller below (order-search, order type SC, by updatedOn; RETURNS_POLL_SCHEDULE) is how new,
refunded and cancelled credits arrive. A payment moves the credit's updatedOn in the sandbox
(as it does an order's), so the poller sees refunds too; on a real account that is UNCONFIRMED
(docs/mapping.md, "Returns and cases"). Other flows may consume `sales-credit` notices with
their own subscription.
"""

from __future__ import annotations

from pathlib import Path

from shared.sync.spec import BackfillSource, EntitySpec, FlowSpec, PollerSpec

CREDIT_ENTITY = "sales-credit"  # the notices' entity (and the links/audit entity)
BRIGHTPEARL_CREDIT_CURSOR = "returns-brightpearl-credit-updatedon"


def returns_mapping_path() -> Path:
    """The mapping file RETURNS_MAPPING_PATH names (relative: against the app root)."""
    from shared import runtime

    return runtime.app_file(runtime.settings().orders.returns_mapping_path)


RETURNS = EntitySpec(
    name="returns",
    link_entity=CREDIT_ENTITY,
    flows=(
        FlowSpec.between(
            "returns",
            "brightpearl",
            "dataverse",
            "shared.flows.returns_to_dataverse:ReturnsToDataverse",
            record="sales credit",
            source_entities=(CREDIT_ENTITY,),
        ),
    ),
    pollers=(
        PollerSpec.brightpearl(
            "poll_brightpearl_returns",
            "RETURNS_POLL_SCHEDULE",
            "sales credit poll",
            "shared.flows.returns_poller:BrightpearlCreditPoller",
            BRIGHTPEARL_CREDIT_CURSOR,
        ),
    ),
    # Brightpearl is the credits' master: `syncctl backfill returns [--since DATE]` lists them
    backfill_sources=(
        BackfillSource(
            "brightpearl", CREDIT_ENTITY, "shared.flows.returns_backfill:list_brightpearl_credits"
        ),
    ),
    backfill_cursor_prefix="backfill-returns",
    mapping_loader="shared.mapping.returns_config:load_returns_mapping",
    mapping_setting="RETURNS_MAPPING_PATH",
)
(TO_DATAVERSE,) = RETURNS.flows
