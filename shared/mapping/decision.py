"""One customer, one target: merge by ownership, translate, and decide whether to write at all.

This is the pure core a customers flow runs per record after fetching both sides:
`decide_write(source, target_current, target_system, mapping)` applies field ownership,
translates the merged customer for the target, and compares content hashes so that a record
the target already holds (our own echo, or a no-op change) is not written again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.mapping.brightpearl import canonical_to_brightpearl
from shared.mapping.config import CustomerMapping
from shared.mapping.dataverse import canonical_to_dataverse
from shared.mapping.hashing import content_hash
from shared.mapping.ownership import merge_for_target
from shared.model.customer import Customer, System
from shared.quality.issues import QualityIssue, first_fatal


class Verdict:
    """Whether a decision's issues stop the write, and the dead-letter reason (any entity's)."""

    issues: list[QualityIssue]

    @property
    def fatal(self) -> bool:
        return any(issue.fatal for issue in self.issues)

    @property
    def reason(self) -> str | None:
        issue = first_fatal(self.issues)
        return str(issue.code) if issue else None


@dataclass
class WriteDecision(Verdict):
    target_system: System
    customer: Customer  # what the target should hold (ownership applied)
    payload: Any  # DataverseCustomerPayload or BrightpearlCustomerPayload
    desired_hash: str
    current_hash: str | None  # of what the target holds now (None: no record, or unknown)
    issues: list[QualityIssue] = field(default_factory=list)
    from_source: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        """The target already holds exactly this content: nothing to write (echo suppression)."""
        return self.current_hash is not None and self.current_hash == self.desired_hash

    @property
    def should_write(self) -> bool:
        return not self.fatal and not self.unchanged


def decide_write(
    source: Customer,
    target_current: Customer | None,
    target_system: System,
    mapping: CustomerMapping,
    *,
    known_target_hash: str | None = None,
    source_issues: list[QualityIssue] | None = None,
    account_id: str | None = None,
) -> WriteDecision:
    """Merge, translate and compare for one record.

    `target_current` is the target's current state read back through the translators (None
    when the record does not exist yet, or was not fetched). `known_target_hash` is the hash
    stored in the link table for the target; it is used only when `target_current` is None.
    `source_issues` (from reading the source) are carried into the decision, so one `fatal`
    check covers reading and writing.
    """
    if source.source_system == target_system:
        raise ValueError(f"source and target are both {target_system}")
    merged = merge_for_target(source, target_current, mapping)
    if target_system == "dataverse":
        translation: Any = canonical_to_dataverse(merged.customer, mapping, account_id=account_id)
    else:
        translation = canonical_to_brightpearl(merged.customer, mapping)
    current_hash = (
        content_hash(target_current, target_system, mapping)
        if target_current is not None
        else known_target_hash
    )
    return WriteDecision(
        target_system=target_system,
        customer=merged.customer,
        payload=translation.value,
        desired_hash=content_hash(merged.customer, target_system, mapping),
        current_hash=current_hash,
        issues=[*(source_issues or []), *translation.issues],
        from_source=merged.from_source,
        kept=merged.kept,
    )
