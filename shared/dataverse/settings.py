"""Dataverse connection settings (app settings DATAVERSE_*)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from shared.settings_base import identity_client_id, section_config

_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class DataverseSettings(BaseSettings):
    model_config = section_config("DATAVERSE_")

    url: str = Field(
        pattern=r"^https?://[^/\s]+/?$",
        description="environment URL, e.g. https://contoso.crm.dynamics.com",
    )
    # --- authentication (Entra ID) --------------------------------------------------------
    tenant_id: str | None = Field(
        None,
        description="Entra tenant (directory) id of the app registration",
    )
    client_id: str | None = Field(
        None,
        description="application (client) id of the app registration bound to the application user",
    )
    client_secret: str | None = Field(
        None,
        description="client secret (a Key Vault reference in Azure); omit to use managed identity",
    )
    use_managed_identity: bool = Field(
        False,
        description="authenticate with the function app's managed identity instead of a secret",
    )
    managed_identity_client_id: str | None = identity_client_id()
    authority_host: str | None = Field(
        None,
        pattern=r"^https://[^/\s]+/?$",
        description="Entra authority host for sovereign clouds (default login.microsoftonline.com)",
    )
    token_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="sandbox only: full client-credentials token endpoint (the simulator's "
        "/{tenant}/oauth2/v2.0/token); when set, the sandbox credential is used",
    )
    # --- behaviour --------------------------------------------------------------------------
    api_version: str = Field("v9.2", pattern=r"^v\d+\.\d+$")
    bulk_batch_size: int = Field(
        1000,
        ge=1,
        le=5000,
        description="rows per CreateMultiple/UpsertMultiple request",
    )
    batch_size: int = Field(
        100,
        ge=1,
        le=1000,
        description="operations per $batch request (fallback path; Dataverse allows 1000)",
    )
    page_size: int = Field(
        5000,
        ge=1,
        le=5000,
        description="odata.maxpagesize for queries and change tracking",
    )
    max_concurrency: int = Field(
        52,
        ge=1,
        le=52,
        description="in-flight requests per process; lowered further by x-ms-dop-hint",
    )
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="timeout of reads (GET)",
    )
    write_timeout_seconds: float = Field(
        120.0,
        gt=0,
        le=600,
        description="timeout of writes, bulk and $batch requests",
    )
    max_retries: int = Field(
        6,
        ge=0,
        le=20,
        description="in-call retries of 429/502/503/504 and network errors before the error surfaces",
    )
    max_retry_after_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="longest Retry-After waited inside a call; longer throttles surface as "
        "DataverseThrottled so the flow schedules a retry instead of holding its message lock",
    )
    # --- webhooks ------------------------------------------------------------------------------
    organization_id: str | None = Field(
        None,
        pattern=_GUID,
        description="when set, webhooks from any other OrganizationId are rejected",
    )
    webhook_header: str = Field(
        "x-bpi-webhook-secret",
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="header carrying DATAVERSE_WEBHOOK_SECRET (a query parameter is refused)",
    )
    webhook_endpoint_name: str = Field(
        "bpi-sync-ingress",
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
