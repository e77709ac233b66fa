"""The customer mapping file (mappings/customers.yaml): its schema, loading and validation.

`load_customer_mapping()` reads the YAML, validates its structure with pydantic and then its
meaning (known field groups, known Dataverse columns, value types of value maps, unique
custom fields). Every problem is reported with the YAML path of the bad entry, e.g.
`customer_group.values[2].dataverse.customertypecode: 42 is not an option of account.customertypecode`,
and all problems are raised together in one `MappingError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.mapping.columns import Column, dataverse_column
from shared.model.customer import FIELD_GROUPS
from shared.quality.issues import IssueCode, QualityPolicy

if TYPE_CHECKING:
    from shared.mapping.translation import IssueLog
from shared.systems import System

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "customers.yaml"
T = TypeVar("T")

Owner = Literal["brightpearl", "dataverse", "last_writer"]
AddressRole = Literal["default", "billing", "shipping"]
AddressSlot = Literal["address1", "address2", "address3"]
CustomFieldType = Literal["text", "textarea", "yesno", "integer", "date", "select"]

# Canonical scalar fields a Dataverse contact column can receive (contact_columns keys).
CONTACT_COLUMN_FIELDS: tuple[str, ...] = (
    "name.salutation",
    "name.first_name",
    "name.last_name",
    "emails.primary",
    "emails.secondary",
    "emails.tertiary",
    "phones.telephone",
    "phones.secondary",
    "phones.mobile",
    "phones.fax",
    "website",
    "tags",
)


class MappingError(ValueError):
    """The mapping file is invalid. `problems` lists each one as `yaml.path: message`."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"invalid mapping {source}:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountrySettings(_Strict):
    aliases: dict[str, str] = Field(
        default_factory=dict, description="extra country texts -> ISO alpha-2, e.g. {Alba: GB}"
    )
    dataverse_names: dict[str, str] = Field(
        default_factory=dict, description="ISO alpha-2 -> the text written to Dataverse *_country"
    )


class MarketingConsent(_Strict):
    column: str | None = "bpi_newsletteroptin"
    inverted: bool = Field(False, description="true when the column means 'do NOT send' (donotbulkemail)")


class AccountSettings(_Strict):
    enabled: bool = True
    key: str = Field("bpi_brightpearlid", description="alternate key column of account (BP organisationId)")
    bind: Literal["alternate_key", "id"] = Field(
        "alternate_key",
        description="how contact.parentcustomerid_account is bound: by the account's alternate key, "
        "or by accountid when the GUID is known (falls back to the key)",
    )
    phone_from: Literal["phones.telephone", "phones.secondary", "phones.mobile"] | None = "phones.telephone"
    website_from: Literal["website"] | None = "website"
    address_from: AddressRole | None = "billing"
    address_slot: AddressSlot = "address1"


def _default_addresses() -> dict[AddressSlot, list[AddressRole]]:
    return {"address1": ["billing", "default"], "address2": ["shipping"]}


class DataverseSettings(_Strict):
    contact_key: str = Field(
        "bpi_brightpearlid", description="alternate key column of contact (BP contactId)"
    )
    contact_columns: dict[str, str | None] = Field(default_factory=dict)
    marketing_consent: MarketingConsent = MarketingConsent()
    addresses: dict[AddressSlot, list[AddressRole]] = Field(default_factory=_default_addresses)
    account: AccountSettings = AccountSettings()
    custom_column_prefixes: list[str] = Field(default_factory=lambda: ["bpi_"])


class GroupColumn(_Strict):
    entity: Literal["contact", "account"]
    column: str


class GroupValue(_Strict):
    group: str = Field(min_length=1)
    brightpearl: int = Field(ge=0, description="priceListId or contact group id")
    dataverse: dict[str, int | str | bool] = Field(default_factory=dict)
    prefer_on_read: bool = Field(
        False, description="when several groups share a Dataverse value, this one is read back"
    )


