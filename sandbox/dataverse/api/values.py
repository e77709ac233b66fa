"""Column values: each written value checked against its column type, length, options and range."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse import query as Q
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.schema import Column, Table

INTEGERS = ("int", "picklist", "state", "status")
DECIMALS = ("decimal", "money")
# The EDM type a column type's values must convert to (the name the error message uses).
EDM_TYPES = {
    "string": "Edm.String",
    "memo": "Edm.String",
    **dict.fromkeys(INTEGERS, "Edm.Int32"),
    **dict.fromkeys(DECIMALS, "Edm.Decimal"),
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "guid": "Edm.Guid",
}


def convertible(kind: str, value: Any) -> bool:
    """Whether a JSON `value` converts to column type `kind` (booleans are not numbers)."""
    if kind in ("string", "memo"):
        return isinstance(value, str)
    if kind in INTEGERS:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in DECIMALS:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "datetime":
        return isinstance(value, str) and Q.DATETIME_RE.fullmatch(value) is not None
    if kind == "guid":
        return isinstance(value, str) and Q.GUID_RE.fullmatch(value) is not None
    return True


class Values(EngineBase):
    def _check_value(self, table: Table, column: Column, value: Any) -> Any:
        name = column.name
        if value is None:
            if column.required == "system":
                raise ODataError(
                    400,
                    E.REQUIRED_FIELD_MISSING,
                    f"Attribute '{name}' cannot be set to NULL: it is required by the system.",
                )
            return None
        kind = column.type
        if kind not in EDM_TYPES:
            return value
        if not convertible(kind, value):
            raise ODataError(
                400,
                "0x0",
                f"Cannot convert the literal '{value}' to the expected type "
                f"'{EDM_TYPES[kind]}' for property '{name}'.",
            )
        if kind in ("string", "memo"):
            if column.max_length is not None and len(value) > column.max_length:
                raise ODataError(
                    400,
                    E.STRING_TOO_LONG,
                    f"A validation error occurred.  The length of the '{name}' attribute of the "
                    f"'{table.logical_name}' entity exceeded the maximum allowed length of "
                    f"'{column.max_length}'.",
                )
        elif kind == "picklist" and column.options and value not in column.options:
            raise ODataError(
                400,
                E.PICKLIST_OUT_OF_RANGE,
                f"A validation error occurred. The value {value} of '{name}' on record of type "
                f"'{table.logical_name}' is outside the valid range.",
            )
        if kind in INTEGERS or kind in DECIMALS:
            self._range(table, column, value)
        elif kind == "datetime":
            return Q._parse_datetime(value).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "guid":
            return value.lower()
        return value

    def _range(self, table: Table, column: Column, value: float) -> None:
        if (column.minimum is not None and value < column.minimum) or (
            column.maximum is not None and value > column.maximum
        ):
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                f"A validation error occurred. The value {value} of '{column.name}' on record of type "
                f"'{table.logical_name}' is outside the valid range ({column.minimum} to {column.maximum}).",
            )
