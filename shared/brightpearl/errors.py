"""Brightpearl error ladder: one root, then one class per way a call can fail.

shared/resilience maps each class to retry / dead-letter. `retry_after` carries the
server's own delay (the throttle period) when it gave one.
"""

from __future__ import annotations


class BrightpearlError(Exception):
    """Root of every Brightpearl client error (also: an unexpected protocol answer)."""

    def __init__(self, message: str, *, status: int | None = None,
                 errors: list[dict] | None = None, retry_after: float | None = None) -> None:
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
