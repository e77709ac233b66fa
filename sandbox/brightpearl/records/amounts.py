"""Decimal amounts as the simulated API takes them (validated, limited places) and renders them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.brightpearl.errors import bad


def money(value: Any, field: str, places: int = 4) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise bad(f"{field} must be a decimal number, got {value!r}") from exc
    if not number.is_finite():
        raise bad(f"{field} must be a finite number")
    if -number.as_tuple().exponent > places:  # type: ignore[operator]
        raise bad(f"{field} allows at most {places} decimal places, got {value!r}")
    return number


def fmt(value: Decimal, places: int = 4) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")
