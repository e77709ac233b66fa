"""Dead-letter triage (`syncctl dlq triage`, the console): group dead letters by flow, reason, field
and likely cause; per group the count, the oldest, the runbook's fix, and whether resubmitting the
whole group at once is safe.

- Reason: the dead letter's; for `RetriesExhausted`, the last error's reason the description
  carries (`... last error [BrightpearlThrottled] ...`) joins the key, since that is the cause.
- Field: the field a quality issue names (`..., field emails.primary: ...`; line numbers folded,
  `lines[3].quantity` -> `lines[].quantity`); none when the description names none.
- Fix: the runbook's text for the reason (docs/operations.md via shared/ops/runbook.py, the
  table the console uses), for the last error's reason under RetriesExhausted.
- Safe to resubmit in bulk when the cause has passed by itself (a transient reason: outage,
  throttling, a conflict; or a message that expired while a flow was stopped), or when the fix
  is in a mapping file and that file changed after the group's oldest dead letter (its
  modification time: edited, or deployed, since). Otherwise each record must be fixed first:
  resubmitting them now only dead-letters them again.

UI-free: plain dataclasses, JSON-ready through `as_dict`; the bus and the files are passed in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.bus.deadletters import DeadLetter
from shared.ops import runbook
from shared.resilience import RULES

# Reasons whose cause passes by itself: every transient rule of the one error table, plus the
# broker's expiry (the notice is re-read as of now when resubmitted).
TRANSIENT_REASONS = frozenset({r.reason for r in RULES if r.action.transient}) | {
    "TTLExpiredException",
    "ProductNotInDynamics",
    "CustomerNotLinked",
    "SkuNotInBrightpearl",
}
RETRIES_EXHAUSTED = "RetriesExhausted"
_LAST_ERROR = re.compile(r"last error \[([A-Za-z][A-Za-z0-9]*)\]")
_FIELD = re.compile(r"\bfield `?([A-Za-z_][\w.\[\]]*?)`?(?=[:,;)\s]|$)")
_INDEX = re.compile(r"\[\d+\]")
_YAML = re.compile(r"([A-Za-z0-9_.-]+\.ya?ml)")
SAMPLE_IDS = 5


@dataclass(frozen=True)
class Safety:
    safe: bool
    why: str


@dataclass
class TriageGroup:
    """Dead letters sharing flow, reason, field and cause."""

    key: str  # how an operator names it: <subscription>/<reason>[/<field>][/<last error reason>]
    topic: str
    subscription: str
    reason: str
    field: str | None
    last_error: str | None  # RetriesExhausted: the reason of the last error
    cause: str
    fix: str
    safety: Safety = Safety(False, "")
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    message_ids: list[str] = dataclasses.field(default_factory=list)
    record_ids: list[str] = dataclasses.field(default_factory=list)  # a few, to look at (ids only)

    def add(self, item: DeadLetter) -> None:
        self.count += 1
        self.message_ids.append(item.message_id)
        at = item.enqueued_time_utc
        if at is not None:
            self.oldest = at if self.oldest is None or at < self.oldest else self.oldest
            self.newest = at if self.newest is None or at > self.newest else self.newest
        for record_id in item.record_ids:
            if len(self.record_ids) < SAMPLE_IDS and record_id not in self.record_ids:
                self.record_ids.append(record_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.key,
            "subscription": f"{self.topic}/{self.subscription}",
            "reason": self.reason,
            "field": self.field,
            "lastError": self.last_error,
            "cause": self.cause,
            "count": self.count,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "fix": self.fix,
            "safeToResubmit": self.safety.safe,
            "why": self.safety.why,
            "messageIds": list(self.message_ids),
            "recordIds": list(self.record_ids),
        }


def field_of(description: str | None) -> str | None:
    """The field a dead letter's description names, line numbers folded (`lines[].quantity`)."""
    match = _FIELD.search(description or "")
    return _INDEX.sub("[]", match.group(1)) if match else None


def last_error_of(reason: str | None, description: str | None) -> str | None:
    if reason != RETRIES_EXHAUSTED:
        return None
    match = _LAST_ERROR.search(description or "")
    return match.group(1) if match else None


def cause_of(reason: str, last_error: str | None, fix: runbook.Fix | None) -> str:
    """The likely cause, in a few words an operator recognises."""
    code = last_error or reason
    if code in TRANSIENT_REASONS:
        return f"passing: {code} (an outage, throttling or a conflict) outlasted the retries"
    if reason == "MaxDeliveryCountExceeded":
        return "the function failed on the message every delivery (a bug, not data)"
    if fix is not None and _names_mapping(fix):
        return "the mapping lacks an entry for a value the record holds"
    if fix is not None and fix.section.startswith("Data quality"):
        return "the source record's data breaks a quality rule"
    if fix is not None:
        return fix.meaning.split(". ")[0].rstrip(".")[:200]
    return "unknown reason (not in docs/operations.md)"


