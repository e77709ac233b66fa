"""One record named by an operator: `brightpearl contact 215`, `dataverse contact <guid>`.

`record(system, name, record_id)` checks the three words against the entity specs
(shared/sync/registry.py) and returns a `RecordRef`: which flows read or write that record,
the audit/links entity they share, and the notice entity a change of it travels as. A wrong
word or a malformed id raises `RecordInputError` naming the problem and what would be right.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.dataverse import odata
from shared.mapping.brightpearl import bp_id
from shared.sync.spec import SYSTEM_TITLES, EntitySpec, FlowSpec
from shared.systems import System


class RecordInputError(ValueError):
    """The operator named a record that cannot exist (unknown system or entity, malformed id)."""


@dataclass(frozen=True)
class RecordRef:
    """A record of one system, and the flows and audit entity it belongs to."""

    system: System
    name: str  # as the operator wrote it: "contact", "product", "salesorder"
    record_id: str
    spec: EntitySpec  # the first entity it belongs to (products, stock and prices share products)
    flows: tuple[FlowSpec, ...]  # every flow reading it (source) or writing it (target)

    @property
    def audit_entity(self) -> str:
        """The entity its audit rows and links carry ("customer", "product", "order")."""
        return self.spec.link_entity

    @property
    def label(self) -> str:
        return f"{SYSTEM_TITLES[self.system]} {self.name} {self.record_id}"

    @property
    def reading_flows(self) -> tuple[FlowSpec, ...]:
        """The flows a change of this record starts (this system is their source)."""
        return tuple(f for f in self.flows if f.source == self.system)

    @property
    def notice_entity(self) -> str:
        """The entity of the change notice a webhook sends for this record."""
        for flow in self.reading_flows:
            if self.name in flow.source_entities:
                return self.name
        for flow in self.reading_flows:
            return flow.source_entities[0]
        return self.name


def all_specs() -> tuple[EntitySpec, ...]:
    """Every entity, wired or still being built (once each)."""
    from shared.sync import registry

    return tuple({s.name: s for s in (*registry.ENTITIES, *registry.BUILDING)}.values())


def _names(spec: EntitySpec, flow: FlowSpec, system: System) -> set[str]:
    names = {flow.record, spec.name, spec.link_entity}
    if flow.source == system:
        names |= set(flow.source_entities)
    return names


def record(system: str, name: str, record_id: str | int) -> RecordRef:
    """The record `name` `record_id` of `system`; RecordInputError naming what is wrong."""
    system = system.strip().lower()
    if system not in SYSTEM_TITLES:
        raise RecordInputError(f"system must be {' or '.join(SYSTEM_TITLES)}, not {system!r}")
    name = name.strip().lower()
    specs: list[EntitySpec] = []
    flows: list[FlowSpec] = []
    known: set[str] = set()
    for spec in all_specs():
        for flow in spec.flows:
            if system not in (flow.source, flow.target):
                continue
            names = _names(spec, flow, system)
            known |= names
            if name in names:
                flows.append(flow)
                if spec not in specs:
                    specs.append(spec)
    if not specs:
        raise RecordInputError(
            f"no {SYSTEM_TITLES[system]} record type {name!r}; known: {', '.join(sorted(known))}"
        )
    text = str(record_id).strip()
    if system == "dataverse":
        text = text.removeprefix("{").removesuffix("}").lower()  # as Dynamics shows it, or bare
    problem = id_problem(system, text)
    if problem:
        raise RecordInputError(problem)
    return RecordRef(system, name, text, specs[0], tuple(flows))


def id_problem(system: System, record_id: str) -> str | None:
    """Why `record_id` cannot be an id of `system` (None: it can)."""
    if system == "brightpearl" and bp_id(record_id) is None:
        return f"a Brightpearl id is a positive whole number, not {record_id!r}"
    if system == "dataverse" and not odata.is_guid(record_id):
        return f"a Dataverse id is a GUID (8-4-4-4-12 hex digits), not {record_id!r}"
    return None