class CustomerGroupSettings(_Strict):
    enabled: bool = True
    brightpearl_source: Literal["price_list", "contact_group"] = "price_list"
    dataverse_columns: list[GroupColumn] = Field(default_factory=list)
    values: list[GroupValue] = Field(default_factory=list)
    default_group: str | None = Field(
        None,
        description="the group of a contact whose Brightpearl price list or contact group is not in "
        "`values` (flagged UnknownCustomerGroup in the audit); None: such a contact is UnmappableValue",
    )


class SelectOption(_Strict):
    value: str = Field(min_length=1, description="canonical value")
    brightpearl_id: int = Field(ge=0)
    dataverse: int | str


class CustomFieldMapping(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="canonical key")
    brightpearl: str = Field(pattern=r"^PCF_[A-Z0-9_]{1,60}$")
    dataverse: str = Field(pattern=r"^[a-z][a-z0-9_]{0,99}$")
    type: CustomFieldType
    max_length: int | None = Field(None, ge=1, le=1_048_576)
    options: list[SelectOption] = Field(default_factory=list)
    owner: Owner | None = None


class OwnershipSettings(_Strict):
    default: Owner = "last_writer"
    groups: dict[str, Owner] = Field(default_factory=dict)
    last_writer_tie: System = Field(
        "brightpearl", description="who wins when both sides carry the same modification time"
    )

    def owner_of(self, group: str) -> Owner:
        return self.groups.get(group, self.default)


class DuplicateSettings(_Strict):
    name_threshold: float = Field(
        88.0, ge=0, le=100, description="rapidfuzz score (0-100) for a likely duplicate"
    )
    require_postcode: bool = Field(True, description="candidates must share a postcode")
    max_candidates: int = Field(5, ge=1, le=100)


class CustomerMapping(_Strict):
    """The validated contents of mappings/customers.yaml."""

    version: Literal[1] = 1
    entity: Literal["customer"] = "customer"
    quality: QualityPolicy = QualityPolicy()
    countries: CountrySettings = CountrySettings()
    dataverse: DataverseSettings = DataverseSettings()
    customer_group: CustomerGroupSettings = CustomerGroupSettings()
    ownership: OwnershipSettings = OwnershipSettings()
    custom_fields: list[CustomFieldMapping] = Field(default_factory=list)
    duplicates: DuplicateSettings = DuplicateSettings()
    source: str = Field("<memory>", exclude=True)

    # --- lookups used by the translators -------------------------------------------------

    def contact_column(self, field: str) -> str | None:
        return self.dataverse.contact_columns.get(field)

    def group_by_brightpearl(self, bp_value: int) -> str | None:
        for row in self.customer_group.values:
            if row.brightpearl == bp_value:
                return row.group
        return None

    def group_row(self, group: str) -> GroupValue | None:
        return next((row for row in self.customer_group.values if row.group == group), None)

    def group_row_or_issue(self, group: str | None, log: IssueLog) -> GroupValue | None:
        """The customer_group.values row of a canonical group; a group without one is logged."""
        row = self.group_row(group) if group is not None else None
        if group is not None and row is None:
            log.add(
                IssueCode.UNMAPPABLE_VALUE,
                "customer_group",
                f"group {group!r} has no entry in customer_group.values",
                "customer_group",
            )
        return row

    def groups_for_dataverse_value(self, column: str, value: Any) -> list[GroupValue]:
        return [row for row in self.customer_group.values if row.dataverse.get(column) == value]

    def group_from_dataverse(self, column: str, value: Any) -> str | None:
        matches = self.groups_for_dataverse_value(column, value)
        if not matches:
            return None
        preferred = [row for row in matches if row.prefer_on_read]
        return (preferred or matches)[0].group

    def custom_field(self, name: str) -> CustomFieldMapping | None:
        return next((cf for cf in self.custom_fields if cf.name == name), None)

    def owner_of_custom_field(self, name: str) -> Owner:
        cf = self.custom_field(name)
        if cf is not None and cf.owner is not None:
            return cf.owner
        return self.ownership.owner_of("custom_fields")


# --- validation -------------------------------------------------------------------------------


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _is_custom(column: str, prefixes: list[str]) -> bool:
    return any(column.startswith(p) for p in prefixes)


