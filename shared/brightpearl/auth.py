"""Brightpearl authentication: private-app headers, or OAuth 2.0 with a pluggable token store.

OAuth (reference §2.4): access tokens expire; the refresh-token grant at the token endpoint
returns a new access token and (possibly) a rotated refresh token, which must be written
back before it is used, or the next process start would hold a dead refresh token. Stores:
`MemoryTokenStore` (tests), `FileTokenStore` (sandbox), `KeyVaultTokenStore` (Azure, via
azure-keyvault-secrets). Refreshing is single-flight across threads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.brightpearl.errors import BrightpearlAuthError, BrightpearlUnavailable

APP_REF = "brightpearl-app-ref"
ACCOUNT_TOKEN = "brightpearl-account-token"  # noqa: S105 - a header name
DEV_REF = "brightpearl-dev-ref"


class TokenSet(BaseModel):
    """The OAuth tokens of one installation (what the token endpoint returned)."""

    model_config = ConfigDict(extra="ignore")

    access_token: str | None = None
    refresh_token: str = Field(min_length=1)
    token_type: str = "Bearer"  # noqa: S105
    expires_at: datetime | None = None
    api_domain: str | None = None
    installation_instance_id: str | None = None

    def expired(self, now: datetime, skew_seconds: float) -> bool:
        if not self.access_token:
            return True
        if self.expires_at is None:
            return False
        return now + timedelta(seconds=skew_seconds) >= self.expires_at


class TokenStore(Protocol):
    """Where the current TokenSet lives between calls and processes."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


