"""Dataverse errors resolve to the right class (by code, then status) and resilience action."""

from __future__ import annotations

import pytest

from shared.dataverse import errors as dv
from shared.resilience import Action, classify


@pytest.mark.parametrize(
    ("status", "code", "message", "cls", "action"),
    [
        (
            429,
            "0x80072322",
            "Number of requests exceeded",
            dv.DataverseThrottled,
            Action.RETRY_AFTER_THROTTLE,
        ),
        (412, "0x80060882", "version mismatch", dv.DataverseConcurrencyError, Action.RETRY),
        (
            412,
            "0x80040237",
            "A record with matching key values already exists.",
            dv.DataverseDuplicateError,
            Action.DEAD_LETTER,
        ),
        (405, "0x80040227", "associated", dv.DataverseRestrictedDelete, Action.DEAD_LETTER),
        (
            403,
            "0x80040220",
            "missing prvCreateContact",
            dv.DataversePrivilegeError,
            Action.REFRESH_AUTH_THEN_RETRY,
        ),
        (401, "0x8005F101", "requires authentication", dv.DataverseAuthError, Action.REFRESH_AUTH_THEN_RETRY),
        (404, "0x80040217", "contact With Id = x Does Not Exist", dv.DataverseNotFound, Action.IGNORE),
        (400, "0x80044331", "length exceeded", dv.DataverseValidationError, Action.DEAD_LETTER),
        (413, "0x8004418A", "too large", dv.DataverseRequestTooLarge, Action.DEAD_LETTER),
        (503, "", "unavailable", dv.DataverseUnavailable, Action.RETRY),
    ],
)
def test_classification(status, code, message, cls, action):
    error = dv.error_from_response(
        status,
        {"error": {"code": code, "message": message}},
        {"Retry-After": "7", "x-ms-service-request-id": "req-1"},
        context="GET contacts",
    )
    assert type(error) is cls
    assert error.status == status and (error.code or "") == code
    assert str(error) == f"GET contacts: {message}"
    assert error.request_id == "req-1"
    verdict = classify(error)
    assert verdict is not None and verdict.action == action
    if cls is dv.DataverseThrottled:
        assert verdict.retry_after == 7.0


def test_expired_delta_token_is_recognised_by_its_message():
    error = dv.error_from_response(
        400,
        {
            "error": {
                "code": "0x80040203",
                "message": (
                    "Version stamp associated with the client has expired. Please perform a full sync."
                ),
            }
        },
    )
    assert isinstance(error, dv.DataverseDeltaTokenExpired)


def test_non_json_error_body():
    error = dv.error_from_response(502, None, {})
    assert isinstance(error, dv.DataverseUnavailable) and str(error) == "HTTP 502"
