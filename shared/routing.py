"""Which change notices some flow consumes: per source system, the entities a subscription takes.

A webhook may name an entity no flow handles yet (a Brightpearl product or order webhook,
a Dataverse table nobody maps). Published, such a notice matches no subscription rule and
Service Bus drops it without a trace. So the ingress publishes only what a flow consumes and
audits the rest as `ignored` (reason `NoConsumingFlow`), and says so in its answer.

The table is read from the entity specs (shared/sync/registry.py: each flow's source
entities); it mirrors the subscription rules of infra/topology.json, which is not deployed
with the app: tests/unit/core/test_ignored_notices.py evaluates those rules and keeps the two
in step. A new flow declares its entities in its spec and its subscription in the topology.
"""

from __future__ import annotations

from shared.events import ChangeNotice
from shared.flows.stock_spec import STOCK_ENTITY, STOCK_EVENT
from shared.sync.registry import consumed_entities

# Source system -> entities of the notices some subscription of its topic accepts.
CONSUMED_ENTITIES: dict[str, frozenset[str]] = {str(s): e for s, e in consumed_entities().items()}
IGNORED_REASON = "NoConsumingFlow"


def is_consumed(system: str, entity: str) -> bool:
    """True when a flow receives notices of `entity` from `system`."""
    return entity in CONSUMED_ENTITIES.get(system, frozenset())


# Brightpearl events whose notices name another entity than the webhook's resource type, so only
# the flow that needs them is woken: an on-hand change is the product's stock, not its record
# (a 5,000-event stock storm would otherwise make the products flow re-read unchanged products).
EVENT_ENTITIES: dict[str, str] = {STOCK_EVENT: STOCK_ENTITY}


def routed(notice: ChangeNotice) -> ChangeNotice:
    """`notice` under the entity its Brightpearl event is routed as (EVENT_ENTITIES), else as is."""
    entity = EVENT_ENTITIES.get(str(notice.detail.get("event") or ""))
    if notice.system != "brightpearl" or entity is None or entity == notice.entity:
        return notice
    return notice.model_copy(update={"entity": entity})
