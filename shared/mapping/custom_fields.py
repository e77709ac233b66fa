"""Custom fields between the canonical model and a system's wire values, for both systems.

The logic is the same on both sides (empty is None; text is cleaned and length-checked; a
date is its ISO day; a select value goes through the mapping's options; a value that does not
fit is logged and dropped); a `CustomFieldWire` holds only what differs per system: the field's
name there, how it writes yes/no, whole numbers and choices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.mapping.config import CustomFieldMapping, SelectOption
from shared.mapping.translation import IssueLog
from shared.model.customer import CustomValue
from shared.quality.issues import IssueCode
from shared.quality.normalise import check_length, clean_text


@dataclass(frozen=True)
class CustomFieldWire:
    """What one system's custom field values look like."""

    field: Callable[[CustomFieldMapping], str]  # the field's name in that system
    read_bool: Callable[[object], bool]  # raises ValueError when it is not a yes/no
    read_int: Callable[[object], int]  # raises ValueError when it is not a whole number
    option_id: Callable[[object], object]  # a raw select value -> what identifies its option
    is_option: Callable[[SelectOption, object], bool]  # does the option have that identity
    write_option: Callable[[SelectOption], Any]  # the option as that system's value
    option_noun: str  # how the system calls a choice, for the issue message


def custom_from_wire(
    wire: CustomFieldWire, cf: CustomFieldMapping, raw: object, log: IssueLog
) -> CustomValue:
    """The canonical value of custom field `cf` read from a system (None when empty or invalid)."""
    field, canonical = wire.field(cf), f"custom_fields.{cf.name}"
    if raw is None or raw == "":
        return None
    try:
        if cf.type in ("text", "textarea"):
            return log.take(check_length(clean_text(raw), cf.max_length), field, canonical)
        if cf.type == "yesno":
            return wire.read_bool(raw)
        if cf.type == "integer":
            if isinstance(raw, bool):
                raise ValueError
            return wire.read_int(raw)
        if cf.type == "date":
            return dt.date.fromisoformat(str(raw)[:10])
        option_id = wire.option_id(raw)
        for option in cf.options:
            if wire.is_option(option, option_id):
                return option.value
        log.add(
            IssueCode.UNMAPPABLE_VALUE,
            field,
            f"{wire.option_noun} {option_id} has no entry in custom_fields {cf.name} options",
            canonical,
        )
        return None
    except (ValueError, TypeError):
        log.add(IssueCode.INVALID_CUSTOM_FIELD, field, f"is not a valid {cf.type} value", canonical)
        return None


def custom_to_wire(
    wire: CustomFieldWire, cf: CustomFieldMapping, value: CustomValue, log: IssueLog
) -> tuple[bool, Any]:
    """(ok, the system's value) for a canonical custom value; not ok when it does not fit."""
    field, canonical = wire.field(cf), f"custom_fields.{cf.name}"
    if value is None:
        return True, None
    if cf.type == "select":
        option = next((o for o in cf.options if o.value == value), None)
        if option is None:
            log.add(
                IssueCode.UNMAPPABLE_VALUE,
                field,
                f"value has no option in custom_fields {cf.name}",
                canonical,
            )
            return False, None
        return True, wire.write_option(option)
    if cf.type == "date":
        return True, value.isoformat() if isinstance(value, dt.date) else str(value)
    if cf.type in ("text", "textarea"):
        return True, log.take(check_length(str(value), cf.max_length), field, canonical)
    return True, value
