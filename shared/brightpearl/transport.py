"""One Brightpearl HTTP call: auth headers, rate budget, envelope, error ladder, safe retries.

Rules (reference §1.5, §1.6, §3):
* every call first takes a slot from the shared `RateBudget`, and every response's throttle
  headers feed it back;
* a 503 "too many requests" was not processed, so any method is re-sent after the throttle
  period (bounded by `max_throttle_wait`);
* idempotent calls (GET, OPTIONS, PUT, DELETE; PATCH only when the caller says so) are
  retried with exponential backoff and jitter on other 5xx, timeouts and dropped
  connections (tenacity);
* a POST is re-sent only when it provably never left (connect error). If it failed after
  it was sent, `BrightpearlAmbiguousWrite` is raised: the caller must look the record up by
  its natural key before creating it again (see `BrightpearlClient.ensure_*`);
* a 401 is answered once by the authenticator (OAuth refresh), then the call is replayed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import RetryCallState, wait_exponential_jitter

from shared.brightpearl.auth import Authenticator
from shared.brightpearl.errors import (
    THROTTLE_MARKER,
    BrightpearlAmbiguousWrite,
    BrightpearlError,
    BrightpearlThrottled,
    BrightpearlUnavailable,
    error_from_answer,
)
from shared.brightpearl.ratebudget import NEXT_THROTTLE_PERIOD, RateBudget
from shared.retrying import Retryable, call_with_retries

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_ID_SETS = re.compile(r"(?<=/)(\d[\d,.\-]*|\*)(?=/|$)")


@dataclass
class CallStats:
    """Counters of one client (benchmarks, tests, telemetry)."""

    calls: int = 0
    throttled: int = 0
    retries: int = 0
    refreshed: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str, path: str) -> None:
        key = f"{method} {_ID_SETS.sub('{ids}', path.split('?', 1)[0])}"
        with self._lock:
            self.calls += 1
            self.by_path[key] = self.by_path.get(key, 0) + 1

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass(frozen=True)
class BrightpearlResponse:
    """A decoded answer: status, the envelope's `response`, and its top-level extras."""

    status: int
    response: Any
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def reference(self) -> dict[str, Any]:
        ref = self.body.get("reference")
        return ref if isinstance(ref, dict) else {}


class BrightpearlTransport:
    """Sends requests to `{root}/public-api/{account}` with all the rules above."""

    def __init__(
        self,
        *,
        root: str,
        account: str,
        auth: Authenticator,
        budget: RateBudget,
        http: httpx.Client | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_retries: int = 4,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 10.0,
        max_throttle_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        follow_api_domain: bool = True,
    ) -> None:
        self._root = root.rstrip("/")
        self.account = account
        self.auth = auth
        self.budget = budget
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = http or httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=32)
        )
        self._owns_http = http is None
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.max_throttle_wait = max_throttle_wait
        self._sleep = sleep
        self._follow_api_domain = follow_api_domain
        self.stats = CallStats()

    # --- plumbing ----------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """The URI prefix up to and including the account code (reference §1.1)."""
        root = self._root
        domain = self.auth.api_domain() if self._follow_api_domain else None
        if domain:
            root = domain.rstrip("/") if "://" in domain else f"{root.split('://', 1)[0]}://{domain}"
        return f"{root}/public-api/{self.account}"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- the call ----------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> BrightpearlResponse:
        """Send one logical request; raise the error ladder's class on failure."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS

        def attempt(number: int) -> BrightpearlResponse:
            try:
                return self._send(method, path, params=params, json=json, headers=headers,
                                  idempotent=idempotent)
            except BrightpearlUnavailable as exc:
                if idempotent or getattr(exc, "_never_sent", False):
                    raise Retryable(exc) from None  # the error itself is carried
                raise

        def before_sleep(state: RetryCallState) -> None:
            self.stats.bump("retries")
            exc = state.outcome.exception() if state.outcome else None
            log.warning("brightpearl %s %s retry %d after %s", method, _safe_path(path),
                        state.attempt_number, type(getattr(exc, "error", exc)).__name__)

        return call_with_retries(
            attempt,
            max_retries=self.max_retries,
            backoff=wait_exponential_jitter(
                multiplier=self.retry_base_delay, jitter=self.retry_base_delay, max=self.retry_max_delay
            ),
            sleep=self._sleep,
            before_sleep=before_sleep,
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str] | None,
        idempotent: bool,
    ) -> BrightpearlResponse:
        throttle_waited = 0.0
        refreshed = False
        while True:
            throttle_waited += self.budget.acquire(self.max_throttle_wait - throttle_waited)
            sent_headers = self.auth.headers()
            if headers:
                sent_headers.update(headers)
            url = f"{self.prefix}{path}"
            self.stats.count(method, path)
            try:
                resp = self._http.request(method, url, params=params, json=json, headers=sent_headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = BrightpearlUnavailable(
                    f"Brightpearl unreachable ({type(exc).__name__}) on {method} {_safe_path(path)}"
                )
                error._never_sent = True  # type: ignore[attr-defined]
                raise error from exc
            except httpx.TransportError as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                message = f"Brightpearl {kind} ({type(exc).__name__}) on {method} {_safe_path(path)}"
                if not idempotent:
                    raise BrightpearlAmbiguousWrite(
                        message + "; the write may have been applied, look it up before re-creating"
                    ) from exc
                raise BrightpearlUnavailable(message) from exc
            self.budget.observe(resp.headers)
            if resp.status_code == 401 and not refreshed and self.auth.on_unauthorized(sent_headers):
                refreshed = True
                self.stats.bump("refreshed")
                continue
            if resp.status_code == 503:
                text = resp.text
                if THROTTLE_MARKER in text.lower():
                    self.stats.bump("throttled")
                    period = _period_ms(resp.headers.get(NEXT_THROTTLE_PERIOD))
                    paused = self.budget.throttled(period)
                    if throttle_waited + paused > self.max_throttle_wait:
                        raise BrightpearlThrottled(
                            f"Brightpearl throttled {method} {_safe_path(path)} for longer than "
                            f"{self.max_throttle_wait:.0f}s",
                            status=503,
                            retry_after=paused,
                        )
                    continue
            return self._decode(method, path, resp, idempotent)

    def _decode(
        self, method: str, path: str, resp: httpx.Response, idempotent: bool
    ) -> BrightpearlResponse:
        status = resp.status_code
        body: Any = None
        if resp.content:
            ctype = resp.headers.get("content-type", "")
            if "json" in ctype:
                try:
                    body = resp.json()
                except ValueError:
                    body = None
            if body is None and status < 300:
                raise BrightpearlError(
                    f"Brightpearl answered {status} to {method} {_safe_path(path)} with a "
                    f"non-JSON body ({ctype or 'no content type'})",
                    status=status,
                )
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise BrightpearlError(
                f"Brightpearl answered {status} with a JSON {type(body).__name__}, not an envelope",
                status=status,
            )
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        if 200 <= status < 300 and not errors:
            return BrightpearlResponse(status, body.get("response"), body, resp.headers)

        raise error_from_answer(status, body, f"{method} {_safe_path(path)}", ambiguous=not idempotent)


def _period_ms(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _safe_path(path: str) -> str:
    """The path without its query (queries may carry e-mail filters, i.e. PII)."""
    return path.split("?", 1)[0]
