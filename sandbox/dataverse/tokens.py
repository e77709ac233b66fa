"""Access tokens: Entra-style client-credentials tokens (opaque) with lifetimes in simulator time."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from sandbox.dataverse.config import Clock, SimulatorConfig


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
