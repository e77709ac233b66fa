"""Credentials for Dataverse: azure-identity in Azure, a small client-credentials credential for
the sandbox simulator's token endpoint. Both are azure.core TokenCredentials."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError

from shared.dataverse.settings import DataverseSettings


class SandboxCredential:
    """OAuth 2.0 client credentials against one token URL (the simulator's
    `/{tenant}/oauth2/v2.0/token`). Implements the TokenCredential protocol. It does not cache:
    the Dataverse client caches tokens and asks again after a 401."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._http = httpx.Client(transport=transport, timeout=timeout)

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if len(scopes) != 1:
            raise ValueError("exactly one scope is required, e.g. https://org.crm.dynamics.com/.default")
        try:
            resp = self._http.post(
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self._secret,
                    "scope": scopes[0],
                },
            )
        except httpx.HTTPError as exc:
            raise ClientAuthenticationError(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            try:
                detail = resp.json().get("error_description", "")
            except ValueError:
                detail = resp.text[:200]
            raise ClientAuthenticationError(f"token request failed ({resp.status_code}): {detail}")
        body = resp.json()
        return AccessToken(body["access_token"], int(time.time()) + int(body.get("expires_in", 3600)))

    def close(self) -> None:
        self._http.close()


def build_credential(settings: DataverseSettings) -> TokenCredential:
    """The credential the settings ask for: sandbox token URL, client secret, managed identity,
    else DefaultAzureCredential (developer machines, workload identity)."""
    if settings.token_url:
        assert settings.client_id and settings.client_secret  # guaranteed by the settings validator
        return SandboxCredential(settings.token_url, settings.client_id, settings.client_secret)
    from azure import identity

    authority = settings.authority_host.rstrip("/") if settings.authority_host else None
    extra: dict[str, Any] = {"authority": authority} if authority else {}
    if settings.client_secret:
        assert settings.tenant_id and settings.client_id
        return identity.ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret, **extra
        )
    if settings.use_managed_identity:
        return identity.ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return identity.DefaultAzureCredential(
        managed_identity_client_id=settings.managed_identity_client_id, **extra
    )


class TokenCache:
    """Caches one bearer token per scope; refreshes 5 minutes before expiry or when told to."""

    REFRESH_MARGIN = 300

    def __init__(self, credential: TokenCredential, scope: str) -> None:
        self.credential = credential
        self.scope = scope
        self._token: AccessToken | None = None
        self._margin = float(self.REFRESH_MARGIN)
        self._lock = threading.Lock()
        self.acquired = 0

    def get(self, *, force: bool = False, stale: str | None = None) -> str:
        with self._lock:
            token = self._token
            if force and token is not None and (stale is None or token.token == stale):
                token = None
            if token is None or token.expires_on - self._margin <= time.time():
                token = self.credential.get_token(self.scope)
                # refresh 5 minutes early, or a tenth of the lifetime for short-lived tokens
                self._margin = min(
                    float(self.REFRESH_MARGIN), max(0.0, (token.expires_on - time.time()) / 10)
                )
                self._token = token
                self.acquired += 1
            return token.token
