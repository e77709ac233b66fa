"""Typed data-quality problems and the policy that decides which of them are fatal.

A `QualityIssue` names the system, the record id, the field and the problem, but never the
offending value when that value is personal data (e-mail, phone, name, address): the
description says *what is wrong* ("emailaddress1 is not a valid e-mail address (missing @)"),
so it can go into logs, audit rows and dead-letter descriptions (DESIGN §10).

Whether an issue dead-letters the record (fatal) or only drops/truncates the value with a
warning is decided by `QualityPolicy`, which is configured in mappings/*.yaml.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.systems import System


class IssueCode(enum.StrEnum):
    """Reason codes. They double as dead-letter reasons (docs/operations.md)."""

    INVALID_EMAIL = "InvalidEmail"
    INVALID_PHONE = "InvalidPhone"
    MISSING_LAST_NAME = "MissingLastName"
    UNKNOWN_COUNTRY = "UnknownCountry"
    UNMAPPABLE_VALUE = "UnmappableValue"
    VALUE_TOO_LONG = "ValueTooLong"
    INCOMPLETE_ADDRESS = "IncompleteAddress"
    INVALID_CUSTOM_FIELD = "InvalidCustomFieldValue"
    UNSUPPORTED_UPDATE = "UnsupportedUpdate"
    INVALID_SKU = "InvalidSku"  # products: empty, or longer than Dynamics productnumber
    DUPLICATE_SKU = "DuplicateSku"  # products: two Brightpearl products share one SKU
    UNIT_NOT_RESOLVED = "UnitNotResolved"  # products: no Dynamics unit for the product's unit
    CURRENCY_MISSING = "CurrencyMissing"  # prices: Dynamics lacks it; orders: Brightpearl lacks it
    ORDER_HAS_NO_LINES = "OrderHasNoLines"  # orders: a Dynamics order without order products
    INVALID_QUANTITY = "InvalidQuantity"  # orders: a line of zero or negative quantity
    UNKNOWN_SKU = "UnknownSku"  # orders: a line's SKU is not a Brightpearl product
    STATUS_NOT_MAPPED = "StatusNotMapped"  # orders: a Brightpearl status order_status.yaml lacks
    CUSTOMER_NOT_SYNCED = "CustomerNotSynced"  # orders: the order's customer is not linked in time
    UNKNOWN_CUSTOMER_GROUP = "UnknownCustomerGroup"  # customers: group not in the map, default used


class Severity(enum.StrEnum):
    FATAL = "fatal"  # the record is dead-lettered with this reason; nothing is written
    WARNING = "warning"  # the value is dropped (or truncated, for ValueTooLong); the rest syncs


# What happens to the offending value when the issue is only a warning.
WARNING_EFFECT: dict[IssueCode, str] = {
    IssueCode.VALUE_TOO_LONG: "truncated to the limit",
    IssueCode.UNSUPPORTED_UPDATE: "not written",
    IssueCode.UNKNOWN_CUSTOMER_GROUP: "the default group is written instead",
}
_DEFAULT_WARNING_EFFECT = "dropped"


class QualityIssue(BaseModel):
    """One problem with one field of one record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: IssueCode
    severity: Severity
    system: System
    record_id: str | None
    field: str
    description: str

    @property
    def fatal(self) -> bool:
        return self.severity is Severity.FATAL

    def summary(self) -> str:
        """One line for a dead-letter description or an audit row (no personal data)."""
        record = f"{self.system} record {self.record_id}" if self.record_id else f"{self.system} record"
        return f"{self.code}: {record}, field {self.field}: {self.description}"


