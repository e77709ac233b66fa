"""Loads the simulator's table definitions from schema/tables.yaml into typed objects."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCHEMA_FILE = Path(__file__).parent / "schema" / "tables.yaml"

COLUMN_TYPES = {
    "pk",
    "string",
    "memo",
    "int",
    "decimal",
    "money",
    "bool",
    "datetime",
    "picklist",
    "state",
    "status",
    "lookup",
    "guid",
}


@dataclass
class Column:
    name: str
    type: str
    max_length: int | None = None
    required: str = "none"
    readonly: bool = False
    create_only: bool = False
    write_only: bool = False
    custom: bool = False
    options: dict[int, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    navigation: dict[str, str] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    computed: str | None = None
    label: str | None = None  # DisplayName (metadata API); default: the logical name
    solution: str | None = None  # unmanaged solution it was created in (MSCRM.SolutionUniqueName)

    @property
    def is_lookup(self) -> bool:
        return self.type == "lookup"


@dataclass
class State:
    code: int
    name: str
    default_status: int
    statuses: dict[int, str]
    action_only: str | None = None


@dataclass
class KeyJob:
    """An alternate key created through the metadata API whose index is not (yet) Active."""

    columns: list[str]
    status: str  # Pending | Failed (Active keys live in Table.alternate_keys)
    ready_at: float  # simulator time when the index job finishes
    label: str | None = None


@dataclass
class Relationship:
    table: str
    column: str
    delete: str  # restrict | cascade | removelink


@dataclass
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    columns: dict[str, Column]
    alternate_keys: dict[str, list[str]] = field(default_factory=dict)
    states: dict[int, State] = field(default_factory=dict)
    one_to_many: dict[str, dict[str, str]] = field(default_factory=dict)
    relationships: list[Relationship] = field(default_factory=list)
    bulk: list[str] = field(default_factory=list)
    change_tracking: bool = False
    duplicate_rules: list[list[str]] = field(default_factory=list)
    autonumber: dict[str, str] | None = None
    draft_on_create: bool = False
    editable_states: list[int] | None = None
    system: bool = False
    key_jobs: dict[str, KeyJob] = field(default_factory=dict)
    # metadata updates (PUT) waiting for PublishXml / PublishAllXml: table-level properties and
    # per-column {property: value}
    unpublished: dict[str, Any] = field(default_factory=dict)
    unpublished_columns: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def odata_type(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    def navigation(self) -> dict[str, tuple[Column, str]]:
        """Single-valued navigation property -> (lookup column, target table)."""
        result: dict[str, tuple[Column, str]] = {}
        for column in self.columns.values():
            for nav, target in column.navigation.items():
                result[nav] = (column, target)
        return result


@dataclass
class Schema:
    tables: dict[str, Table]
    messages: list[str]

    def __post_init__(self) -> None:
        self.by_set = {t.entity_set: t for t in self.tables.values()}

    def table(self, logical_name: str) -> Table:
        return self.tables[logical_name]

    def clone(self) -> Schema:
        return copy.deepcopy(self)

    def bare(self) -> Schema:
        """A copy as a stock org has it: no custom (`custom: true`) columns, no alternate keys
        on them, change tracking off on every non-system table. What `syncctl dataverse
        provision` starts from (the simulator's `--bare` option)."""
        bare = self.clone()
        for table in bare.tables.values():
            custom = {name for name, column in table.columns.items() if column.custom}
            # and the `_base` twins of custom Money columns (a stock org has neither)
            twins = {f"base:{n}" for n in custom}
            custom |= {name for name, c in table.columns.items() if c.computed in twins}
            for name in custom:
                del table.columns[name]
            table.alternate_keys = {
                k: cols for k, cols in table.alternate_keys.items() if not custom.intersection(cols)
            }
            if not table.system:
                table.change_tracking = False
        return bare


def _column(name: str, raw: dict[str, Any]) -> Column:
    kind = raw.get("type")
    if kind not in COLUMN_TYPES:
        raise ValueError(f"schema column {name!r}: unknown type {kind!r}")
    return Column(
        name=name,
        type=kind,
        max_length=raw.get("max_length"),
        required=raw.get("required", "none"),
        readonly=bool(raw.get("readonly", False)),
        create_only=bool(raw.get("create_only", False)),
        write_only=bool(raw.get("write_only", False)),
        custom=bool(raw.get("custom", False)),
        options={int(k): str(v) for k, v in (raw.get("options") or {}).items()},
        targets=list(raw.get("targets") or []),
        navigation=dict(raw.get("navigation") or {}),
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        default=raw.get("default"),
        computed=raw.get("computed"),
    )


def add_base_columns(columns: dict[str, Column]) -> None:
    """Each Money column's read-only `<name>_base` twin, in the organization's base currency, on
    tables with a currency (reference dataverse-api.md §10.13: value / exchangerate)."""
    if "transactioncurrencyid" not in columns:
        return
    for name, column in list(columns.items()):
        if column.type == "money" and not name.endswith("_base") and not column.readonly:
            twin = f"{name}_base"
            columns.setdefault(twin, Column(name=twin, type="money", readonly=True, computed=f"base:{name}"))


def load_schema(path: Path = SCHEMA_FILE) -> Schema:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    tables: dict[str, Table] = {}
    for logical, spec in raw["tables"].items():
        columns = {name: _column(name, col) for name, col in (spec.get("columns") or {}).items()}
        pk = spec["primary_id"]
        columns[pk] = Column(name=pk, type="pk", readonly=False)
        add_base_columns(columns)
        states = {
            int(code): State(
                code=int(code),
                name=s["name"],
                default_status=int(s["default_status"]),
                statuses={int(k): str(v) for k, v in s["statuses"].items()},
                action_only=s.get("action_only"),
            )
            for code, s in (spec.get("states") or {}).items()
        }
        if states:
            columns.setdefault("statecode", Column(name="statecode", type="state"))
            columns.setdefault("statuscode", Column(name="statuscode", type="status"))
            columns["statecode"].options = {c: s.name for c, s in states.items()}
            columns["statuscode"].options = {
                code: label for s in states.values() for code, label in s.statuses.items()
            }
        tables[logical] = Table(
            logical_name=logical,
            entity_set=spec["entity_set"],
            primary_id=pk,
            primary_name=spec["primary_name"],
            columns=columns,
            alternate_keys={k: list(v) for k, v in (spec.get("alternate_keys") or {}).items()},
            states=states,
            one_to_many=dict(spec.get("one_to_many") or {}),
            relationships=[Relationship(**r) for r in (spec.get("relationships") or [])],
            bulk=list(spec.get("bulk") or []),
            change_tracking=bool(spec.get("change_tracking", False)),
            duplicate_rules=[list(r) for r in (spec.get("duplicate_rules") or [])],
            autonumber=spec.get("autonumber"),
            draft_on_create=bool(spec.get("draft_on_create", False)),
            editable_states=spec.get("editable_states"),
            system=bool(spec.get("system", False)),
        )
    for table in tables.values():
        for column in table.columns.values():
            for target in column.targets:
                if target not in tables:
                    raise ValueError(f"schema {table.logical_name}.{column.name}: unknown target {target}")
    return Schema(tables=tables, messages=list(raw.get("messages") or []))
