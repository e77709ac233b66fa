"""The one table from a Brightpearl answer's status to the error ladder (errors.error_from_answer)."""

from __future__ import annotations

import pytest

from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlAuthError,
    BrightpearlError,
    BrightpearlNotFound,
    BrightpearlPreconditionFailed,
    BrightpearlThrottled,
    BrightpearlUnavailable,
    BrightpearlUriTooLong,
    BrightpearlValidationError,
    error_from_answer,
)

ERRORS = {"errors": [{"code": "CMNC-400", "message": "firstName is required"}]}


@pytest.mark.parametrize(
    ("status", "body", "ambiguous", "expected"),
    [
        (401, {}, False, BrightpearlAuthError),
        (404, {}, False, BrightpearlNotFound),
        (412, {}, False, BrightpearlPreconditionFailed),
        (414, {}, False, BrightpearlUriTooLong),
        (400, ERRORS, False, BrightpearlValidationError),
        (409, {}, False, BrightpearlValidationError),
        (
            503,
            {"response": "You have sent too many requests. Please wait before sending another request"},
            True,
            BrightpearlThrottled,
        ),
        (503, {"response": "Service Unavailable"}, False, BrightpearlUnavailable),
        (500, {}, False, BrightpearlUnavailable),
        (500, {}, True, BrightpearlAmbiguousWrite),
        (207, ERRORS, False, BrightpearlValidationError),
        (302, {}, False, BrightpearlError),
    ],
)
def test_each_status_maps_to_one_class(status: int, body: dict, ambiguous: bool, expected: type) -> None:
    error = error_from_answer(status, body, "POST /contact-service/contact/", ambiguous=ambiguous)
    assert type(error) is expected and error.status == status


def test_the_message_names_the_call_and_brightpearls_own_errors() -> None:
    error = error_from_answer(400, ERRORS, "POST /contact-service/contact/")
    assert str(error) == (
        "Brightpearl answered 400 to POST /contact-service/contact/: CMNC-400: firstName is required"
    )
    assert error.errors == ERRORS["errors"]
    assert "BRIGHTPEARL_APP_REF" in str(error_from_answer(401, {}, "GET /x"))
    assert "look it up before re-creating" in str(error_from_answer(502, {}, "POST /x", ambiguous=True))