# Defaults: the bad-input cases the issue names are fatal; secondary contact details are not
# worth losing a whole customer over, so their problems are warnings (value dropped).
DEFAULT_SEVERITIES: dict[IssueCode, Severity] = {
    IssueCode.INVALID_EMAIL: Severity.FATAL,
    IssueCode.INVALID_PHONE: Severity.FATAL,
    IssueCode.MISSING_LAST_NAME: Severity.FATAL,
    IssueCode.UNKNOWN_COUNTRY: Severity.FATAL,
    IssueCode.UNMAPPABLE_VALUE: Severity.FATAL,
    IssueCode.VALUE_TOO_LONG: Severity.FATAL,
    IssueCode.INCOMPLETE_ADDRESS: Severity.WARNING,
    IssueCode.INVALID_CUSTOM_FIELD: Severity.FATAL,
    IssueCode.UNSUPPORTED_UPDATE: Severity.WARNING,
    IssueCode.INVALID_SKU: Severity.FATAL,
    IssueCode.DUPLICATE_SKU: Severity.FATAL,
    IssueCode.UNIT_NOT_RESOLVED: Severity.FATAL,
    IssueCode.CURRENCY_MISSING: Severity.FATAL,
    IssueCode.ORDER_HAS_NO_LINES: Severity.FATAL,
    IssueCode.INVALID_QUANTITY: Severity.FATAL,
    IssueCode.UNKNOWN_SKU: Severity.FATAL,
    IssueCode.STATUS_NOT_MAPPED: Severity.FATAL,
    IssueCode.CUSTOMER_NOT_SYNCED: Severity.FATAL,
    IssueCode.UNKNOWN_CUSTOMER_GROUP: Severity.WARNING,
}

DEFAULT_FIELD_SEVERITIES: dict[str, dict[IssueCode, Severity]] = {
    "emails.secondary": {IssueCode.INVALID_EMAIL: Severity.WARNING},
    "emails.tertiary": {IssueCode.INVALID_EMAIL: Severity.WARNING},
    "phones.secondary": {IssueCode.INVALID_PHONE: Severity.WARNING},
    "phones.mobile": {IssueCode.INVALID_PHONE: Severity.WARNING},
    "phones.fax": {IssueCode.INVALID_PHONE: Severity.WARNING},
}


class QualityPolicy(BaseModel):
    """Normalisation settings and the severity of each issue code, per canonical field.

    `field_severities` keys are canonical field paths such as `phones.secondary`,
    `emails.primary`, `addresses.shipping`, `name.last_name`, `custom_fields.loyalty_tier`.
    A field rule overrides the code's default severity.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_phone_region: str = Field(
        "GB",
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166 alpha-2 region used to read phone numbers written without +country",
    )
    phone_region_from_address: bool = Field(
        True,
        description="read national numbers in the country of the customer's own address (billing, "
        "default, shipping) when it has one; default_phone_region otherwise",
    )
    severities: dict[IssueCode, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    field_severities: dict[str, dict[IssueCode, Severity]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_FIELD_SEVERITIES.items()}
    )

    @field_validator("severities")
    @classmethod
    def _complete(cls, value: dict[IssueCode, Severity]) -> dict[IssueCode, Severity]:
        merged = dict(DEFAULT_SEVERITIES)
        merged.update(value)
        return merged

    def phone_region(self, *countries: str | None) -> str:
        """The region national phone numbers of a customer are read in."""
        if self.phone_region_from_address:
            for country in countries:
                if country:
                    return country
        return self.default_phone_region

    def severity(self, code: IssueCode, canonical_field: str | None = None) -> Severity:
        if canonical_field is not None:
            # most specific first: "custom_fields.x" then "custom_fields"
            parts = canonical_field.split(".")
            for end in range(len(parts), 0, -1):
                rule = self.field_severities.get(".".join(parts[:end]))
                if rule and code in rule:
                    return rule[code]
        return self.severities[code]

    def issue(
        self,
        code: IssueCode,
        *,
        system: System,
        record_id: str | None,
        field: str,
        description: str,
        canonical_field: str | None = None,
    ) -> QualityIssue:
        """Build an issue whose severity follows this policy."""
        severity = self.severity(code, canonical_field)
        return QualityIssue(
            code=code,
            severity=severity,
            system=system,
            record_id=record_id,
            field=field,
            description=description + _effect(code, severity),
        )


def _effect(code: IssueCode, severity: Severity) -> str:
    """What a warning does to the offending value, as a description suffix (none when fatal)."""
    if severity is Severity.FATAL:
        return ""
    return f"; {WARNING_EFFECT.get(code, _DEFAULT_WARNING_EFFECT)}"


def first_fatal(issues: list[QualityIssue]) -> QualityIssue | None:
    """The issue that decides a dead-letter reason code, if any."""
    return next((issue for issue in issues if issue.fatal), None)
