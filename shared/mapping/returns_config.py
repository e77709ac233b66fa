"""The returns mapping file (mappings/returns.yaml): Brightpearl sales credits -> Dynamics cases.

`load_returns_mapping()` reads the file, validates it with pydantic and then its meaning, and
reports every problem with the YAML path of the bad entry in one `MappingError`
(`case.origin: 'Fax' is not a Dynamics case origin; use one of Phone (1), ...`).

- `case`: the case's origin (`caseorigincode`), type (`casetypecode`) and priority
  (`prioritycode`), by option name or code (reference dataverse-api.md §10.10);
- `reason_field`: the Brightpearl sales custom field (PCF_ code) holding the return reason, shown
  on every returned line of the case description ('' or absent field: "not given");
- `resolve`: when a credit counts as refunded: its `orderPaymentStatus` (PAID once the
  refund, a customer payment of type PAYMENT, covers it; reference §6.4, §9) and/or its status
  (names or ids); the resolved statuscode and the resolution's subject;
- `cancel`: the Brightpearl statuses (names or ids) of a cancelled credit; the cancelled
  statuscode;
- `unknown_parent.attempts`: how many tries (each a scheduled retry with back-off) a credit
  whose parent order is unknown waits before its case opens without the order, flagged.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.mapping.config import MappingError, read_yaml_document, validate_document

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "returns.yaml"

# incident option sets (reference dataverse-api.md §10.10): code -> label
CASE_ORIGINS = {1: "Phone", 2: "Email", 3: "Web", 2483: "Facebook", 3986: "Twitter", 700610000: "IoT"}
CASE_TYPES = {1: "Question", 2: "Problem", 3: "Request"}
CASE_PRIORITIES = {1: "High", 2: "Normal", 3: "Low"}
RESOLVED_STATUSES = {5: "Problem Solved", 1000: "Information Provided"}  # statecode 1
CANCELLED_STATUSES = {6: "Cancelled"}  # statecode 2 (2000 Merged is not ours to set)
PAYMENT_STATUSES = ("PAID", "PARTIALLY_PAID")  # a credit's orderPaymentStatus (reference §6.4)


def _option(options: dict[int, str], what: str) -> Any:
    """A validator taking an option's name (any case) or code, giving its code."""

    def pick(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value in options:
            return value
        if isinstance(value, str):
            for code, name in options.items():
                if value.strip().lower() == name.lower() or value.strip() == str(code):
                    return code
        choices = ", ".join(f"{name} ({code})" for code, name in options.items())
        raise ValueError(f"{value!r} is not {what}; use one of {choices}")

    return BeforeValidator(pick)


Origin = Annotated[int, _option(CASE_ORIGINS, "a Dynamics case origin")]
CaseType = Annotated[int, _option(CASE_TYPES, "a Dynamics case type")]
Priority = Annotated[int, _option(CASE_PRIORITIES, "a Dynamics case priority")]
ResolvedStatus = Annotated[int, _option(RESOLVED_STATUSES, "a status of a resolved case")]
CancelledStatus = Annotated[int, _option(CANCELLED_STATUSES, "a status of a cancelled case")]
# a Brightpearl order status by name (as the account names it) or id
StatusRef = Annotated[int | str, Field(union_mode="left_to_right")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseSettings(_Strict):
    origin: Origin = 3  # Web
    type: CaseType = 3  # Request
    priority: Priority = 2  # Normal


class ResolveSettings(_Strict):
    payment_statuses: tuple[Literal["PAID", "PARTIALLY_PAID"], ...] = ("PAID",)
    statuses: tuple[StatusRef, ...] = ()
    status: ResolvedStatus = 5  # Problem Solved
    subject: str = Field("Refunded in Brightpearl", min_length=1, max_length=200)


class CancelSettings(_Strict):
    statuses: tuple[StatusRef, ...] = ("Credit cancelled",)
    status: CancelledStatus = 6


class UnknownParentSettings(_Strict):
    attempts: int = Field(4, ge=1, le=50)


class ReturnsMapping(_Strict):
    case: CaseSettings = CaseSettings()
    reason_field: str = Field("PCF_RETURNREASON", pattern=r"^(PCF_[A-Za-z0-9_]{1,60})?$")
    resolve: ResolveSettings = ResolveSettings()
    cancel: CancelSettings = CancelSettings()
    unknown_parent: UnknownParentSettings = UnknownParentSettings()
    source: str = Field("<memory>", exclude=True)

    def status_in(self, statuses: tuple[int | str, ...], status_id: Any, name: Any) -> bool:
        """Is the Brightpearl status (`status_id`, `name`) one of `statuses` (names: any case)?"""
        names = {str(s).strip().lower() for s in statuses if isinstance(s, str)}
        ids = {s for s in statuses if isinstance(s, int)}
        return (isinstance(status_id, int) and status_id in ids) or (
            isinstance(name, str) and name.strip().lower() in names
        )


def _semantic_problems(m: ReturnsMapping) -> list[str]:
    problems: list[str] = []
    both = [
        s for s in m.resolve.statuses if m.status_in(m.cancel.statuses, s, s if isinstance(s, str) else None)
    ]
    for status in both:
        problems.append(
            f"cancel.statuses: {status!r} is also in resolve.statuses; a credit cannot be both "
            "refunded and cancelled"
        )
    for where, statuses in (("resolve.statuses", m.resolve.statuses), ("cancel.statuses", m.cancel.statuses)):
        for i, status in enumerate(statuses):
            if isinstance(status, str) and not status.strip():
                problems.append(f"{where}.{i}: a status name must not be empty")
            if isinstance(status, int) and status < 1:
                problems.append(f"{where}.{i}: a status id must be a positive whole number, got {status}")
    return problems


def parse_returns_mapping(data: Any, source: str = "<memory>") -> ReturnsMapping:
    """Validate an already-parsed YAML document. Raises MappingError listing every problem."""
    return validate_document(ReturnsMapping, data, source, _semantic_problems)


def read_returns_mapping(path: str | Path | None = None) -> ReturnsMapping:
    file = Path(path) if path is not None else DEFAULT_PATH
    return parse_returns_mapping(read_yaml_document(file), str(file))


@functools.lru_cache(maxsize=8)
def _cached(path: str, version: int) -> ReturnsMapping:
    return read_returns_mapping(path)


def load_returns_mapping(path: str | Path | None = None) -> ReturnsMapping:
    """The validated returns mapping (default mappings/returns.yaml), cached per file version."""
    file = (Path(path) if path is not None else DEFAULT_PATH).resolve()
    try:
        version = file.stat().st_mtime_ns
    except OSError:
        version = -1
    return _cached(str(file), version)


__all__ = ["MappingError", "ReturnsMapping", "load_returns_mapping", "parse_returns_mapping"]
