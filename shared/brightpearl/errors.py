"""Brightpearl error ladder: one root, then one class per way a call can fail.

shared/resilience maps each class to retry / dead-letter. `retry_after` carries the
server's own delay (the throttle period) when it gave one. `error_from_answer` is the one
table from an answer's HTTP status (and envelope) to a class: the transport uses it for whole
requests and the client for each message of a multi-message.
"""

from __future__ import annotations

from typing import Any

THROTTLE_MARKER = "too many requests"
AUTH_HINT = " (check BRIGHTPEARL_APP_REF and the account token / OAuth tokens)"
AMBIGUOUS_HINT = "; the write may have been applied, look it up before re-creating"


class BrightpearlError(Exception):
    """Root of every Brightpearl client error (also: an unexpected protocol answer)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.retry_after = retry_after


class BrightpearlAuthError(BrightpearlError):
    """401: missing, wrong or expired credentials."""


class BrightpearlNotFound(BrightpearlError):
    """404: the request returned nothing."""


class BrightpearlValidationError(BrightpearlError):
    """400/412/414 and other 4xx: the request was rejected; `errors` holds Brightpearl's messages."""


class BrightpearlThrottled(BrightpearlError):
    """503 over the per-minute cap; `retry_after` is the throttle period in seconds."""


class BrightpearlUnavailable(BrightpearlError):
    """5xx (not throttling), timeouts, dropped connections."""


class BrightpearlPreconditionFailed(BrightpearlValidationError):
    """412: a stale `If-Match` version (product PUT, goods-out note events); re-read and retry."""


class BrightpearlUriTooLong(BrightpearlValidationError):
    """414: the URI (usually an id set) is too long; the client splits id sets to avoid it."""


class BrightpearlAmbiguousWrite(BrightpearlUnavailable):
    """A non-idempotent write (POST) failed after it was sent (timeout, dropped connection,
    5xx): Brightpearl may or may not have applied it. Never resend it blindly; look the
    record up by its natural key first (see BrightpearlClient.ensure_* helpers)."""


BY_STATUS: dict[int, type[BrightpearlError]] = {
    401: BrightpearlAuthError,
    404: BrightpearlNotFound,
    412: BrightpearlPreconditionFailed,
    414: BrightpearlUriTooLong,
}


def error_from_answer(status: int, body: Any, where: str, *, ambiguous: bool = False) -> BrightpearlError:
    """The error for a non-success answer `status` with decoded envelope `body` to `where`
    (e.g. "POST /contact-service/contact/"), by status:

    401 auth, 404 not found, 412 precondition failed, 414 URI too long, other 4xx validation;
    503 saying "too many requests" throttled; other 5xx unavailable, or an ambiguous write when
    `ambiguous` (a write that may have been applied); anything else with `errors` validation.
    The message names the status, `where` and Brightpearl's own error codes and messages.
    """
    envelope = body if isinstance(body, dict) else {}
    errors = [e for e in envelope.get("errors") or [] if isinstance(e, dict)]
    detail = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors)
    if not detail and isinstance(envelope.get("response"), str):
        detail = envelope["response"]
    elif not detail and body and not isinstance(body, dict):
        detail = str(body)[:300]
    message = f"Brightpearl answered {status} to {where}" + (f": {detail}" if detail else "")
    cls = BY_STATUS.get(status) or _by_range(status, detail, ambiguous=ambiguous, has_errors=bool(errors))
    if cls is BrightpearlAuthError:
        message += AUTH_HINT
    elif cls is BrightpearlAmbiguousWrite:
        message += AMBIGUOUS_HINT
    return cls(message, status=status, errors=errors)


def _by_range(status: int, detail: str, *, ambiguous: bool, has_errors: bool) -> type[BrightpearlError]:
    if 400 <= status < 500:
        return BrightpearlValidationError
    if status == 503 and THROTTLE_MARKER in detail.lower():
        return BrightpearlThrottled
    if status >= 500:
        return BrightpearlAmbiguousWrite if ambiguous else BrightpearlUnavailable
    return BrightpearlValidationError if has_errors else BrightpearlError