def _check_column(
    entity: str, column: str, path: str, prefixes: list[str], problems: list[str], *, writable: bool = True
) -> Column | None:
    known = dataverse_column(entity, column)
    if known is None:
        if not _is_custom(column, prefixes):
            problems.append(
                f"{path}: unknown Dataverse column {entity}.{column!r} (not in the column list of "
                f"shared/mapping/columns.py and no custom prefix {prefixes})"
            )
        return None
    if writable and not known.writable:
        problems.append(f"{path}: Dataverse column {entity}.{column} is read-only")
    return known


def _check_value_for_column(column: Column, value: Any, path: str, problems: list[str]) -> None:
    if column.type == "picklist":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {column.name} is a choice column and needs an integer option value")
        elif column.options is not None and value not in column.options:
            problems.append(
                f"{path}: {value} is not an option of {column.name} (options {sorted(column.options)})"
            )
    elif column.type in ("string", "memo"):
        if not isinstance(value, str):
            problems.append(f"{path}: {column.name} is a text column and needs a string value")
        elif column.max_length is not None and len(value) > column.max_length:
            problems.append(f"{path}: value is longer than {column.name}'s {column.max_length} characters")
    elif column.type == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: {column.name} is a yes/no column and needs true or false")


def _semantic_problems(m: CustomerMapping) -> list[str]:
    problems: list[str] = []
    prefixes = m.dataverse.custom_column_prefixes
    used_contact_columns: dict[str, str] = {}

    def claim(column: str, path: str) -> None:
        if column in used_contact_columns:
            problems.append(
                f"{path}: contact column {column} is already mapped at {used_contact_columns[column]}"
            )
        else:
            used_contact_columns[column] = path

    # quality
    for field in m.quality.field_severities:
        root = field.split(".")[0]
        if root not in FIELD_GROUPS:
            problems.append(
                f"quality.field_severities.{field}: unknown field group {root!r} "
                f"(known: {', '.join(FIELD_GROUPS)})"
            )

    # countries
    for alias, code in m.countries.aliases.items():
        if not re.fullmatch(r"[A-Z]{2}", code):
            problems.append(f"countries.aliases.{alias}: {code!r} is not an ISO 3166 alpha-2 code")
    for code in m.countries.dataverse_names:
        if not re.fullmatch(r"[A-Z]{2}", code):
            problems.append(f"countries.dataverse_names.{code}: key is not an ISO 3166 alpha-2 code")

    # dataverse contact columns
    claim(m.dataverse.contact_key, "dataverse.contact_key")
    _check_column("contact", m.dataverse.contact_key, "dataverse.contact_key", prefixes, problems)
    for field, column in m.dataverse.contact_columns.items():
        path = f"dataverse.contact_columns.{field}"
        if field not in CONTACT_COLUMN_FIELDS:
            problems.append(
                f"{path}: unknown canonical field {field!r} (known: {', '.join(CONTACT_COLUMN_FIELDS)})"
            )
            continue
        if column is None:
            continue
        known = _check_column("contact", column, path, prefixes, problems)
        if known is not None and known.type not in ("string", "memo"):
            problems.append(f"{path}: {column} is a {known.type} column; {field} needs a text column")
        claim(column, path)
    mc = m.dataverse.marketing_consent
    if mc.column is not None:
        known = _check_column("contact", mc.column, "dataverse.marketing_consent.column", prefixes, problems)
        if known is not None and known.type != "boolean":
            problems.append(f"dataverse.marketing_consent.column: {mc.column} is not a yes/no column")
        claim(mc.column, "dataverse.marketing_consent.column")
    seen_roles: dict[str, str] = {}
    for slot, roles in m.dataverse.addresses.items():
        if not roles:
            problems.append(f"dataverse.addresses.{slot}: needs at least one address role")
        for i, role in enumerate(roles):
            if role in seen_roles:
                problems.append(
                    f"dataverse.addresses.{slot}[{i}]: role {role} is already mapped to {seen_roles[role]}"
                )
            seen_roles[role] = slot
    account = m.dataverse.account
    _check_column("account", account.key, "dataverse.account.key", prefixes, problems)

    # customer group value map
    cg = m.customer_group
    if cg.enabled:
        if not cg.values:
            problems.append(
                "customer_group.values: the value map is empty (set customer_group.enabled: false instead)"
            )
        targets: list[tuple[GroupColumn, Column | None]] = []
        for i, target in enumerate(cg.dataverse_columns):
            path = f"customer_group.dataverse_columns[{i}]"
            known = _check_column(target.entity, target.column, f"{path}.column", prefixes, problems)
            if target.entity == "contact":
                claim(target.column, f"{path}.column")
            targets.append((target, known))
        names = [t.column for t in cg.dataverse_columns]
        for i, row in enumerate(cg.values):
            path = f"customer_group.values[{i}]"
            for column in row.dataverse:
                if column not in names:
                    problems.append(
                        f"{path}.dataverse.{column}: column is not listed in customer_group.dataverse_columns"
                    )
            for target, known in targets:
                if target.column not in row.dataverse:
                    problems.append(f"{path}.dataverse: missing a value for {target.entity}.{target.column}")
                elif known is not None:
                    _check_value_for_column(
                        known, row.dataverse[target.column], f"{path}.dataverse.{target.column}", problems
                    )
        if cg.default_group is not None and m.group_row(cg.default_group) is None:
            groups = ", ".join(row.group for row in cg.values)
            problems.append(
                f"customer_group.default_group: {cg.default_group!r} is not a group of "
                f"customer_group.values (known: {groups})"
            )
        for key, label in (("group", "group"), ("brightpearl", "Brightpearl value")):
            seen: dict[Any, int] = {}
            for i, row in enumerate(cg.values):
                value = getattr(row, key)
                if value in seen:
                    problems.append(
                        f"customer_group.values[{i}].{key}: duplicate {label} {value!r} "
                        f"(also at values[{seen[value]}])"
                    )
                seen.setdefault(value, i)
        for target in cg.dataverse_columns:
            by_value: dict[Any, list[int]] = {}
            for i, row in enumerate(cg.values):
                if target.column in row.dataverse:
                    by_value.setdefault(row.dataverse[target.column], []).append(i)
            for value, rows in by_value.items():
                preferred = [i for i in rows if cg.values[i].prefer_on_read]
                if len(rows) > 1 and len(preferred) != 1:
                    problems.append(
                        f"customer_group.values[{rows[1]}].dataverse.{target.column}: value {value!r} is "
                        f"shared by values{rows}; mark exactly one of them prefer_on_read: true so "
                        "reading it back is unambiguous"
                    )

    # ownership
    for group in m.ownership.groups:
        if group not in FIELD_GROUPS:
            problems.append(
                f"ownership.groups.{group}: unknown field group {group!r} (known: {', '.join(FIELD_GROUPS)})"
            )

    # custom fields
    seen_cf: dict[str, dict[str, int]] = {"name": {}, "brightpearl": {}, "dataverse": {}}
    for i, cf in enumerate(m.custom_fields):
        path = f"custom_fields[{i}]"
        for key in ("name", "brightpearl", "dataverse"):
            value = getattr(cf, key)
            if value in seen_cf[key]:
                problems.append(
                    f"{path}.{key}: duplicate custom field {value!r} "
                    f"(also at custom_fields[{seen_cf[key][value]}])"
                )
            seen_cf[key].setdefault(value, i)
        known = _check_column("contact", cf.dataverse, f"{path}.dataverse", prefixes, problems)
        if cf.dataverse in used_contact_columns and seen_cf["dataverse"].get(cf.dataverse) == i:
            problems.append(
                f"{path}.dataverse: contact column {cf.dataverse} is already mapped at "
                f"{used_contact_columns[cf.dataverse]}"
            )
        if known is not None:
            expected = {
                "text": ("string", "memo"),
                "textarea": ("string", "memo"),
                "yesno": ("boolean",),
                "integer": ("integer",),
                "date": ("date", "datetime"),
                "select": ("picklist",),
            }[cf.type]
            if known.type not in expected:
                problems.append(f"{path}.type: {cf.type} does not fit {cf.dataverse}, a {known.type} column")
        if cf.type == "select":
            if not cf.options:
                problems.append(f"{path}.options: a select field needs its options")
            for key in ("value", "brightpearl_id", "dataverse"):
                seen_opt: set[Any] = set()
                for j, opt in enumerate(cf.options):
                    value = getattr(opt, key)
                    if value in seen_opt:
                        problems.append(f"{path}.options[{j}].{key}: duplicate option {value!r}")
                    seen_opt.add(value)
        elif cf.options:
            problems.append(f"{path}.options: only select fields have options")
        if cf.max_length is not None and cf.type not in ("text", "textarea"):
            problems.append(f"{path}.max_length: only text fields have a length")
    return problems


