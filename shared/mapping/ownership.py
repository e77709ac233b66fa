"""Field ownership: which side's value a sync writes, per field group (mappings/customers.yaml).

Given the incoming customer (the source side's current state) and what the target holds
now, `merge_for_target` builds the customer to write: groups the source owns (or wins as
last writer) come from the source, the others keep the target's values. The flow then
translates the merged customer for the target and compares content hashes, so a group the
target owns is never overwritten and an unchanged record is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.mapping.config import CustomerMapping, Owner
from shared.model.customer import FIELD_GROUPS, Customer, ExternalIds, Organisation, System


@dataclass(frozen=True)
class MergeResult:
    customer: Customer
    from_source: tuple[str, ...]  # field groups (and custom_fields.<name>) taken from the source
    kept: tuple[str, ...]  # field groups kept from the target

    def took(self, group: str) -> bool:
        return group in self.from_source


def source_wins(
    owner: Owner, source: Customer, target: Customer, source_system: System, mapping: CustomerMapping
) -> bool:
    """Does the source's value of a group with this owner win over the target's?

    last_writer compares the records' modification times. When either time is unknown
    (Brightpearl search rows can lack `updatedOn`), the source wins: the flow is handling
    a change notice about it and has just fetched its current state. Equal times go to
    `ownership.last_writer_tie`.
    """
    if owner == "last_writer":
        if source.modified_at is None or target.modified_at is None:
            return True
        if source.modified_at == target.modified_at:
            return mapping.ownership.last_writer_tie == source_system
        return source.modified_at > target.modified_at
    return owner == source_system


def merge_for_target(source: Customer, target: Customer | None, mapping: CustomerMapping) -> MergeResult:
    """The customer to write to the other system, honouring field ownership.

    With no target record yet (a create), everything comes from the source.
    """
    if source.source_system is None:
        raise ValueError("source customer must have source_system set")
    source_system = source.source_system
    if target is None:
        return MergeResult(source, tuple(FIELD_GROUPS), ())
    taken: list[str] = []
    kept: list[str] = []
    values: dict[str, Any] = {}
    for group in FIELD_GROUPS:
        if group == "custom_fields":
            merged: dict[str, Any] = {}
            for name in sorted(set(source.custom_fields) | set(target.custom_fields)):
                owner = mapping.owner_of_custom_field(name)
                if source_wins(owner, source, target, source_system, mapping):
                    merged[name] = source.custom_fields.get(name)
                    taken.append(f"custom_fields.{name}")
                else:
                    merged[name] = target.custom_fields.get(name)
                    kept.append(f"custom_fields.{name}")
            values[group] = merged
            continue
        owner = mapping.ownership.owner_of(group)
        if source_wins(owner, source, target, source_system, mapping):
            values[group] = getattr(source, group)
            taken.append(group)
        else:
            values[group] = getattr(target, group)
            kept.append(group)
    ids = ExternalIds(
        brightpearl=source.ids.brightpearl or target.ids.brightpearl,
        dataverse=source.ids.dataverse or target.ids.dataverse,
    )
    values["organisation"] = _with_both_ids(values["organisation"], source, target)
    customer = Customer(**values, ids=ids, modified_at=source.modified_at, source_system=source_system)
    return MergeResult(customer, tuple(taken), tuple(kept))


def _with_both_ids(chosen: Organisation | None, source: Customer, target: Customer) -> Organisation | None:
    """Keep the other side's id of the same organisation (same Brightpearl id or same name)."""
    if chosen is None:
        return None
    ids = {"brightpearl_id": chosen.brightpearl_id, "dataverse_id": chosen.dataverse_id}
    for other in (source.organisation, target.organisation):
        if other is None or other is chosen:
            continue
        same = (chosen.brightpearl_id and chosen.brightpearl_id == other.brightpearl_id) or (
            chosen.name.casefold() == other.name.casefold()
        )
        if same:
            ids = {key: value or getattr(other, key) for key, value in ids.items()}
    return chosen.model_copy(update=ids)
