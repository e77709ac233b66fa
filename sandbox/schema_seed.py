"""Custom fields with realistic names on both sides, for `syncctl mapping suggest` and the
schema check (issue 16 item 5): Brightpearl customer custom fields (custom-field-meta-data)
and Dataverse contact columns (created through the metadata Web API, as provisioning does),
with values on linked records (the Dataverse contact carries the Brightpearl contactId in
bpi_brightpearlid) that mostly agree, as a team keeping both by hand would leave them.

`PAIRS` is the ground truth: which Brightpearl field is which Dataverse column. `DECOYS` have
no counterpart and must not be proposed. Labels differ the way real ones do (VIP customer /
Vip, Birthday / Date of birth, Referral source / How did you hear about us), so names alone
do not settle every pair: types, choice labels and values do the rest.

    from sandbox.schema_seed import seed_customer_schema
    truth = seed_customer_schema(bp_simulator.state, dataverse_client, contacts=40)
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.brightpearl.state import SimState
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import DataverseNotFound
from shared.dataverse.schema import (
    METADATA_HEADERS,
    ColumnKind,
    ColumnSpec,
    attribute_body,
    attribute_path,
    entity_path,
)

Value = str | bool | int | dt.date | None


@dataclass(frozen=True)
class BrightpearlField:
    code: str
    name: str
    type: str  # TEXT, TEXTAREA, YES_NO, INTEGER, DATE, SELECT
    options: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class DataverseColumn:
    name: str
    label: str
    kind: ColumnKind
    max_length: int | None = None
    options: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Pair:
    brightpearl: BrightpearlField | None
    dataverse: DataverseColumn | None
    values: Callable[[random.Random], Value]  # a canonical value (an option's label for choices)
    fill: float = 0.8  # share of records with a value
    agree: float = 0.9  # share of linked records whose two values agree


def _choice(*labels: str) -> Callable[[random.Random], Value]:
    return lambda rng: rng.choice(labels)


def _date(start: dt.date, days: int) -> Callable[[random.Random], Value]:
    return lambda rng: start + dt.timedelta(days=rng.randrange(days))


def _options(first: int, *labels: str) -> tuple[tuple[int, str], ...]:
    return tuple((first + i, label) for i, label in enumerate(labels))


STORES = ("Leeds", "York", "Manchester", "Bristol", "Glasgow", "Cardiff")
MANAGERS = ("Priya Shah", "Tom Baker", "Aisha Khan", "Owen Jones", "Mei Lin")

PAIRS: tuple[Pair, ...] = (
    Pair(
        BrightpearlField("PCF_LOYALTY", "Loyalty tier", "TEXT"),
        DataverseColumn("bpi_loyaltytier", "Loyalty tier", "string", 100),
        _choice("Gold member", "Silver member", "Bronze member", "Founding member"),
    ),
    Pair(
        BrightpearlField("PCF_VIP", "VIP customer", "YES_NO"),
        DataverseColumn("bpi_vip", "Vip", "boolean"),
        lambda rng: rng.random() < 0.2,
        fill=1.0,
    ),
    Pair(
        BrightpearlField(
            "PCF_SEGMENT", "Customer segment", "SELECT", _options(11, "Gold", "Silver", "Bronze")
        ),
        DataverseColumn(
            "bpi_segment", "Segment", "picklist", None, _options(100000000, "Gold", "Silver", "Bronze")
        ),
        _choice("Gold", "Silver", "Bronze"),
    ),
    Pair(
        BrightpearlField("PCF_BIRTHDAY", "Birthday", "DATE"),
        DataverseColumn("bpi_dateofbirth", "Date of birth", "datetime"),
        _date(dt.date(1950, 1, 1), 365 * 50),
        fill=0.6,
    ),
    Pair(
        BrightpearlField("PCF_FIRSTORDER", "First order date", "DATE"),
        DataverseColumn("bpi_firstorderdate", "First order date", "datetime"),
        _date(dt.date(2015, 1, 1), 365 * 10),
    ),
    Pair(
        BrightpearlField(
            "PCF_REFERRAL",
            "Referral source",
            "SELECT",
            _options(21, "Google", "Friend", "Trade show", "Instagram"),
        ),
        DataverseColumn(
            "bpi_referralsource",
            "How did you hear about us",
            "picklist",
            None,
            _options(100000000, "Google", "Friend", "Trade show", "Instagram", "Other"),
        ),
        _choice("Google", "Friend", "Trade show", "Instagram"),
    ),
    Pair(
        BrightpearlField("PCF_ACCTMGR", "Account manager", "TEXT"),
        DataverseColumn("bpi_accountmanager", "Account manager", "string", 100),
        _choice(*MANAGERS),
    ),
    Pair(
        BrightpearlField("PCF_CREDITDAYS", "Credit terms (days)", "INTEGER"),
        DataverseColumn("bpi_paymenttermsdays", "Payment terms (days)", "integer"),
        _choice(7, 14, 30, 60),  # type: ignore[arg-type]
    ),
    Pair(
        BrightpearlField("PCF_TAXEXEMPT", "Tax exempt", "YES_NO"),
        DataverseColumn("bpi_taxexempt", "Tax exempt", "boolean"),
        lambda rng: rng.random() < 0.1,
        fill=1.0,
    ),
    Pair(
        BrightpearlField("PCF_NOTES", "Notes", "TEXTAREA"),
        DataverseColumn("bpi_customernotes", "Customer notes", "memo", 2000),
        _choice(
            "Prefers morning delivery", "Leave parcels with neighbour", "Call before dispatch", "Gift wrap"
        ),
        fill=0.5,
    ),
    Pair(
        BrightpearlField(
            "PCF_PREFCONTACT", "Preferred contact method", "SELECT", _options(31, "Email", "Phone", "Post")
        ),
        DataverseColumn(
            "bpi_contactpreference",
            "Contact preference",
            "picklist",
            None,
            _options(100000000, "Email", "Phone", "Post"),
        ),
        _choice("Email", "Phone", "Post"),
    ),
    Pair(
        BrightpearlField("PCF_SHOESIZE", "Shoe size", "INTEGER"),
        DataverseColumn("bpi_shoesize", "Shoe size", "integer"),
        lambda rng: rng.randint(36, 46),
        fill=0.7,
    ),
    Pair(
        BrightpearlField("PCF_TRADEACCT", "Trade account number", "TEXT"),
        DataverseColumn("bpi_tradeaccountno", "Trade account no.", "string", 20),
        lambda rng: f"TA-{rng.randint(10000, 99999)}",
        fill=0.5,
    ),
    Pair(
        BrightpearlField("PCF_STORE", "Home store", "TEXT"),
        DataverseColumn("bpi_preferredstore", "Preferred store", "string", 100),
        _choice(*STORES),
    ),
)

DECOYS: tuple[Pair, ...] = (
    Pair(
        BrightpearlField("PCF_PICKCODE", "Picking code", "TEXT"),
        None,
        lambda rng: f"P{rng.randint(1, 9)}-{rng.randint(10, 99)}",
    ),
    Pair(
        BrightpearlField("PCF_WHOLESALEDISC", "Wholesale discount (%)", "INTEGER"),
        None,
        _choice(5, 10, 15, 20, 25),
    ),  # type: ignore[arg-type]
    Pair(
        None,
        DataverseColumn("bpi_linkedinurl", "LinkedIn profile", "string", 200),
        lambda rng: f"https://www.linkedin.com/in/u{rng.randint(1000, 9999)}",
    ),
    Pair(
        None,
        DataverseColumn("bpi_lastcontacted", "Last contacted", "datetime"),
        _date(dt.date(2025, 1, 1), 300),
    ),
)


PRODUCT_PAIRS: tuple[Pair, ...] = (
    Pair(
        BrightpearlField("PCF_ORIGIN", "Country of origin", "TEXT"),
        DataverseColumn("bpi_countryoforigin", "Country of origin", "string", 100),
        _choice("United Kingdom", "China", "Germany", "Portugal"),
    ),
    Pair(
        BrightpearlField("PCF_HSCODE", "HS tariff code", "TEXT"),
        DataverseColumn("bpi_commoditycode", "Commodity code (HS)", "string", 20),
        _choice("6109100010", "6403990000", "4202921900", "9503007000"),
    ),
    Pair(
        BrightpearlField("PCF_HAZARD", "Hazardous", "YES_NO"),
        DataverseColumn("bpi_hazardous", "Hazardous goods", "boolean"),
        lambda rng: rng.random() < 0.1,
        fill=1.0,
    ),
    Pair(
        BrightpearlField("PCF_LAUNCH", "Launch date", "DATE"),
        DataverseColumn("bpi_launchdate", "Launch date", "datetime"),
        _date(dt.date(2020, 1, 1), 365 * 5),
    ),
    Pair(
        BrightpearlField("PCF_WARRANTY", "Warranty (months)", "INTEGER"),
        DataverseColumn("bpi_warrantymonths", "Warranty months", "integer"),
        _choice(12, 24, 36),  # type: ignore[arg-type]
    ),
)


def truth(pairs: tuple[Pair, ...] = PAIRS) -> dict[str, str]:
    """The right answer: Brightpearl code -> Dataverse column, for every seeded pair."""
    return {p.brightpearl.code: p.dataverse.name for p in pairs if p.brightpearl and p.dataverse}


# --- Brightpearl ------------------------------------------------------------------------------


def add_brightpearl_field(state: SimState, field: BrightpearlField, entity: str = "customer") -> None:
    """Define a customer (or product) custom field in the simulator (what an admin does in
    Brightpearl's settings: the API cannot create custom fields, reference §6.8)."""
    with state.lock:
        metas = state.product_custom_field_meta if entity == "product" else state.contact_custom_field_meta
        existing = metas.get(field.code)
        ident = existing["id"] if existing else max((m["id"] for m in metas.values()), default=0) + 1
        meta: dict[str, Any] = {
            "id": ident,
            "code": field.code,
            "name": field.name,
            "customFieldType": field.type,
            "required": False,
        }
        if field.options:
            meta["options"] = {str(i): {"id": i, "value": label} for i, label in field.options}
        metas[field.code] = meta
        if entity == "customer":
            state.contact_custom_field_codes.add(field.code)


def brightpearl_value(field: BrightpearlField, value: Value) -> Any:
    """A canonical value as Brightpearl returns it (reference §6.8 value types)."""
    if value is None:
        return None
    if field.type == "SELECT":
        option = next(i for i, label in field.options if label == value)
        return {"id": option, "value": value}
    if field.type == "DATE" and isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00.000+00:00"
    return value


# --- Dataverse --------------------------------------------------------------------------------


def add_dataverse_column(dv: DataverseClient, column: DataverseColumn, table: str = "contact") -> None:
    """Create the column through the metadata Web API (as `syncctl dataverse provision` does);
    a column that exists already is left as it is."""
    try:
        dv.request("GET", attribute_path(table, column.name), headers=dict(METADATA_HEADERS))
        return
    except DataverseNotFound:
        pass
    spec = ColumnSpec(column.name, column.kind, column.label, True, column.max_length, column.options)
    dv.request(
        "POST",
        f"{entity_path(table)}/Attributes",
        json_body=attribute_body(spec),
        headers=dict(METADATA_HEADERS),
    )


def dataverse_value(column: DataverseColumn, value: Value) -> Any:
    if value is None:
        return None
    if column.kind == "picklist":
        return next(v for v, label in column.options if label == value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --- both -------------------------------------------------------------------------------------


def seed_customer_schema(
    state: SimState,
    dv: DataverseClient,
    *,
    contacts: int = 40,
    unlinked: int = 10,
    seed: int = 16,
    pairs: tuple[Pair, ...] = PAIRS + DECOYS,
) -> dict[str, str]:
    """Define `pairs` on both sides, create `contacts` Brightpearl customers with their values
    and as many linked Dataverse contacts (plus `unlinked` Dataverse-only ones); returns
    `truth()`. Linked values agree on each pair's `agree` share of records."""
    rng = random.Random(seed)
    for pair in pairs:
        if pair.brightpearl is not None:
            add_brightpearl_field(state, pair.brightpearl)
        if pair.dataverse is not None:
            add_dataverse_column(dv, pair.dataverse)
    with state.lock, state.seeding():
        ids = state._seed_contacts(contacts)
    for n, contact_id in enumerate([*ids, *([None] * unlinked)]):
        bp_values: dict[str, Any] = {}
        row: dict[str, Any] = {"firstname": f"Seed{n}", "lastname": "Schema"}
        if contact_id is not None:
            row["bpi_brightpearlid"] = str(contact_id)
        for pair in pairs:
            if rng.random() >= pair.fill:
                continue
            value = pair.values(rng)
            other = value if rng.random() < pair.agree else pair.values(rng)
            if pair.brightpearl is not None and contact_id is not None:
                bp_values[pair.brightpearl.code] = brightpearl_value(pair.brightpearl, value)
            if pair.dataverse is not None:
                row[pair.dataverse.name] = dataverse_value(pair.dataverse, other)
        if contact_id is not None:
            with state.lock:
                state.contact_custom_fields[contact_id] = bp_values
        dv.create("contacts", row)
    return truth()


def seed_product_schema(
    state: SimState, dv: DataverseClient, *, products: int = 20, seed: int = 17
) -> dict[str, str]:
    """`PRODUCT_PAIRS` on both sides (product custom fields; Dataverse product columns) and
    `products` Brightpearl products with values (no Dataverse rows: the names, types and the
    Brightpearl values are the evidence); returns `truth(PRODUCT_PAIRS)`."""
    rng = random.Random(seed)
    for pair in PRODUCT_PAIRS:
        if pair.brightpearl is not None:
            add_brightpearl_field(state, pair.brightpearl, "product")
        if pair.dataverse is not None:
            add_dataverse_column(dv, pair.dataverse, "product")
    with state.lock, state.seeding():
        ids = state._seed_products(products)
        for product_id in ids:
            state.product_custom_fields[product_id] = {
                pair.brightpearl.code: brightpearl_value(pair.brightpearl, pair.values(rng))
                for pair in PRODUCT_PAIRS
                if pair.brightpearl is not None and rng.random() < pair.fill
            }
    return truth(PRODUCT_PAIRS)
