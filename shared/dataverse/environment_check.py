"""Checks that a Dataverse environment has what the mappings need (`syncctl dataverse check`).

The requirements are the provisioning plan (shared/dataverse/provision.py `schema_plan()`,
derived from mappings/*.yaml): every column the translators read or write (with its type,
length and choice options for the integration's own `bpi_` columns), the alternate keys
(Active), and change tracking on the polled tables. Each `Problem` names the table and the
column or key, and says how to fix it; `syncctl dataverse provision` fixes every problem
whose `fixable` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.dataverse.errors import DataverseNotFound
from shared.dataverse.schema import (
    METADATA_HEADERS,
    METADATA_TYPES,
    ColumnKind,
    ColumnSpec,
    KeySpec,
    SchemaPlan,
    TableSpec,
    entity_path,
    schema_plan,
)

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient

ProblemKind = Literal[
    "missing_table",
    "missing_column",
    "missing_standard_column",
    "wrong_column_type",
    "column_too_short",
    "missing_option",
    "missing_key",
    "key_not_active",
    "key_failed",
    "change_tracking_off",
    "change_tracking_unsupported",
]
PROVISION = "Run `syncctl dataverse provision`."
FIXABLE: frozenset[str] = frozenset(
    {"missing_column", "column_too_short", "missing_option", "missing_key", "change_tracking_off"}
)


@dataclass(frozen=True)
class Problem:
    table: str
    kind: ProblemKind
    name: str  # the column, key (its columns, comma-separated) or setting
    message: str
    fix: str
    column: ColumnSpec | None = None
    key: KeySpec | None = None
    option: tuple[int, str] | None = None

    @property
    def fixable(self) -> bool:
        """`syncctl dataverse provision` can fix it."""
        return self.kind in FIXABLE

    @property
    def change(self) -> str:
        """What provisioning does about it, for its report."""
        spec = self.column
        if self.kind == "missing_column" and spec is not None:
            size = f", {spec.max_length}" if spec.max_length else ""
            return f"{self.table}: create column {spec.name} ({spec.attribute_type}{size})"
        if self.kind == "missing_option" and self.option is not None:
            return f"{self.table}: add option {self.option[0]} '{self.option[1]}' to {self.name}"
        if self.kind == "column_too_short" and spec is not None:
            return f"{self.table}: widen column {spec.name} to {spec.max_length} characters"
        if self.kind == "missing_key" and self.key is not None:
            return f"{self.table}: create alternate key {self.key.name} on ({self.name})"
        if self.kind == "change_tracking_off":
            return f"{self.table}: enable change tracking"
        return f"{self.table}: {self.message}"

    def __str__(self) -> str:
        return f"{self.table}: {self.message} Fix: {self.fix}"


def _mapping_file(table: str) -> str:
    return "mappings/products.yaml" if table == "product" else "mappings/customers.yaml"


def _read_definition(client: DataverseClient, table: str) -> dict[str, Any] | None:
    try:
        return dict(
            client.request(
                "GET",
                entity_path(table),
                params={
                    "$select": "LogicalName,ChangeTrackingEnabled,CanChangeTrackingBeEnabled",
                    "$expand": "Attributes($select=LogicalName,AttributeType,IsCustomAttribute),"
                    "Keys($select=SchemaName,KeyAttributes,EntityKeyIndexStatus)",
                },
                headers=METADATA_HEADERS,
            ).json()
        )
    except DataverseNotFound:
        return None


def _details(client: DataverseClient, table: str, kind: ColumnKind) -> dict[str, dict[str, Any]]:
    """Type-specific properties (MaxLength, options) of a table's columns of one type (§14.3)."""
    params = {"$select": "LogicalName,MaxLength"}
    if kind == "picklist":
        params = {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}
    cast = f"Microsoft.Dynamics.CRM.{METADATA_TYPES[kind][0]}"
    rows = client.request(
        "GET", f"{entity_path(table)}/Attributes/{cast}", params=params, headers=METADATA_HEADERS
    ).json()
    return {str(r.get("LogicalName")): r for r in rows.get("value", [])}


def _option_values(detail: dict[str, Any]) -> set[int]:
    options = (detail.get("OptionSet") or {}).get("Options") or []
    return {int(o["Value"]) for o in options if isinstance(o.get("Value"), int)}


