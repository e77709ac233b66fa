"""Simulator-side Dataverse errors: an HTTP status plus the documented error code and message."""

from __future__ import annotations

# Codes from reference §9.3 / §8 (hex strings as the Web API returns them).
NOT_FOUND = "0x80040217"
SEGMENT_NOT_FOUND = "0x8006088a"
PAYLOAD_ERROR = "0x80048d19"
STRING_TOO_LONG = "0x80044331"
DUPLICATE_RECORD = "0x80040237"
CONCURRENCY_MISMATCH = "0x80060882"
CANNOT_DELETE_ASSOCIATION = "0x80040227"
DUPLICATE_DETECTED = "0x80040333"
PICKLIST_OUT_OF_RANGE = "0x80044150"  # UNCONFIRMED (community constant lists)
REQUIRED_FIELD_MISSING = "0x8004000f"  # UNCONFIRMED (community constant lists)
INVALID_ARGUMENT = "0x80040203"
REQUESTS_EXCEEDED = "0x80072322"
EXECUTION_TIME_EXCEEDED = "0x80072321"
CONCURRENCY_EXCEEDED = "0x80072326"
REQUEST_TOO_LARGE = "0x8004418A"
ACCESS_TOKEN_EXPIRED = "0x8005F101"
NOT_IMPLEMENTED = "0x80040800"
PLUGIN_ERROR = "0x80040265"


class ODataError(Exception):
    """Raised inside the simulator; rendered as {"error": {"code", "message"}}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def segment_not_found(segment: str, status: int = 404) -> ODataError:
    """The Web API's answer to a path segment (entity set, property, action, cast) it does not know."""
    return ODataError(status, SEGMENT_NOT_FOUND, f"Resource not found for the segment '{segment}'.")


def unknown_content_id(ref: str) -> ODataError:
    """A `$n` reference in a `$batch` to a Content-ID no earlier part of it declared."""
    message = f"Content-ID Reference: '{ref}' does not exist in the batch context."
    return ODataError(400, PAYLOAD_ERROR, message)
