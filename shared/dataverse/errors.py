"""Dataverse error ladder: one root, then one class per way a call can fail.

shared/resilience maps each class to retry / dead-letter. `retry_after` carries the
server's Retry-After when it gave one; `code` the Dataverse error code (e.g. 0x80072322).
Subclasses below refine the roots (their resilience action is inherited from the root they
extend); `error_from_response` picks the class from the HTTP status and the error code.
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Any


@dataclass(eq=False, repr=False)
class DataverseError(Exception):
    """Root of every Dataverse client error (also: an unexpected protocol answer)."""

    message: str
    _: KW_ONLY
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    request_id: str | None = field(default=None, init=False)
    server_message: str = field(default="", init=False)  # the service's own text, without our context

    def __post_init__(self) -> None:
        super().__init__(self.message)
        self.server_message = self.message


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


# --- refinements (same resilience action as their root) -------------------------------------
class DataversePrivilegeError(DataverseAuthError):
    """403: the application user lacks a privilege (0x80040220) or access right (0x80048306)."""


class DataverseConcurrencyError(DataverseValidationError):
    """412 0x80060882: the record changed since its ETag was read."""


class DataverseDuplicateError(DataverseValidationError):
    """412 0x80040237 (duplicate key) or 0x80040333 (duplicate-detection rule)."""


class DataverseRestrictedDelete(DataverseValidationError):
    """405 0x80040227: a Restrict relationship blocks the delete."""


class DataverseRequestTooLarge(DataverseValidationError):
    """413 0x8004418A: the request body is too large; send smaller batches."""


class DataverseBulkNotSupported(DataverseValidationError):
    """The table does not support CreateMultiple/UpsertMultiple here; use $batch."""


class DataverseReferenceMissing(DataverseNotFound):
    """404 on a write because a record it binds to (@odata.bind) does not exist (yet)."""


class DataverseDeltaTokenExpired(DataverseValidationError):
    """The change-tracking delta token expired; a full sync is needed."""


class DataverseForeignLink(DataverseError):
    """A nextLink or delta link outside the configured service root (another host): not
    followed, so the bearer token never leaves the configured environment."""


class DataverseSchemaMissing(DataverseValidationError):
    """400: the request names a column (or alternate key) the environment does not have.

    A configuration problem of the Dataverse environment, not a bad source record: every record
    fails the same way until the column exists. `table` and `column` name what is missing
    (`column` is None for a missing alternate key); the message says how to fix it.
    """

    table: str | None = None
    column: str | None = None


CODE_CLASSES: dict[str, type[DataverseError]] = {
    "0x80060882": DataverseConcurrencyError,
    "0x80040237": DataverseDuplicateError,
    "0x80040333": DataverseDuplicateError,
    "0x80040227": DataverseRestrictedDelete,
    "0x8004418a": DataverseRequestTooLarge,
    "0x80040220": DataversePrivilegeError,
    "0x80048306": DataversePrivilegeError,
    "0x80040800": DataverseBulkNotSupported,
}

DELTA_EXPIRED_TEXT = "Version stamp associated with the client has expired"
PROVISION_FIX = "run `syncctl dataverse provision`, then `syncctl dataverse check`"

# How Dataverse names a property the table does not have (reference dataverse-api.md §9.3):
# in $select/$filter/$expand, and in a POST/PATCH body. Both answer 400 (code 0x0).
_UNKNOWN_PROPERTY = (
    re.compile(
        r"Could not find a property named '(?P<column>[^']+)' "
        r"on type 'Microsoft\.Dynamics\.CRM\.(?P<table>[a-z0-9_]+)'"
    ),
    re.compile(
        r"Invalid property '(?P<column>[^']+)' "
        r"was found in entity 'Microsoft\.Dynamics\.CRM\.(?P<table>[a-z0-9_]+)'"
    ),
)
# An alternate-key reference (contacts(bpi_brightpearlid='7')) to a key the table does not have.
_UNKNOWN_KEY = re.compile(
    r"The key in the request URI is not valid for resource 'Microsoft\.Dynamics\.CRM\.(?P<table>[a-z0-9_]+)'"
)


def _missing_schema(status: int, message: str) -> tuple[str, str | None] | None:
    """(table, column) when a 400 says the table lacks a column; (table, None) for a key."""
    if status != 400:
        return None
    for pattern in _UNKNOWN_PROPERTY:
        found = pattern.search(message)
        if found:
            return found["table"], found["column"]
    found = _UNKNOWN_KEY.search(message)
    return (found["table"], None) if found else None


def _schema_missing_text(context: str, message: str, table: str, column: str | None) -> str:
    what = f"no column '{column}'" if column else "no active alternate key for the key in this request"
    text = (
        f"Dataverse table '{table}' has {what} (the environment lacks part of the integration's "
        f"schema; not a problem of this record): {PROVISION_FIX}."
    )
    if column and not column.startswith("bpi_"):
        text += f" '{column}' is not one of the integration's bpi_ columns: correct the mapping."
    text += f" Dataverse said: {message}"
    return f"{context}: {text}" if context else text


def error_from_response(
    status: int, payload: Any, headers: dict[str, str] | None = None, *, context: str = ""
) -> DataverseError:
    """The exception for a non-success answer: class by code first, then by status."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    code: str | None = None
    message = ""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        code = str(payload["error"].get("code") or "") or None
        message = str(payload["error"].get("message") or "")
    if not message:
        message = f"HTTP {status}"
    retry_after = _parse_retry_after(headers.get("retry-after"))
    text = f"{context}: {message}" if context else message
    cls: type[DataverseError]
    missing = _missing_schema(status, message)
    if missing is not None:
        cls = DataverseSchemaMissing
        text = _schema_missing_text(context, message, *missing)
    elif code and code.lower() in CODE_CLASSES:
        cls = CODE_CLASSES[code.lower()]
    elif DELTA_EXPIRED_TEXT in message:
        cls = DataverseDeltaTokenExpired
    elif status == 429:
        cls = DataverseThrottled
    elif status in (401, 403):
        cls = DataverseAuthError
    elif status == 404:
        cls = DataverseNotFound
    elif status == 413:
        cls = DataverseRequestTooLarge
    elif 400 <= status < 500:
        cls = DataverseValidationError
    elif status >= 500:
        cls = DataverseUnavailable
    else:
        cls = DataverseError
    error = cls(text, status=status, code=code, retry_after=retry_after)
    if isinstance(error, DataverseSchemaMissing) and missing is not None:
        error.table, error.column = missing
    error.server_message = message
    error.request_id = (
        headers.get("x-ms-service-request-id") or headers.get("req_id") or headers.get("x-ms-request-id")
    )
    return error


_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def refine_not_found(
    error: DataverseError, method: str, path: str, logical_name: str | None
) -> DataverseError:
    """A 404 on a write is about the record written only if the message names that record;
    otherwise a referenced record is missing (which may still appear: retry)."""
    if type(error) is not DataverseNotFound or method.upper() not in ("POST", "PATCH", "PUT"):
        return error
    text = error.server_message
    own_ids = {g.lower() for g in _GUID_RE.findall(path.split("/")[0])}
    named = {g.lower() for g in _GUID_RE.findall(text)}
    about_target = (
        logical_name is not None
        and logical_name.lower() in text.lower()
        and (bool(own_ids & named) or (not own_ids and "(" in path.split("/")[0] and not named))
    )
    if about_target:
        return error
    refined = DataverseReferenceMissing(
        str(error), status=error.status, code=error.code, retry_after=error.retry_after
    )
    refined.request_id = error.request_id
    refined.server_message = error.server_message
    return refined


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