def _check_columns(
    client: DataverseClient, spec: TableSpec, attributes: dict[str, dict[str, Any]]
) -> list[Problem]:
    problems: list[Problem] = []
    table = spec.table
    present: list[ColumnSpec] = []
    for column in spec.columns:
        found = attributes.get(column.name)
        if found is None:
            if column.custom:
                problems.append(
                    Problem(
                        table,
                        "missing_column",
                        column.name,
                        f"column {column.name!r} is missing.",
                        PROVISION,
                        column,
                    )
                )
            else:
                problems.append(
                    Problem(
                        table,
                        "missing_standard_column",
                        column.name,
                        f"standard column {column.name!r} (used by the mapping) is missing.",
                        "It is not one of the integration's columns: correct the mapping "
                        f"({_mapping_file(table)}) or install the Dynamics 365 app that provides it.",
                        column,
                    )
                )
            continue
        actual = found.get("AttributeType")
        if column.custom and actual not in (None, column.attribute_type):
            problems.append(
                Problem(
                    table,
                    "wrong_column_type",
                    column.name,
                    f"column {column.name!r} is {actual}, the mapping needs {column.attribute_type}.",
                    "A column's type cannot be changed in place: delete the column in the maker portal "
                    "(its data is lost) and run `syncctl dataverse provision`, or map a different column.",
                    column,
                )
            )
        elif column.custom:
            present.append(column)
    kinds: tuple[ColumnKind, ...] = ("string", "memo", "picklist")
    for kind in kinds:
        wanted = [c for c in present if c.kind == kind and (c.max_length or c.options)]
        if not wanted:
            continue
        details = _details(client, table, kind)
        for column in wanted:
            detail = details.get(column.name, {})
            length = detail.get("MaxLength")
            if column.max_length and isinstance(length, int) and length < column.max_length:
                problems.append(
                    Problem(
                        table,
                        "column_too_short",
                        column.name,
                        f"column {column.name!r} holds {length} characters, the mapping needs "
                        f"{column.max_length}.",
                        PROVISION,
                        column,
                    )
                )
            if column.kind == "picklist":
                have = _option_values(detail)
                for value, text in column.options:
                    if value not in have:
                        problems.append(
                            Problem(
                                table,
                                "missing_option",
                                column.name,
                                f"choice column {column.name!r} has no option {value} ({text}).",
                                PROVISION,
                                column,
                                option=(value, text),
                            )
                        )
    return problems


def _check_keys(spec: TableSpec, keys: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    for key in spec.keys:
        label = ",".join(key.columns)
        match = next(
            (
                k
                for k in keys
                if sorted(k.get("KeyAttributes") or []) == sorted(key.columns)
                or str(k.get("SchemaName", "")).lower() == key.name.lower()
            ),
            None,
        )
        status = match.get("EntityKeyIndexStatus") if match else None
        if match is None:
            problems.append(
                Problem(
                    spec.table, "missing_key", label, f"no alternate key on ({label}).", PROVISION, key=key
                )
            )
        elif status == "Failed":
            problems.append(
                Problem(
                    spec.table,
                    "key_failed",
                    label,
                    f"alternate key on ({label}) failed to build (usually duplicate values).",
                    "Remove the duplicate values, then reactivate the key (ReactivateEntityKey) "
                    "or delete it and run `syncctl dataverse provision`.",
                    key=key,
                )
            )
        elif status != "Active":
            problems.append(
                Problem(
                    spec.table,
                    "key_not_active",
                    label,
                    f"alternate key on ({label}) is {status}.",
                    "Wait for Dataverse to build the index, then check again.",
                    key=key,
                )
            )
    return problems


def check_table(client: DataverseClient, spec: TableSpec) -> list[Problem]:
    """Every difference between one table and its spec."""
    definition = _read_definition(client, spec.table)
    if definition is None:
        return [
            Problem(
                spec.table,
                "missing_table",
                spec.table,
                f"table {spec.table!r} does not exist.",
                "Install the Dynamics 365 app that provides it.",
            )
        ]
    attributes = {str(a.get("LogicalName")): a for a in definition.get("Attributes") or []}
    problems = _check_columns(client, spec, attributes)
    problems += _check_keys(spec, definition.get("Keys") or [])
    if spec.change_tracking and not definition.get("ChangeTrackingEnabled"):
        allowed = definition.get("CanChangeTrackingBeEnabled")
        if isinstance(allowed, dict) and allowed.get("Value") is False:
            problems.append(
                Problem(
                    spec.table,
                    "change_tracking_unsupported",
                    "ChangeTrackingEnabled",
                    "change tracking is off and this table does not allow it.",
                    "The Dataverse poller cannot read this table; report it.",
                )
            )
        else:
            problems.append(
                Problem(
                    spec.table,
                    "change_tracking_off",
                    "ChangeTrackingEnabled",
                    "change tracking is off.",
                    f"{PROVISION} (It cannot be turned off again.)",
                )
            )
    return problems


def check_environment(client: DataverseClient, plan: SchemaPlan | None = None) -> list[Problem]:
    """Every missing piece, table by table (empty list: the environment is ready)."""
    problems: list[Problem] = []
    for spec in (plan or schema_plan()).tables:
        problems += check_table(client, spec)
    return problems
