"""Canonical customer: the system-neutral shape every customer passes through between systems.

Values in a `Customer` are already normalised (shared.quality): trimmed, whitespace-collapsed
text, lower-case e-mails, E.164 phones, ISO 3166 alpha-2 countries, upper-case postcodes.
The model enforces the cheap invariants itself (so a hand-built Customer is normalised too);
the translators in shared.mapping do the expensive checks and report problems as issues.

Top-level attributes are the *field groups* that ownership rules in mappings/customers.yaml
refer to (`FIELD_GROUPS`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shared.model.ids import SystemIds
from shared.quality.normalise import clean_text, format_postcode, normalise_postcode
from shared.systems import SYSTEMS as SYSTEMS
from shared.systems import System as System


def _lower_email(value: str | None) -> str | None:
    if value is None:
        return None
    if value.count("@") != 1:
        raise ValueError("must be one e-mail address with a single @")
    return value.lower()


def _matching(pattern: str, what: str) -> Callable[[str | None], str | None]:
    compiled = re.compile(pattern)

    def check(value: str | None) -> str | None:
        if value is not None and not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return check


def _upper(value: object) -> str | None:
    text = clean_text(value)
    return text.upper() if text else None


CleanStr = Annotated[str | None, BeforeValidator(clean_text)]
Email = Annotated[str | None, BeforeValidator(clean_text), AfterValidator(_lower_email)]
E164 = Annotated[
    str | None,
    BeforeValidator(clean_text),
    AfterValidator(_matching(r"\+[1-9][0-9]{6,14}", "an E.164 phone number such as +441245845632")),
]
Iso2 = Annotated[
    str | None,
    BeforeValidator(_upper),
    AfterValidator(_matching(r"[A-Z]{2}", "an ISO 3166 alpha-2 country code such as GB")),
]
Postcode = Annotated[str | None, BeforeValidator(normalise_postcode)]
CustomValue = str | bool | int | dt.date | None

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Address(BaseModel):
    """A postal address. Brightpearl: street, suburb, city, state; Dataverse: line1-3, city, state."""

    model_config = _FROZEN

    line1: CleanStr = None
    line2: CleanStr = None
    line3: CleanStr = None
    city: CleanStr = None
    region: CleanStr = None
    postcode: Postcode = None
    country: Iso2 = None

    @model_validator(mode="before")
    @classmethod
    def _postcode_in_country_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("postcode") and data.get("country"):
            postcode = normalise_postcode(data["postcode"])
            data = {**data, "postcode": format_postcode(postcode, str(data["country"]).strip())}
        return data

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


class PersonName(BaseModel):
    model_config = _FROZEN

    salutation: CleanStr = None
    first_name: CleanStr = None
    last_name: CleanStr = None


class Emails(BaseModel):
    model_config = _FROZEN

    primary: Email = None
    secondary: Email = None
    tertiary: Email = None


class Phones(BaseModel):
    """E.164 numbers, in the slots both systems have (BP PRI/SEC/MOB/FAX)."""

    model_config = _FROZEN

    telephone: E164 = None
    secondary: E164 = None
    mobile: E164 = None
    fax: E164 = None


class Addresses(BaseModel):
    model_config = _FROZEN

    default: Address | None = None
    billing: Address | None = None
    shipping: Address | None = None


class Organisation(BaseModel):
    """The company a person belongs to: Brightpearl organisation, Dataverse account."""

    model_config = _FROZEN

    name: Annotated[str, BeforeValidator(clean_text)]
    phone: E164 = None
    website: CleanStr = None
    address: Address | None = None
    brightpearl_id: str | None = Field(None, description="Brightpearl organisationId")
    dataverse_id: str | None = Field(None, description="Dataverse accountid (GUID)")


class ExternalIds(SystemIds):
    """The customer's ids in each system, when known: Brightpearl contactId, Dataverse contactid."""


class Customer(BaseModel):
    """A person who buys: one Brightpearl contact, one Dataverse contact (+ parent account)."""

    model_config = _FROZEN

    name: PersonName = PersonName()
    emails: Emails = Emails()
    phones: Phones = Phones()
    website: CleanStr = None
    organisation: Organisation | None = None
    addresses: Addresses = Addresses()
    customer_group: CleanStr = Field(
        None, description="canonical customer group (value map customer_group in the YAML)"
    )
    marketing_consent: bool | None = Field(None, description="opted in to e-mail newsletters")
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, CustomValue] = Field(
        default_factory=dict, description="keyed by the canonical name declared in the YAML"
    )
    ids: ExternalIds = ExternalIds()
    modified_at: dt.datetime | None = Field(None, description="last change in the source system (UTC)")
    source_system: System | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, Iterable):
            raise ValueError("must be a list of tags or a comma-separated string")
        cleaned = {clean_text(v) for v in value}
        return tuple(sorted(t for t in cleaned if t))

    @field_validator("modified_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must carry a time zone offset")
        return value.astimezone(dt.UTC)


FIELD_GROUPS: tuple[str, ...] = (
    "name",
    "emails",
    "phones",
    "website",
    "organisation",
    "addresses",
    "customer_group",
    "marketing_consent",
    "tags",
    "custom_fields",
)