NOT_A_MAPPING = "(root): the mapping file must be a YAML mapping (key: value)"
D = TypeVar("D", bound=BaseModel)


def validate_document(model: type[D], data: Any, source: str, semantic: Callable[[D], list[str]]) -> D:
    """`data` (a parsed YAML document; None, an empty file: the defaults) as `model`, checked by
    `semantic`; otherwise a MappingError listing every problem by YAML path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError(source, [NOT_A_MAPPING])
    try:
        mapping = model.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise MappingError(source, [f"{_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    problems = semantic(mapping)
    if problems:
        raise MappingError(source, problems)
    return mapping


def parse_customer_mapping(data: Any, source: str = "<memory>") -> CustomerMapping:
    """Validate an already-parsed YAML document. Raises MappingError listing every problem."""
    if data is None:  # an empty customer mapping file is a mistake, not the defaults
        raise MappingError(source, [NOT_A_MAPPING])
    return validate_document(CustomerMapping, data, source, _semantic_problems)


def read_yaml_document(file: Path) -> Any:
    """The parsed YAML of a mapping file; an unreadable file or bad YAML raises MappingError."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(str(file), [f"(file): cannot read: {exc.strerror or exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError(str(file), [f"(yaml): {where}{problem}"]) from None


S = TypeVar("S", bound=BaseModel)


def parse_section(
    document: Any,
    source: str,
    section: str,
    model: type[S],
    hint: str,
    locate: Callable[[tuple[int | str, ...]], tuple[int | str, ...]] = tuple,
) -> S | None:
    """One top-level section of a parsed mapping document validated as `model` (None: absent),
    every problem named by its YAML path (`section.key.field: ...`, the pydantic location as
    `locate` gives it) in one MappingError. `hint` lists the section's keys for the message when
    it is not a mapping."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise MappingError(source, [NOT_A_MAPPING])
    body = document.get(section)
    if body is None:
        return None
    if not isinstance(body, dict):
        raise MappingError(source, [f"{section}: must be a mapping ({hint})"])
    try:
        return model.model_validate({**body, "source": source})
    except ValidationError as exc:
        problems = [f"{section}.{_loc(locate(tuple(e['loc'])))}: {e['msg']}" for e in exc.errors()]
        raise MappingError(source, problems) from None


def read_customer_mapping(path: str | Path | None = None) -> CustomerMapping:
    """Read and validate a mapping file, uncached (syncctl mapping check)."""
    file = Path(path) if path is not None else DEFAULT_PATH
    return parse_customer_mapping(read_yaml_document(file), str(file))


def cached_per_file_version(read: Callable[[str], T], default: Path) -> Callable[[str | Path | None], T]:
    """`read(path)` cached per file and modification time (`default` when no path is given)."""

    @functools.lru_cache(maxsize=8)
    def cached(path: str, mtime_ns: int) -> T:
        return read(path)

    def load(path: str | Path | None = None) -> T:
        file = (Path(path) if path is not None else default).resolve()
        try:
            mtime = file.stat().st_mtime_ns
        except OSError:
            mtime = -1
        return cached(str(file), mtime)

    return load


_load_customer_mapping = cached_per_file_version(read_customer_mapping, DEFAULT_PATH)


def load_customer_mapping(path: str | Path | None = None) -> CustomerMapping:
    """The validated customer mapping (default mappings/customers.yaml), cached per file version."""
    return _load_customer_mapping(path)
