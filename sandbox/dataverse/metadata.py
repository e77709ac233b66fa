"""The simulator's metadata Web API (reference dataverse-api.md §14): table, column and key
definitions, read and written as the real service does it.

- `GET EntityDefinitions[(LogicalName='t')]` with `$select`, `$expand=Attributes(...),Keys(...)`
  and simple `$filter`s; `…/Attributes`, `…/Attributes(LogicalName='c')`, each optionally cast
  (`/Microsoft.Dynamics.CRM.StringAttributeMetadata`) - type-specific properties (MaxLength,
  OptionSet) can be selected only after a cast; `OptionSet` is a navigation property.
- `POST …/Attributes` with a String/Memo/Integer/Decimal/Money/Boolean/DateTime/Picklist
  AttributeMetadata; `PUT …/Attributes(LogicalName='c')` (full definition, applied at publish);
  `DELETE …/Attributes(LogicalName='c')` (custom columns only, not in a key).
- `POST …/Keys` with EntityKeyMetadata: Pending, then Active after `key_activation_seconds`
  (or Failed when existing rows hold duplicate values); `DELETE …/Keys(LogicalName='k')`.
- `PUT EntityDefinitions(LogicalName='t')` (full definition; ChangeTrackingEnabled, one way),
  applied at publish; `PATCH` on any definition: 405, as the real service (updates are PUT).
- Unbound actions `PublishXml` (ParameterXml), `PublishAllXml`, `InsertOptionValue`.
Errors carry the documented codes (§14.10) where the reference gives them.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sandbox.dataverse import errors as E
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import API_PREFIX, SimRequest, SimResponse
from sandbox.dataverse.schema import Column, KeyJob, Table, add_base_columns

if TYPE_CHECKING:
    from sandbox.dataverse.engine import Engine

NS = "Microsoft.Dynamics.CRM."
SCHEMA_NAME_NOT_UNIQUE = "0x80044363"
SCHEMA_NAME_INVALID_CHARACTERS = "0x80044364"
SCHEMA_NAME_NOT_START_WITH_LETTER = "0x80044365"
SCHEMA_NAME_TOO_LONG = "0x80044367"
KEY_NAME_EXISTS = "0x80060893"
KEY_ATTRIBUTES_EXIST = "0x80060894"
METHOD_NOT_SUPPORTED = "0x80060888"

# simulator column type -> (AttributeMetadata type, AttributeType)
TYPE_INFO: dict[str, tuple[str, str]] = {
    "pk": ("UniqueIdentifierAttributeMetadata", "Uniqueidentifier"),
    "guid": ("UniqueIdentifierAttributeMetadata", "Uniqueidentifier"),
    "string": ("StringAttributeMetadata", "String"),
    "memo": ("MemoAttributeMetadata", "Memo"),
    "int": ("IntegerAttributeMetadata", "Integer"),
    "decimal": ("DecimalAttributeMetadata", "Decimal"),
    "money": ("MoneyAttributeMetadata", "Money"),
    "bool": ("BooleanAttributeMetadata", "Boolean"),
    "datetime": ("DateTimeAttributeMetadata", "DateTime"),
    "picklist": ("PicklistAttributeMetadata", "Picklist"),
    "state": ("StateAttributeMetadata", "State"),
    "status": ("StatusAttributeMetadata", "Status"),
    "lookup": ("LookupAttributeMetadata", "Lookup"),
}
# AttributeMetadata types a POST to …/Attributes may create -> simulator column type
CREATABLE = {
    "StringAttributeMetadata": "string",
    "MemoAttributeMetadata": "memo",
    "IntegerAttributeMetadata": "int",
    "DecimalAttributeMetadata": "decimal",
    "MoneyAttributeMetadata": "money",
    "BooleanAttributeMetadata": "bool",
    "DateTimeAttributeMetadata": "datetime",
    "PicklistAttributeMetadata": "picklist",
}
BASE_ATTRIBUTE = {
    "MetadataId", "LogicalName", "SchemaName", "EntityLogicalName", "AttributeType", "AttributeTypeName",
    "IsCustomAttribute", "IsPrimaryId", "IsValidForCreate", "IsValidForUpdate", "RequiredLevel",
    "DisplayName", "Description", "IsManaged",
}  # fmt: skip
TYPE_SPECIFIC = {
    "StringAttributeMetadata": {"MaxLength", "FormatName", "Format"},
    "MemoAttributeMetadata": {"MaxLength", "Format"},
    "IntegerAttributeMetadata": {"MinValue", "MaxValue", "Format"},
    "DecimalAttributeMetadata": {"MinValue", "MaxValue", "Precision"},
    "MoneyAttributeMetadata": {"MinValue", "MaxValue", "Precision", "PrecisionSource"},
    "BooleanAttributeMetadata": {"DefaultValue"},
    "DateTimeAttributeMetadata": {"Format", "DateTimeBehavior"},
    "PicklistAttributeMetadata": {"DefaultFormValue"},
    "StateAttributeMetadata": set(),
    "StatusAttributeMetadata": set(),
    "LookupAttributeMetadata": {"Targets"},
    "UniqueIdentifierAttributeMetadata": set(),
}
OPTION_SET_TYPES = {"PicklistAttributeMetadata", "BooleanAttributeMetadata", "StateAttributeMetadata",
                    "StatusAttributeMetadata"}  # fmt: skip
KEY_COLUMN_TYPES = {"string", "int", "decimal", "datetime", "lookup", "picklist"}  # reference §3.5
MAX_LENGTH = {"string": 4000, "memo": 1048576}
SCHEMA_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,7}_[A-Za-z0-9_]+$")
LANGUAGE = 1033
_PATH = re.compile(
    r"EntityDefinitions(?:\((?P<entity>[^)]*)\))?"
    r"(?:/(?P<nav>Attributes|Keys)(?:\((?P<item>[^)]*)\))?)?"
    r"(?:/Microsoft\.Dynamics\.CRM\.(?P<cast>\w+))?"
)


def _invalid(message: str, code: str = E.INVALID_ARGUMENT) -> ODataError:
    return ODataError(400, code, message)


def _payload(message: str) -> ODataError:
    return ODataError(400, E.PAYLOAD_ERROR, f"Error identified in Payload provided by the user: {message}")


def _no_content(headers: dict[str, str] | None = None) -> SimResponse:
    return SimResponse.empty(204, headers or {})


def metadata_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sim-metadata:" + ".".join(parts)))


def label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": LANGUAGE, "IsManaged": False}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _label_text(value: Any, field: str) -> str:
    """The first localized label of a Label body; 400 naming `field` when absent."""
    labels = value.get("LocalizedLabels") if isinstance(value, dict) else None
    if not isinstance(labels, list) or not labels:
        raise _invalid(f"{field} is required: a Label with at least one LocalizedLabels entry.")
    first = labels[0]
    if not isinstance(first, dict) or not isinstance(first.get("Label"), str) or not first["Label"].strip():
        raise _invalid(f"{field}.LocalizedLabels[0].Label must be a non-empty string.")
    if not isinstance(first.get("LanguageCode"), int):
        raise _invalid(f"{field}.LocalizedLabels[0].LanguageCode must be an integer.")
    return str(first["Label"])


def _odata_type(body: dict[str, Any]) -> str | None:
    value = body.get("@odata.type")
    if not isinstance(value, str):
        return None
    return value.lstrip("#").removeprefix(NS)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _parse_options(pairs: list[tuple[str, str]]) -> dict[str, str]:
    known = {"$select", "$expand", "$filter"}
    options: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("$") and name not in known:
            raise _invalid(f"The query option '{name}' is not supported on metadata.")
        options[name] = value
    return options


def _expand_items(text: str) -> dict[str, dict[str, str]]:
    items: dict[str, dict[str, str]] = {}
    for part in _split_top(text, ","):
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", part, re.S)
        if not m:
            raise ODataError(400, "0x0", f"Syntax error in $expand near '{part}'.")
        nested = [tuple(o.split("=", 1)) for o in _split_top(m.group(2) or "", ";")]
        if any(len(o) != 2 for o in nested):
            raise ODataError(400, "0x0", f"Syntax error in $expand options of '{m.group(1)}'.")
        items[m.group(1)] = _parse_options([(a.strip(), b.strip()) for a, b in nested])  # type: ignore[misc]
    return items


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    enum = re.fullmatch(r"Microsoft\.Dynamics\.CRM\.\w+'([^']*)'", text)
    if enum:
        return enum.group(1)
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        raise ODataError(400, "0x0", f"Syntax error in $filter: unsupported literal {text!r}.") from None


def _filter(rows: list[dict[str, Any]], text: str | None, type_name: str) -> list[dict[str, Any]]:
    """`Prop eq literal [and …]`, `Prop/Value eq …` - what metadata queries need (§14.3)."""
    if not text:
        return rows
    conditions = []
    for clause in re.split(r"\s+and\s+", text.strip()):
        m = re.fullmatch(r"([\w/]+)\s+(eq|ne)\s+(.+)", clause.strip())
        if not m:
            raise ODataError(400, "0x0", f"Syntax error in $filter near '{clause}'.")
        conditions.append((m.group(1).split("/"), m.group(2), _literal(m.group(3))))

    def value_at(row: dict[str, Any], path: list[str]) -> Any:
        value: Any = row
        for step in path:
            if not isinstance(value, dict) or step not in value:
                raise ODataError(
                    400, "0x0", f"Could not find a property named '{step}' on type '{NS}{type_name}'."
                )
            value = value[step]
        return value

    def matches(row: dict[str, Any]) -> bool:
        for path, op, expected in conditions:
            actual = value_at(row, path)
            if isinstance(actual, str) and isinstance(expected, str):
                equal = actual.lower() == expected.lower()
            else:
                equal = actual == expected
            if equal != (op == "eq"):
                return False
        return True

    return [r for r in rows if matches(r)]


def _select(row: dict[str, Any], select: str | None, allowed: set[str], type_name: str) -> dict[str, Any]:
    if not select:
        return row
    names = [n.strip() for n in select.split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise ODataError(
                400, "0x0", f"Could not find a property named '{name}' on type '{NS}{type_name}'."
            )
    keep = {"@odata.type", "MetadataId", *names, *_NAVIGATION}  # expanded navigation stays
    return {k: v for k, v in row.items() if k in keep}


_NAVIGATION = {"Attributes", "Keys", "OptionSet", "GlobalOptionSet"}


def attribute_properties(cast: str | None) -> set[str]:
    """What $select may name on attributes: type-specific properties only after a cast (§14.3)."""
    return BASE_ATTRIBUTE | (TYPE_SPECIFIC[cast] if cast else set())


def _shape(
    rows: list[dict[str, Any]], options: dict[str, str], allowed: set[str] | None, type_name: str
) -> list[dict[str, Any]]:
    """$filter, then $select (checked against `allowed`; None: any property a row has)."""
    rows = _filter(rows, options.get("$filter"), type_name)
    return [_select(r, options.get("$select"), allowed or set(r), type_name) for r in rows]


class MetadataService:
    """Serves EntityDefinitions and the publish / option-set actions for one Engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def tables(self) -> dict[str, Table]:
        return self.engine.schema.tables

    # -- keys whose index job finished ---------------------------------------------------------
    def settle_keys(self) -> None:
        now = self.engine.clock.now()
        for table in self.tables.values():
            for name, job in list(table.key_jobs.items()):
                if job.status != "Pending" or job.ready_at > now:
                    continue
                if self.engine.db.build_key_index(table.logical_name, name, job.columns):
                    table.alternate_keys[name] = list(job.columns)
                    del table.key_jobs[name]
                else:
                    job.status = "Failed"

    # -- routing -------------------------------------------------------------------------------------
    def handle(self, req: SimRequest, path: str) -> SimResponse:
        m = _PATH.fullmatch(path)
        if not m:
            raise E.segment_not_found(path)
        method = req.method.upper()
        options = _parse_options(parse_qsl(req.query, keep_blank_values=True))
        if m["entity"] is None:
            if m["nav"] or m["cast"] or method != "GET":
                raise self.engine._no_resource(req)
            rows = [self.entity(t, options.get("$expand", "")) for t in self.tables.values()]
            return self._json(
                req, "EntityDefinitions", {"value": _shape(rows, options, None, "EntityMetadata")}
            )
        table = self._table(m["entity"])
        if method == "PATCH":
            raise ODataError(
                405, METHOD_NOT_SUPPORTED, "The requested resource does not support http method 'PATCH'."
            )
        if m["nav"] is None:
            if m["cast"]:
                raise E.segment_not_found(f"{NS}{m['cast']}")
            if method == "GET":
                [row] = _shape(
                    [self.entity(table, options.get("$expand", ""))], options, None, "EntityMetadata"
                )
                return self._json(req, "EntityDefinitions/$entity", row)
            if method == "PUT":
                return self.put_entity(req, table)
            raise self.engine._no_resource(req)
        if m["nav"] == "Keys":
            if m["item"] is None:
                if method == "GET":
                    rows = _shape(self.keys(table), options, None, "EntityKeyMetadata")
                    return self._json(req, "EntityDefinitions/Keys", {"value": rows})
                if method == "POST":
                    return self.create_key(req, table)
                raise self.engine._no_resource(req)
            name = self._item_name(m["item"], "key")
            key = next((k for k in self.keys(table) if k["LogicalName"] == name.lower()), None)
            if key is None:
                raise ODataError(
                    404, E.NOT_FOUND, f"Could not find key '{name}' on entity '{table.logical_name}'."
                )
            if method == "GET":
                return self._json(req, "EntityDefinitions/Keys/$entity", key)
            if method == "DELETE":
                table.alternate_keys.pop(key["SchemaName"], None)
                table.key_jobs.pop(key["SchemaName"], None)
                return _no_content()
            raise self.engine._no_resource(req)
        cast = m["cast"]
        if cast is not None and cast not in TYPE_SPECIFIC:
            raise E.segment_not_found(f"{NS}{cast}")
        if m["item"] is None:
            if method == "POST" and cast is None:
                return self.create_attribute(req, table)
            if method != "GET":
                raise self.engine._no_resource(req)
            columns = [c for c in table.columns.values() if cast is None or TYPE_INFO[c.type][0] == cast]
            rows = [self.attribute(table, c, options.get("$expand", ""), cast) for c in columns]
            rows = _shape(rows, options, attribute_properties(cast), cast or "AttributeMetadata")
            return self._json(req, "EntityDefinitions/Attributes", {"value": rows})
        name = self._item_name(m["item"], "attribute")
        column = table.columns.get(name)
        if column is None:
            raise ODataError(
                404,
                E.NOT_FOUND,
                f"Could not find attribute with name '{name}' on entity '{table.logical_name}'.",
            )
        if method == "GET":
            if cast is not None and TYPE_INFO[column.type][0] != cast:
                raise E.segment_not_found(f"{NS}{cast}")
            cast = cast or TYPE_INFO[column.type][0]  # a single column comes as its own type
            [row] = _shape([self.attribute(table, column, options.get("$expand", ""), cast)], options,
                           attribute_properties(cast), cast)  # fmt: skip
            return self._json(req, "EntityDefinitions/Attributes/$entity", row)
        if cast is not None:
            raise self.engine._no_resource(req)
        if method == "PUT":
            return self.put_attribute(req, table, column)
        if method == "DELETE":
            return self.delete_attribute(table, column)
        raise self.engine._no_resource(req)

    def _table(self, text: str) -> Table:
        text = text.strip()
        m = re.fullmatch(r"LogicalName='(\w+)'", text)
        if m:
            table = self.tables.get(m.group(1))
            if table is None:
                raise ODataError(404, E.NOT_FOUND, f"Could not find an entity with name {m.group(1)}.")
            return table
        for table in self.tables.values():
            if metadata_id("entity", table.logical_name) == text.lower():
                return table
        raise ODataError(404, E.NOT_FOUND, f"Could not find an entity with id {text}.")

    @staticmethod
    def _item_name(text: str, what: str) -> str:
        m = re.fullmatch(r"LogicalName='(\w+)'", text.strip())
        if not m:
            raise ODataError(
                400, METHOD_NOT_SUPPORTED, f"The {what} must be addressed by LogicalName='<name>' here."
            )
        return m.group(1)

    def _json(self, req: SimRequest, context: str, payload: dict[str, Any]) -> SimResponse:
        return SimResponse.json(
            200, {"@odata.context": f"{req.base_url}{API_PREFIX}$metadata#{context}", **payload}
        )

    def _entity_id(self, req: SimRequest, table: Table, tail: str = "") -> dict[str, str]:
        return {
            "OData-EntityId": f"{req.base_url}{API_PREFIX}EntityDefinitions"
            f"(LogicalName='{table.logical_name}'){tail}"
        }

    # -- rendering -------------------------------------------------------------------------------
    def entity(self, table: Table, expand: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "@odata.type": f"#{NS}EntityMetadata",
            "MetadataId": metadata_id("entity", table.logical_name),
            "LogicalName": table.logical_name,
            "SchemaName": table.logical_name.capitalize(),
            "EntitySetName": table.entity_set,
            "PrimaryIdAttribute": table.primary_id,
            "PrimaryNameAttribute": table.primary_name,
            "ChangeTrackingEnabled": table.change_tracking,
            "CanChangeTrackingBeEnabled": {
                "Value": not table.system,
                "CanBeChanged": False,
                "ManagedPropertyLogicalName": "canchangetrackingbeenabled",
            },
            "IsOptimisticConcurrencyEnabled": True,
            "IsCustomEntity": False,
            "IsCustomizable": {
                "Value": not table.system,
                "CanBeChanged": False,
                "ManagedPropertyLogicalName": "iscustomizable",
            },
            "DisplayName": label(table.logical_name.capitalize()),
        }
        for nav, nested in _expand_items(expand).items():
            if nav == "Attributes":
                rows = [
                    self.attribute(table, c, nested.get("$expand", ""), None) for c in table.columns.values()
                ]
                row["Attributes"] = _shape(rows, nested, attribute_properties(None), "AttributeMetadata")
            elif nav == "Keys":
                row["Keys"] = _shape(self.keys(table), nested, None, "EntityKeyMetadata")
            else:
                raise ODataError(
                    400, "0x0", f"Could not find a property named '{nav}' on type '{NS}EntityMetadata'."
                )
        return row

    def attribute(self, table: Table, column: Column, expand: str, cast: str | None) -> dict[str, Any]:
        type_name, attribute_type = TYPE_INFO[column.type]
        if column.type == "lookup" and len(column.targets) > 1:
            attribute_type = "Customer"
        required = {"none": "None", "application": "ApplicationRequired", "system": "SystemRequired"}
        row: dict[str, Any] = {
            "@odata.type": f"#{NS}{type_name}",
            "MetadataId": metadata_id("attribute", table.logical_name, column.name),
            "LogicalName": column.name,
            "SchemaName": column.name,
            "EntityLogicalName": table.logical_name,
            "AttributeType": attribute_type,
            "AttributeTypeName": {"Value": f"{attribute_type}Type"},
            "IsCustomAttribute": column.custom,
            "IsPrimaryId": column.type == "pk",
            "IsValidForCreate": not column.readonly,
            "IsValidForUpdate": not column.readonly and not column.create_only,
            "IsManaged": not column.custom,
            "RequiredLevel": {"Value": required.get(column.required, "None"), "CanBeChanged": True,
                              "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
            "DisplayName": label(column.label or column.name),
            "Description": label(""),
        }  # fmt: skip
        if column.type in ("string", "memo"):
            row["MaxLength"] = column.max_length
            row["Format"] = "TextArea" if column.type == "memo" else "Text"
            if column.type == "string":
                row["FormatName"] = {"Value": "Text"}
        elif column.type in ("int", "decimal", "money"):
            row["MinValue"], row["MaxValue"] = column.minimum, column.maximum
            if column.type != "int":
                row["Precision"] = 2
            if column.type == "money":
                row["PrecisionSource"] = 2
        elif column.type == "bool":
            row["DefaultValue"] = bool(column.default)
        elif column.type == "datetime":
            row["Format"], row["DateTimeBehavior"] = "DateAndTime", {"Value": "UserLocal"}
        elif column.type == "lookup":
            row["Targets"] = list(column.targets)
        for nav in _expand_items(expand):
            if nav not in ("OptionSet", "GlobalOptionSet") or cast not in OPTION_SET_TYPES:
                raise ODataError(
                    400,
                    "0x0",
                    f"Could not find a property named '{nav}' on type '{NS}{cast or 'AttributeMetadata'}'.",
                )
            row[nav] = self.option_set(table, column) if nav == "OptionSet" else None
        return row

    def option_set(self, table: Table, column: Column) -> dict[str, Any]:
        if column.type == "bool":
            return {
                "@odata.type": f"#{NS}BooleanOptionSetMetadata",
                "OptionSetType": "Boolean",
                "TrueOption": {"Value": 1, "Label": label("Yes")},
                "FalseOption": {"Value": 0, "Label": label("No")},
            }
        return {
            "MetadataId": metadata_id("optionset", table.logical_name, column.name),
            "Name": f"{table.logical_name}_{column.name}",
            "IsGlobal": False,
            "OptionSetType": "Picklist" if column.type == "picklist" else column.type.capitalize(),
            "Options": [{"Value": v, "Label": label(text)} for v, text in sorted(column.options.items())],
        }

    def keys(self, table: Table) -> list[dict[str, Any]]:
        def row(name: str, columns: list[str], status: str, text: str | None) -> dict[str, Any]:
            return {
                "MetadataId": metadata_id("key", table.logical_name, name.lower()),
                "SchemaName": name,
                "LogicalName": name.lower(),
                "EntityLogicalName": table.logical_name,
                "KeyAttributes": list(columns),
                "EntityKeyIndexStatus": status,
                "DisplayName": label(text or name),
                "AsyncJob": None,
            }

        rows = [row(name, cols, "Active", None) for name, cols in table.alternate_keys.items()]
        rows += [row(name, job.columns, job.status, job.label) for name, job in table.key_jobs.items()]
        return rows

    # -- writes ----------------------------------------------------------------------------------
    def _body(self, req: SimRequest) -> dict[str, Any]:
        return self.engine._decode_body(req)

    def _check_schema_name(self, body: dict[str, Any], kind: str) -> str:
        name = body.get("SchemaName")
        if not isinstance(name, str) or not name:
            raise _invalid(f"SchemaName is required to create an {kind}.")
        if not name[0].isalpha():
            raise ODataError(
                400,
                SCHEMA_NAME_NOT_START_WITH_LETTER,
                f"Invalid schema name {name}: it must start with a letter.",
            )
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ODataError(
                400,
                SCHEMA_NAME_INVALID_CHARACTERS,
                f"Invalid schema name {name}: only letters, digits and underscores are allowed.",
            )
        if len(name) > 50:
            raise ODataError(
                400, SCHEMA_NAME_TOO_LONG, f"Invalid schema name {name}: the length exceeds the limit of 50."
            )
        if not SCHEMA_NAME_PATTERN.fullmatch(name):
            raise _invalid(
                f"Invalid schema name {name}: it must start with the customization prefix of a "
                "publisher, e.g. new_.",
            )
        logical = body.get("LogicalName")
        if logical is not None and logical != name.lower():
            raise _invalid(
                f"LogicalName '{logical}' must be the lower-cased SchemaName '{name.lower()}'.",
            )
        return name

    def create_attribute(self, req: SimRequest, table: Table) -> SimResponse:
        body = self._body(req)
        type_name = _odata_type(body)
        if type_name is None:
            raise _payload(
                "'@odata.type' is required, e.g. 'Microsoft.Dynamics.CRM.StringAttributeMetadata'.",
            )
        if type_name not in CREATABLE:
            raise _payload(
                f"'{type_name}' cannot be created through EntityDefinitions/Attributes (lookups "
                "are created through relationships).",
            )
        if table.system:
            raise ODataError(400, "0x80047008", f"The entity {table.logical_name} is not customizable.")
        kind = CREATABLE[type_name]
        name = self._check_schema_name(body, "attribute")
        logical = name.lower()
        if logical in table.columns:
            raise ODataError(
                400,
                SCHEMA_NAME_NOT_UNIQUE,
                f"The schema name {name} for type Attribute is not unique. "
                "An Attribute with same name already exists.",
            )
        column = Column(
            name=logical, type=kind, custom=True, label=_label_text(body.get("DisplayName"), "DisplayName")
        )
        required = (body.get("RequiredLevel") or {}).get("Value", "None")
        if required not in ("None", "ApplicationRequired", "Recommended"):
            raise _invalid(
                f"RequiredLevel '{required}' is not allowed for a custom attribute "
                "(None, ApplicationRequired, Recommended).",
            )
        column.required = "application" if required == "ApplicationRequired" else "none"
        if "AttributeType" in body and body["AttributeType"] != TYPE_INFO[kind][1]:
            raise _invalid(
                f"AttributeType '{body['AttributeType']}' does not match '{type_name}'.",
            )
        if kind in MAX_LENGTH:
            length = body.get("MaxLength", 100 if kind == "string" else 2000)
            if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= MAX_LENGTH[kind]:
                raise _invalid(
                    f"MaxLength must be an integer from 1 to {MAX_LENGTH[kind]}, got {length!r}.",
                )
            column.max_length = length
        elif kind == "bool":
            option_set = body.get("OptionSet")
            if (
                not isinstance(option_set, dict)
                or not isinstance(option_set.get("TrueOption"), dict)
                or not isinstance(option_set.get("FalseOption"), dict)
            ):
                raise _invalid(
                    "A BooleanAttributeMetadata needs an OptionSet with TrueOption and FalseOption.",
                )
            column.default = bool(body.get("DefaultValue", False))
        elif kind == "picklist":
            column.options = self._options(body)
        elif kind in ("int", "decimal", "money"):
            column.minimum, column.maximum = body.get("MinValue"), body.get("MaxValue")
        column.solution = req.headers.get("mscrm.solutionuniquename")
        table.columns[logical] = column
        add_base_columns(table.columns)  # a Money column comes with its _base twin
        return _no_content(
            self._entity_id(
                req, table, f"/Attributes({metadata_id('attribute', table.logical_name, logical)})"
            )
        )

    @staticmethod
    def _options(body: dict[str, Any]) -> dict[int, str]:
        if "GlobalOptionSet@odata.bind" in body:
            raise _invalid(
                "Global option sets are not modelled by the simulator; send a local OptionSet.",
            )
        option_set = body.get("OptionSet")
        if not isinstance(option_set, dict) or not isinstance(option_set.get("Options"), list):
            raise _invalid(
                "A PicklistAttributeMetadata needs an OptionSet with Options "
                "(or GlobalOptionSet@odata.bind).",
            )
        if option_set.get("IsGlobal"):
            raise _invalid("OptionSet.IsGlobal must be false for a local choice.")
        options: dict[int, str] = {}
        for i, option in enumerate(option_set["Options"]):
            value = option.get("Value") if isinstance(option, dict) else None
            if not isinstance(value, int) or isinstance(value, bool):
                raise _invalid(f"OptionSet.Options[{i}].Value must be an integer.")
            if value in options:
                raise _invalid(f"OptionSet.Options[{i}].Value {value} is used twice.")
            options[value] = _label_text(option.get("Label"), f"OptionSet.Options[{i}].Label")
        return options

    def put_attribute(self, req: SimRequest, table: Table, column: Column) -> SimResponse:
        body = self._body(req)
        type_name = _odata_type(body)
        expected = TYPE_INFO[column.type][0]
        if type_name is None:
            raise _payload(
                f"'@odata.type' is required (here '{NS}{expected}').",
            )
        if type_name != expected:
            raise _invalid(
                f"The type of attribute {column.name} cannot be changed from {expected} to {type_name}.",
            )
        if "@odata.context" in body:
            raise _payload(
                "remove '@odata.context' from the definition before a PUT.",
            )
        if body.get("LogicalName", column.name) != column.name:
            raise _invalid("LogicalName cannot be changed.")
        changes: dict[str, Any] = {"label": _label_text(body.get("DisplayName"), "DisplayName")}
        if column.type in MAX_LENGTH:
            length = body.get("MaxLength")
            if (
                not isinstance(length, int)
                or isinstance(length, bool)
                or not 1 <= length <= MAX_LENGTH[column.type]
            ):
                raise _invalid(
                    f"MaxLength must be an integer from 1 to {MAX_LENGTH[column.type]}, got {length!r}.",
                )
            changes["max_length"] = length
        table.unpublished_columns.setdefault(column.name, {}).update(changes)
        return _no_content(self._entity_id(req, table, f"/Attributes(LogicalName='{column.name}')"))

    def delete_attribute(self, table: Table, column: Column) -> SimResponse:
        if not column.custom:
            raise _invalid(
                f"The attribute {column.name} is not a custom attribute and cannot be deleted.",
            )
        for name, columns in [
            *table.alternate_keys.items(),
            *((n, j.columns) for n, j in table.key_jobs.items()),
        ]:
            if column.name in columns:
                raise _invalid(
                    f"The attribute {column.name} is used by the alternate key {name}; delete the key first.",
                )
        del table.columns[column.name]
        for row in self.engine.db.rows[table.logical_name].values():
            row.pop(column.name, None)
        return _no_content()

    def create_key(self, req: SimRequest, table: Table) -> SimResponse:
        body = self._body(req)
        if _odata_type(body) not in (None, "EntityKeyMetadata"):
            raise _payload(
                f"'@odata.type' must be '{NS}EntityKeyMetadata'.",
            )
        name = self._check_schema_name(body, "entity key")
        text = _label_text(body.get("DisplayName"), "DisplayName")
        columns = body.get("KeyAttributes")
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            raise _invalid("KeyAttributes must be a non-empty list of column logical names.")
        if len(columns) > 16 or len(set(columns)) != len(columns):
            raise _invalid("KeyAttributes must name at most 16 distinct columns.")
        for column_name in columns:
            column = table.columns.get(column_name)
            if column is None:
                raise _invalid(
                    f"The attribute {column_name} does not exist on entity {table.logical_name}.",
                )
            if column.type not in KEY_COLUMN_TYPES:
                raise _invalid(
                    f"The attribute {column_name} of type {TYPE_INFO[column.type][1]} cannot be part "
                    "of a key (allowed: String, Integer, Decimal, DateTime, Lookup, Picklist).",
                )
        existing = [(n, c) for n, c in table.alternate_keys.items()] + [
            (n, j.columns) for n, j in table.key_jobs.items()
        ]
        if any(n.lower() == name.lower() for n, _ in existing):
            raise ODataError(400, KEY_NAME_EXISTS, f"An entity key with the name {name} already exists.")
        if any(sorted(c) == sorted(columns) for _, c in existing):
            raise ODataError(
                400, KEY_ATTRIBUTES_EXIST, "An entity key with the selected attributes already exists."
            )
        if len(existing) >= 10:
            raise _invalid(
                f"The entity {table.logical_name} already has the maximum of 10 keys.",
            )
        ready = self.engine.clock.now() + self.engine.config.key_activation_seconds
        table.key_jobs[name] = KeyJob(list(columns), "Pending", ready, text)
        return _no_content(
            self._entity_id(req, table, f"/Keys({metadata_id('key', table.logical_name, name.lower())})")
        )

    def put_entity(self, req: SimRequest, table: Table) -> SimResponse:
        body = self._body(req)
        if _odata_type(body) not in (None, "EntityMetadata"):
            raise _payload(
                f"'@odata.type' must be '{NS}EntityMetadata'.",
            )
        if body.get("LogicalName") != table.logical_name and body.get("MetadataId") != metadata_id(
            "entity", table.logical_name
        ):
            raise _invalid(
                "The definition must carry the table's LogicalName or MetadataId "
                "(PUT the whole definition read by GET).",
            )
        enabled = body.get("ChangeTrackingEnabled", table.change_tracking)
        if not isinstance(enabled, bool):
            raise _invalid("ChangeTrackingEnabled must be true or false.")
        if table.change_tracking and not enabled:
            raise _invalid(
                f"Change tracking cannot be disabled on {table.logical_name} once it is enabled.",
            )
        if enabled and table.system:
            raise _invalid(f"Change tracking cannot be enabled on {table.logical_name}.")
        table.unpublished["ChangeTrackingEnabled"] = enabled
        return _no_content(self._entity_id(req, table))

    # -- unbound actions ---------------------------------------------------------------------------
    def publish(self, tables: list[Table]) -> None:
        for table in tables:
            if "ChangeTrackingEnabled" in table.unpublished:
                table.change_tracking = bool(table.unpublished["ChangeTrackingEnabled"])
            for name, changes in table.unpublished_columns.items():
                column = table.columns.get(name)
                if column is None:
                    continue
                column.label = changes.get("label", column.label)
                column.max_length = changes.get("max_length", column.max_length)
            table.unpublished.clear()
            table.unpublished_columns.clear()

    def action(self, req: SimRequest, name: str) -> SimResponse:
        if req.method.upper() != "POST":
            raise self.engine._no_resource(req)
        if name == "PublishAllXml":
            self.publish(list(self.tables.values()))
            return _no_content()
        body = self._body(req)
        if name == "PublishXml":
            xml = body.get("ParameterXml")
            if not isinstance(xml, str):
                raise _invalid("ParameterXml is required (an <importexportxml> document).")
            if "<!" in xml:  # no DTDs or entities: a publish request never needs them
                raise _invalid("ParameterXml must not contain a DOCTYPE or ENTITY declaration.")
            try:
                root = ET.fromstring(xml)  # noqa: S314 - checked above: no DTD, no entities
            except ET.ParseError as exc:
                raise _invalid(f"ParameterXml is not well-formed XML: {exc}.") from None
            if root.tag != "importexportxml":
                raise _invalid("ParameterXml must have the root element <importexportxml>.")
            names = [(e.text or "").strip() for e in root.iterfind("./entities/entity")]
            unknown = [n for n in names if n not in self.tables]
            if unknown:
                raise _invalid(
                    f"ParameterXml names entity '{unknown[0]}', which does not exist.",
                )
            self.publish([self.tables[n] for n in names])
            return _no_content()
        # InsertOptionValue (local choice column)
        if "OptionSetName" in body:
            raise _invalid("Global option sets are not modelled by the simulator.")
        table = self.tables.get(str(body.get("EntityLogicalName")))
        if table is None:
            raise _invalid("EntityLogicalName must name an existing entity.")
        column = table.columns.get(str(body.get("AttributeLogicalName")))
        if column is None or column.type != "picklist":
            raise _invalid(
                f"AttributeLogicalName must name a choice (picklist) column of {table.logical_name}.",
            )
        text = _label_text(body.get("Label"), "Label")
        value = body.get("Value")
        if value is None:
            value = max([100000000 - 1, *column.options]) + 1
        if not isinstance(value, int) or isinstance(value, bool):
            raise _invalid("Value must be an integer (or null to let the system choose).")
        if value in column.options:
            raise _invalid(f"An option with the value {value} already exists on {column.name}.")
        column.options[value] = text
        return SimResponse.json(
            200,
            {
                "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#{NS}InsertOptionValueResponse",
                "NewOptionValue": value,
            },
        )
