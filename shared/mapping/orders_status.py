"""The order status mapping file (mappings/order_status.yaml): Brightpearl status -> Dynamics state.

Each Brightpearl order status (by name, optionally pinned to its id, since the names and ids
are per account, reference brightpearl-api.md §6.6) maps to a Dynamics salesorder
statecode/statuscode pair. Pairs are checked against the pairs Dynamics allows (reference
dataverse-api.md §10.5); problems name the YAML path (`statuses.Shipped.statuscode: ...`).
`OrderStatusMapping.dataverse_state(...)` answers a pair, or a `StatusNotMapped` issue naming
the status and the order number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.config import read_yaml_document, validate_document
from shared.quality.issues import IssueCode, QualityIssue, Severity

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "order_status.yaml"

# salesorder statecode -> (name, {statuscode: name}) (reference dataverse-api.md §10.5)
SALESORDER_STATES: dict[int, tuple[str, dict[int, str]]] = {
    0: ("Active", {1: "New", 2: "Pending", 700970000: "In Progress"}),
    1: ("Submitted", {3: "In Progress"}),
    2: ("Canceled", {4: "No Money"}),
    3: ("Fulfilled", {100001: "Complete", 100002: "Partial"}),
    4: ("Invoiced", {100003: "Invoiced"}),
}
FULFILLED = 3  # reached through the FulfillSalesOrder action, not a PATCH
CANCELED = 2  # reached through CancelSalesOrder


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusTarget(_Strict):
    id: int | None = Field(None, ge=1, description="the Brightpearl status id (per account); None: by name")
    statecode: int
    statuscode: int


class OrderStatusMapping(_Strict):
    """The validated contents of mappings/order_status.yaml."""

    version: Literal[1] = 1
    statuses: dict[str, StatusTarget] = Field(
        default_factory=dict, description="Brightpearl status name -> Dynamics statecode/statuscode"
    )
    source: str = Field("<memory>", exclude=True)

    def target(self, status_id: int | None, status_name: str | None) -> StatusTarget | None:
        """The mapping of a Brightpearl status: by pinned id first, then by name (any case)."""
        if status_id is not None:
            for target in self.statuses.values():
                if target.id == status_id:
                    return target
        if status_name:
            wanted = status_name.strip().casefold()
            for name, target in self.statuses.items():
                if name.strip().casefold() == wanted and (target.id is None or status_id is None):
                    return target
        return None

    def dataverse_state(
        self, status_id: int | None, status_name: str | None, *, order_id: str, order_number: str | None
    ) -> tuple[int, int] | QualityIssue:
        """(statecode, statuscode) for a Brightpearl status, or a StatusNotMapped issue."""
        target = self.target(status_id, status_name)
        if target is not None:
            return target.statecode, target.statuscode
        shown = " ".join(p for p in (repr(status_name) if status_name else None, _id(status_id)) if p)
        order = f"order {order_number}" if order_number else f"order {order_id}"
        return QualityIssue(
            code=IssueCode.STATUS_NOT_MAPPED,
            severity=Severity.FATAL,
            system="brightpearl",
            record_id=order_id,
            field="statuses",
            description=f"{order}: Brightpearl status {shown} has no entry in order_status.yaml statuses",
        )


def _id(status_id: int | None) -> str | None:
    return f"(id {status_id})" if status_id is not None else None


def _semantic_problems(m: OrderStatusMapping) -> list[str]:
    problems: list[str] = []
    seen_ids: dict[int, str] = {}
    for name, target in m.statuses.items():
        path = f"statuses.{name}"
        if not name.strip():
            problems.append(f"{path}: the Brightpearl status name is empty")
        state = SALESORDER_STATES.get(target.statecode)
        if state is None:
            problems.append(
                f"{path}.statecode: {target.statecode} is not a salesorder statecode "
                f"(options {', '.join(f'{k} {v[0]}' for k, v in SALESORDER_STATES.items())})"
            )
        elif target.statuscode not in state[1]:
            allowed = ", ".join(f"{k} {v}" for k, v in state[1].items())
            problems.append(
                f"{path}.statuscode: {target.statuscode} is not a status of statecode {target.statecode} "
                f"({state[0]}); allowed: {allowed}"
            )
        if target.id is not None:
            if target.id in seen_ids:
                problems.append(
                    f"{path}.id: status id {target.id} is already mapped by {seen_ids[target.id]}"
                )
            seen_ids[target.id] = name
    folded: dict[str, str] = {}
    for name in m.statuses:
        key = name.strip().casefold()
        if key in folded:
            problems.append(
                f"statuses.{name}: the same status name as {folded[key]} (names match in any case)"
            )
        folded[key] = name
    return problems


def parse_order_status_mapping(data: Any, source: str = "<memory>") -> OrderStatusMapping:
    """Validate an already-parsed YAML document. Raises MappingError listing every problem."""
    return validate_document(OrderStatusMapping, data, source, _semantic_problems)


def read_order_status_mapping(path: str | Path | None = None) -> OrderStatusMapping:
    """Read and validate an order status mapping file, uncached."""
    file = Path(path) if path is not None else DEFAULT_PATH
    return parse_order_status_mapping(read_yaml_document(file), str(file))
