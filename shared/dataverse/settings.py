"""Dataverse connection settings (app settings DATAVERSE_*)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class DataverseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    url: str = Field(
        validation_alias="DATAVERSE_URL",
        pattern=r"^https?://[^/\s]+/?$",
        description="environment URL, e.g. https://contoso.crm.dynamics.com",
    )
    # --- authentication (Entra ID) --------------------------------------------------------
    tenant_id: str | None = Field(
        None,
        validation_alias="DATAVERSE_TENANT_ID",
        description="Entra tenant (directory) id of the app registration",
    )
    client_id: str | None = Field(
        None,
        validation_alias="DATAVERSE_CLIENT_ID",
        description="application (client) id of the app registration bound to the application user",
    )
    client_secret: str | None = Field(
        None,
        validation_alias="DATAVERSE_CLIENT_SECRET",
        description="client secret (a Key Vault reference in Azure); omit to use managed identity",
    )
    use_managed_identity: bool = Field(
        False,
        validation_alias="DATAVERSE_USE_MANAGED_IDENTITY",
        description="authenticate with the function app's managed identity instead of a secret",
    )
    managed_identity_client_id: str | None = Field(
        None,
        validation_alias="DATAVERSE_MANAGED_IDENTITY_CLIENT_ID",
        description="client id of a user-assigned managed identity, if one is used",
    )
    authority_host: str | None = Field(
        None,
        validation_alias="DATAVERSE_AUTHORITY_HOST",
        pattern=r"^https://[^/\s]+/?$",
        description="Entra authority host for sovereign clouds (default login.microsoftonline.com)",
    )
    token_url: str | None = Field(
        None,
        validation_alias="DATAVERSE_TOKEN_URL",
        pattern=r"^https?://\S+$",
        description="sandbox only: full client-credentials token endpoint (the simulator's "
        "/{tenant}/oauth2/v2.0/token); when set, the sandbox credential is used",
    )
    # --- behaviour --------------------------------------------------------------------------
    api_version: str = Field("v9.2", validation_alias="DATAVERSE_API_VERSION", pattern=r"^v\d+\.\d+$")
    bulk_batch_size: int = Field(
        1000,
        ge=1,
        le=5000,
        validation_alias="DATAVERSE_BULK_BATCH_SIZE",
        description="rows per CreateMultiple/UpsertMultiple request",
    )
    batch_size: int = Field(
        100,
        ge=1,
        le=1000,
        validation_alias="DATAVERSE_BATCH_SIZE",
        description="operations per $batch request (fallback path; Dataverse allows 1000)",
    )
    page_size: int = Field(
        5000,
        ge=1,
        le=5000,
        validation_alias="DATAVERSE_PAGE_SIZE",
        description="odata.maxpagesize for queries and change tracking",
    )
    max_concurrency: int = Field(
        52,
        ge=1,
        le=52,
        validation_alias="DATAVERSE_MAX_CONCURRENCY",
        description="in-flight requests per process; lowered further by x-ms-dop-hint",
    )
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        validation_alias="DATAVERSE_TIMEOUT_SECONDS",
        description="timeout of reads (GET)",
    )
    write_timeout_seconds: float = Field(
        120.0,
        gt=0,
        le=600,
        validation_alias="DATAVERSE_WRITE_TIMEOUT_SECONDS",
        description="timeout of writes, bulk and $batch requests",
    )
    max_retries: int = Field(
        6,
        ge=0,
        le=20,
        validation_alias="DATAVERSE_MAX_RETRIES",
        description="in-call retries of 429/502/503/504 and network errors before the error surfaces",
    )
    max_retry_after_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        validation_alias="DATAVERSE_MAX_RETRY_AFTER_SECONDS",
        description="longest Retry-After waited inside a call; longer throttles surface as "
        "DataverseThrottled so the flow schedules a retry instead of holding its message lock",
    )
    # --- webhooks ------------------------------------------------------------------------------
    organization_id: str | None = Field(
        None,
        validation_alias="DATAVERSE_ORGANIZATION_ID",
        pattern=_GUID,
        description="when set, webhooks from any other OrganizationId are rejected",
    )
    webhook_header: str = Field(
        "x-bpi-webhook-secret",
        validation_alias="DATAVERSE_WEBHOOK_HEADER",
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="header carrying DATAVERSE_WEBHOOK_SECRET (a query parameter is refused)",
    )
    webhook_endpoint_name: str = Field(
        "bpi-sync-ingress",
        validation_alias="DATAVERSE_WEBHOOK_ENDPOINT_NAME",
        pattern=r"^[A-Za-z0-9 ._-]{1,100}$",
        description="name of the serviceendpoint row `syncctl webhooks register --dataverse` manages",
    )

    @model_validator(mode="after")
    def _credentials_complete(self) -> DataverseSettings:
        if self.client_secret and not (self.client_id and (self.tenant_id or self.token_url)):
            raise ValueError("DATAVERSE_CLIENT_SECRET needs DATAVERSE_CLIENT_ID and DATAVERSE_TENANT_ID")
        if self.token_url and not (self.client_id and self.client_secret):
            raise ValueError("DATAVERSE_TOKEN_URL needs DATAVERSE_CLIENT_ID and DATAVERSE_CLIENT_SECRET")
        if self.use_managed_identity and self.client_secret:
            raise ValueError("set either DATAVERSE_USE_MANAGED_IDENTITY or DATAVERSE_CLIENT_SECRET, not both")
        return self

    @property
    def service_root(self) -> str:
        return f"{self.url.rstrip('/')}/api/data/{self.api_version}/"

    @property
    def scope(self) -> str:
        return f"{self.url.rstrip('/')}/.default"
