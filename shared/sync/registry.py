"""Every entity the app syncs: the specs triggers, routing, webhooks, backfill and tests read.

Adding an entity adds its spec here (and its flows, mapping and tests; docs/architecture.md
"Adding an entity"); no trigger, routing or registration code changes.
"""

from __future__ import annotations

from shared.flows.customer_value_spec import CUSTOMER_VALUE
from shared.flows.customers_spec import CUSTOMERS
from shared.flows.fulfilment_spec import FULFILMENT
from shared.flows.invoices_spec import INVOICES
from shared.flows.orders_spec import ORDERS
from shared.flows.prices_spec import PRICES
from shared.flows.products_spec import PRODUCTS
from shared.flows.returns_spec import RETURNS
from shared.flows.stock_spec import STOCK
from shared.flows.timeline_spec import TIMELINE
from shared.sync.spec import EntitySpec, FlowSpec, PollerSpec
from shared.systems import System

ENTITIES: tuple[EntitySpec, ...] = (
    CUSTOMERS,
    PRODUCTS,
    STOCK,
    PRICES,
    ORDERS,
    RETURNS,
    INVOICES,
    FULFILMENT,
    TIMELINE,
    CUSTOMER_VALUE,
)

# Entities whose flows are built and unit-tested but not wired yet: no trigger, subscription or
# poll schedule exists for them, so triggers, routing and webhook registration (which read
# ENTITIES) leave them out; `entity(name)` finds them (mapping checks, tests). Wiring one
# moves it into ENTITIES (docs/architecture.md "Adding an entity", steps 3 and 4).
BUILDING: tuple[EntitySpec, ...] = ()

# Brightpearl events registered ahead of the flow that will consume them (none now: orders and
# goods-out notes are consumed by the orders spec). Their notices would be audited as ignored
# (NoConsumingFlow) until a flow consumes them.
PLANNED_BRIGHTPEARL_EVENTS: tuple[str, ...] = ()


def entity(name: str) -> EntitySpec:
    for spec in (*ENTITIES, *BUILDING):
        if spec.name == name:
            return spec
    raise KeyError(f"no entity {name!r}; known: {', '.join(s.name for s in (*ENTITIES, *BUILDING))}")


def flows() -> tuple[FlowSpec, ...]:
    return tuple(flow for spec in ENTITIES for flow in spec.flows)


def flow(name: str) -> FlowSpec:
    for spec in flows():
        if spec.name == name:
            return spec
    raise KeyError(f"no flow {name!r}")


def entity_of(flow_name: str) -> EntitySpec:
    for spec in ENTITIES:
        if any(f.name == flow_name for f in spec.flows):
            return spec
    raise KeyError(f"no flow {flow_name!r}")


def pollers() -> tuple[PollerSpec, ...]:
    return tuple(poller for spec in ENTITIES for poller in spec.pollers)


def consumed_entities() -> dict[System, frozenset[str]]:
    """Source system -> the notice entities some flow consumes."""
    out: dict[System, set[str]] = {"brightpearl": set(), "dataverse": set()}
    for spec in flows():
        out[spec.source].update(spec.source_entities)
    return {system: frozenset(entities) for system, entities in out.items()}


def brightpearl_events() -> tuple[str, ...]:
    """The Brightpearl webhook events to register: the entities' own, then the planned ones."""
    events = [e for spec in ENTITIES for e in spec.brightpearl_events]
    return tuple(dict.fromkeys([*events, *PLANNED_BRIGHTPEARL_EVENTS]))
