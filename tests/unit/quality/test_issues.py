"""Quality issues and the severity policy (which problems dead-letter a record)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.quality.issues import IssueCode, QualityPolicy, Severity


def test_defaults_make_the_named_bad_inputs_fatal() -> None:
    policy = QualityPolicy()
    for code in ("InvalidEmail", "MissingLastName", "UnknownCountry", "UnmappableValue", "ValueTooLong"):
        assert policy.severity(IssueCode(code)) is Severity.FATAL


def test_field_rules_override_the_code_default() -> None:
    policy = QualityPolicy()
    assert policy.severity(IssueCode.INVALID_PHONE, "phones.telephone") is Severity.FATAL
    assert policy.severity(IssueCode.INVALID_PHONE, "phones.secondary") is Severity.WARNING
    assert policy.severity(IssueCode.INVALID_EMAIL, "emails.primary") is Severity.FATAL
    assert policy.severity(IssueCode.INVALID_EMAIL, "emails.secondary") is Severity.WARNING


def test_group_level_rule_applies_to_its_fields() -> None:
    policy = QualityPolicy(field_severities={"custom_fields": {IssueCode.UNMAPPABLE_VALUE: Severity.WARNING}})
    assert policy.severity(IssueCode.UNMAPPABLE_VALUE, "custom_fields.segment") is Severity.WARNING
    assert policy.severity(IssueCode.UNMAPPABLE_VALUE, "customer_group") is Severity.FATAL


def test_partial_severity_table_keeps_defaults_for_the_rest() -> None:
    policy = QualityPolicy(severities={IssueCode.UNKNOWN_COUNTRY: Severity.WARNING})
    assert policy.severity(IssueCode.UNKNOWN_COUNTRY) is Severity.WARNING
    assert policy.severity(IssueCode.INVALID_EMAIL) is Severity.FATAL


def test_issue_description_says_what_happened_to_a_warned_value() -> None:
    policy = QualityPolicy()
    issue = policy.issue(
        IssueCode.INVALID_PHONE,
        system="brightpearl",
        record_id="200",
        field="communication.telephones.SEC",
        description="communication.telephones.SEC is not a valid phone number (too short)",
        canonical_field="phones.secondary",
    )
    assert not issue.fatal
    assert issue.description.endswith("; dropped")
    assert issue.summary() == (
        "InvalidPhone: brightpearl record 200, field communication.telephones.SEC: "
        "communication.telephones.SEC is not a valid phone number (too short); dropped"
    )


def test_unknown_code_or_severity_is_rejected() -> None:
    with pytest.raises(ValidationError):
        QualityPolicy.model_validate({"severities": {"NoSuchCode": "fatal"}})
    with pytest.raises(ValidationError):
        QualityPolicy.model_validate({"severities": {"InvalidEmail": "sometimes"}})
    with pytest.raises(ValidationError):
        QualityPolicy.model_validate({"default_phone_region": "United Kingdom"})
