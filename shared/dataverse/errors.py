"""Dataverse error ladder: one root, then one class per way a call can fail.

shared/resilience maps each class to retry / dead-letter. `retry_after` carries the
server's Retry-After when it gave one; `code` the Dataverse error code (e.g. 0x80072322).
"""

from __future__ import annotations


class DataverseError(Exception):
    """Root of every Dataverse client error (also: an unexpected protocol answer)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class DataverseAuthError(DataverseError):
    """401/403: token missing, expired or lacking privileges."""


class DataverseNotFound(DataverseError):
    """404: the record or table does not exist."""


class DataverseValidationError(DataverseError):
    """400/412 and other 4xx: the request was rejected; the message names the column."""


class DataverseThrottled(DataverseError):
    """429 service protection; `retry_after` from the Retry-After header."""


class DataverseUnavailable(DataverseError):
    """5xx, timeouts, dropped connections."""
