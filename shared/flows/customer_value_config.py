"""The customer value mapping file (mappings/customer_value.yaml): schema, loading, validation.

What counts: a sales order adds its net to the lifetime value once it is invoiced (an invoice
reference on the order, or its status is one of `invoiced_statuses`) and is not cancelled
(`cancelled_statuses`); a sales credit subtracts its net unless cancelled, and is an open return
until it is refunded (payment status PAID) or its status is one of `closed_return_statuses`.
Amounts convert to `base_currency` (the Dynamics organization's base currency: the flush checks
it and writes nothing when they differ) through `rate_source` (or the EXCHANGE_RATE_SOURCE setting).
Every problem is reported with its YAML path in one MappingError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.config import MappingError, cached_per_file_version, read_yaml_document, validate_document

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "customer_value.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecomputeSettings(_Strict):
    share_per_night: float = Field(
        0.1,
        gt=0,
        le=1,
        description="share of the linked customers recomputed each night (0.1: all in 10 nights)",
    )
    min_customers: int = Field(1, ge=1, description="at least this many customers a night")
    max_customers: int = Field(
        500,
        ge=1,
        le=2000,
        description="at most this many a night: one order-search each, at 200 Brightpearl requests a minute "
        "shared with the flows, within the 10-minute function timeout",
    )


class CustomerValueMapping(_Strict):
    source: str = "<memory>"
    base_currency: str = Field(
        "GBP", pattern=r"^[A-Z]{3}$", description="the Dynamics base currency values are written in"
    )
    rate_source: Literal["brightpearl", "dataverse"] | None = Field(
        None, description="brightpearl | dataverse; empty: the EXCHANGE_RATE_SOURCE setting"
    )
    invoiced_statuses: tuple[str, ...] = Field(
        (), description="order status names that count as invoiced even without an invoice reference"
    )
    cancelled_statuses: tuple[str, ...] = Field(
        ("Cancelled",), description="order/credit statuses never counted"
    )
    closed_return_statuses: tuple[str, ...] = Field(
        (), description="sales credit status names that close a return besides being refunded (PAID)"
    )
    contact_columns: bool = Field(True, description="write the figures on the Dynamics contact")
    account_columns: bool = Field(
        True, description="write the sum of its contacts' figures on the parent account"
    )
    recompute: RecomputeSettings = Field(default_factory=RecomputeSettings)


def _semantic_problems(mapping: CustomerValueMapping) -> list[str]:
    problems = []
    for name in ("invoiced_statuses", "cancelled_statuses", "closed_return_statuses"):
        for index, status in enumerate(getattr(mapping, name)):
            if not status.strip():
                problems.append(f"{name}.{index}: a status name must not be empty")
    both = set(mapping.invoiced_statuses) & set(mapping.cancelled_statuses)
    if both:
        problems.append(f"invoiced_statuses: {sorted(both)} also listed in cancelled_statuses")
    if mapping.recompute.min_customers > mapping.recompute.max_customers:
        problems.append("recompute.min_customers: greater than recompute.max_customers")
    if not (mapping.contact_columns or mapping.account_columns):
        problems.append("contact_columns: with account_columns also false, nothing would be written")
    return problems


def parse_customer_value_mapping(data: Any, source: str = "<memory>") -> CustomerValueMapping:
    """Validate a parsed YAML document (None: the defaults); MappingError naming each problem."""
    return validate_document(CustomerValueMapping, data, source, _semantic_problems)


def read_customer_value_mapping(path: str | Path) -> CustomerValueMapping:
    """Read and validate one mapping file (uncached)."""
    return parse_customer_value_mapping(read_yaml_document(Path(path)), str(path))


_load = cached_per_file_version(read_customer_value_mapping, DEFAULT_PATH)


def load_customer_value_mapping(path: str | Path | None = None) -> CustomerValueMapping:
    """The validated mapping (default mappings/customer_value.yaml), cached per file version."""
    return _load(path)


__all__ = [
    "CustomerValueMapping",
    "MappingError",
    "load_customer_value_mapping",
    "parse_customer_value_mapping",
]
