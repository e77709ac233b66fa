"""Result type and issue bookkeeping shared by the customer translators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.model.customer import System
from shared.quality.issues import IssueCode, QualityIssue, QualityPolicy, first_fatal
from shared.quality.normalise import Checked

T = TypeVar("T")


class MappingInputError(ValueError):
    """The caller passed an incomplete record (e.g. an address it was told to fetch is missing).

    This is a bug in the calling flow, not bad customer data, so it raises instead of
    becoming a QualityIssue.
    """


@dataclass
class Translation(Generic[T]):
    """A translated value plus every quality issue met on the way.

    When `fatal` is true the record must be dead-lettered with `reason` and `description`;
    `value` is still filled (without the bad values) so previews can show it.
    """

    value: T
    issues: list[QualityIssue] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(issue.fatal for issue in self.issues)

    @property
    def warnings(self) -> list[QualityIssue]:
        return [issue for issue in self.issues if not issue.fatal]

    @property
    def reason(self) -> str | None:
        issue = first_fatal(self.issues)
        return str(issue.code) if issue else None

    @property
    def description(self) -> str | None:
        """All fatal problems, one per line, without personal data."""
        fatal = [issue.summary() for issue in self.issues if issue.fatal]
        return "\n".join(fatal) if fatal else None


class IssueLog:
    """Collects issues for one record of one system, with severities from the policy."""

    def __init__(self, policy: QualityPolicy, system: System, record_id: str | None):
        self.policy = policy
        self.system = system
        self.record_id = record_id
        self.issues: list[QualityIssue] = []

    def add(
        self, code: IssueCode, field: str, description: str, canonical: str | None = None
    ) -> QualityIssue:
        issue = self.policy.issue(
            code,
            system=self.system,
            record_id=self.record_id,
            field=field,
            description=f"{field} {description}",
            canonical_field=canonical,
        )
        self.issues.append(issue)
        return issue

    def take(self, checked: Checked[str], field: str, canonical: str) -> str | None:
        """The value of `checked`, logging its problem (if any) against `field`.

        A problem that the policy makes a warning drops the value, except ValueTooLong,
        which truncates it; a fatal problem drops it too (the record will not be written).
        """
        if checked.ok:
            return checked.value
        assert checked.code is not None and checked.reason is not None
        issue = self.add(checked.code, field, checked.reason, canonical)
        if checked.code is IssueCode.VALUE_TOO_LONG and checked.value is not None:
            return checked.value if issue.fatal else checked.value[: checked.limit]
        return None
