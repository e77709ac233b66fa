"""Brightpearl connection settings (app settings BRIGHTPEARL_*)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from shared.settings_base import section_config


class BrightpearlSettings(BaseSettings):
    model_config = section_config("BRIGHTPEARL_")

    account: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Brightpearl account code; webhooks from any other account are rejected",
    )

    # --- where -------------------------------------------------------------------------
    datacentre: str = Field(
        "euw1",
        pattern=r"^[a-z0-9-]{2,16}$",
        description="datacentre code (euw1, use1, ...); host is {dc}.brightpearlconnect.com",
    )
    base_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$",
        description="explicit API root up to the host (e.g. http://127.0.0.1:8101 for the "
        "simulator); overrides the datacentre; OAuth api_domain overrides both",
    )

    # --- auth --------------------------------------------------------------------------
    auth_mode: Literal["private", "oauth"] = Field(
        "private",
        description="private (app ref + account token) or oauth (bearer + refresh token)",
    )
    app_ref: str | None = Field(
        None,
        min_length=1,
        description="brightpearl-app-ref header; also the OAuth client_id",
    )
    account_token: str | None = Field(
        None,
        min_length=1,
        description="private-app account token (Key Vault reference in Azure)",
    )
    dev_ref: str | None = Field(
        None,
        min_length=1,
        description="brightpearl-dev-ref header, sent with OAuth calls",
    )
    oauth_client_id: str | None = Field(
        None,
        min_length=1,
        description="OAuth client_id; defaults to BRIGHTPEARL_APP_REF",
    )
    oauth_client_secret: str | None = Field(
        None,
        min_length=1,
        description="OAuth client_secret (confidential apps only; Key Vault reference)",
    )
    oauth_refresh_token: str | None = Field(
        None,
        min_length=1,
        description="initial refresh token, used only when the token store is empty",
    )
    oauth_token_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="token endpoint; default {base}/{account}/oauth/token (sources disagree, reference §2.4)",
    )
    token_store: Literal["memory", "file", "keyvault"] = Field(
        "memory",
        description="where rotated OAuth tokens are kept: keyvault in Azure, file/memory locally",
    )
    token_store_path: str = Field(
        ".sandbox/brightpearl-token.json",
        description="file of the file token store",
    )
    key_vault_url: str | None = Field(
        None,
        pattern=r"^https://\S+$",
        description="vault URL of the keyvault token store, e.g. https://kv.vault.azure.net",
    )
    token_secret_name: str = Field(
        "brightpearl-oauth-token",
        pattern=r"^[0-9A-Za-z-]{1,127}$",
        description="Key Vault secret holding the OAuth token set (JSON)",
    )
    token_refresh_skew_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="refresh an access token this long before it expires",
    )

    # --- rate budget -------------------------------------------------------------------
    rate_limit: int = Field(
        200,
        ge=1,
        le=100_000,
        description="requests allowed per rolling window (Brightpearl: 200 per minute)",
    )
    rate_window_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="length of the rolling window (Brightpearl: 60 s; lower only for tests)",
    )
    rate_reserve: int = Field(
        2,
        ge=0,
        le=1000,
        description="slots left unused per window (other apps share the account's pool)",
    )
    shared_budget: bool = Field(
        True,
        description="share the rate budget with every instance through the state store (a row of "
        "the cursors table; each instance leases BRIGHTPEARL_SHARED_BUDGET_BLOCK requests at a "
        "time); false: each instance keeps its own budget, safe with one instance only",
    )
    shared_budget_block: int = Field(
        10,
        ge=1,
        le=100,
        description="requests one instance leases from the shared budget at a time (one table "
        "read and write per lease; smaller after a lease expired mostly unused)",
    )
    shared_budget_lease_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="how long a leased block may be used; its unused requests stay counted "
        "until lease + window (a crashed instance's too), so the shared budget admits at most "
        "the cap per window + lease seconds",
    )
    max_throttle_wait_seconds: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="longest a call waits in total for the rate budget; beyond it "
        "BrightpearlThrottled is raised and the flow schedules a retry copy (no long sleeps "
        "inside a function)",
    )

    # --- timeouts, retries, batching ---------------------------------------------------
    connect_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=120,
        description="TCP/TLS connect timeout per request",
    )
    read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="read timeout per request (a timed-out POST is ambiguous, never resent)",
    )
    max_retries: int = Field(
        4,
        ge=0,
        le=20,
        description="in-call retries of idempotent requests on 5xx / network errors",
    )
    retry_base_delay_seconds: float = Field(
        0.5,
        ge=0,
        le=60,
        description="first in-call retry delay (doubles, plus jitter)",
    )
    retry_max_delay_seconds: float = Field(
        10.0,
        ge=0,
        le=600,
        description="cap of one in-call retry delay",
    )
    idset_chunk_size: int = Field(
        200,
        ge=1,
        le=500,
        description="ids per GET (Brightpearl caps most GETs at 200)",
    )
    idset_max_chars: int = Field(
        1500,
        ge=20,
        le=8000,
        description="longest id-set text in one URI; longer chunks are split (avoids 414)",
    )
    search_page_size: int = Field(
        500,
        ge=1,
        le=500,
        description="rows per search page (Brightpearl maximum 500)",
    )

    @model_validator(mode="after")
    def _auth_mode_needs_its_credentials(self) -> BrightpearlSettings:
        missing: list[str] = []
        if not self.app_ref:
            missing.append("BRIGHTPEARL_APP_REF")
        if self.auth_mode == "private" and not self.account_token:
            missing.append("BRIGHTPEARL_ACCOUNT_TOKEN")
        if self.auth_mode == "oauth":
            if not self.dev_ref:
                missing.append("BRIGHTPEARL_DEV_REF")
            if self.token_store == "keyvault" and not self.key_vault_url:  # noqa: S105
                missing.append("BRIGHTPEARL_KEY_VAULT_URL")
        # Credentials are only demanded once a mode is chosen explicitly or partially given,
        # so webhook-only hosts (ingress) can run with just BRIGHTPEARL_ACCOUNT.
        if missing and self.app_ref is None and self.account_token is None and self.dev_ref is None:
            return self
        if missing:
            raise ValueError(f"BRIGHTPEARL_AUTH_MODE={self.auth_mode} needs " + ", ".join(missing))
        return self

    @property
    def api_root(self) -> str:
        """Scheme and host of the API (no trailing slash)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://{self.datacentre}.brightpearlconnect.com"

    @property
    def client_id(self) -> str | None:
        return self.oauth_client_id or self.app_ref

    @property
    def token_url(self) -> str:
        return self.oauth_token_url or f"{self.api_root}/{self.account}/oauth/token"
