"""The timeline mapping file (mappings/timeline.yaml): which key moments reach the customer's timeline.

A moment is something a service agent should see on the Dynamics customer without opening
Brightpearl: an order placed, a shipment with its tracking reference, a return (a sales
credit), a refund (the credit paid). Each kind is on or off, written as a note (`annotation`,
regarding the customer through `objectid`) or a task (`task`, through `regardingobjectid`),
with a subject template. `load_timeline_mapping()` validates structure (pydantic) and meaning
(placeholders a kind has, subject lengths the table allows) and reports every problem by YAML
path in one `MappingError`, e.g. `moments.shipped.subject: unknown placeholder {trackingno}
(shipped has: order_id, ...)`.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.config import cached_per_file_version, read_yaml_document, validate_document

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "timeline.yaml"

MomentKind = Literal["order_placed", "shipped", "returned", "refunded"]
KINDS: tuple[MomentKind, ...] = ("order_placed", "shipped", "returned", "refunded")

# The placeholders each kind's subject may use (the flow fills them; absent values are empty).
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "order_placed": ("order_id", "order_reference", "total", "currency", "channel_id", "placed_on"),
    "shipped": ("order_id", "order_reference", "note_id", "tracking", "shipped_on", "shipping_method_id"),
    "returned": ("credit_id", "credit_reference", "order_id", "order_reference", "total", "currency"),
    "refunded": ("credit_id", "credit_reference", "order_id", "order_reference", "total", "currency"),
}
# Subject lengths (reference dataverse-api.md §10.12): task 200, annotation 500 (UNCONFIRMED there)
SUBJECT_LIMITS = {"task": 200, "note": 500}
PRIORITIES = {"low": 0, "normal": 1, "high": 2}  # task prioritycode options (§10.12)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MomentSettings(_Strict):
    """One kind of moment: on or off, as a note or a task, and its subject."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)  # `as:` shown

    enabled: bool = True
    write_as: Literal["note", "task"] = Field("note", alias="as")
    subject: str = Field(min_length=1, max_length=500)
    priority: Literal["low", "normal", "high"] = Field("normal", description="tasks only")
    due_in_days: int | None = Field(None, ge=0, le=365, description="tasks only: scheduledend")

    @property
    def priority_code(self) -> int:
        return PRIORITIES[self.priority]


def _default(subject: str, write_as: Literal["note", "task"] = "note") -> MomentSettings:
    return MomentSettings.model_validate({"subject": subject, "as": write_as})


class MomentsSettings(_Strict):
    order_placed: MomentSettings = _default("Order {order_reference} placed")
    shipped: MomentSettings = _default("Order {order_reference} shipped {tracking}")
    returned: MomentSettings = _default("Return {credit_reference} for order {order_reference}")
    refunded: MomentSettings = _default("Refund {total} {currency} for return {credit_reference}")

    def of(self, kind: str) -> MomentSettings:
        settings: MomentSettings = getattr(self, kind)
        return settings


class TimelineMapping(_Strict):
    """The validated contents of mappings/timeline.yaml."""

    version: Literal[1] = 1
    entity: Literal["timeline"] = "timeline"
    enabled: bool = Field(True, description="false: no moment of any kind is written")
    regarding: Literal["contact"] = Field(
        "contact", description="the Dynamics record the moments go on: the order's customer contact"
    )
    moments: MomentsSettings = MomentsSettings()
    source: str = Field("<memory>", exclude=True)

    def enabled_kinds(self) -> tuple[str, ...]:
        if not self.enabled:
            return ()
        return tuple(kind for kind in KINDS if self.moments.of(kind).enabled)


def _semantic_problems(m: TimelineMapping) -> list[str]:
    problems: list[str] = []
    for kind in KINDS:
        settings = m.moments.of(kind)
        path = f"moments.{kind}"
        known = PLACEHOLDERS[kind]
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(settings.subject) if name is not None]
        except ValueError as exc:
            problems.append(f"{path}.subject: not a valid template ({exc})")
            names = []
        for name in names:
            if name not in known:
                problems.append(
                    f"{path}.subject: unknown placeholder {{{name}}} ({kind} has: {', '.join(known)})"
                )
        limit = SUBJECT_LIMITS[settings.write_as]
        if len(settings.subject) > limit:
            problems.append(
                f"{path}.subject: longer than the {limit} characters a {settings.write_as} allows"
            )
        if settings.write_as == "note" and settings.due_in_days is not None:
            problems.append(f"{path}.due_in_days: only tasks have a due date (set as: task)")
    return problems


def read_timeline_mapping(path: str | Path | None = None) -> TimelineMapping:
    """Read and validate a timeline mapping file, uncached (syncctl mapping check)."""
    file = Path(path) if path is not None else DEFAULT_PATH
    return validate_document(TimelineMapping, read_yaml_document(file), str(file), _semantic_problems)


_load = cached_per_file_version(read_timeline_mapping, DEFAULT_PATH)


def load_timeline_mapping(path: str | Path | None = None) -> TimelineMapping:
    """The validated timeline mapping (default mappings/timeline.yaml), cached per file version."""
    return _load(path)
