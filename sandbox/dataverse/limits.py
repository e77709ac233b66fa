"""Service protection (per-user sliding windows, concurrency cap), injected faults and access tokens."""

from __future__ import annotations

import math
import secrets
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.errors import ODataError

FAULT_KINDS = ("429", "502", "503", "504", "timeout", "slow", "drop", "413")
THROTTLE_CODES = {
    "requests": (
        E.REQUESTS_EXCEEDED,
        "Number of requests exceeded the limit of {n} over time window of {w} seconds.",
    ),
    "execution": (
        E.EXECUTION_TIME_EXCEEDED,
        "Combined execution time of incoming requests exceeded limit of {n} milliseconds over time "
        "window of {w} seconds. Decrease number of concurrent requests or reduce the duration of "
        "requests and try again later.",
    ),
    "concurrency": (E.CONCURRENCY_EXCEEDED, "Number of concurrent requests exceeded the limit of {n}."),
}


@dataclass
class Usage:
    requests: deque[float] = field(default_factory=deque)
    execution: deque[tuple[float, float]] = field(default_factory=deque)
    in_flight: int = 0
    max_in_flight: int = 0


class ServiceProtection:
    def __init__(self, config: SimulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.users: dict[str, Usage] = {}
        self.throttled: Counter[str] = Counter()

    def reset(self) -> None:
        with self.lock:
            self.users.clear()
            self.throttled.clear()

    def _retry_after(self, seconds: float) -> str:
        if self.config.fractional_retry_after:
            return f"{max(seconds, 0.001):.3f}"
        return str(max(1, math.ceil(seconds)))

    def _error(self, facet: str, limit: float, retry_after: float) -> ODataError:
        code, template = THROTTLE_CODES[facet]
        n = f"{int(limit):,}" if facet == "execution" else str(int(limit))
        message = template.format(
            n=n,
            w=int(self.config.window_seconds)
            if self.config.window_seconds >= 1
            else self.config.window_seconds,
        )
        self.throttled[code] += 1
        return ODataError(429, code, message, {"Retry-After": self._retry_after(retry_after)})

    def admit(self, user_id: str) -> ODataError | None:
        cfg = self.config
        now = self.clock.now()
        with self.lock:
            usage = self.users.setdefault(user_id, Usage())
            if usage.in_flight >= cfg.concurrency_limit:
                return self._error(
                    "concurrency",
                    cfg.concurrency_limit,
                    1.0 if not cfg.fractional_retry_after else min(1.0, cfg.window_seconds / 10),
                )
            horizon = now - cfg.window_seconds
            while usage.requests and usage.requests[0] <= horizon:
                usage.requests.popleft()
            while usage.execution and usage.execution[0][0] <= horizon:
                usage.execution.popleft()
            if len(usage.requests) >= cfg.request_limit:
                return self._error(
                    "requests", cfg.request_limit, usage.requests[0] + cfg.window_seconds - now
                )
            spent = sum(ms for _, ms in usage.execution)
            if spent >= cfg.execution_limit_ms:
                return self._error(
                    "execution", cfg.execution_limit_ms, usage.execution[0][0] + cfg.window_seconds - now
                )
            usage.requests.append(now)
            usage.in_flight += 1
            usage.max_in_flight = max(usage.max_in_flight, usage.in_flight)
            return None

    def release(self, user_id: str, duration_ms: float) -> None:
        with self.lock:
            usage = self.users[user_id]
            usage.in_flight -= 1
            usage.execution.append((self.clock.now(), duration_ms))

    def headers(self, user_id: str) -> dict[str, str]:
        with self.lock:
            usage = self.users.get(user_id, Usage())
            spent = sum(ms for _, ms in usage.execution)
            return {
                "x-ms-ratelimit-burst-remaining-xrm-requests": str(
                    max(self.config.request_limit - len(usage.requests), 0)
                ),
                "x-ms-ratelimit-time-remaining-xrm-requests": (
                    f"{max(self.config.execution_limit_ms - spent, 0):.2f}"
                ),
                "x-ms-dop-hint": str(self.config.dop_hint),
            }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "users": {
                    uid: {
                        "requests_in_window": len(u.requests),
                        "in_flight": u.in_flight,
                        "max_in_flight": u.max_in_flight,
                        "execution_ms_in_window": round(sum(ms for _, ms in u.execution), 2),
                    }
                    for uid, u in self.users.items()
                },
                "throttled": dict(self.throttled),
            }


@dataclass
class Fault:
    kind: str
    remaining: int = 1
    retry_after: float = 1.0
    delay_seconds: float = 30.0
    code: str = "requests"  # 429 facet: requests | execution | concurrency
    path_contains: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_contains and self.path_contains not in path)


class FaultInjector:
    """Deterministic "next N matching requests" faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.fired: Counter[str] = Counter()

    def add(self, spec: dict[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}; got {kind!r}")
        count = spec.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        fault = Fault(
            kind=kind,
            remaining=count,
            retry_after=float(spec.get("retry_after", 1.0)),
            delay_seconds=float(spec.get("delay_seconds", 30.0 if kind == "timeout" else 1.0)),
            code=str(spec.get("code", "requests")),
            path_contains=spec.get("path_contains"),
            method=spec.get("method"),
        )
        if fault.code not in THROTTLE_CODES:
            raise ValueError("code must be requests, execution or concurrency")
        with self.lock:
            self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    self.fired[fault.kind] += 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"pending": [asdict(f) for f in self.faults], "fired": dict(self.fired)}


@dataclass
class IssuedToken:
    client_id: str
    expires_at: float


class TokenIssuer:
    """Entra-style client-credentials tokens (opaque) with lifetimes in simulator time."""

    def __init__(self, config: SimulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.tokens: dict[str, IssuedToken] = {}
        self.issued = 0

    def issue(self, tenant: str, form: dict[str, str], resource_url: str) -> tuple[int, dict[str, Any]]:
        def fail(error: str, description: str, status: int = 400) -> tuple[int, dict[str, Any]]:
            return status, {"error": error, "error_description": description, "error_codes": []}

        if (
            tenant not in (self.config.tenant_id, "organizations", "common")
            and tenant != self.config.organization_name
        ):
            return fail("invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return fail("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        secret = self.config.clients.get(client_id)
        if secret is None:
            return fail(
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secrets.compare_digest(secret.encode(), form.get("client_secret", "").encode()):
            return fail("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
        scope = form.get("scope", "")
        expected = {f"{resource_url.rstrip('/')}/.default"}
        if self.config.public_url:
            expected.add(f"{self.config.public_url.rstrip('/')}/.default")
        if scope not in expected:
            return fail(
                "invalid_scope",
                f"AADSTS70011: The provided value for the input parameter 'scope' is not valid. "
                f"Expected '{sorted(expected)[0]}'.",
            )
        token = secrets.token_urlsafe(32)
        lifetime = self.config.token_lifetime_seconds
        with self.lock:
            self.tokens[token] = IssuedToken(client_id, self.clock.now() + lifetime)
            self.issued += 1
        return 200, {
            "token_type": "Bearer",
            "expires_in": int(lifetime),
            "ext_expires_in": int(lifetime),
            "access_token": token,
        }

    def validate(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self.lock:
            issued = self.tokens.get(authorization[7:].strip())
        if issued is None or issued.expires_at <= self.clock.now():
            return None
        return issued.client_id

    def expire_all(self) -> int:
        with self.lock:
            count = len(self.tokens)
            for token in self.tokens.values():
                token.expires_at = 0
            return count
