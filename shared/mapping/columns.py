"""The Dataverse columns (and Brightpearl field limits) the customer mapping may use.

Mapping files are validated against this list: a column that is not here (and does not
carry one of the configured custom-column prefixes) is rejected at load time, so a typo in
the YAML fails at start-up instead of as a 400 from Dataverse at 3 a.m.

Lengths come from ../shared/reference/dataverse-api.md §10.1/§10.2. Those marked UNCONFIRMED
there (or not listed there: address parts, salutation, telephone2, donotbulkemail) are the
platform defaults as documented by Microsoft's table reference and are flagged `confirmed=False`
so docs/mapping.md can say so. `bpi_*` columns belong to this integration's solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["string", "memo", "picklist", "boolean", "lookup", "datetime", "integer", "date", "guid"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    max_length: int | None = None
    options: frozenset[int] | None = None
    writable: bool = True
    confirmed: bool = True


def _string(name: str, length: int, confirmed: bool = True) -> Column:
    return Column(name, "string", length, confirmed=confirmed)


def _address_columns(prefix: str) -> list[Column]:
    return [
        _string(f"{prefix}_line1", 250, False),
        _string(f"{prefix}_line2", 250, False),
        _string(f"{prefix}_line3", 250, False),
        _string(f"{prefix}_city", 80, False),
        _string(f"{prefix}_stateorprovince", 50, False),
        _string(f"{prefix}_postalcode", 20, False),
        _string(f"{prefix}_country", 80, False),
        _string(f"{prefix}_county", 50, False),
        _string(f"{prefix}_name", 200, False),
        _string(f"{prefix}_telephone1", 50, False),
        _string(f"{prefix}_fax", 50, False),
        Column(f"{prefix}_composite", "memo", 1000, writable=False),
    ]


ACCOUNT_RELATIONSHIP_TYPES = frozenset(range(1, 14))  # 1 Competitor … 12 Other, 13 Insurance carrier

_CONTACT: list[Column] = [
    Column("contactid", "guid", writable=False),
    _string("firstname", 50),
    _string("lastname", 50),
    _string("middlename", 50),
    Column("fullname", "string", 160, writable=False),
    _string("salutation", 100, False),
    _string("jobtitle", 100),
    _string("emailaddress1", 100),
    _string("emailaddress2", 100),
    _string("emailaddress3", 100),
    _string("telephone1", 50, False),
    _string("telephone2", 50, False),
    _string("telephone3", 50, False),
    _string("mobilephone", 50),
    _string("fax", 50),
    _string("websiteurl", 200, False),
    Column("donotbulkemail", "boolean", confirmed=False),
    Column("donotemail", "boolean", confirmed=False),
    Column("customertypecode", "picklist", options=frozenset({1})),
    Column("parentcustomerid", "lookup"),
    Column("statecode", "picklist", options=frozenset({0, 1})),
    Column("statuscode", "picklist", options=frozenset({1, 2}), confirmed=False),
    Column("modifiedon", "datetime", writable=False),
    Column("createdon", "datetime", writable=False),
    *_address_columns("address1"),
    *_address_columns("address2"),
    *_address_columns("address3"),
    # this integration's solution
    _string("bpi_brightpearlid", 100),
    _string("bpi_customergroup", 100),
    Column("bpi_tags", "memo", 2000),
    Column("bpi_newsletteroptin", "boolean"),
]

_ACCOUNT: list[Column] = [
    Column("accountid", "guid", writable=False),
    _string("name", 160, False),
    _string("accountnumber", 20, False),
    _string("websiteurl", 200, False),
    _string("telephone1", 50, False),
    _string("telephone2", 50, False),
    _string("fax", 50, False),
    _string("emailaddress1", 100, False),
    Column("customertypecode", "picklist", options=ACCOUNT_RELATIONSHIP_TYPES),
    Column("accountcategorycode", "picklist", options=frozenset({1, 2})),
    Column("primarycontactid", "lookup"),
    Column("parentaccountid", "lookup"),
    Column("creditonhold", "boolean"),
    Column("statecode", "picklist", options=frozenset({0, 1})),
    Column("modifiedon", "datetime", writable=False),
    *_address_columns("address1"),
    *_address_columns("address2"),
    _string("bpi_brightpearlid", 100),
    _string("bpi_customergroup", 100),
]

DATAVERSE_COLUMNS: dict[str, dict[str, Column]] = {
    "contact": {c.name: c for c in _CONTACT},
    "account": {c.name: c for c in _ACCOUNT},
}

ENTITY_SETS = {"contact": "contacts", "account": "accounts"}

# Brightpearl contact POST limits (reference §5.2): names at most 32 characters.
BRIGHTPEARL_LIMITS: dict[str, int] = {
    "salutation": 32,
    "firstName": 32,
    "lastName": 32,
}

BRIGHTPEARL_CUSTOM_FIELD_TYPES = ("text", "textarea", "yesno", "integer", "date", "select")


def dataverse_column(entity: str, name: str) -> Column | None:
    return DATAVERSE_COLUMNS.get(entity, {}).get(name)


def max_length(entity: str, name: str) -> int | None:
    column = dataverse_column(entity, name)
    return column.max_length if column else None
