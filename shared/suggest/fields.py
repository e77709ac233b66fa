"""Both systems' field definitions as one shape (`FieldInfo`) with a common kind.

Brightpearl: items of `custom-field-meta-data` (reference brightpearl-api.md §5.7, §6.8:
`{id, code, name, customFieldType, required, options: {id: {id, value}}}`; types TEXT,
TEXTAREA, YES_NO (also written YESNO), INTEGER, DATE, SELECT). Dataverse: the table's
`EntityDefinitions(...)` with `Attributes` (LogicalName, AttributeType, IsCustomAttribute,
DisplayName) plus the type-cast details (MaxLength of String/Memo, OptionSet of Picklist).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.systems import System

Kind = Literal["text", "textarea", "yesno", "integer", "decimal", "date", "select", "other"]

BRIGHTPEARL_KINDS: dict[str, Kind] = {
    "TEXT": "text",
    "TEXTAREA": "textarea",
    "YES_NO": "yesno",
    "YESNO": "yesno",
    "INTEGER": "integer",
    "DATE": "date",
    "SELECT": "select",
}
DATAVERSE_KINDS: dict[str, Kind] = {
    "String": "text",
    "Memo": "textarea",
    "Boolean": "yesno",
    "Integer": "integer",
    "BigInt": "integer",
    "Decimal": "decimal",
    "Double": "decimal",
    "Money": "decimal",
    "DateTime": "date",
    "Picklist": "select",
}


@dataclass(frozen=True)
class FieldInfo:
    """One field of one system: its code (PCF_LOYALTY, bpi_loyaltytier), its label as users
    see it, its kind, and what bounds its values (text length, choice options)."""

    system: System
    code: str
    label: str
    kind: Kind
    raw_type: str
    custom: bool = True
    max_length: int | None = None
    options: tuple[tuple[int, str], ...] = ()  # (Brightpearl option id | Dataverse value, label)

    def option_label(self, key: object) -> str | None:
        for value, text in self.options:
            if str(value) == str(key):
                return text
        return None


def brightpearl_fields(system_items: Iterable[Mapping[str, Any]]) -> list[FieldInfo]:
    """custom-field-meta-data items as fields (unknown types become kind `other`)."""
    out: list[FieldInfo] = []
    for item in system_items:
        code = str(item.get("code") or "")
        if not code:
            continue
        raw_type = str(item.get("customFieldType") or "").upper()
        options = item.get("options") or {}
        pairs = options.values() if isinstance(options, Mapping) else options
        out.append(
            FieldInfo(
                system="brightpearl",
                code=code,
                label=str(item.get("name") or code),
                kind=BRIGHTPEARL_KINDS.get(raw_type, "other"),
                raw_type=raw_type,
                options=tuple(
                    (int(o["id"]), str(o.get("value", "")))
                    for o in pairs
                    if isinstance(o, Mapping) and str(o.get("id", "")).lstrip("-").isdigit()
                ),
            )
        )
    return out


def display_label(attribute: Mapping[str, Any]) -> str | None:
    """The attribute's display name (the user's label, else the first localized one)."""
    name = attribute.get("DisplayName") or {}
    if not isinstance(name, Mapping):
        return None
    user = name.get("UserLocalizedLabel") or {}
    if isinstance(user, Mapping) and user.get("Label"):
        return str(user["Label"])
    for label in name.get("LocalizedLabels") or []:
        if isinstance(label, Mapping) and label.get("Label"):
            return str(label["Label"])
    return None


def dataverse_fields(
    attributes: Iterable[Mapping[str, Any]], details: Mapping[str, Mapping[str, Any]]
) -> list[FieldInfo]:
    """A table's attributes as fields; `details` holds each column's type-cast properties by
    logical name (MaxLength, OptionSet)."""
    out: list[FieldInfo] = []
    for attribute in attributes:
        code = str(attribute.get("LogicalName") or "")
        if not code:
            continue
        raw_type = str(attribute.get("AttributeType") or "")
        detail = details.get(code) or {}
        options = ((detail.get("OptionSet") or {}).get("Options")) or []
        max_length = detail.get("MaxLength")
        out.append(
            FieldInfo(
                system="dataverse",
                code=code,
                label=display_label(attribute) or code,
                kind=DATAVERSE_KINDS.get(raw_type, "other"),
                raw_type=raw_type,
                custom=bool(attribute.get("IsCustomAttribute")),
                max_length=int(max_length) if isinstance(max_length, int) else None,
                options=tuple(
                    (int(o["Value"]), display_label(o) or _label_text(o.get("Label")) or str(o["Value"]))
                    for o in options
                    if isinstance(o, Mapping) and isinstance(o.get("Value"), int)
                ),
            )
        )
    return out


def _label_text(label: Any) -> str | None:
    if isinstance(label, Mapping):
        return display_label({"DisplayName": label})
    return None