class MemoryTokenStore:
    """Tokens in process memory (tests)."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens
        self._lock = threading.Lock()
        self.saves = 0

    def load(self) -> TokenSet | None:
        with self._lock:
            return self._tokens

    def save(self, tokens: TokenSet) -> None:
        with self._lock:
            self._tokens = tokens
            self.saves += 1


class FileTokenStore:
    """Tokens in a JSON file (sandbox), written atomically with owner-only permissions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> TokenSet | None:
        with self._lock:
            if not self.path.exists():
                return None
            try:
                return TokenSet.model_validate_json(self.path.read_text(encoding="utf-8"))
            except ValidationError as exc:
                raise BrightpearlAuthError(
                    f"token file {self.path} is not a valid token set: {exc.errors()[0]['msg']}"
                ) from exc

    def save(self, tokens: TokenSet) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".token-")
            try:
                os.chmod(tmp, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(tokens.model_dump_json())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


class SecretClientLike(Protocol):
    """The part of azure.keyvault.secrets.SecretClient the Key Vault store uses."""

    def get_secret(self, name: str, version: str | None = None, **kwargs: Any) -> Any: ...

    def set_secret(self, name: str, value: str, **kwargs: Any) -> Any: ...


class KeyVaultTokenStore:
    """Tokens as one JSON secret in Azure Key Vault (a new secret version per rotation)."""

    def __init__(self, client: SecretClientLike, secret_name: str) -> None:
        self._client = client
        self.secret_name = secret_name
        self._lock = threading.Lock()

    @classmethod
    def from_vault_url(cls, vault_url: str, secret_name: str, credential: Any = None) -> KeyVaultTokenStore:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        return cls(SecretClient(vault_url, credential or DefaultAzureCredential()), secret_name)

    def load(self) -> TokenSet | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._lock:
            try:
                secret = self._client.get_secret(self.secret_name)
            except ResourceNotFoundError:
                return None
            if not secret.value:
                return None
            try:
                return TokenSet.model_validate_json(secret.value)
            except ValidationError as exc:
                raise BrightpearlAuthError(
                    f"Key Vault secret {self.secret_name!r} is not a valid token set: "
                    f"{exc.errors()[0]['msg']}"
                ) from exc

    def save(self, tokens: TokenSet) -> None:
        with self._lock:
            self._client.set_secret(
                self.secret_name, tokens.model_dump_json(), content_type="application/json"
            )


class Authenticator(Protocol):
    """Adds credentials to requests and recovers from a 401 when it can."""

    def headers(self) -> dict[str, str]: ...

    def on_unauthorized(self, sent_headers: dict[str, str]) -> bool:
        """Called after a 401; True if fresh credentials exist and the call may be replayed."""
        ...

    def api_domain(self) -> str | None: ...


class PrivateAppAuth:
    """Private system app: app ref + account token on every call (reference §2.2)."""

    def __init__(self, app_ref: str, account_token: str) -> None:
        if not app_ref or not account_token:
            raise ValueError("private-app auth needs app_ref and account_token")
        self._headers = {APP_REF: app_ref, ACCOUNT_TOKEN: account_token}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def on_unauthorized(self, sent_headers: dict[str, str]) -> bool:
        return False  # a static token cannot be refreshed

    def api_domain(self) -> str | None:
        return None


def sign_token(unsigned_token: str, developer_secret: str) -> str:
    """Legacy public-app signing (reference §2.3): base64(HMAC-SHA256(secret, token))."""
    digest = hmac.new(developer_secret.encode(), unsigned_token.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class PublicAppAuth:
    """Legacy public system app: dev ref + app ref + the account token signed with the
    developer secret. Only the unsigned token is kept, so a new secret can re-sign it."""

    def __init__(
        self, app_ref: str, dev_ref: str, unsigned_account_token: str, developer_secret: str
    ) -> None:
        if not (app_ref and dev_ref and unsigned_account_token and developer_secret):
            raise ValueError(
                "public-app auth needs app_ref, dev_ref, the unsigned token and the developer secret"
            )
        self._headers = {
            APP_REF: app_ref,
            DEV_REF: dev_ref,
            ACCOUNT_TOKEN: sign_token(unsigned_account_token, developer_secret),
        }

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def on_unauthorized(self, sent_headers: dict[str, str]) -> bool:
        return False

    def api_domain(self) -> str | None:
        return None


class OAuthAuth:
    """OAuth 2.0 instance app: bearer + app ref + dev ref; refreshes and rotates tokens."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        app_ref: str,
        dev_ref: str,
        store: TokenStore,
        account: str | None = None,
        client_secret: str | None = None,
        initial_refresh_token: str | None = None,
        refresh_skew_seconds: float = 60.0,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.account = account
        self._app_ref = app_ref
        self._dev_ref = dev_ref
        self.store = store
        self._initial_refresh_token = initial_refresh_token
        self._skew = refresh_skew_seconds
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._now = now
        self._lock = threading.RLock()
        self._tokens: TokenSet | None = None
        self.refreshes = 0

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- grants --------------------------------------------------------------------------
    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Authorization-code grant: trade the code from the redirect for tokens; store them."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        with self._lock:
            tokens = self._grant(form, previous=None)
            self._tokens = tokens
            self.store.save(tokens)
            return tokens

    def refresh(self) -> TokenSet:
        """Refresh-token grant; the (rotated) tokens are saved before they are used."""
        with self._lock:
            current = self._load()
            refresh_token = current.refresh_token if current else self._initial_refresh_token
            if not refresh_token:
                raise BrightpearlAuthError(
                    "no Brightpearl OAuth refresh token: the token store is empty and "
                    "BRIGHTPEARL_OAUTH_REFRESH_TOKEN is not set; run the authorization-code flow"
                )
            tokens = self._grant(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}, previous=current
            )
            self.store.save(tokens)
            self._tokens = tokens
            self.refreshes += 1
            return tokens

    def _grant(self, form: dict[str, str], previous: TokenSet | None) -> TokenSet:
        form = dict(form, client_id=self.client_id)
        if self.client_secret:
            form["client_secret"] = self.client_secret
        if self.account:
            form["account_code"] = self.account
        try:
            resp = self._http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise BrightpearlUnavailable(
                f"Brightpearl token endpoint unreachable: {type(exc).__name__}"
            ) from exc
        if resp.status_code >= 500:
            raise BrightpearlUnavailable(
                f"Brightpearl token endpoint answered {resp.status_code}", status=resp.status_code
            )
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or resp.text[:200]
            raise BrightpearlAuthError(
                f"Brightpearl token endpoint refused the {form['grant_type']} grant "
                f"({resp.status_code}): {reason}",
                status=resp.status_code,
            )
        expires_in = body.get("expires_in")
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        if not refresh:
            raise BrightpearlAuthError("token endpoint returned no refresh_token")
        instance = body.get("installation_instance_id")
        return TokenSet(
            access_token=body["access_token"],
            refresh_token=refresh,
            token_type=body.get("token_type") or "Bearer",
            expires_at=(self._now() + timedelta(seconds=float(expires_in)))
            if expires_in is not None
            else None,
            api_domain=body.get("api_domain") or (previous.api_domain if previous else None),
            installation_instance_id=str(instance)
            if instance is not None
            else (previous.installation_instance_id if previous else None),
        )

    # --- Authenticator ---------------------------------------------------------------------
    def _load(self) -> TokenSet | None:
        if self._tokens is None:
            self._tokens = self.store.load()
        return self._tokens

    def current(self) -> TokenSet:
        with self._lock:
            tokens = self._load()
            if tokens is None or tokens.expired(self._now(), self._skew):
                tokens = self.refresh()
            return tokens

    def headers(self) -> dict[str, str]:
        tokens = self.current()
        token_type = "Bearer" if tokens.token_type.lower() == "bearer" else tokens.token_type
        return {
            "Authorization": f"{token_type} {tokens.access_token}",
            APP_REF: self._app_ref,
            DEV_REF: self._dev_ref,
        }

    def on_unauthorized(self, sent_headers: dict[str, str]) -> bool:
        with self._lock:
            tokens = self._load()
            sent = sent_headers.get("Authorization", "")
            if tokens is not None and tokens.access_token and not sent.endswith(tokens.access_token):
                return True  # another thread refreshed meanwhile
            self.refresh()
            return True

    def api_domain(self) -> str | None:
        tokens = self._tokens
        return tokens.api_domain if tokens else None

    def installation_instance_id(self) -> str | None:
        return self.current().installation_instance_id


def token_set_from_json(text: str) -> TokenSet:
    """Parse a stored token set (for syncctl / operators)."""
    return TokenSet.model_validate(json.loads(text))