def _names_mapping(fix: runbook.Fix) -> bool:
    """Is the fix (or one of its options) an edit of a mapping file? Its text says so."""
    text = fix.fix.lower()
    return "mapping" in text or ".yaml" in text


def mapping_files_named(fix: runbook.Fix | None, mapping_file: Path | None) -> list[Path]:
    """The mapping file of the flow, and the YAML files beside it that the fix names."""
    if mapping_file is None:
        return []
    files = [mapping_file]
    for name in _YAML.findall(f"{fix.fix} {fix.section}" if fix else ""):
        sibling = mapping_file.parent / Path(name).name
        if sibling not in files:
            files.append(sibling)
    return [f for f in files if f.exists()]


def safety_of(
    group: TriageGroup,
    fix: runbook.Fix | None,
    mapping_file: Path | None,
    changed_at: Callable[[Path], datetime],
) -> Safety:
    code = group.last_error or group.reason
    if code in TRANSIENT_REASONS:
        return Safety(True, f"{code} is transient: a resubmit re-reads each record as it is now")
    if fix is not None and _names_mapping(fix) and group.oldest is not None:
        for path in mapping_files_named(fix, mapping_file):
            at = changed_at(path)
            if at > group.oldest:
                return Safety(
                    True,
                    f"{path.name} changed at {at.isoformat(timespec='seconds')}, after the oldest dead "
                    f"letter ({group.oldest.isoformat(timespec='seconds')}): fixed in the mapping",
                )
        return Safety(False, "the mapping has not changed since the oldest dead letter: fix it first")
    if group.reason == "MaxDeliveryCountExceeded":
        return Safety(False, "fix or report the bug first (Application Insights has the errors)")
    return Safety(False, "each record must be fixed first; resubmitted now they dead-letter again")


def file_changed_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def triage(
    items: Iterable[DeadLetter],
    *,
    mapping_file: Callable[[str], Path | None] = lambda subscription: None,
    fixes: Mapping[str, runbook.Fix] | None = None,
    changed_at: Callable[[Path], datetime] = file_changed_at,
) -> list[TriageGroup]:
    """The dead letters grouped, biggest group first (then oldest first).

    `mapping_file(subscription)`: the mapping file the subscription's flow reads (None: unknown);
    `fixes`: reason -> runbook row (default: docs/operations.md)."""
    table = runbook.fixes() if fixes is None else fixes
    groups: dict[tuple[str, str, str, str | None, str | None], TriageGroup] = {}
    for item in items:
        reason = item.reason or "Unknown"
        last = last_error_of(reason, item.description)
        name = field_of(item.description)
        key = (item.topic, item.subscription, reason, name, last)
        group = groups.get(key)
        if group is None:
            fix = table.get(last or reason) or table.get(reason)
            label = "/".join(p for p in (item.subscription, reason, name, last) if p)
            group = groups[key] = TriageGroup(
                key=label,
                topic=item.topic,
                subscription=item.subscription,
                reason=reason,
                field=name,
                last_error=last,
                cause=cause_of(reason, last, fix),
                fix=fix.fix if fix else "no fix text: the reason is not in docs/operations.md",
            )
        group.add(item)
    for (_, subscription, reason, _, last), group in groups.items():
        fix = table.get(last or reason) or table.get(reason)
        group.safety = safety_of(group, fix, mapping_file(subscription), changed_at)
    far_future = datetime.max.replace(tzinfo=UTC)
    return sorted(groups.values(), key=lambda g: (-g.count, g.oldest or far_future, g.key))


def find(groups: list[TriageGroup], name: str) -> TriageGroup:
    """The group an operator named: its key (any case) or its number in the listing (1-based)."""
    if name.isdigit() and 1 <= int(name) <= len(groups):
        return groups[int(name) - 1]
    for group in groups:
        if group.key.lower() == name.lower():
            return group
    known = ", ".join(g.key for g in groups) or "none"
    raise KeyError(f"no dead-letter group {name!r} (groups now: {known})")


def mapping_file_of(subscription: str, environ: Mapping[str, str], root: Path) -> Path | None:
    """The mapping file a flow reads: its entity's mapping setting in `environ`, else the setting's
    code default; a relative path is taken from the app root `root`."""
    from shared.settings import SECTIONS
    from shared.sync import registry

    try:
        setting = registry.entity_of(subscription).mapping_setting
    except KeyError:
        return None
    value = environ.get(setting)
    if not value:
        for section in SECTIONS.values():
            for info in section.model_fields.values():
                if info.validation_alias == setting and isinstance(info.default, str):
                    value = info.default
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else root / path
